"""One predictor behind every inference script.

    extract_prototypes.py       SegSortPredictor.extract_prototypes
    inference_segsort.py        SegSortPredictor.predict (single scale)
    inference_segsort_msc.py    SegSortPredictor.predict_multiscale
    inference.py                SoftmaxPredictor.predict / predict_multiscale
    visualize_retrieval.py      SegSortPredictor.predict(..., details)
    benchmark_inference.py      the same calls, with per-stage timings

A predictor builds one graph with three parts that run as separate session
calls (so that the timings of the stages are honest):

- the network on ONE window [1, win_h, win_w, 3], its output upsampled
  bilinearly to the window (as the original); images of any size go through
  the sliding window (embed_sliding_window: zero padding to at least the
  window, windows that cover the whole padded image, outputs summed where
  they overlap, cropped back to the image);
- test-time clustering: vMF k-means of normalize(concat(embedding,
  location)) from the grid start, one prototype per cluster
  (eval_utils.extract_test_prototypes); for the annotated set, the
  prototypes of extract_trained_prototypes plus where each came from;
- the kNN search of the cluster prototypes in the training prototype bank
  (a variable filled once; scanned in chunks of --knn_chunk_size so that
  memory stays bounded), and the per-class vote counts [Q, C].

Multi-scale inference accumulates, for every pixel, the votes of its
cluster's k neighbours per class: votes[cluster_labels] gathers [Q, C] into
[h, w, C] at once (the original looped over the classes in Python and called
that its bottleneck). Votes are resized to the image, flipped back and
summed over scales; the label is their argmax (ties: lowest class).

Differences from the original release, all deliberate:
- k-means runs on the pixels inside the image only (the original's
  single-scale script also clustered the padding around the image, and its
  multi-scale one the padding inside each window), with location features
  (y / h, x / w) of the clustered region.
- Windows never leave gaps: a stride longer than the window counts as the
  window.
- Any image size and aspect works; sizes need not be multiples of 8 or 48.
"""
import collections
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time

import cv2
import numpy as np
import tensorflow.compat.v1 as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from seg_models import checkpoints
from seg_models import models
from seg_models.models import common
from utils import atomic_io
from utils import label_images

# Files of a prototype set, in SAVE_DIR/prototypes/ (the original's names).
PROTOTYPE_SUBDIR = 'prototypes'
PROTOTYPE_FEATURES = 'prototype_features.npy'
PROTOTYPE_LABELS = 'prototype_labels.npy'
# New here: where every prototype came from (for retrieval pictures).
PROTOTYPE_INDEX = 'prototype_index.json'
PROTOTYPE_INDEX_FORMAT = 'segsort-prototype-index'
PROTOTYPE_INDEX_VERSION = 1

# Output folders of the inference scripts, inside --save_dir.
GRAY_SUBDIR = 'gray'
COLOR_SUBDIR = 'color'

# Scales of --scale_aug (the original's).
MSC_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

# Stage names of the timings.
STAGE_NETWORK = 'network'
STAGE_KMEANS = 'kmeans'
STAGE_KNN = 'knn'
STAGE_VOTES = 'votes'
STAGES = (STAGE_NETWORK, STAGE_KMEANS, STAGE_KNN, STAGE_VOTES)

# Sliding-window normalisations (see embed_sliding_window).
NORMALIZE_L2 = 'l2'
NORMALIZE_MEAN = 'mean'
NORMALIZE_NONE = 'none'
NORMALIZATIONS = (NORMALIZE_L2, NORMALIZE_MEAN, NORMALIZE_NONE)

# cv2.resize handles at most this many channels at once.
_CV2_MAX_CHANNELS = 512


class PredictorError(ValueError):
  """Options, checkpoints or prototype files that cannot be used."""


# ---------------------------------------------------------------------------
# Timings.
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _timed(timings, stage):
  """Adds the wall time of the block to timings[stage] (if timings given)."""
  if timings is None:
    yield
    return
  start = time.perf_counter()
  try:
    yield
  finally:
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


# ---------------------------------------------------------------------------
# Sliding window (NumPy; the network is an argument).
# ---------------------------------------------------------------------------


def _check_pair(name, pair):
  pair = tuple(int(v) for v in pair)
  if len(pair) != 2 or min(pair) < 1:
    raise PredictorError('%s must be two positive integers H,W, got %r'
                         % (name, pair))
  return pair


