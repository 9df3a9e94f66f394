"""Every fast path gives what the plain path gives.

- batched sliding windows (and equal windows computed once) against one
  window at a time, for the NumPy helper, SegSort prediction (single and
  multi-scale), prototype extraction and the softmax baseline;
- k-means that stops at its fixed point (one image: 2-D matmuls; a batch:
  batched ones) against the NumPy reference run for all its iterations;
- the supervised loss through per-class sums against the log-space one.

The predictors use the tiny models of conftest.py (any weights do: these
are equalities). With oneDNN the network gives a window bitwise the same
output alone or in a batch, and the labels are equal; Eigen's convolutions
(TF_ENABLE_ONEDNN_OPTS=0) round differently by batch size, so there labels
may differ where two clusters tie within rounding. The fused multi-scale
call is also checked on the same network outputs, exactly.
"""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.segsort import common_utils
from network.segsort import train_utils
from seg_models import benchmarking
from seg_models import image_reader
from seg_models import predictor
from seg_models import sliding_window
from tests import segsort_reference as ref
from utils import label_images
from tests import tiny_data

BACKBONE = 'resnet_v1_50'  # As conftest's tiny snapshots.
WINDOW, STRIDES = (32, 40), (16, 24)
SCALES = (0.5, 1.0, 1.5)


def _position_dependent_fn(calls):
  """f(windows)[n, y, x] = (windows[n, y, x] * (1 + y + 10 x), 1)."""
  def batch_fn(windows):
    calls.append(len(windows))
    _, height, width, _ = windows.shape
    weight = 1.0 + np.arange(height)[:, None] + 10.0 * np.arange(width)
    return np.concatenate([windows * weight[None, :, :, None],
                           np.ones(windows.shape[:3] + (1,))], axis=3)
  return batch_fn


@pytest.mark.parametrize('batch_size', [1, 2, 3, 7])
@pytest.mark.parametrize('normalization', sliding_window.NORMALIZATIONS)
def test_batched_windows_equal_one_at_a_time(batch_size, normalization):
  rng = np.random.RandomState(0)
  images = [rng.randn(45, 70, 3).astype(np.float32),
            rng.randn(20, 25, 3).astype(np.float32)]
  single = [sliding_window.embed_sliding_window(
      image, lambda w: _position_dependent_fn([])(w[None])[0], WINDOW,
      STRIDES, normalization) for image in images]
  calls = []
  batched = sliding_window.embed_sliding_windows(
      images, _position_dependent_fn(calls), WINDOW, STRIDES, normalization,
      batch_size)
  for want, got in zip(single, batched):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  windows = sum(len(sliding_window.get_window_positions(
      image.shape[:2], WINDOW, STRIDES)[1]) for image in images)
  assert max(calls) <= batch_size and sum(calls) == windows


def test_equal_windows_are_computed_once():
  # Two equal images, and inside each a repeated 40-column pattern: equal
  # windows (same pixels, same part inside the image) are computed once.
  rng = np.random.RandomState(1)
  tile = rng.randn(32, 40, 3).astype(np.float32)
  image = np.concatenate([tile, tile, tile], axis=1)   # 32 x 120
  _, starts = sliding_window.get_window_positions(image.shape[:2], (32, 40),
                                                  (32, 40))
  assert len(starts) == 3
  calls = []
  out = sliding_window.embed_sliding_windows(
      [image, image.copy()], _position_dependent_fn(calls), (32, 40),
      (32, 40), 'none', batch_size=4)
  assert sum(calls) == 1
  plain_calls = []
  want = sliding_window.embed_sliding_windows(
      [image], _position_dependent_fn(plain_calls), (32, 40), (32, 40),
      'none', batch_size=1, deduplicate=False)[0]
  assert sum(plain_calls) == 3
  for got in out:
    np.testing.assert_array_equal(got, want)
  # The same pixels with another part inside the image are another window.
  batches = list(sliding_window.iter_window_batches(
      [image, image[:20]], (32, 40), (32, 40), batch_size=8))
  assert len(batches) == 1 and len(batches[0][0]) == 2
  assert [len(refs) for refs in batches[0][1]] == [3, 3]


