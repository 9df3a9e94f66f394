"""SegSort single-scale inference as one graph, exported as a SavedModel.

inference_segsort.py runs a Python loop: the sliding window in NumPy, the
network on batches of windows, then one session call for the test-time
k-means and the kNN vote. The SavedModel written here holds all of it in
one graph, with the training prototype bank inside (two variables), so a
serving system (TF Serving, tf.saved_model.load, a C++ session) maps an
image to its label map in one call:

    uint8 [H, W, 3] (mean subtracted in the graph)
      -> windows of --input_size over the zero-padded image, at the
         positions sliding_window.get_window_positions gives (computed
         here in the graph, the same float64 arithmetic, so the same
         integers);
      -> the network (predictor.build_network), --inference_batch_size
         windows at a time in a tf.while_loop, in the order of the NumPy
         loop; the outputs are summed window after window (the same float32
         additions in the same order as sliding_window.embed_sliding_windows,
         so the same sum);
      -> predictor.segment_image: normalisation, k-means, kNN vote, labels
         (the function SegSortPredictor.predict runs).

So the labels are inference_segsort.py's, pixel for pixel, with the same
flags and the same TensorFlow on the same machine (tests/test_export.py
checks it in a fresh process, with oneDNN on and off). Two details make it
so: the windows reach the network through an op whose batch size Grappler
cannot infer, as the predictor's placeholder (_hide_batch_size), and the
window sum is fed to segment_image unnormalised in both. The one
difference left: the predictor computes a window equal to an earlier one
of the same image once (deduplication), the graph computes both; the
predictor's batches and order of additions then differ, and the sums may
differ in their last bits. That happens only when an image repeats itself
exactly over a whole window.

Signatures (both in the same graph):

    serving_default   inputs  image        uint8 [H, W, 3]
                      outputs labels       int32 [H, W]
                              embedding    float32 [H, W, D] (only if
                                           exported with it: unit vectors)
    encoded_image     inputs  image_bytes  string scalar: a PNG, JPEG, BMP
                                           or GIF file's bytes (decoded by
                                           TensorFlow to 3 channels)
                      outputs as above

The export also writes assets.extra/segsort_export.json: the settings the
graph was built with, the checkpoint and the prototype set (and its size).
"""
import json
import os
import secrets
import shutil

import numpy as np
import tensorflow.compat.v1 as tf

from seg_models import checkpoints
from seg_models import image_reader
from seg_models import predictor
from seg_models import sliding_window
from utils import errors

ExportError = errors.ExportError

SIGNATURE_IMAGE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
SIGNATURE_ENCODED = 'encoded_image'
INPUT_IMAGE = 'image'
INPUT_ENCODED = 'image_bytes'
OUTPUT_LABELS = 'labels'
OUTPUT_EMBEDDING = 'embedding'
# Extra files of a SavedModel (TF Serving's convention: not loaded by it).
EXTRA_SUBDIR = 'assets.extra'
METADATA_FILE = 'segsort_export.json'
METADATA_FORMAT = 'segsort-savedmodel-1'
SAVED_MODEL_FILE = 'saved_model.pb'

# The options recorded in the metadata.
_RECORDED_OPTIONS = (
    'input_size', 'strides', 'model', 'backbone', 'backbone_variant',
    'width_multiplier', 'num_classes', 'embedding_dim', 'num_clusters',
    'kmeans_iterations', 'k_in_nearest_neighbors', 'knn_chunk_size',
    'inference_batch_size')


# ---------------------------------------------------------------------------
# The sliding window in the graph.
# ---------------------------------------------------------------------------


def _axis_starts(size, window, stride):
  """Window starts along one axis; see sliding_window.get_window_positions.

  numpy.linspace(0, delta, n) is i * (delta / (n - 1)) in float64 with its
  last value set to delta; the same operations in float64 here give the
  same floats, hence the same floors.
  """
  padded = tf.maximum(size, window)
  delta = padded - window
  # ceil(delta / stride) + 1, in integers (exact).
  count = (delta + stride - 1) // stride + 1
  step = (tf.cast(delta, tf.float64) /
          tf.cast(tf.maximum(count - 1, 1), tf.float64))
  values = tf.floor(tf.cast(tf.range(count), tf.float64) * step)
  starts = tf.concat([tf.cast(values[:-1], tf.int32), delta[tf.newaxis]],
                     axis=0)
  return padded, starts