def get_window_positions(image_size, window_size, strides):
  """Where the sliding windows go over a zero-padded image.

  The image is padded (bottom and right) to at least the window,
  P = max(image, window) per axis. Along an axis there are
  n = ceil((P - window) / stride) + 1 windows whose starts are spread evenly
  from 0 to P - window (floor of linspace, as the original), so the first
  and the last positions are always included and consecutive windows are at
  most `stride` apart.

  Args:
    image_size: (H, W) of the image.
    window_size: (win_h, win_w), the network input (--input_size).
    strides: (stride_h, stride_w) (--strides); a stride longer than the
      window is taken as the window, so that no pixel is left out.

  Returns:
    padded_size: (P_h, P_w).
    starts: list of (y0, x0), row-major.
  """
  image_size = _check_pair('image size', image_size)
  window_size = _check_pair('--input_size', window_size)
  # A stride longer than the window would leave pixels no window sees.
  strides = tuple(min(s, w) for s, w in
                  zip(_check_pair('--strides', strides), window_size))
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
  """x / max(||x||, 1e-6) along the last axis (as common_utils)."""
  array = np.asarray(array, dtype=np.float32)
  norm = np.sqrt(np.sum(np.square(array), axis=-1, keepdims=True))
  return array / np.maximum(norm, 1e-6)


