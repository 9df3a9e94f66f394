"""Sliding windows, views and vote maps over whole images, in NumPy.

The network sees one window of --input_size at a time; an image of any size
is zero-padded (bottom and right) to at least the window and covered by
windows whose outputs are summed where they overlap (embed_sliding_window).
Multi-scale inference looks at resized and mirrored views of the image
(iter_views), gathers the kNN votes of every pixel's cluster into a vote
map (accumulate_votes: one gather, no loop over classes) and brings each
view's map back to the image (fold_back).

The network is an argument (a function of one window), so everything here
is tested against plain loops.
"""
import math

import cv2
import numpy as np

# How embed_sliding_window normalises the summed outputs.
NORMALIZE_L2 = 'l2'
NORMALIZE_MEAN = 'mean'
NORMALIZE_NONE = 'none'
NORMALIZATIONS = (NORMALIZE_L2, NORMALIZE_MEAN, NORMALIZE_NONE)

# cv2.resize handles at most this many channels at once.
_CV2_MAX_CHANNELS = 512


def check_size(name, pair):
  """(H, W) as two positive python ints.

  Raises:
    ValueError naming `name` otherwise.
  """
  pair = tuple(int(v) for v in pair)
  if len(pair) != 2 or min(pair) < 1:
    raise ValueError('%s must be two positive integers H,W, got %r'
                     % (name, pair))
  return pair


def get_window_positions(image_size, window_size, strides):
  """Where the sliding windows go over a zero-padded image.

  The image is padded (bottom and right) to at least the window,
  P = max(image, window) per axis. Along an axis there are
  n = ceil((P - window) / stride) + 1 windows whose starts are the floor of
  n evenly spaced values from 0 to P - window, so the first and the last
  positions are always included and consecutive windows are at most
  `stride` apart.

  Args:
    image_size: (H, W) of the image.
    window_size: (win_h, win_w), the network input (--input_size).
    strides: (stride_h, stride_w) (--strides); a stride longer than the
      window is taken as the window, so that no pixel is left out.

  Returns:
    padded_size: (P_h, P_w).
    starts: list of (y0, x0), row-major.
  """
  image_size = check_size('image size', image_size)
  window_size = check_size('--input_size', window_size)
  # A stride longer than the window would leave pixels no window sees.
  strides = tuple(min(s, w) for s, w in
                  zip(check_size('--strides', strides), window_size))
  padded = tuple(max(i, w) for i, w in zip(image_size, window_size))
  axes = []
  for size, window, stride in zip(padded, window_size, strides):
    count = int(math.ceil((size - window) / float(stride))) + 1
    axes.append(np.floor(np.linspace(0, size - window, count)).astype(int)
                .tolist())
  return padded, [(y, x) for y in axes[0] for x in axes[1]]


def iter_windows(image, window_size, strides):
  """The windows of the sliding window over an image.

  Args:
    image: float array [H, W, 3] (mean subtracted: padding 0 is the mean
      colour).
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).

  Yields:
    (y0, x0, window, valid_h, valid_w): the window [win_h, win_w, 3] at
    (y0, x0) of the zero-padded image, and the size of its part inside the
    image, window[:valid_h, :valid_w].
  """
  height, width = image.shape[:2]
  padded_size, starts = get_window_positions((height, width), window_size,
                                             strides)
  padded = np.zeros(padded_size + image.shape[2:], dtype=np.float32)
  padded[:height, :width] = image
  win_h, win_w = window_size
  for y0, x0 in starts:
    yield (y0, x0, padded[y0:y0 + win_h, x0:x0 + win_w],
           max(0, min(win_h, height - y0)), max(0, min(win_w, width - x0)))


def normalize_rows(array):
  """x / max(||x||, 1e-6) along the last axis (common_utils' rule)."""
  array = np.asarray(array, dtype=np.float32)
  norm = np.sqrt(np.sum(np.square(array), axis=-1, keepdims=True))
  return array / np.maximum(norm, 1e-6)


