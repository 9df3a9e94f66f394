"""The predictors behind every inference script.

    extract_prototypes.py       SegSortPredictor.extract_prototypes
    inference_segsort.py        SegSortPredictor.predict (single scale)
    inference_segsort_msc.py    SegSortPredictor.predict_multiscale
    inference.py                SoftmaxPredictor.predict
    inference_msc.py            SoftmaxPredictor.predict_multiscale
    visualize_retrieval.py      SegSortPredictor.predict(..., details)
    benchmark_inference.py      the same calls, with per-stage timings

A predictor builds one graph:

- the network on a batch of windows [n, win_h, win_w, 3], its output
  upsampled bilinearly to the window; images of any size and aspect go
  through the sliding window (seg_models/sliding_window.py);
- test-time clustering: vMF k-means of normalize(concat(embedding,
  location)) over the pixels inside the image only, started as kmeans_grid
  says (below), one prototype per cluster (cluster_region over
  eval_utils.extract_test_prototypes; single scale, segment_image
  normalises the sliding-window sum in the graph and votes, the very
  function the exported SavedModel runs, seg_models/serving.py); for the
  annotated set, extract_trained_prototypes from the grid over the image
  and the cluster map its prototypes came from
  (seg_models/prototype_sets.py);
- the kNN search of the cluster prototypes in the training prototype bank
  and the per-class vote counts [Q, C] (PrototypeBankSearch over
  eval_utils.get_k_nearest_prototypes; the bank is a variable filled once
  and scanned in chunks of knn_chunk_size, so memory stays bounded).

Two paths compute the same labels, chosen by inference_batch_size:

- 1, one window at a time: every window is one session call, and the
  clustering and the kNN search of every region are two more (the stages
  are timed apart: network, kmeans, knn);
- more: the windows of an image (multi-scale: of a scale and its mirror)
  go through the network inference_batch_size at a time, and a window
  equal to one already computed is not computed again. Single scale, the
  clustering and kNN of the image are one session call; multi-scale, the
  network, the clustering and the kNN of a batch of windows are one
  session call (no embedding goes back and forth), timed as the 'fused'
  stage, and every window's k-means works from the network's output
  before upsampling (cluster_window_upsampled: the same labels up to float
  near-ties).

Multi-scale inference accumulates, for every pixel, the votes of its
cluster's k neighbours per class (sliding_window.accumulate_votes gathers
[Q, C] into [h, w, C] at once, with no loop over classes). Votes are resized
to the image, flipped back and summed over scales; the label is their
argmax (ties: lowest class).

num_clusters (options, flags) is n, the clusters along each axis of the
k-means start grid; cluster_grid is that grid and cluster_grid.count the
K = n * n clusters of every clustered region.

Where the test-time grid lies (kmeans_grid):

- 'canvas': over the zero-padded input the network saw, cropped to the
  pixels inside the image (eval_utils.get_test_start). Single scale, the
  canvas is the image padded to at least --input_size and the locations are
  (y / H, x / W) of the image; multi-scale, the canvas is the whole window
  and the locations (y / win_h, x / win_w) within it. A 500 x 375 image in a
  720 x 720 canvas starts from 4 x 3 clusters, not 5 x 5.
- 'image': over the pixels inside the image (or the window's part inside
  its view), with locations over that part: always n x n clusters.
"""
import collections
import contextlib
import dataclasses
import time

import numpy as np
import tensorflow.compat.v1 as tf

from network.multigpu import towers
from network.segsort import common_utils
from network.segsort import eval_utils
from seg_models import checkpoints
from seg_models import models
from seg_models import prototype_sets
from seg_models import sliding_window
from seg_models.models import common
from utils import errors

# Scales of --scale_aug.
MSC_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)

# Stage names of the timings.
STAGE_NETWORK = 'network'
STAGE_KMEANS = 'kmeans'
STAGE_KNN = 'knn'
STAGE_VOTES = 'votes'
# One session call running several of network, k-means and kNN (the
# batched path).
STAGE_FUSED = 'fused'
STAGES = (STAGE_NETWORK, STAGE_KMEANS, STAGE_KNN, STAGE_VOTES, STAGE_FUSED)