def embed_sliding_window(image, window_fn, window_size, strides,
                         normalization=NORMALIZE_L2, timings=None):
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
    timings: optional dict; the time goes to timings['network'].

  Returns:
    float32 [H, W, C].
  """
  if normalization not in NORMALIZATIONS:
    raise ValueError('normalization must be one of %s, got %r'
                     % (NORMALIZATIONS, normalization))
  height, width = image.shape[:2]
  with _timed(timings, STAGE_NETWORK):
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

  Pixel centres are aligned (half-pixel convention), as the original's
  cv2.resize of the votes.
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
  """(max(1, int(H * s)), max(1, int(W * s))), as the original truncated."""
  return tuple(max(1, int(v * scale)) for v in image_size)


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


# ---------------------------------------------------------------------------
# Prototype sets on disk.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class PrototypeSet:
  """Training prototypes and, when known, where they came from.

  Attributes:
    features: float32 [P, D], unit rows.
    labels: int32 [P], their classes.
    index: None, or a dict (see build_prototype_index) with per-prototype
      'image_index' [P], 'boxes' [P, 4] (top, left, bottom, right; bottom
      and right exclusive), 'num_pixels' [P], and 'images', 'names',
      'data_dir'.
  """
  features: np.ndarray
  labels: np.ndarray
  index: dict = None

  def __len__(self):
    return int(self.labels.shape[0])


def _digest(array):
  return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def build_prototype_index(features, labels, image_index, boxes, num_pixels,
                          images, names, data_dir='', data_list=''):
  """The JSON-able index of a prototype set.

  It records the digests of the features and labels arrays, so that a
  loader can tell that the three files belong together.
  """
  return {
      'format': PROTOTYPE_INDEX_FORMAT,
      'version': PROTOTYPE_INDEX_VERSION,
      'count': int(len(labels)),
      'embedding_dim': int(features.shape[1]),
      'features_sha256': _digest(features),
      'labels_sha256': _digest(labels),
      'data_dir': data_dir,
      'data_list': data_list,
      'images': list(images),
      'names': list(names),
      'image_index': [int(v) for v in image_index],
      'boxes': [[int(v) for v in box] for box in boxes],
      'num_pixels': [int(v) for v in num_pixels],
  }


def save_prototypes(prototype_dir, features, labels, index=None):
  """Writes a prototype set all-or-nothing.

  The files are staged and renamed into place only when all are written
  (utils.atomic_io.atomic_files), the index last: an exception while writing
  leaves the folder as it was.

  Args:
    prototype_dir: folder (created), e.g. SAVE_DIR/prototypes.
    features: float [P, D].
    labels: int [P].
    index: optional dict from build_prototype_index.

  Returns:
    The list of paths written.
  """
  features = np.asarray(features, dtype=np.float32)
  labels = np.asarray(labels, dtype=np.int32)
  paths = [os.path.join(prototype_dir, PROTOTYPE_FEATURES),
           os.path.join(prototype_dir, PROTOTYPE_LABELS)]
  index_path = os.path.join(prototype_dir, PROTOTYPE_INDEX)
  if index is not None:
    paths.append(index_path)
  elif os.path.isfile(index_path):
    # An index of an earlier set would not describe the new files.
    os.remove(index_path)
  with atomic_io.atomic_files(paths) as tmp_paths:
    with open(tmp_paths[0], 'wb') as f:
      np.save(f, features, allow_pickle=False)
    with open(tmp_paths[1], 'wb') as f:
      np.save(f, labels, allow_pickle=False)
    if index is not None:
      with open(tmp_paths[2], 'w', encoding='utf-8') as f:
        json.dump(index, f)
  return paths


def _load_npy(path, what):
  if not os.path.isfile(path):
    folder = os.path.dirname(path)
    hint = ''
    if os.path.isfile(os.path.join(folder, PROTOTYPE_SUBDIR,
                                   os.path.basename(path))):
      hint = ' (did you mean --prototype_dir %s?)' % os.path.join(
          folder, PROTOTYPE_SUBDIR)
    raise PredictorError('%s not found: %s (--prototype_dir; run '
                         'extract_prototypes.py first)%s' % (what, path, hint))
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise PredictorError('cannot read %s %s: %s' % (what, path, e)) from e


class PrototypeCollector(object):
  """Gathers the prototypes of a data list, image by image, with their index.

  Nothing is written until save(), so an interrupted extraction leaves no
  file behind.
  """

  def __init__(self, embedding_dim, data_dir='', data_list=''):
    self.embedding_dim = embedding_dim
    self.data_dir = os.path.abspath(data_dir) if data_dir else ''
    self.data_list = os.path.abspath(data_list) if data_list else ''
    self._features, self._labels = [], []
    self._image_index, self._boxes, self._num_pixels = [], [], []
    self.images, self.names = [], []

  def add(self, image_path, name, features, labels, boxes, num_pixels):
    """Adds one image's prototypes (the outputs of extract_prototypes)."""
    image_id = len(self.images)
    if self.data_dir and os.path.abspath(image_path).startswith(
        self.data_dir + os.sep):
      image_path = os.path.relpath(os.path.abspath(image_path), self.data_dir)
    self.images.append(image_path)
    self.names.append(name)
    self._features.append(np.asarray(features, np.float32))
    self._labels.append(np.asarray(labels, np.int32))
    self._image_index.append(np.full(len(labels), image_id, np.int64))
    self._boxes.append(np.asarray(boxes, np.int64).reshape(-1, 4))
    self._num_pixels.append(np.asarray(num_pixels, np.int64))

  def __len__(self):
    return int(sum(len(l) for l in self._labels))

  def get_set(self):
    """The PrototypeSet gathered so far (with its index)."""
    if self._labels:
      features = np.concatenate(self._features, axis=0)
      labels = np.concatenate(self._labels, axis=0)
      image_index = np.concatenate(self._image_index)
      boxes = np.concatenate(self._boxes, axis=0)
      num_pixels = np.concatenate(self._num_pixels)
    else:
      features = np.zeros((0, self.embedding_dim), np.float32)
      labels = np.zeros((0,), np.int32)
      image_index = num_pixels = np.zeros((0,), np.int64)
      boxes = np.zeros((0, 4), np.int64)
    index = build_prototype_index(features, labels, image_index, boxes,
                                  num_pixels, self.images, self.names,
                                  self.data_dir, self.data_list)
    return PrototypeSet(features, labels, index)

  def save(self, prototype_dir):
    """Writes the set (all files or none); returns the PrototypeSet."""
    prototypes = self.get_set()
    if not len(prototypes):
      raise PredictorError('no prototype was extracted: every pixel of every '
                           'label is ignore_label')
    save_prototypes(prototype_dir, prototypes.features, prototypes.labels,
                    prototypes.index)
    return prototypes