def test_kmeans_stopping_at_its_fixed_point_equals_every_iteration():
  # Separated clusters: a fixed point after a few iterations, long before
  # the 40 asked for; and random data, still moving after 3.
  rng = np.random.RandomState(3)
  centres = ref.normalize(rng.randn(4, 6))
  separated = ref.normalize(np.repeat(centres, 30, axis=0) +
                            0.05 * rng.randn(120, 6))
  noisy = ref.normalize(rng.randn(120, 6))
  start = rng.randint(0, 4, 120)
  valid = rng.rand(2, 120) > 0.2
  for iterations in (3, 40):
    single = [common_utils.kmeans_with_initial_labels(
        points.astype(np.float32), start, 4, iterations)
              for points in (separated, noisy)]
    batch = common_utils.batch_kmeans_with_initial_labels(
        np.stack([separated, noisy]).astype(np.float32),
        np.stack([start, start]), 4, iterations, valid)
    with tf.Session() as sess:
      single, batch = sess.run([single, batch])
    for b, points in enumerate((separated, noisy)):
      np.testing.assert_array_equal(
          single[b], ref.kmeans(points, start, 4, iterations))
      want = np.full(120, -1)
      want[valid[b]] = ref.kmeans(points[valid[b]], start[valid[b]], 4,
                                  iterations)
      np.testing.assert_array_equal(batch[b], want)