PredictorError = errors.PredictorError

# Where the test-time k-means grid lies (PredictorOptions.kmeans_grid).
KMEANS_GRID_CANVAS = 'canvas'
KMEANS_GRID_IMAGE = 'image'
KMEANS_GRIDS = (KMEANS_GRID_CANVAS, KMEANS_GRID_IMAGE)


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


@dataclasses.dataclass
class PredictorOptions:
  """What a predictor needs; the defaults are the VOC recipes' settings.

  num_clusters is n, the k-means start grid of every region is n x n.
  inference_batch_size is the windows per network call (1: the
  one-window-at-a-time path); xla compiles the graph with XLA
  (towers.session_config); kmeans_grid is one of KMEANS_GRIDS (module
  docstring).
  """
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
  inference_batch_size: int = 4
  xla: bool = False
  kmeans_grid: str = KMEANS_GRID_CANVAS


def build_network(options, windows, num_outputs, reuse=False,
                  return_low_resolution=False):
  """The network on a batch of windows, upsampled to the window size.

  Inference mode: batch norm uses its moving statistics. Called a second
  time with reuse=True (e.g. inside a tf.while_loop, where no variable can
  be created), it shares the first call's variables.

  Args:
    options: PredictorOptions (model, backbone, backbone_variant,
      width_multiplier, input_size).
    windows: float32 [n, win_h, win_w, 3] (mean subtracted).
    num_outputs: channels (embedding_dim or num_classes).
    reuse: reuse the variables of an earlier call.
    return_low_resolution: also return the output before upsampling.

  Returns:
    float32 [n, win_h, win_w, num_outputs] (and, with
    return_low_resolution, the network's output [n, h, w, num_outputs]).

  Raises:
    PredictorError for an unknown model or backbone.
  """
  try:
    model_fn = models.get_model_fn(options.model, options.backbone,
                                   options.width_multiplier,
                                   options.backbone_variant)
  except ValueError as e:
    raise PredictorError(str(e)) from e
  output = model_fn(windows, num_outputs, is_training=False,
                    use_global_status=True, reuse=reuse)
  upsampled = common.resize_bilinear(
      output, list(sliding_window.check_size('--input_size',
                                             options.input_size)))
  return (upsampled, output) if return_low_resolution else upsampled


class SessionOwner(object):
  """Owns self.session: close() and use as a context manager."""

  session = None

  def close(self):
    if self.session is not None:
      self.session.close()
      self.session = None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