def load_prototypes(prototype_dir, embedding_dim=None, num_classes=None,
                    need_index=False):
  """Loads and checks a prototype set written by save_prototypes.

  Args:
    prototype_dir: the folder holding the files (--prototype_dir).
    embedding_dim: if given, the feature dimension must equal it.
    num_classes: if given, every label must be in [0, num_classes).
    need_index: require prototype_index.json (retrieval pictures).

  Returns:
    A PrototypeSet (index None when there is no index file and it is not
    needed; the original release wrote none).

  Raises:
    PredictorError naming the file and the flag at fault.
  """
  if not prototype_dir:
    raise PredictorError('--prototype_dir is required')
  features_path = os.path.join(prototype_dir, PROTOTYPE_FEATURES)
  labels_path = os.path.join(prototype_dir, PROTOTYPE_LABELS)
  index_path = os.path.join(prototype_dir, PROTOTYPE_INDEX)
  features = _load_npy(features_path, 'prototype features')
  labels = _load_npy(labels_path, 'prototype labels')
  if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
    raise PredictorError('%s: expected a float [P, D] array, got %s %s'
                         % (features_path, features.dtype, features.shape))
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise PredictorError('%s: expected an integer [P] array, got %s %s'
                         % (labels_path, labels.dtype, labels.shape))
  if features.shape[0] != labels.shape[0]:
    raise PredictorError('%s holds %d prototypes but %s holds %d labels: the '
                         'files are not from the same extraction'
                         % (features_path, features.shape[0], labels_path,
                            labels.shape[0]))
  if features.shape[0] == 0:
    raise PredictorError('%s holds no prototype' % features_path)
  if not np.all(np.isfinite(features)):
    raise PredictorError('%s contains NaN or infinite values' % features_path)
  if embedding_dim is not None and features.shape[1] != embedding_dim:
    raise PredictorError('%s has %d-dimensional prototypes but '
                         '--embedding_dim is %d' % (features_path,
                                                    features.shape[1],
                                                    embedding_dim))
  if num_classes is not None and (labels.min() < 0 or
                                  labels.max() >= num_classes):
    raise PredictorError('%s has labels in [%d, %d], outside [0, %d) '
                         '(--num_classes %d)' % (labels_path, labels.min(),
                                                 labels.max(), num_classes,
                                                 num_classes))
  features = features.astype(np.float32)
  labels = labels.astype(np.int32)
  index = None
  if os.path.isfile(index_path):
    index = _load_index(index_path, features, labels)
  elif need_index:
    raise PredictorError('prototype index not found: %s (written by this '
                         "project's extract_prototypes.py; rerun it)"
                         % index_path)
  return PrototypeSet(features, labels, index)


def _load_index(path, features, labels):
  try:
    with open(path, encoding='utf-8') as f:
      index = json.load(f)
  except (OSError, ValueError) as e:
    raise PredictorError('cannot read prototype index %s: %s' % (path, e))
  if (not isinstance(index, dict) or
      index.get('format') != PROTOTYPE_INDEX_FORMAT):
    raise PredictorError('%s is not a prototype index' % path)
  if (index.get('count') != len(labels) or
      index.get('features_sha256') != _digest(features) or
      index.get('labels_sha256') != _digest(labels)):
    raise PredictorError('%s does not describe the %s and %s next to it (the '
                         'set is inconsistent; rerun extract_prototypes.py)'
                         % (path, PROTOTYPE_FEATURES, PROTOTYPE_LABELS))
  for key in ('image_index', 'boxes', 'num_pixels'):
    if len(index.get(key, ())) != len(labels):
      raise PredictorError('%s: %r has %d entries, expected %d'
                           % (path, key, len(index.get(key, ())),
                              len(labels)))
  index['image_index'] = np.asarray(index['image_index'], np.int64)
  index['boxes'] = np.asarray(index['boxes'], np.int64).reshape(-1, 4)
  index['num_pixels'] = np.asarray(index['num_pixels'], np.int64)
  if len(labels) and (index['image_index'].min() < 0 or
                      index['image_index'].max() >= len(index['images'])):
    raise PredictorError('%s: image_index out of range' % path)
  return index