@pytest.mark.parametrize('num_memory', [0, 9])
def test_class_sum_loss_equals_log_space_loss(num_memory):
  rng = np.random.RandomState(4)
  num_pixels, num_prototypes, depth = 50, 12, 5
  embedding = ref.normalize(rng.randn(num_pixels, depth)).astype(np.float32)
  prototypes = ref.normalize(rng.randn(num_prototypes, depth)).astype(
      np.float32)
  prototype_classes = rng.randint(0, 4, num_prototypes).astype(np.int32)
  prototype_classes[:2] = [7, 9]     # Classes with one prototype only.
  segments = rng.randint(0, num_prototypes, num_pixels).astype(np.int32)
  classes = prototype_classes[segments]
  valid = rng.rand(num_prototypes) < 0.8
  valid[segments[:5]] = False        # An invalid own segment.
  memory = ref.normalize(rng.randn(num_memory, depth)).astype(np.float32)
  memory_classes = rng.randint(0, 5, num_memory).astype(np.int32)

  embedding_t = tf.constant(embedding)
  prototypes_t = tf.constant(prototypes)
  losses = []
  # A python float takes the per-class sums, a tensor the log-space path.
  for kappa in (10.0, tf.constant(10.0)):
    value = train_utils.calculate_supervised_pixel_losses(
        embedding_t, classes, segments, prototypes_t, prototype_classes,
        valid, kappa, memory if num_memory else None,
        memory_classes if num_memory else None)
    losses.append((value, tf.gradients(tf.reduce_mean(value),
                                       [embedding_t, prototypes_t])))
  with tf.Session() as sess:
    (fast, fast_grads), (plain, plain_grads) = sess.run(losses)
  np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)
  for got, want in zip(fast_grads, plain_grads):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  # The NumPy reference (SPEC's formula), valid prototypes only.
  keep = np.concatenate([valid, np.ones(num_memory, bool)])
  all_prototypes = np.concatenate([prototypes, memory])[keep]
  all_classes = np.concatenate([prototype_classes, memory_classes])[keep]
  index = np.cumsum(keep) - 1
  own_valid = keep[segments]
  want = ref.supervised_pixel_losses(
      embedding[own_valid], classes[own_valid], index[segments[own_valid]],
      all_prototypes, all_classes, 10.0, literal=False)
  np.testing.assert_allclose(fast[own_valid], want, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------
# The predictors, one window at a time against batched.
# ---------------------------------------------------------------------------


def _options(snapshot, batch_size, **kwargs):
  return predictor.PredictorOptions(
      input_size=WINDOW, strides=STRIDES, backbone=BACKBONE,
      width_multiplier=tiny_data.WIDTH_MULTIPLIER,
      num_classes=tiny_data.NUM_CLASSES,
      embedding_dim=tiny_data.EMBEDDING_DIM, restore_from=snapshot,
      num_clusters=3, kmeans_iterations=3, k_in_nearest_neighbors=5,
      inference_batch_size=batch_size, **kwargs)


def _entries(tiny_dataset, list_name, count):
  return image_reader.read_data_list(
      tiny_dataset, os.path.join(tiny_dataset, list_name))[:count]


def _prototypes():
  return benchmarking.get_random_prototypes(300, tiny_data.EMBEDDING_DIM,
                                            tiny_data.NUM_CLASSES, 0)


def _run_both(options, make, fn):
  """fn(model) with one window at a time, then with batches of 3.

  Returns:
    The two results, and whether the network gives bitwise the same
    outputs to a window alone and in a batch (with oneDNN it does; Eigen's
    convolutions round differently for different batch sizes).
  """
  results = []
  windows = np.random.RandomState(5).randn(3, WINDOW[0], WINDOW[1], 3)
  for batch_size in (1, 3):
    with make(options(batch_size)) as model:
      assert model.batched == (batch_size > 1)
      results.append(fn(model))
      if batch_size > 1:
        invariant = np.array_equal(
            model.run_windows(windows),
            np.concatenate([model.run_windows(w[np.newaxis])
                            for w in windows]))
  return results, invariant


def _assert_same_labels(got, want, exact):
  """Equal; where the network rounds by batch size, equal but near ties."""
  if exact:
    np.testing.assert_array_equal(got, want)
  else:
    assert got.shape == want.shape
    assert np.mean(got == want) >= 0.999


def test_segsort_prediction_batched_equals_plain(tiny_dataset,
                                                 tiny_segsort_snapshot):
  images = [image_reader.load_image(e.image)
            for e in _entries(tiny_dataset, 'val.txt', 2)]
  prototypes = _prototypes()

  def predict(model):
    timings = {}
    out = [(model.predict(image, details=True),
            model.predict_multiscale(image, SCALES, flip=True,
                                     return_votes=True, timings=timings))
           for image in images]
    return out, timings

  ((plain, plain_timings), (batched, batched_timings)), exact = _run_both(
      lambda b: _options(tiny_segsort_snapshot, b),
      lambda opts: predictor.SegSortPredictor(opts, prototypes), predict)
  for (want, want_msc), (got, got_msc) in zip(plain, batched):
    np.testing.assert_allclose(got.embedding, want.embedding, atol=1e-5)
    _assert_same_labels(got.cluster_labels, want.cluster_labels, exact)
    _assert_same_labels(got.labels, want.labels, exact)
    _assert_same_labels(got_msc[0], want_msc[0], exact)
    if exact:
      np.testing.assert_array_equal(got.cluster_votes, want.cluster_votes)
      np.testing.assert_array_equal(got.neighbor_indices,
                                    want.neighbor_indices)
      np.testing.assert_allclose(got_msc[1], want_msc[1], atol=1e-4)
  # The plain path times its stages apart; the batched one fuses them.
  assert predictor.STAGE_FUSED not in plain_timings
  assert min(plain_timings[s] for s in (predictor.STAGE_NETWORK,
                                        predictor.STAGE_KMEANS,
                                        predictor.STAGE_KNN)) > 0
  assert batched_timings[predictor.STAGE_FUSED] > 0
  assert predictor.STAGE_KMEANS not in batched_timings


@pytest.mark.parametrize('kmeans_grid', predictor.KMEANS_GRIDS)
def test_fused_window_call_equals_separate_calls(tiny_dataset,
                                                 tiny_segsort_snapshot,
                                                 kmeans_grid):
  """Given the same network outputs, one call = network, k-means, kNN."""
  image = image_reader.load_image(
      _entries(tiny_dataset, 'val.txt', 1)[0].image)
  prototypes = _prototypes()
  with predictor.SegSortPredictor(
      _options(tiny_segsort_snapshot, 1, kmeans_grid=kmeans_grid),
      prototypes) as plain, \
      predictor.SegSortPredictor(
          _options(tiny_segsort_snapshot, 8, kmeans_grid=kmeans_grid),
          prototypes) as batched:
    windows, refs = next(
        batched.iter_window_batches([image, image[:20, :30]]))
    sizes = np.array([[r[0].valid_h, r[0].valid_w] for r in refs], np.int32)
    assert len(windows) > 2 and len({tuple(v) for v in sizes}) > 1
    outputs = np.concatenate([plain.run_windows(w[np.newaxis])
                              for w in windows])
    # The plain path's network returns these outputs...
    plain.run_window = dict(zip([w.tobytes() for w in windows],
                                outputs)).__getitem__
    labels, votes = plain._window_votes(
        [w.tobytes() for w in windows], sizes, None)
    # ... and they are fed to the fused call in place of its network's.
    fused = batched.session.run(batched._window_fetches, {
        batched._window_outputs: outputs, batched._window_sizes: sizes})
  for i, (height, width) in enumerate(sizes):
    np.testing.assert_array_equal(fused['cluster_labels'][i, :height, :width],
                                  labels[i])
    assert np.all(fused['cluster_labels'][i, height:] == -1)
    assert np.all(fused['cluster_labels'][i, :, width:] == -1)
    np.testing.assert_array_equal(fused['votes'][i], votes[i])


def test_prototype_extraction_batched_equals_plain(tiny_dataset,
                                                   tiny_segsort_snapshot):
  entries = _entries(tiny_dataset, 'train.txt', 2)

  def extract(model):
    return [model.extract_prototypes(image_reader.load_image(e.image),
                                     label_images.read_label_png(e.label))
            for e in entries]

  (plain, batched), exact = _run_both(
      lambda b: _options(tiny_segsort_snapshot, b),
      predictor.SegSortPredictor, extract)
  for want, got in zip(plain, batched):
    if exact:
      np.testing.assert_allclose(got.features, want.features, atol=1e-5)
      np.testing.assert_array_equal(got.labels, want.labels)
      np.testing.assert_array_equal(got.boxes, want.boxes)
      np.testing.assert_array_equal(got.num_pixels, want.num_pixels)
    else:
      # A pixel changing cluster may move a prototype or its box a little.
      assert len(got.labels) == len(want.labels)
      np.testing.assert_allclose(got.features, want.features, atol=0.05)


def test_softmax_batched_equals_plain(tiny_dataset, tiny_softmax_snapshot):
  image = image_reader.load_image(
      _entries(tiny_dataset, 'val.txt', 1)[0].image)

  def predict(model):
    return (model.predict(image),
            model.predict_multiscale(image, SCALES, True,
                                     return_scores=True))

  (plain, batched), exact = _run_both(
      lambda b: _options(tiny_softmax_snapshot, b),
      predictor.SoftmaxPredictor, predict)
  _assert_same_labels(batched[0], plain[0], exact)
  _assert_same_labels(batched[1][0], plain[1][0], exact)
  np.testing.assert_allclose(batched[1][1], plain[1][1], atol=1e-4)


def test_predictor_computes_equal_windows_once(tiny_dataset,
                                               tiny_softmax_snapshot,
                                               monkeypatch):
  # A mirror-symmetric image: its mirror is the same image, so the batched
  # path computes the windows of a scale once for both.
  half = image_reader.load_image(
      _entries(tiny_dataset, 'val.txt', 1)[0].image)[:, :32]
  image = np.concatenate([half, half[:, ::-1]], axis=1)
  windows = []
  real = predictor.Predictor.run_windows

  def counting(self, batch):
    windows.append(len(batch))
    return real(self, batch)

  monkeypatch.setattr(predictor.Predictor, 'run_windows', counting)

  def predict(model):
    del windows[:]
    labels = model.predict_multiscale(image, [1.0], flip=True)
    return labels, sum(windows)

  ((plain, plain_windows), (batched, batched_windows)), exact = _run_both(
      lambda b: _options(tiny_softmax_snapshot, b),
      predictor.SoftmaxPredictor, predict)
  _assert_same_labels(batched, plain, exact)
  assert batched_windows * 2 == plain_windows
