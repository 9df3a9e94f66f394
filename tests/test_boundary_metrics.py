"""Tests for utils/boundary_metrics.py on hand-made label maps."""
import numpy as np
import pytest

from utils import boundary_metrics as bm


def test_boundary_map_marks_both_sides_and_skips_ignore():
  labels = np.array([[0, 0, 1],
                     [0, 0, 1],
                     [255, 255, 1]])
  np.testing.assert_array_equal(
      bm.get_boundary_map(labels, ignore_label=255),
      [[0, 1, 1],
       [0, 1, 1],
       [0, 0, 0]])
  np.testing.assert_array_equal(
      bm.get_boundary_map(labels),
      [[0, 1, 1],
       [1, 1, 1],
       [1, 1, 1]])


def test_counts_by_hand():
  """True border between columns 2|3, predicted between 3|4 (6x6)."""
  labels = np.zeros((6, 6), np.int64)
  labels[:, 3:] = 1
  segments = np.zeros((6, 6), np.int64)
  segments[:, 4:] = 1
  # True boundary pixels: columns 2, 3; predicted: columns 3, 4.
  counts = bm.get_boundary_counts(segments, labels, tolerance=1.0)
  assert counts == bm.BoundaryCounts(12, 12, 12, 12)
  counts = bm.get_boundary_counts(segments, labels, tolerance=0.5)
  assert counts == bm.BoundaryCounts(6, 12, 6, 12)  # Column 3 only.
  recall, precision, f = bm.get_recall_precision(counts)
  assert (recall, precision, f) == (0.5, 0.5, 0.5)


def test_predicted_borders_near_ignored_pixels_do_not_count():
  labels = np.zeros((8, 8), np.int64)
  labels[:, 6:] = 255
  segments = np.zeros((8, 8), np.int64)
  segments[:, 1:] = 1   # Column 0|1: far from void, wrong.
  segments[:, 5:] = 2   # Column 4|5: next to the void, unknown.
  counts = bm.get_boundary_counts(segments, labels, tolerance=2.0)
  # No true border (void borders are not borders); columns 0 and 1 count
  # as predicted, columns 4 and 5 lie within 2 px of the void.
  assert counts == bm.BoundaryCounts(0, 0, 0, 16)
  assert bm.get_recall_precision(counts) == (0.0, 0.0, 0.0)


def test_sum_counts_and_errors():
  total = bm.sum_counts([bm.BoundaryCounts(1, 2, 3, 4),
                         bm.BoundaryCounts(10, 20, 30, 40)])
  assert total == bm.BoundaryCounts(11, 22, 33, 44)
  with pytest.raises(ValueError, match='differ in shape'):
    bm.get_boundary_counts(np.zeros((2, 3)), np.zeros((3, 2)))