# ---------------------------------------------------------------------------
# Predictors.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class PredictorOptions:
  """What a predictor needs; the defaults are the original's."""
  input_size: tuple = (720, 720)
  strides: tuple = (320, 320)
  model: str = 'pspnet'
  backbone: str = 'resnet_v1_101'
  backbone_variant: str = 'original'
  width_multiplier: float = 1.0
  num_classes: int = 21
  embedding_dim: int = 32
  restore_from: str = ''
  ignore_label: int = 255
  num_clusters: int = 5
  kmeans_iterations: int = 10
  k_in_nearest_neighbors: int = 15
  knn_chunk_size: int = 65536

  @classmethod
  def from_args(cls, args, **overrides):
    """Options from parsed flags (missing ones keep their defaults)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


class Predictor(object):
  """The network on one window, in its own graph and session.

  Subclasses add their graphs in _build (called inside the graph before
  the session starts).
  """

  def __init__(self, options, num_outputs, allow_random_weights=False):
    """Builds the graph, starts a session and restores the checkpoint.

    Args:
      options: PredictorOptions.
      num_outputs: channels of the network (embedding_dim or num_classes).
      allow_random_weights: with an empty restore_from, start from the
        initialisers (speed benchmarks) instead of failing.

    Raises:
      PredictorError, checkpoints.RestoreError.
    """
    self.options = options
    self.window_size = _check_pair('--input_size', options.input_size)
    self.strides = _check_pair('--strides', options.strides)
    if options.num_classes < 1:
      raise PredictorError('--num_classes must be >= 1, got %d'
                           % options.num_classes)
    if not options.restore_from and not allow_random_weights:
      raise PredictorError('--restore_from is required (a checkpoint prefix '
                           'or a snapshot folder)')
    if options.restore_from:
      # Fails before the (slow) graph building when there is no checkpoint.
      checkpoints.resolve_checkpoint(options.restore_from)
    self.graph = tf.Graph()
    with self.graph.as_default():
      self._window = tf.placeholder(
          tf.float32, [1] + list(self.window_size) + [3],
          name='crop_image_batch')
      try:
        model_fn = models.get_model_fn(options.model, options.backbone,
                                       options.width_multiplier,
                                       options.backbone_variant)
      except ValueError as e:
        raise PredictorError(str(e)) from e
      # Inference mode: batch norm uses its moving statistics.
      output = model_fn(self._window, num_outputs, is_training=False,
                        use_global_status=True)
      model_variables = tf.global_variables()
      self._window_output = common.resize_bilinear(
          output, list(self.window_size))[0]
      self._build()
      init_op = tf.global_variables_initializer()
    self.session = tf.Session(graph=self.graph)
    try:
      self.session.run(init_op, self._init_feed_dict())
      self.checkpoint = None
      if options.restore_from:
        # The Saver that restore_variables creates goes into this graph.
        with self.graph.as_default():
          self.checkpoint, _ = checkpoints.restore_variables(
              self.session, options.restore_from, model_variables)
    except BaseException:
      self.close()
      raise
    # Nothing is added while predicting (a leak would slow every image).
    self.graph.finalize()

  def _build(self):
    pass

  def _init_feed_dict(self):
    return None

  def close(self):
    if self.session is not None:
      self.session.close()
      self.session = None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()

  def run_window(self, window):
    """The network's output upsampled to the window: [win_h, win_w, C]."""
    return self.session.run(self._window_output,
                            {self._window: window[np.newaxis]})

  def embed(self, image, normalization=NORMALIZE_L2, timings=None):
    """embed_sliding_window with this network; [H, W, C] float32."""
    return embed_sliding_window(image, self.run_window, self.window_size,
                                self.strides, normalization, timings)

  def _views(self, image, scales, flip):
    """(scale, flipped, image view) for every scale and flip."""
    scales = [float(s) for s in scales]
    if not scales or min(scales) <= 0:
      raise PredictorError('scales must be positive numbers, got %s'
                           % (scales,))
    size = image.shape[:2]
    for scale in scales:
      scaled = resize_bilinear(image, get_scaled_size(size, scale))
      yield scale, False, scaled
      if flip:
        yield scale, True, scaled[:, ::-1]


def _fold_back(scores, flipped, image_size):
  """Resizes a view's scores [h, w, C] to the image and undoes its flip."""
  scores = resize_bilinear(scores, image_size)
  return scores[:, ::-1] if flipped else scores


SegSortPrediction = collections.namedtuple(
    'SegSortPrediction',
    ['labels', 'embedding', 'cluster_labels', 'test_prototypes',
     'cluster_votes', 'neighbor_indices', 'neighbor_similarities'])
SegSortPrediction.__doc__ = """Single-scale SegSort prediction of one image.

Attributes:
  labels: int32 [H, W] class ids.
  embedding: float32 [H, W, D], unit embeddings.
  cluster_labels: int32 [H, W] in [0, K), K = num_clusters**2.
  test_prototypes: float32 [K, D] (zero rows for empty clusters).
  cluster_votes: float32 [K, C], kNN votes per class.
  neighbor_indices: int32 [K, k'] rows of the prototype bank, most similar
    first (k' = min(k, P)).
  neighbor_similarities: float32 [K, k'].
"""