def get_window_positions(image_size, window_size, strides):
  """sliding_window.get_window_positions in the graph.

  Args:
    image_size: int32 tensor [2], (H, W).
    window_size: (win_h, win_w), python ints.
    strides: (stride_h, stride_w), python ints (a stride longer than the
      window counts as the window).

  Returns:
    padded_size: int32 [2], (max(H, win_h), max(W, win_w)).
    starts: int32 [N, 2], (y0, x0) row-major.
  """
  window_size = sliding_window.check_size('--input_size', window_size)
  strides = tuple(min(s, w) for s, w in
                  zip(sliding_window.check_size('--strides', strides),
                      window_size))
  image_size = tf.cast(image_size, tf.int32)
  padded_h, ys = _axis_starts(image_size[0], window_size[0], strides[0])
  padded_w, xs = _axis_starts(image_size[1], window_size[1], strides[1])
  grid_y, grid_x = tf.meshgrid(ys, xs, indexing='ij')
  starts = tf.reshape(tf.stack([grid_y, grid_x], axis=2), [-1, 2])
  return tf.stack([padded_h, padded_w]), starts


def _hide_batch_size(windows):
  """The windows, through an op whose batch size Grappler cannot infer.

  Grappler's arithmetic optimizer reorders a sum of three tensors (a
  residual add after a batch norm) when it can prove their shapes equal,
  which changes the float32 rounding. The predictor feeds its windows to a
  placeholder of unknown batch size, where it cannot; here the batch comes
  from ops whose sizes it can follow. A boolean_mask (its size depends on
  the mask's values) gives the network the predictor's view of its input,
  so that both graphs are optimised alike and compute the same floats.
  """
  shape = windows.get_shape()
  windows = tf.boolean_mask(windows, tf.ones(tf.shape(windows)[:1], tf.bool))
  windows.set_shape([None] + shape.as_list()[1:])
  return windows


def embed_sliding_window(image, network_fn, window_size, strides,
                         batch_size, depth):
  """The sum over windows of the network's outputs, in the graph.

  As sliding_window.embed_sliding_windows(..., 'none') without
  deduplication: the image is zero-padded to at least the window, the
  windows go through network_fn batch_size at a time in row-major order,
  and every window's output is added to the sum in that order.

  Args:
    image: float32 [H, W, 3] (mean subtracted).
    network_fn: fn(windows [n, win_h, win_w, 3]) -> [n, win_h, win_w,
      depth]; called inside a tf.while_loop, so it must create no variable.
    window_size: (win_h, win_w).
    strides: (stride_h, stride_w).
    batch_size: windows per network call (>= 1).
    depth: channels of the network output.

  Returns:
    float32 [H, W, depth].
  """
  window_size = sliding_window.check_size('--input_size', window_size)
  if batch_size < 1:
    raise ValueError('batch_size must be >= 1, got %d' % batch_size)
  shape = tf.shape(image)
  padded_size, starts = get_window_positions(shape[:2], window_size, strides)
  padded = tf.pad(image, [[0, padded_size[0] - shape[0]],
                          [0, padded_size[1] - shape[1]], [0, 0]])
  num_windows = tf.shape(starts)[0]
  num_batches = (num_windows + batch_size - 1) // batch_size
  win_h, win_w = window_size

  def crop(start):
    return tf.slice(padded, [start[0], start[1], 0], [win_h, win_w, 3])

  def add_window(total, args):
    output, start = args
    return total + tf.pad(output, [
        [start[0], padded_size[0] - start[0] - win_h],
        [start[1], padded_size[1] - start[1] - win_w], [0, 0]])

  def body(batch, total):
    batch_starts = starts[batch * batch_size:(batch + 1) * batch_size]
    windows = tf.map_fn(crop, batch_starts, dtype=tf.float32,
                        back_prop=False)
    outputs = network_fn(_hide_batch_size(windows))
    # One window after the other: the NumPy loop's order of additions.
    total = tf.foldl(add_window, (outputs, batch_starts), initializer=total,
                     parallel_iterations=1, back_prop=False)
    return batch + 1, total

  total = tf.zeros(tf.concat([padded_size, [depth]], axis=0), tf.float32)
  _, total = tf.while_loop(
      lambda batch, _: batch < num_batches, body, [tf.constant(0), total],
      shape_invariants=[tf.TensorShape([]),
                        tf.TensorShape([None, None, depth])],
      parallel_iterations=1, back_prop=False)
  return total[:shape[0], :shape[1]]