def embed_sliding_window(image, window_fn, window_size, strides,
                         normalization=NORMALIZE_L2):
  """The network's output over a whole image, window by window.

  out(p) = sum over the windows w containing p of f_w(p), where f_w is the
  window's output upsampled to the window size; then cropped to the image
  and, by `normalization`, L2-normalised per pixel ('l2', embeddings),
  divided by the number of windows containing p ('mean', logits), or left
  as the sum ('none').

  Args:
    image: float array [H, W, 3] (mean subtracted).
    window_fn: fn(window [win_h, win_w, 3]) -> [win_h, win_w, C]; the
      network (or, in tests, any function).
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).
    normalization: one of NORMALIZATIONS.

  Returns:
    float32 [H, W, C].
  """
  if normalization not in NORMALIZATIONS:
    raise ValueError('normalization must be one of %s, got %r'
                     % (NORMALIZATIONS, normalization))
  height, width = image.shape[:2]
  total = counts = None
  for y0, x0, window, valid_h, valid_w in iter_windows(image, window_size,
                                                       strides):
    output = np.asarray(window_fn(window), dtype=np.float32)
    if output.shape[:2] != tuple(window_size):
      raise ValueError('window_fn returned shape %s for a %dx%d window'
                       % (output.shape, window_size[0], window_size[1]))
    if total is None:
      total = np.zeros((height, width, output.shape[2]), np.float32)
      counts = np.zeros((height, width, 1), np.float32)
    # Only the part inside the image is kept: the padding is cropped away.
    total[y0:y0 + valid_h, x0:x0 + valid_w] += output[:valid_h, :valid_w]
    counts[y0:y0 + valid_h, x0:x0 + valid_w] += 1.0
  if normalization == NORMALIZE_L2:
    total = normalize_rows(total)
  elif normalization == NORMALIZE_MEAN:
    total /= counts
  return total


def resize_bilinear(array, size):
  """Bilinear resize of [h, w] or [h, w, C] to size (OpenCV INTER_LINEAR).

  Pixel centres are aligned (half-pixel convention).
  """
  array = np.asarray(array, dtype=np.float32)
  height, width = int(size[0]), int(size[1])
  if array.shape[:2] == (height, width):
    return array
  if array.ndim == 2 or array.shape[2] <= _CV2_MAX_CHANNELS:
    out = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
    return out.reshape((height, width) + array.shape[2:])
  return np.concatenate(
      [resize_bilinear(array[:, :, c:c + _CV2_MAX_CHANNELS], size)
       for c in range(0, array.shape[2], _CV2_MAX_CHANNELS)], axis=2)


def get_scaled_size(image_size, scale):
  """(max(1, int(H * s)), max(1, int(W * s))): sizes are truncated."""
  return tuple(max(1, int(v * scale)) for v in image_size)


def iter_views(image, scales, flip):
  """The views of a multi-scale run.

  Args:
    image: float array [H, W, C].
    scales: positive numbers; the image is resized bilinearly to
      get_scaled_size((H, W), s) for each.
    flip: also yield the mirror of every scaled image.

  Yields:
    (scale, flipped, view) for every scale, unflipped first.
  """
  size = image.shape[:2]
  for scale in scales:
    scaled = resize_bilinear(image, get_scaled_size(size, scale))
    yield scale, False, scaled
    if flip:
      yield scale, True, scaled[:, ::-1]


def fold_back(scores, flipped, image_size):
  """A view's scores [h, w, C] resized to the image, its flip undone."""
  scores = resize_bilinear(scores, image_size)
  return scores[:, ::-1] if flipped else scores


def accumulate_votes(votes, cluster_votes, cluster_labels, offset=(0, 0)):
  """Adds every pixel's cluster votes to a vote map, in place.

  votes[y0 + y, x0 + x, c] += cluster_votes[cluster_labels[y, x], c] for all
  (y, x, c) at once: one gather [h, w] -> [h, w, C] and one add, no loop
  over classes.

  Args:
    votes: float array [H, W, C], updated in place.
    cluster_votes: array [Q, C], the kNN votes of every cluster.
    cluster_labels: int array [h, w] in [0, Q).
    offset: (y0, x0) of cluster_labels in votes.

  Returns:
    votes.
  """
  y0, x0 = offset
  height, width = cluster_labels.shape
  votes[y0:y0 + height, x0:x0 + width] += cluster_votes[cluster_labels]
  return votes