class Predictor(SessionOwner):
  """The network on a batch of windows, in its own graph and session.

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
    try:
      self.window_size = sliding_window.check_size('--input_size',
                                                   options.input_size)
      self.strides = sliding_window.check_size('--strides', options.strides)
    except ValueError as e:
      raise PredictorError(str(e)) from e
    if options.num_classes < 1:
      raise PredictorError('--num_classes must be >= 1, got %d'
                           % options.num_classes)
    if options.inference_batch_size < 1:
      raise PredictorError('--inference_batch_size must be >= 1, got %d'
                           % options.inference_batch_size)
    if not options.restore_from and not allow_random_weights:
      raise PredictorError('--restore_from is required (a checkpoint prefix '
                           'or a snapshot folder)')
    if options.restore_from:
      # Fails before the (slow) graph building when there is no checkpoint.
      checkpoints.resolve_checkpoint(options.restore_from)
    self.graph = tf.Graph()
    with self.graph.as_default():
      self._windows = tf.placeholder(
          tf.float32, [None] + list(self.window_size) + [3],
          name='crop_image_batch')
      # The outputs upsampled to the window, and before upsampling.
      upsampled, self._network_outputs = build_network(
          options, self._windows, num_outputs, return_low_resolution=True)
      self._window_outputs = self._get_window_outputs(upsampled)
      model_variables = tf.global_variables()
      self._build()
      init_op = tf.global_variables_initializer()
    self.session = tf.Session(graph=self.graph,
                              config=towers.session_config(xla=options.xla))
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

  @property
  def batched(self):
    """Whether windows go through the network in batches."""
    return self.options.inference_batch_size > 1

  def _get_window_outputs(self, outputs):
    """What run_windows returns, from the upsampled outputs [n, h, w, C]."""
    return outputs

  def run_windows(self, windows):
    """The network's outputs upsampled to the window: [n, win_h, win_w, C].

    (SoftmaxPredictor: their softmax probabilities.)

    Args:
      windows: float32 [n, win_h, win_w, 3].
    """
    return self.session.run(self._window_outputs, {self._windows: windows})

  def run_windows_with_network_outputs(self, windows):
    """run_windows, and the network's outputs before upsampling.

    Returns:
      ([n, win_h, win_w, C] as run_windows, [n, h, w, C] the network's).
    """
    return self.session.run([self._window_outputs, self._network_outputs],
                            {self._windows: windows})

  def run_window(self, window):
    """The network's output upsampled to the window: [win_h, win_w, C]."""
    return self.run_windows(window[np.newaxis])[0]

  def iter_window_batches(self, images):
    """sliding_window.iter_window_batches at this predictor's settings.

    One window per batch and no deduplication on the plain path.
    """
    return sliding_window.iter_window_batches(
        images, self.window_size, self.strides,
        self.options.inference_batch_size, deduplicate=self.batched)

  def embed_views(self, images, normalization=sliding_window.NORMALIZE_L2,
                  timings=None):
    """embed_sliding_windows of several images with this network.

    Returns:
      A list of float32 [H_i, W_i, C].
    """
    with _timed(timings, STAGE_NETWORK):
      return sliding_window.embed_sliding_windows(
          images, self.run_windows, self.window_size, self.strides,
          normalization, self.options.inference_batch_size,
          deduplicate=self.batched)

  def embed(self, image, normalization=sliding_window.NORMALIZE_L2,
            timings=None):
    """The sliding-window output of one image: [H, W, C] float32."""
    return self.embed_views([image], normalization, timings)[0]

  def _views(self, image, scales, flip):
    """(scale, flipped, image view) for every scale and flip."""
    scales = [float(s) for s in scales]
    if not scales or min(scales) <= 0:
      raise PredictorError('scales must be positive numbers, got %s'
                           % (scales,))
    return sliding_window.iter_views(image, scales, flip)

  def _scale_groups(self, image, scales, flip):
    """Lists of (flipped, view) that go through the network together.

    Batched, a scale and its mirror; one view at a time otherwise.
    """
    groups = []
    for scale, flipped, view in self._views(image, scales, flip):
      if self.batched and groups and groups[-1][0] == scale:
        groups[-1][1].append((flipped, view))
      else:
        groups.append((scale, [(flipped, view)]))
    return [views for _, views in groups]


def get_knn_chunk_size(chunk_size, num_prototypes):
  """Training prototypes per chunk of the kNN search (None: one matmul).

  The bank is scanned in chunks only when 0 < chunk_size < num_prototypes.
  """
  return chunk_size if chunk_size and 0 < chunk_size < num_prototypes else (
      None)


class PrototypeBankSearch(object):
  """kNN votes of test prototypes in a training bank held by the graph.

  The bank lives in two variables filled once from placeholders when the
  variables are initialised (get_init_feed_dict): it is not a graph constant
  (a large bank would bloat the GraphDef) and is not fed at every call. The
  search is eval_utils.get_k_nearest_prototypes, over chunks of
  get_knn_chunk_size(chunk_size, P) prototypes.
  """

  def __init__(self, num_prototypes, embedding_dim, k, num_classes,
               chunk_size=None):
    """Adds the bank and its search to the default graph.

    Args:
      num_prototypes: P, the bank size.
      embedding_dim: D.
      k: neighbours (k_in_nearest_neighbors).
      num_classes: C.
      chunk_size: training prototypes per chunk (knn_chunk_size; 0, None or
        >= P for one matmul over the bank).
    """
    self.chunk_size = get_knn_chunk_size(chunk_size, num_prototypes)
    self._k = k
    self._num_classes = num_classes
    self._features_input = tf.placeholder(tf.float32,
                                          [num_prototypes, embedding_dim])
    self._labels_input = tf.placeholder(tf.int32, [num_prototypes])
    self._features = tf.Variable(self._features_input, trainable=False,
                                 name='prototype_features')
    self._labels = tf.Variable(self._labels_input, trainable=False,
                               name='prototype_labels')
    self._queries = tf.placeholder(tf.float32, [None, embedding_dim],
                                   name='test_prototypes')
    self._fetches = self.get_k_nearest(self._queries)._asdict()

  def get_k_nearest(self, queries):
    """The search of query tensors [Q, D]: eval_utils.KNearestPrototypes."""
    return eval_utils.get_k_nearest_prototypes(
        queries, self._features, self._labels, self._k, self._num_classes,
        self.chunk_size)

  def get_init_feed_dict(self, features, labels):
    """The feed of the variable initialisation: the bank [P, D] and [P]."""
    return {self._features_input: features, self._labels_input: labels}

  def search(self, session, test_prototypes):
    """kNN of test prototypes [Q, D] in the bank.

    Returns:
      dict with 'votes' float32 [Q, C], 'indices' int32 [Q, k'],
      'similarities' float32 [Q, k'] (k' = min(k, P)).
    """
    return session.run(self._fetches, {self._queries: test_prototypes})


def cluster_region(embedding, options, in_window=False):
  """Test-time k-means of a region [h, w, D], in the graph.

  vMF k-means of normalize(concat(embedding, location)) from the
  num_clusters x num_clusters grid start placed as options.kmeans_grid says
  (module docstring; eval_utils.get_test_start), one prototype per cluster
  (eval_utils.extract_test_prototypes).

  Args:
    embedding: float32 [h, w, D], unit embeddings.
    options: PredictorOptions (num_clusters, kmeans_iterations,
      kmeans_grid, input_size: the window).
    in_window: the region is the top-left part of a sliding window
      (multi-scale), not a whole image (single scale).

  Returns:
    cluster_labels int32 [h, w] in [0, K); test_prototypes float32 [K, D].
  """
  grid = common_utils.cluster_grid(options.num_clusters)
  shape = tf.shape(embedding)
  initial_labels, location_features = _get_test_start(
      [shape[0], shape[1]], options, in_window)
  cluster_labels, test_prototypes = eval_utils.extract_test_prototypes(
      embedding[tf.newaxis], grid, options.kmeans_iterations,
      location_features, initial_labels)
  return cluster_labels[0], test_prototypes


def _get_test_start(size, options, in_window):
  """(initial_labels, location_features) of a region [h, w]; see above."""
  window = list(sliding_window.check_size('--input_size', options.input_size))
  if options.kmeans_grid == KMEANS_GRID_IMAGE:
    canvas = location_size = None
  elif in_window:
    # The whole window, locations within it.
    canvas = location_size = window
  else:
    # The image zero-padded to at least the window; locations over the
    # image.
    canvas = [tf.maximum(size[0], window[0]), tf.maximum(size[1], window[1])]
    location_size = None
  return eval_utils.get_test_start(
      common_utils.cluster_grid(options.num_clusters), size, canvas,
      location_size)


def cluster_window_upsampled(network_output, valid_size, options):
  """cluster_region(in_window=True) of a window's part, from before upsampling.

  The region is the network's output upsampled to the window
  (options.input_size) and cropped to valid_size; the k-means starts as
  cluster_region's does, and runs at the network's resolution
  (eval_utils.extract_test_prototypes_upsampled): the same labels up to
  float near-ties, the prototypes up to float rounding, with less work.

  Args:
    network_output: float32 [h_low, w_low, D], one window's output.
    valid_size: [h, w], int32 scalars, the part inside the view.
    options: PredictorOptions (as cluster_region).

  Returns:
    cluster_labels int32 [h, w] in [0, K); test_prototypes float32 [K, D].
  """
  window = list(sliding_window.check_size('--input_size', options.input_size))
  initial_labels, location_features = _get_test_start(valid_size, options,
                                                      in_window=True)
  cluster_labels, test_prototypes = (
      eval_utils.extract_test_prototypes_upsampled(
          network_output, window, valid_size,
          common_utils.cluster_grid(options.num_clusters),
          options.kmeans_iterations, location_features, initial_labels))
  return cluster_labels[0], test_prototypes


def segment_image(embedding_sum, options, bank_search=None):
  """Single-scale SegSort of one image, in the graph.

  The image's summed sliding-window output is L2-normalised per pixel and
  clustered (cluster_region); given a bank, every cluster takes the class
  most of its k nearest training prototypes have (ties: lowest class).
  SegSortPredictor.predict runs it on the sum computed in NumPy, the
  exported SavedModel (seg_models/serving.py) on the sum computed in its own
  graph.

  Args:
    embedding_sum: float32 [H, W, D], the sliding-window sum
      (sliding_window.NORMALIZE_NONE).
    options: PredictorOptions (num_clusters, kmeans_iterations,
      kmeans_grid, input_size).
    bank_search: a PrototypeBankSearch, or None for the clustering only.

  Returns:
    A dict of tensors: 'embedding' [H, W, D] (unit), 'cluster_labels'
    int32 [H, W] in [0, K), 'test_prototypes' [K, D]; with a bank also
    'votes' [K, C], 'indices' and 'similarities' [K, k'] and 'labels'
    int32 [H, W].
  """
  embedding = common_utils.normalize_embedding(embedding_sum)
  cluster_labels, test_prototypes = cluster_region(embedding, options)
  fetches = {'embedding': embedding, 'cluster_labels': cluster_labels,
             'test_prototypes': test_prototypes}
  if bank_search is not None:
    knn = bank_search.get_k_nearest(test_prototypes)
    fetches.update(
        votes=knn.votes, indices=knn.indices, similarities=knn.similarities,
        # argmax: ties go to the lowest class.
        labels=tf.gather(tf.argmax(knn.votes, axis=1, output_type=tf.int32),
                         cluster_labels))
  return fetches


SegSortPrediction = collections.namedtuple(
    'SegSortPrediction',
    ['labels', 'embedding', 'cluster_labels', 'test_prototypes',
     'cluster_votes', 'neighbor_indices', 'neighbor_similarities'])
SegSortPrediction.__doc__ = """Single-scale SegSort prediction of one image.

Attributes:
  labels: int32 [H, W] class ids.
  embedding: float32 [H, W, D], unit embeddings.
  cluster_labels: int32 [H, W] in [0, K), K = cluster_grid.count (n * n).
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
      prototypes: a prototype_sets.PrototypeSet for predict and
        predict_multiscale; None to only extract prototypes.
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
    if options.kmeans_grid not in KMEANS_GRIDS:
      raise PredictorError('--kmeans_grid must be one of %s, got %r'
                           % (KMEANS_GRIDS, options.kmeans_grid))
    self.prototypes = prototypes
    # The k-means start grid of every clustered region; K = its count.
    self.cluster_grid = common_utils.cluster_grid(options.num_clusters)
    super(SegSortPredictor, self).__init__(options, options.embedding_dim,
                                           allow_random_weights)

  def _build(self):
    opts = self.options
    depth = opts.embedding_dim
    # Test-time clustering of one region [h, w, D]: a whole image (single
    # scale), or a window's part inside its view (multi-scale).
    self._embedding = tf.placeholder(tf.float32, [None, None, depth],
                                     name='embedding')
    self._cluster_labels, self._test_prototypes = cluster_region(
        self._embedding, opts)
    (self._window_cluster_labels,
     self._window_test_prototypes) = cluster_region(self._embedding, opts,
                                                    in_window=True)
    self._build_extraction()
    self._bank_search = None
    if self.prototypes is not None:
      self._build_knn()
      self._build_fused()
    # Single scale: the image's sliding-window sum, normalised, clustered
    # and (with a bank) voted, in one call (predict).
    self._embedding_sum = tf.placeholder(tf.float32, [None, None, depth],
                                         name='embedding_sum')
    self._image_fetches = segment_image(self._embedding_sum, opts,
                                        self._bank_search)

  def _build_extraction(self):
    """Prototypes of an annotated image, and the cluster of every pixel.

    One extract_trained_prototypes clustering gives both the prototypes and
    the cluster map (for the boxes of the prototype index).
    """
    opts = self.options
    self._raw_embedding = tf.placeholder(
        tf.float32, [None, None, opts.embedding_dim], name='raw_embedding')
    self._label = tf.placeholder(tf.int32, [None, None], name='label')
    shape = tf.shape(self._label)
    size = [shape[0], shape[1]]
    features, classes, _, clusters = eval_utils.extract_trained_prototypes(
        self._raw_embedding,
        common_utils.generate_location_features(size, 'float'),
        common_utils.initialize_cluster_labels(self.cluster_grid, size),
        self.cluster_grid.count, opts.kmeans_iterations, self._label, 1,
        opts.ignore_label, 'semantic', return_cluster_labels=True)
    self._extract_fetches = {
        'features': features, 'labels': classes,
        'clusters': tf.reshape(clusters, shape)}

  def _build_knn(self):
    bank = self.prototypes
    self._bank_search = PrototypeBankSearch(
        len(bank), self.options.embedding_dim,
        self.options.k_in_nearest_neighbors, self.options.num_classes,
        self.options.knn_chunk_size)

  def _build_fused(self):
    """The batched multi-scale path's session call.

    predict_multiscale: for a batch of windows, the network, the k-means of
    every window's part inside its view (valid size) and the kNN of all
    their prototypes at once: one call returning only cluster labels [n, h,
    w] (-1 outside the part) and votes [n, K, C].
    """
    self._window_sizes = tf.placeholder(tf.int32, [None, 2],
                                        name='window_valid_sizes')
    window_size = list(self.window_size)

    def cluster_window(args):
      # The part inside the view, clustered alone, then padded back to the
      # window with -1. The k-means works from the network's output before
      # upsampling (extract_test_prototypes_upsampled): the labels of the
      # plain path's extract_test_prototypes on the upsampled part, up to
      # float near-ties, with less work.
      output, (valid_h, valid_w) = args
      labels, prototypes = cluster_window_upsampled(
          output, [valid_h, valid_w], self.options)
      labels = tf.pad(labels, [[0, window_size[0] - valid_h],
                               [0, window_size[1] - valid_w]],
                      constant_values=-1)
      return labels, prototypes

    # One window after the other (memory of one k-means at a time).
    cluster_labels, test_prototypes = tf.map_fn(
        cluster_window, (self._network_outputs,
                         tf.unstack(self._window_sizes, axis=1)),
        dtype=(tf.int32, tf.float32), parallel_iterations=1,
        back_prop=False)
    # The kNN of all the windows' prototypes at once.
    votes = self._bank_search.get_k_nearest(
        tf.reshape(test_prototypes, [-1, self.options.embedding_dim])).votes
    self._window_fetches = {
        'cluster_labels': cluster_labels,
        'votes': tf.reshape(votes, [-1, self.cluster_grid.count,
                                    self.options.num_classes])}

  def _init_feed_dict(self):
    if self.prototypes is None:
      return None
    return self._bank_search.get_init_feed_dict(self.prototypes.features,
                                                self.prototypes.labels)

  def cluster(self, embedding, timings=None, in_window=False):
    """Test-time k-means of a region's embedding [h, w, D] (normalised here).

    Args:
      embedding: float32 [h, w, D], a whole image or (in_window) the part
        of a sliding window inside its view.
      timings: optional dict.
      in_window: see cluster_region.

    Returns:
      cluster_labels int32 [h, w] in [0, K); test_prototypes float32 [K, D].
    """
    fetches = ([self._window_cluster_labels, self._window_test_prototypes]
               if in_window else
               [self._cluster_labels, self._test_prototypes])
    with _timed(timings, STAGE_KMEANS):
      return self.session.run(fetches, {self._embedding: embedding})

  def search(self, test_prototypes, timings=None):
    """kNN of test prototypes [Q, D] in the bank.

    Returns:
      dict with 'votes' float32 [Q, C], 'indices' int32 [Q, k'],
      'similarities' float32 [Q, k'].
    """
    if self.prototypes is None:
      raise PredictorError('no prototype bank loaded (--prototype_dir)')
    with _timed(timings, STAGE_KNN):
      return self._bank_search.search(self.session, test_prototypes)

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
    # The sum over windows; segment_image normalises it in the graph.
    embedding_sum = self.embed(image, sliding_window.NORMALIZE_NONE,
                               timings)
    feed = {self._embedding_sum: embedding_sum}
    names = ['cluster_labels', 'test_prototypes'] + (
        ['embedding'] if details else [])
    if self.batched:
      if self.prototypes is None:
        raise PredictorError('no prototype bank loaded (--prototype_dir)')
      names += ['labels', 'votes', 'indices', 'similarities']
      with _timed(timings, STAGE_FUSED):
        out = self.session.run({n: self._image_fetches[n] for n in names},
                               feed)
      labels = out['labels']
      knn = out
    else:
      with _timed(timings, STAGE_KMEANS):
        out = self.session.run({n: self._image_fetches[n] for n in names},
                               feed)
      knn = self.search(out['test_prototypes'], timings)
      with _timed(timings, STAGE_VOTES):
        # argmax returns the first maximum: ties go to the lowest class.
        cluster_classes = np.argmax(knn['votes'], axis=1).astype(np.int32)
        labels = cluster_classes[out['cluster_labels']]
    if not details:
      return labels
    cluster_labels = out['cluster_labels']
    test_prototypes = out['test_prototypes']
    return SegSortPrediction(
        labels=labels, embedding=out['embedding'],
        cluster_labels=cluster_labels,
        test_prototypes=test_prototypes, cluster_votes=knn['votes'],
        neighbor_indices=knn['indices'],
        neighbor_similarities=knn['similarities'])

  def _window_votes(self, windows, valid_sizes, timings):
    """Cluster labels [n, h, w] and votes [n, K, C] of windows.

    One window at a time: the network, k-means of the part inside the view
    and the kNN search are three session calls; batched, one.
    """
    if self.batched:
      with _timed(timings, STAGE_FUSED):
        out = self.session.run(self._window_fetches,
                               {self._windows: windows,
                                self._window_sizes: valid_sizes})
      return out['cluster_labels'], out['votes']
    labels, votes = [], []
    for window, (valid_h, valid_w) in zip(windows, valid_sizes):
      with _timed(timings, STAGE_NETWORK):
        # Normalised by the clustering (as in the batched call).
        embedding = self.run_window(window)[:valid_h, :valid_w]
      cluster_labels, test_prototypes = self.cluster(embedding, timings,
                                                     in_window=True)
      labels.append(cluster_labels)
      votes.append(self.search(test_prototypes, timings)['votes'])
    return labels, votes

  def predict_votes(self, views, timings=None):
    """Per-pixel kNN votes of views, window by window.

    Every window is embedded, cropped to its part inside its view,
    clustered and searched on its own; each pixel receives the k votes of
    its cluster (sliding_window.accumulate_votes).

    Args:
      views: float32 arrays [H_i, W_i, 3].
      timings: optional dict.

    Returns:
      A list of float32 [H_i, W_i, C].
    """
    if self.prototypes is None:
      raise PredictorError('no prototype bank loaded (--prototype_dir)')
    votes = [np.zeros(view.shape[:2] + (self.options.num_classes,),
                      np.float32) for view in views]
    for windows, refs in self.iter_window_batches(views):
      sizes = np.array([[r[0].valid_h, r[0].valid_w] for r in refs],
                       np.int32)
      cluster_labels, cluster_votes = self._window_votes(windows, sizes,
                                                         timings)
      with _timed(timings, STAGE_VOTES):
        for labels, window_votes, window_refs in zip(cluster_labels,
                                                     cluster_votes, refs):
          for ref in window_refs:
            sliding_window.accumulate_votes(
                votes[ref.image], window_votes,
                labels[:ref.valid_h, :ref.valid_w], (ref.y0, ref.x0))
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
    for group in self._scale_groups(image, scales, flip):
      votes = self.predict_votes([view for _, view in group], timings)
      with _timed(timings, STAGE_VOTES):
        for (flipped, _), view_votes in zip(group, votes):
          total += sliding_window.fold_back(view_votes, flipped, size)
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
      A prototype_sets.ImagePrototypes (features, labels, and the box and
      pixel count of the pixels forming each prototype).
    """
    label = np.asarray(label)
    if label.shape != image.shape[:2]:
      raise PredictorError('label of shape %s for an image of shape %s'
                           % (label.shape, image.shape[:2]))
    embedding = self.embed(image, sliding_window.NORMALIZE_NONE, timings)
    valid = (label != self.options.ignore_label) & (label >= 0)
    if not valid.any():
      return prototype_sets.ImagePrototypes.empty(self.options.embedding_dim)
    with _timed(timings, STAGE_KMEANS):
      out = self.session.run(self._extract_fetches,
                             {self._raw_embedding: embedding,
                              self._label: label.astype(np.int32)})
    boxes, num_pixels = prototype_sets.get_prototype_boxes(
        out['clusters'], label, out['labels'])
    return prototype_sets.ImagePrototypes(out['features'], out['labels'],
                                          boxes, num_pixels)


class SoftmaxPredictor(Predictor):
  """The pixel-wise softmax baseline: class probabilities, argmax.

  Every window's logits are upsampled to the window and turned into
  softmax probabilities (run_windows returns those); overlapping windows
  merge their probabilities, not their logits.
  """

  def __init__(self, options, allow_random_weights=False):
    super(SoftmaxPredictor, self).__init__(options, options.num_classes,
                                           allow_random_weights)

  def _get_window_outputs(self, outputs):
    return tf.nn.softmax(outputs, axis=3)

  def predict(self, image, timings=None, return_scores=False):
    """Argmax of the probabilities summed over the sliding windows; [H, W].

    Returns:
      int32 [H, W] labels (and the float32 [H, W, C] sums if
      return_scores).
    """
    total = self.embed(image, sliding_window.NORMALIZE_NONE, timings)
    with _timed(timings, STAGE_VOTES):
      labels = np.argmax(total, axis=2).astype(np.int32)
    return (labels, total) if return_scores else labels

  def predict_multiscale(self, image, scales=MSC_SCALES, flip=True,
                         timings=None, return_scores=False):
    """Multi-scale (+ flip) prediction from averaged probabilities.

    For every view (scale s, and its mirror with flip), the probabilities
    are averaged where its sliding windows overlap, resized to the image
    and flipped back; the views' maps are summed and the label is their
    argmax (ties: lowest class).

    Returns:
      int32 [H, W] labels (and float32 [H, W, C] sums if return_scores).
    """
    size = image.shape[:2]
    total = np.zeros(size + (self.options.num_classes,), np.float32)
    for group in self._scale_groups(image, scales, flip):
      all_probabilities = self.embed_views(
          [view for _, view in group], sliding_window.NORMALIZE_MEAN,
          timings)
      with _timed(timings, STAGE_VOTES):
        for (flipped, _), probabilities in zip(group, all_probabilities):
          total += sliding_window.fold_back(probabilities, flipped, size)
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