# ---------------------------------------------------------------------------
# The serving graph.
# ---------------------------------------------------------------------------


class ServingGraph(object):
  """The export's graph, built into the default graph.

  Attributes:
    image_bytes: string scalar placeholder (encoded_image's input).
    image: uint8 [H, W, 3]; a placeholder whose default is the decoded
      image_bytes (serving_default's input).
    outputs: {'labels': int32 [H, W], 'embedding': float32 [H, W, D]}.
    model_variables: the network's variables (restored from the
      checkpoint).
    bank_feed: the feed that initialises the prototype bank.
  """

  def __init__(self, options, prototypes):
    """Builds the graph (see the module docstring).

    Args:
      options: predictor.PredictorOptions.
      prototypes: a prototype_sets.PrototypeSet.
    """
    window_size = sliding_window.check_size('--input_size',
                                            options.input_size)
    strides = sliding_window.check_size('--strides', options.strides)
    depth = options.embedding_dim
    # The network once outside the loop, where its variables are created;
    # the loop reuses them.
    window_batch = tf.placeholder(tf.float32, [None] + list(window_size) +
                                  [3], name='window_batch')
    predictor.build_network(options, window_batch, depth)
    self.model_variables = tf.global_variables()
    bank = predictor.PrototypeBankSearch(
        len(prototypes), depth, options.k_in_nearest_neighbors,
        options.num_classes, options.knn_chunk_size)
    self.bank_feed = bank.get_init_feed_dict(prototypes.features,
                                             prototypes.labels)

    self.image_bytes = tf.placeholder(tf.string, [], name=INPUT_ENCODED)
    decoded = tf.io.decode_image(self.image_bytes, channels=3,
                                 dtype=tf.uint8, expand_animations=False)
    self.image = tf.placeholder_with_default(decoded, [None, None, 3],
                                             name=INPUT_IMAGE)
    shape = tf.shape(self.image)
    check = tf.debugging.assert_positive(
        shape[:2], message='the image must be [H, W, 3] with H, W >= 1')
    with tf.control_dependencies([check]):
      # As image_reader.load_image: RGB minus the mean colour, float32.
      image = (tf.cast(self.image, tf.float32) -
               tf.constant(image_reader.IMG_MEAN, tf.float32))

    def network_fn(windows):
      return predictor.build_network(options, windows, depth, reuse=True)

    self.embedding_sum = embedding_sum = embed_sliding_window(
        image, network_fn, window_size, strides,
        options.inference_batch_size, depth)
    # All of segment_image's tensors (cluster labels, votes, ...), for tests.
    self.fetches = fetches = predictor.segment_image(embedding_sum, options,
                                                     bank)
    self.outputs = {
        OUTPUT_LABELS: tf.identity(fetches['labels'], name=OUTPUT_LABELS),
        OUTPUT_EMBEDDING: tf.identity(fetches['embedding'],
                                      name=OUTPUT_EMBEDDING)}

  def signature_defs(self, with_embedding):
    """{name: SignatureDef} of the two signatures."""
    build = tf.saved_model.utils.build_tensor_info
    outputs = {OUTPUT_LABELS: build(self.outputs[OUTPUT_LABELS])}
    if with_embedding:
      outputs[OUTPUT_EMBEDDING] = build(self.outputs[OUTPUT_EMBEDDING])
    make = tf.saved_model.signature_def_utils.build_signature_def
    method = tf.saved_model.signature_constants.PREDICT_METHOD_NAME
    return {
        SIGNATURE_IMAGE: make({INPUT_IMAGE: build(self.image)}, outputs,
                              method),
        SIGNATURE_ENCODED: make({INPUT_ENCODED: build(self.image_bytes)},
                                outputs, method)}


