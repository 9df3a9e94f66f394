"""Sliding windows, views and vote maps over whole images, in NumPy.

The network sees windows of --input_size; an image of any size is
zero-padded (bottom and right) to at least the window and covered by
windows whose outputs are summed where they overlap (embed_sliding_windows).
The windows of several images (e.g. a scale and its mirror) go through the
network in batches of up to batch_size (iter_window_batches), and a window
whose content (and part inside its image) repeats one already seen is
computed once; batch size 1 without deduplication is the one-window-at-a-
time path. Multi-scale inference looks at resized and mirrored views of the
image (iter_views), gathers the kNN votes of every pixel's cluster into a
vote map (accumulate_votes: one gather, no loop over classes) and brings
each view's map back to the image (fold_back).

The network is an argument (a function of a batch of windows), so
everything here is tested against plain loops.
"""
import collections
import hashlib
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


WindowRef = collections.namedtuple(
    'WindowRef', ['image', 'y0', 'x0', 'valid_h', 'valid_w'])
WindowRef.__doc__ = """Where a window lies: image index, start, valid part."""


def iter_window_batches(images, window_size, strides, batch_size=1,
                        deduplicate=True):
  """The sliding windows of several images, in batches.

  Windows are taken image by image in iter_windows order. With
  deduplicate, a window equal to an earlier one (same pixels, same part
  inside its image) is not repeated: its WindowRef joins the earlier
  window's, so every distinct window is computed once. Only the windows of
  one batch are stacked at a time, so memory is bounded by batch_size.

  Args:
    images: float arrays [H_i, W_i, 3].
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).
    batch_size: windows per batch (>= 1); the last batch may be smaller.
    deduplicate: compute equal windows once.

  Yields:
    (windows, refs): float32 [n, win_h, win_w, 3] with n <= batch_size, and
    for each of the n windows the list of WindowRefs where it lies.
  """
  if batch_size < 1:
    raise ValueError('batch_size must be >= 1, got %d' % batch_size)
  groups = []
  seen = {}
  for index, image in enumerate(images):
    for y0, x0, window, valid_h, valid_w in iter_windows(image, window_size,
                                                         strides):
      ref = WindowRef(index, y0, x0, valid_h, valid_w)
      if deduplicate:
        key = (hashlib.blake2b(np.ascontiguousarray(window).data,
                               digest_size=16).digest(), valid_h, valid_w)
        # The digest finds candidates; equal pixels decide.
        match = next((g for g in seen.get(key, ())
                      if np.array_equal(g[0], window)), None)
        if match is not None:
          match[1].append(ref)
          continue
        seen.setdefault(key, []).append((window, [ref]))
        groups.append(seen[key][-1])
      else:
        groups.append((window, [ref]))
  for start in range(0, len(groups), batch_size):
    batch = groups[start:start + batch_size]
    yield (np.stack([window for window, _ in batch]).astype(np.float32),
           [refs for _, refs in batch])


def normalize_rows(array):
  """x / max(||x||, 1e-6) along the last axis (common_utils' rule)."""
  array = np.asarray(array, dtype=np.float32)
  norm = np.sqrt(np.sum(np.square(array), axis=-1, keepdims=True))
  return array / np.maximum(norm, 1e-6)


def embed_sliding_windows(images, batch_fn, window_size, strides,
                          normalization=NORMALIZE_L2, batch_size=1,
                          deduplicate=True):
  """The network's output over whole images, in batches of windows.

  out(p) = sum over the windows w containing p of f_w(p), where f_w is the
  window's output upsampled to the window size; then cropped to the image
  and, by `normalization`, L2-normalised per pixel ('l2', embeddings),
  divided by the number of windows containing p ('mean', the softmax
  probabilities of a multi-scale view), or left as the sum ('none'). The
  result does not depend on batch_size nor on deduplicate (up to the
  network's own rounding).

  Args:
    images: float arrays [H_i, W_i, 3] (mean subtracted).
    batch_fn: fn(windows [n, win_h, win_w, 3]) -> [n, win_h, win_w, C];
      the network (or, in tests, any function).
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).
    normalization: one of NORMALIZATIONS.
    batch_size: windows per call of batch_fn.
    deduplicate: see iter_window_batches.

  Returns:
    A list of float32 [H_i, W_i, C], one per image.
  """
  if normalization not in NORMALIZATIONS:
    raise ValueError('normalization must be one of %s, got %r'
                     % (NORMALIZATIONS, normalization))
  totals = [None] * len(images)
  counts = [np.zeros(image.shape[:2] + (1,), np.float32) for image in images]
  for windows, refs in iter_window_batches(images, window_size, strides,
                                           batch_size, deduplicate):
    outputs = np.asarray(batch_fn(windows), dtype=np.float32)
    if outputs.shape[:3] != windows.shape[:3]:
      raise ValueError('the network returned shape %s for windows of shape '
                       '%s' % (outputs.shape, windows.shape))
    for output, window_refs in zip(outputs, refs):
      for ref in window_refs:
        if totals[ref.image] is None:
          totals[ref.image] = np.zeros(
              images[ref.image].shape[:2] + output.shape[2:], np.float32)
        # Only the part inside the image is kept: the padding is cropped.
        region = (slice(ref.y0, ref.y0 + ref.valid_h),
                  slice(ref.x0, ref.x0 + ref.valid_w))
        totals[ref.image][region] += output[:ref.valid_h, :ref.valid_w]
        counts[ref.image][region] += 1.0
  for i, total in enumerate(totals):
    if normalization == NORMALIZE_L2:
      totals[i] = normalize_rows(total)
    elif normalization == NORMALIZE_MEAN:
      total /= counts[i]
  return totals


def embed_sliding_window(image, window_fn, window_size, strides,
                         normalization=NORMALIZE_L2):
  """embed_sliding_windows of one image, one window at a time.

  Args:
    image: float array [H, W, 3] (mean subtracted).
    window_fn: fn(window [win_h, win_w, 3]) -> [win_h, win_w, C].
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).
    normalization: one of NORMALIZATIONS.

  Returns:
    float32 [H, W, C].
  """
  def batch_fn(windows):
    return [window_fn(window) for window in windows]
  return embed_sliding_windows([image], batch_fn, window_size, strides,
                               normalization, 1, deduplicate=False)[0]


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