class SegSortPredictor(Predictor):
  """SegSort inference: embeddings, clustering, kNN votes."""

  def __init__(self, options, prototypes=None, allow_random_weights=False):
    """See Predictor.

    Args:
      options: PredictorOptions.
      prototypes: a PrototypeSet for predict/predict_multiscale; None to
        only extract prototypes.
      allow_random_weights: see Predictor.
    """
    if prototypes is not None:
      if prototypes.features.shape[1] != options.embedding_dim:
        raise PredictorError('prototypes are %d-dimensional but '
                             '--embedding_dim is %d'
                             % (prototypes.features.shape[1],
                                options.embedding_dim))
      if len(prototypes) == 0:
        raise PredictorError('the prototype bank is empty')
    if options.k_in_nearest_neighbors < 1:
      raise PredictorError('--k_in_nearest_neighbors must be >= 1, got %d'
                           % options.k_in_nearest_neighbors)
    if options.num_clusters < 1 or options.kmeans_iterations < 0:
      raise PredictorError('--num_clusters must be >= 1 and '
                           '--kmeans_iterations >= 0')
    self.prototypes = prototypes
    super(SegSortPredictor, self).__init__(options, options.embedding_dim,
                                           allow_random_weights)

  @property
  def num_clusters(self):
    """K, clusters per clustered region."""
    return self.options.num_clusters ** 2

  def _build(self):
    opts = self.options
    depth = opts.embedding_dim
    # Test-time clustering of one region [h, w, D].
    self._embedding = tf.placeholder(tf.float32, [None, None, depth],
                                     name='embedding')
    cluster_labels, test_prototypes = eval_utils.extract_test_prototypes(
        self._embedding[tf.newaxis], opts.num_clusters,
        opts.kmeans_iterations)
    self._cluster_labels = cluster_labels[0]
    self._test_prototypes = test_prototypes
    self._build_extraction()
    if self.prototypes is not None:
      self._build_knn()

  def _build_extraction(self):
    """Prototypes of an annotated image, and the cluster of every pixel.

    The k-means here is the one extract_trained_prototypes runs (same
    inputs, same library calls); its labels are then handed to
    extract_trained_prototypes with 0 iterations, so that the prototypes
    and the cluster map (for the index's boxes) come from ONE clustering.
    """
    opts = self.options
    self._raw_embedding = tf.placeholder(
        tf.float32, [None, None, opts.embedding_dim], name='raw_embedding')
    self._label = tf.placeholder(tf.int32, [None, None], name='label')
    shape = tf.shape(self._label)
    num_pixels = shape[0] * shape[1]
    embedding = common_utils.normalize_embedding(
        tf.reshape(self._raw_embedding, [-1, opts.embedding_dim]))
    location = tf.reshape(common_utils.generate_location_features(
        [shape[0], shape[1]], 'float'), [-1, 2])
    grid = tf.reshape(common_utils.initialize_cluster_labels(
        [opts.num_clusters, opts.num_clusters], [shape[0], shape[1]]), [-1])
    labels = tf.reshape(self._label, [-1])
    valid = tf.logical_and(tf.not_equal(labels, opts.ignore_label),
                           labels >= 0)
    valid_clusters = common_utils.kmeans_with_initial_labels(
        common_utils.normalize_embedding(tf.concat(
            [tf.boolean_mask(embedding, valid),
             tf.boolean_mask(location, valid)], axis=1)),
        tf.boolean_mask(grid, valid), self.num_clusters,
        opts.kmeans_iterations)
    # -1 on the pixels left out (ignore label).
    clusters = tf.scatter_nd(tf.cast(tf.where(valid), tf.int32),
                             valid_clusters + 1, [num_pixels]) - 1
    features, classes, _ = eval_utils.extract_trained_prototypes(
        embedding, location, clusters, self.num_clusters, 0, labels, 1,
        opts.ignore_label, 'semantic')
    self._extract_fetches = {
        'features': features, 'labels': classes,
        'clusters': tf.reshape(clusters, shape)}

  def _build_knn(self):
    opts = self.options
    bank = self.prototypes
    self._bank_features_input = tf.placeholder(tf.float32,
                                               bank.features.shape)
    self._bank_labels_input = tf.placeholder(tf.int32, bank.labels.shape)
    # Variables filled once from placeholders: the bank is not a graph
    # constant (a large bank would bloat the GraphDef) and is not fed at
    # every call.
    bank_features = tf.Variable(self._bank_features_input, trainable=False,
                                name='prototype_features')
    bank_labels = tf.Variable(self._bank_labels_input, trainable=False,
                              name='prototype_labels')
    self._queries = tf.placeholder(tf.float32, [None, opts.embedding_dim],
                                   name='test_prototypes')
    chunk = opts.knn_chunk_size
    chunk = chunk if chunk and 0 < chunk < len(bank) else None
    similarities, indices = eval_utils.find_k_nearest_prototypes(
        self._queries, bank_features, opts.k_in_nearest_neighbors, chunk)
    neighbor_labels = tf.gather(bank_labels, indices)
    votes = tf.reduce_sum(
        tf.one_hot(neighbor_labels, opts.num_classes, dtype=tf.float32),
        axis=1)
    self._knn_fetches = {'similarities': similarities, 'indices': indices,
                         'votes': votes}

  def _init_feed_dict(self):
    if self.prototypes is None:
      return None
    return {self._bank_features_input: self.prototypes.features,
            self._bank_labels_input: self.prototypes.labels}

  def cluster(self, embedding, timings=None):
    """Test-time k-means of a region's unit embedding [h, w, D].

    Returns:
      cluster_labels int32 [h, w] in [0, K); test_prototypes float32 [K, D].
    """
    with _timed(timings, STAGE_KMEANS):
      return self.session.run([self._cluster_labels, self._test_prototypes],
                              {self._embedding: embedding})

  def search(self, test_prototypes, timings=None):
    """kNN of test prototypes [Q, D] in the bank.

    Returns:
      dict with 'votes' float32 [Q, C], 'indices' int32 [Q, k'],
      'similarities' float32 [Q, k'].
    """
    if self.prototypes is None:
      raise PredictorError('no prototype bank loaded (--prototype_dir)')
    with _timed(timings, STAGE_KNN):
      return self.session.run(self._knn_fetches,
                              {self._queries: test_prototypes})

  def predict(self, image, timings=None, details=False):
    """Single-scale prediction: sliding-window embedding, k-means, kNN.

    Every cluster is painted with the class most of its k nearest training
    prototypes have (ties: lowest class).

    Args:
      image: float32 [H, W, 3] (mean subtracted).
      timings: optional dict of seconds per stage (accumulated).
      details: return a SegSortPrediction instead of the labels.

    Returns:
      int32 [H, W] class ids, or a SegSortPrediction.
    """
    embedding = self.embed(image, NORMALIZE_L2, timings)
    cluster_labels, test_prototypes = self.cluster(embedding, timings)
    knn = self.search(test_prototypes, timings)
    with _timed(timings, STAGE_VOTES):
      # argmax returns the first maximum: ties go to the lowest class.
      cluster_classes = np.argmax(knn['votes'], axis=1).astype(np.int32)
      labels = cluster_classes[cluster_labels]
    if not details:
      return labels
    return SegSortPrediction(
        labels=labels, embedding=embedding, cluster_labels=cluster_labels,
        test_prototypes=test_prototypes, cluster_votes=knn['votes'],
        neighbor_indices=knn['indices'],
        neighbor_similarities=knn['similarities'])

  def predict_votes(self, image, timings=None):
    """Per-pixel kNN votes of one view, window by window.

    Every window is embedded, cropped to its part inside the image,
    clustered and searched on its own; each pixel receives the k votes of
    its cluster (accumulate_votes).

    Returns:
      float32 [H, W, C].
    """
    height, width = image.shape[:2]
    votes = np.zeros((height, width, self.options.num_classes), np.float32)
    for y0, x0, window, valid_h, valid_w in iter_windows(
        image, self.window_size, self.strides):
      with _timed(timings, STAGE_NETWORK):
        embedding = normalize_rows(
            self.run_window(window)[:valid_h, :valid_w])
      cluster_labels, test_prototypes = self.cluster(embedding, timings)
      cluster_votes = self.search(test_prototypes, timings)['votes']
      with _timed(timings, STAGE_VOTES):
        accumulate_votes(votes, cluster_votes, cluster_labels, (y0, x0))
    return votes

  def predict_multiscale(self, image, scales=MSC_SCALES, flip=True,
                         timings=None, return_votes=False):
    """Multi-scale (+ flip) prediction by accumulated kNN votes.

    For every scale s (image resized bilinearly to int(s * size)) and, with
    flip, its mirror: predict_votes, resized back to the image, flipped
    back; the votes of all views are summed and the label is their argmax
    (ties: lowest class).

    Returns:
      int32 [H, W] labels (and float32 [H, W, C] votes if return_votes).
    """
    size = image.shape[:2]
    total = np.zeros(size + (self.options.num_classes,), np.float32)
    for _, flipped, view in self._views(image, scales, flip):
      votes = self.predict_votes(view, timings)
      with _timed(timings, STAGE_VOTES):
        total += _fold_back(votes, flipped, size)
    with _timed(timings, STAGE_VOTES):
      labels = np.argmax(total, axis=2).astype(np.int32)
    return (labels, total) if return_votes else labels

  def extract_prototypes(self, image, label, timings=None):
    """Prototypes of an annotated image (extract_trained_prototypes).

    Args:
      image: float32 [H, W, 3] (mean subtracted).
      label: int [H, W] class ids (ignore_label left out).
      timings: optional dict.

    Returns:
      features float32 [P, D], labels int32 [P], boxes int64 [P, 4]
      (top, left, bottom, right of the pixels forming each prototype;
      bottom/right exclusive), num_pixels int64 [P].
    """
    label = np.asarray(label)
    if label.shape != image.shape[:2]:
      raise PredictorError('label of shape %s for an image of shape %s'
                           % (label.shape, image.shape[:2]))
    embedding = self.embed(image, NORMALIZE_NONE, timings)
    valid = (label != self.options.ignore_label) & (label >= 0)
    if not valid.any():
      return (np.zeros((0, self.options.embedding_dim), np.float32),
              np.zeros((0,), np.int32), np.zeros((0, 4), np.int64),
              np.zeros((0,), np.int64))
    with _timed(timings, STAGE_KMEANS):
      out = self.session.run(self._extract_fetches,
                             {self._raw_embedding: embedding,
                              self._label: label.astype(np.int32)})
    boxes, num_pixels = _prototype_boxes(out['clusters'], label,
                                         out['labels'])
    return out['features'], out['labels'], boxes, num_pixels


