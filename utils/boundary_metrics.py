"""Boundary recall and precision of a segmentation against label boundaries.

A pixel is a boundary pixel of a label map when one of its 4-neighbours has
another label (both sides of a border are marked). Against ground truth
with an ignore label (void):

  - true boundaries are those between two different non-ignored labels,
  - a true boundary pixel is recalled when a predicted boundary pixel lies
    within `tolerance` pixels (Euclidean distance),
  - a predicted boundary pixel is precise when a true boundary pixel lies
    within `tolerance`; predicted boundary pixels within `tolerance` of an
    ignored pixel are not counted (the truth is unknown there).

Pixels are matched many-to-one (no bipartite matching as in the BSDS
benchmark), so the figures compare methods on the same images rather than
reproduce published BSDS numbers.
"""
import collections

import numpy as np
from scipy import ndimage

DEFAULT_TOLERANCE = 2.0

# Pixel counts of one image (or summed over images).
BoundaryCounts = collections.namedtuple(
    'BoundaryCounts', ['recalled', 'true', 'precise', 'predicted'])


def get_boundary_map(labels, ignore_label=None):
  """Boundary pixels of a label map.

  Args:
    labels: int [H, W].
    ignore_label: optional label whose borders are not boundaries.

  Returns:
    bool [H, W]: pixels with a 4-neighbour of another label (neither of
    the two being ignore_label).
  """
  labels = np.asarray(labels)
  edge = np.zeros(labels.shape, bool)
  for axis in (0, 1):
    a = np.take(labels, np.arange(labels.shape[axis] - 1), axis=axis)
    b = np.take(labels, np.arange(1, labels.shape[axis]), axis=axis)
    differ = a != b
    if ignore_label is not None:
      differ &= (a != ignore_label) & (b != ignore_label)
    if axis == 0:
      edge[:-1] |= differ
      edge[1:] |= differ
    else:
      edge[:, :-1] |= differ
      edge[:, 1:] |= differ
  return edge


def _within(mask, tolerance):
  """Pixels within tolerance of a True pixel of mask (none if empty)."""
  if not mask.any():
    return np.zeros(mask.shape, bool)
  return ndimage.distance_transform_edt(~mask) <= tolerance


def get_boundary_counts(segments, labels, ignore_label=255,
                        tolerance=DEFAULT_TOLERANCE):
  """Boundary matches of one segmentation.

  Args:
    segments: int [H, W] segment ids.
    labels: int [H, W] ground-truth class ids.
    ignore_label: ground-truth id of unknown pixels (None: none).
    tolerance: matching distance in pixels.

  Returns:
    BoundaryCounts.
  """
  segments = np.asarray(segments)
  labels = np.asarray(labels)
  if segments.shape != labels.shape:
    raise ValueError('segments %s and labels %s differ in shape'
                     % (segments.shape, labels.shape))
  true = get_boundary_map(labels, ignore_label)
  predicted = get_boundary_map(segments)
  if ignore_label is not None:
    predicted &= ~_within(labels == ignore_label, tolerance)
  recalled = true & _within(predicted, tolerance)
  precise = predicted & _within(true, tolerance)
  return BoundaryCounts(int(recalled.sum()), int(true.sum()),
                        int(precise.sum()), int(predicted.sum()))


def get_recall_precision(counts):
  """(recall, precision, F) from (summed) BoundaryCounts; 0 when empty."""
  recall = counts.recalled / counts.true if counts.true else 0.0
  precision = counts.precise / counts.predicted if counts.predicted else 0.0
  f = (2 * recall * precision / (recall + precision)
       if recall + precision > 0 else 0.0)
  return recall, precision, f


def sum_counts(counts):
  """Sums a list of BoundaryCounts."""
  return BoundaryCounts(*np.sum(np.array(counts, np.int64).reshape(
      -1, len(BoundaryCounts._fields)), axis=0).tolist())