def _check_options(options, prototypes):
  """The checks SegSortPredictor makes, as ExportErrors."""
  try:
    sliding_window.check_size('--input_size', options.input_size)
    sliding_window.check_size('--strides', options.strides)
  except ValueError as e:
    raise ExportError(str(e)) from e
  if options.inference_batch_size < 1:
    raise ExportError('--inference_batch_size must be >= 1, got %d'
                      % options.inference_batch_size)
  if options.k_in_nearest_neighbors < 1:
    raise ExportError('--k_in_nearest_neighbors must be >= 1, got %d'
                      % options.k_in_nearest_neighbors)
  if options.num_clusters < 1 or options.kmeans_iterations < 0:
    raise ExportError('--num_clusters must be >= 1 and --kmeans_iterations '
                      '>= 0')
  if prototypes.features.shape[1] != options.embedding_dim:
    raise ExportError('prototypes are %d-dimensional but --embedding_dim is '
                      '%d' % (prototypes.features.shape[1],
                              options.embedding_dim))


def _metadata(options, prototypes, checkpoint, prototype_dir,
              with_embedding):
  settings = {}
  for name in _RECORDED_OPTIONS:
    value = getattr(options, name)
    settings[name] = list(value) if isinstance(value, tuple) else value
  return {
      'format': METADATA_FORMAT,
      'settings': settings,
      'checkpoint': os.path.abspath(checkpoint),
      'prototype_dir': os.path.abspath(prototype_dir) if prototype_dir
                       else '',
      'num_prototypes': int(len(prototypes)),
      'signatures': {
          SIGNATURE_IMAGE: {'inputs': {INPUT_IMAGE: 'uint8 [H, W, 3]'}},
          SIGNATURE_ENCODED: {'inputs': {INPUT_ENCODED: 'string []'}}},
      'outputs': ([OUTPUT_LABELS] +
                  ([OUTPUT_EMBEDDING] if with_embedding else [])),
      'tensorflow': tf.__version__}


def _temporary_dir(export_dir, kind):
  parent = os.path.dirname(os.path.abspath(export_dir))
  return os.path.join(parent, '.%s.%s-%s' % (
      os.path.basename(os.path.abspath(export_dir)), kind,
      secrets.token_hex(4)))


def export_saved_model(options, prototypes, export_dir, prototype_dir='',
                       with_embedding=False, overwrite=False):
  """Writes the SavedModel of options' checkpoint and a prototype bank.

  The model is written to a temporary folder beside export_dir and renamed
  to it once complete, so export_dir is either absent, the old export or the
  new one, never half written.

  Args:
    options: predictor.PredictorOptions (restore_from: the checkpoint).
    prototypes: a prototype_sets.PrototypeSet.
    export_dir: the SavedModel folder to write.
    prototype_dir: where the prototypes came from (recorded only).
    with_embedding: also output the unit embedding.
    overwrite: replace an existing export_dir.

  Returns:
    The metadata written (dict; see METADATA_FILE).

  Raises:
    ExportError, checkpoints.RestoreError.
  """
  if not export_dir:
    raise ExportError('--export_dir is required')
  if os.path.exists(export_dir) and not overwrite:
    raise ExportError('%s already exists (pass --overwrite to replace it)'
                      % export_dir)
  if os.path.exists(export_dir) and not os.path.isdir(export_dir):
    raise ExportError('%s exists and is not a folder' % export_dir)
  _check_options(options, prototypes)
  # Fails before the (slow) graph building when there is no checkpoint.
  checkpoints.resolve_checkpoint(options.restore_from)
  parent = os.path.dirname(os.path.abspath(export_dir))
  os.makedirs(parent, exist_ok=True)

  graph = tf.Graph()
  with graph.as_default():
    serving = ServingGraph(options, prototypes)
    init_op = tf.global_variables_initializer()
    with tf.Session(graph=graph) as session:
      session.run(init_op, serving.bank_feed)
      checkpoint, _ = checkpoints.restore_variables(
          session, options.restore_from, serving.model_variables)
      metadata = _metadata(options, prototypes, checkpoint, prototype_dir,
                           with_embedding)
      staging = _temporary_dir(export_dir, 'tmp')
      try:
        builder = tf.saved_model.Builder(staging)
        builder.add_meta_graph_and_variables(
            session, [tf.saved_model.SERVING],
            signature_def_map=serving.signature_defs(with_embedding),
            clear_devices=True, strip_default_attrs=True)
        builder.save()
        extra = os.path.join(staging, EXTRA_SUBDIR)
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, METADATA_FILE), 'w',
                  encoding='utf-8') as f:
          json.dump(metadata, f, indent=2, sort_keys=True)
          f.write('\n')
        replace_dir(staging, export_dir)
      except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
  return metadata