def _prototype_boxes(clusters, label, prototype_labels):
  """Bounding box and size of the pixels that form every prototype.

  Prototype p belongs to the p-th non-empty cluster (in increasing id,
  extract_trained_prototypes' order) and is formed by its pixels of class
  prototype_labels[p].

  Returns:
    boxes int64 [P, 4] (top, left, bottom, right; exclusive ends),
    num_pixels int64 [P].
  """
  num = len(prototype_labels)
  cluster_ids = np.unique(clusters[clusters >= 0])
  if len(cluster_ids) != num:
    raise AssertionError('%d non-empty clusters for %d prototypes'
                         % (len(cluster_ids), num))
  ys, xs = np.nonzero(clusters >= 0)
  position = np.searchsorted(cluster_ids, clusters[ys, xs])
  keep = label[ys, xs] == prototype_labels[position]
  ys, xs, position = ys[keep], xs[keep], position[keep]
  big = np.iinfo(np.int64).max
  top = np.full(num, big, np.int64)
  left = np.full(num, big, np.int64)
  bottom = np.zeros(num, np.int64)
  right = np.zeros(num, np.int64)
  np.minimum.at(top, position, ys)
  np.minimum.at(left, position, xs)
  np.maximum.at(bottom, position, ys + 1)
  np.maximum.at(right, position, xs + 1)
  return (np.stack([top, left, bottom, right], axis=1),
          np.bincount(position, minlength=num).astype(np.int64))


class SoftmaxPredictor(Predictor):
  """The pixel-wise softmax baseline: logits, argmax."""

  def __init__(self, options, allow_random_weights=False):
    super(SoftmaxPredictor, self).__init__(options, options.num_classes,
                                           allow_random_weights)

  def predict(self, image, timings=None):
    """Argmax of the sliding-window logits (mean over overlaps); [H, W]."""
    logits = self.embed(image, NORMALIZE_MEAN, timings)
    with _timed(timings, STAGE_VOTES):
      return np.argmax(logits, axis=2).astype(np.int32)

  def predict_multiscale(self, image, scales=MSC_SCALES, flip=True,
                         timings=None, return_scores=False):
    """Sum over scales and flips of the softmax probabilities; argmax."""
    size = image.shape[:2]
    total = np.zeros(size + (self.options.num_classes,), np.float32)
    for _, flipped, view in self._views(image, scales, flip):
      logits = self.embed(view, NORMALIZE_MEAN, timings)
      with _timed(timings, STAGE_VOTES):
        logits -= logits.max(axis=2, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=2, keepdims=True)
        total += _fold_back(probabilities, flipped, size)
    with _timed(timings, STAGE_VOTES):
      labels = np.argmax(total, axis=2).astype(np.int32)
    return (labels, total) if return_scores else labels


def get_scales(scale_aug, scales=None):
  """The scales of a multi-scale run: --scales, else --scale_aug's, else 1."""
  if scales:
    if min(scales) <= 0:
      raise PredictorError('--scales must be positive, got %s' % (scales,))
    return [float(s) for s in scales]
  return list(MSC_SCALES) if scale_aug else [1.0]


def save_prediction(save_dir, name, labels, colormap):
  """Writes SAVE_DIR/gray/NAME.png (class ids) and color/NAME.png."""
  label_images.save_label_png(
      os.path.join(save_dir, GRAY_SUBDIR, name + '.png'), labels)
  label_images.save_color_png(
      os.path.join(save_dir, COLOR_SUBDIR, name + '.png'), labels, colormap)