def replace_dir(source, target):
  """Renames the folder source to target, replacing an existing target.

  The old target is first renamed aside (one rename), then source takes
  its name (another), then the old one is deleted: at every moment target
  is a complete folder or, between the two renames, absent.
  """
  if not os.path.exists(target):
    os.rename(source, target)
    return
  aside = _temporary_dir(target, 'old')
  os.rename(target, aside)
  try:
    os.rename(source, target)
  except BaseException:
    os.rename(aside, target)
    raise
  shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------


def read_metadata(export_dir):
  """The export's segsort_export.json (dict), or {} when it has none."""
  path = os.path.join(export_dir, EXTRA_SUBDIR, METADATA_FILE)
  if not os.path.isfile(path):
    return {}
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ExportError('cannot read %s: %s' % (path, e)) from e


class ExportedSegmenter(predictor.SessionOwner):
  """A SavedModel loaded in its own graph and session (TF1 loader).

  Use as a context manager, or call close().
  """

  def __init__(self, export_dir):
    """Loads export_dir.

    Raises:
      ExportError when the folder is not a SavedModel of this kind.
    """
    if not export_dir:
      raise ExportError('--export_dir is required')
    if not os.path.isfile(os.path.join(export_dir, SAVED_MODEL_FILE)):
      raise ExportError('%s is not a SavedModel (no %s; write one with '
                        'pyscripts/tools/export_model.py)'
                        % (export_dir, SAVED_MODEL_FILE))
    self.export_dir = export_dir
    self.metadata = read_metadata(export_dir)
    self.graph = tf.Graph()
    self.session = tf.Session(graph=self.graph)
    try:
      meta_graph = tf.saved_model.loader.load(
          self.session, [tf.saved_model.SERVING], export_dir)
      self._signatures = {}
      for name in (SIGNATURE_IMAGE, SIGNATURE_ENCODED):
        if name not in meta_graph.signature_def:
          raise ExportError('%s has no %r signature (not written by '
                            'export_model.py?)' % (export_dir, name))
        signature = meta_graph.signature_def[name]
        self._signatures[name] = (
            {k: self.graph.get_tensor_by_name(v.name)
             for k, v in signature.inputs.items()},
            {k: self.graph.get_tensor_by_name(v.name)
             for k, v in signature.outputs.items()})
    except BaseException:
      self.close()
      raise

  @property
  def outputs(self):
    """The names of the outputs ('labels' and maybe 'embedding')."""
    return sorted(self._signatures[SIGNATURE_IMAGE][1])

  def _run(self, name, value):
    inputs, outputs = self._signatures[name]
    (key, tensor), = inputs.items()
    del key
    try:
      return self.session.run(outputs, {tensor: value})
    except tf.errors.InvalidArgumentError as e:
      raise ExportError('the SavedModel refused the image: %s'
                        % e.message.splitlines()[0]) from e

  def segment(self, image):
    """Runs serving_default on uint8 [H, W, 3]; returns {output: array}."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
      raise ExportError('expected a uint8 [H, W, 3] image, got %s %s'
                        % (image.dtype, image.shape))
    return self._run(SIGNATURE_IMAGE, image)

  def segment_encoded(self, data):
    """Runs encoded_image on a file's bytes; returns {output: array}."""
    return self._run(SIGNATURE_ENCODED, data)
