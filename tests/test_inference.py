"""Inference: sliding window, votes, prototype files, scripts end to end.

The end-to-end tests use two models trained for 2 steps on the 48x64 tiny
dataset (conftest.py: tiny_segsort_snapshot, tiny_softmax_snapshot); their
predictions are meaningless, so these tests check shapes, ranges, file
contracts and equalities that hold for any weights.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from network.segsort import common_utils
from network.segsort import eval_utils
from pyscripts import flags as flags_module
from pyscripts.benchmark import benchmark_by_mIoU
from pyscripts.benchmark import benchmark_inference
from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference
from pyscripts.inference import inference_msc
from pyscripts.inference import inference_segsort
from pyscripts.inference import inference_segsort_msc
from pyscripts.tools import visualize_retrieval
from seg_models import image_reader
from seg_models import predictor
from seg_models import prototype_sets
from seg_models import sliding_window
from tests import tiny_data
from utils import colormaps
from utils import label_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = tiny_data.NUM_CLASSES
HEIGHT, WIDTH = tiny_data.HEIGHT, tiny_data.WIDTH
BACKBONE = 'resnet_v1_50'  # As conftest's tiny snapshots.
K = 5
# Windows: smaller than the image (sliding) and larger (one padded window).
SMALL_WINDOW = ['--input_size', '32,40', '--strides', '16,24']
LARGE_WINDOW = ['--input_size', '64,80']
MODEL_FLAGS = ['--backbone', BACKBONE,
               '--width_multiplier', str(tiny_data.WIDTH_MULTIPLIER),
               '--num_classes', str(NUM_CLASSES)]
SEGSORT_FLAGS = MODEL_FLAGS + [
    '--embedding_dim', str(tiny_data.EMBEDDING_DIM), '--num_clusters', '3',
    '--kmeans_iterations', '3']


def _options(snapshot, input_size=(64, 80), strides=(16, 24), **kwargs):
  return predictor.PredictorOptions(
      input_size=input_size, strides=strides, backbone=BACKBONE,
      width_multiplier=tiny_data.WIDTH_MULTIPLIER, num_classes=NUM_CLASSES,
      embedding_dim=tiny_data.EMBEDDING_DIM, restore_from=snapshot,
      num_clusters=3, kmeans_iterations=3, k_in_nearest_neighbors=K,
      **kwargs)


def _read_png(path):
  with Image.open(path) as image:
    return np.asarray(image)


# ---------------------------------------------------------------------------
# Sliding window, against NumPy loops.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('size, window, stride, padded, starts', [
    # n = ceil((100 - 48) / 32) + 1 = 3, starts spread over [0, 52].
    (100, 48, 32, 100, [0, 26, 52]),
    (30, 48, 32, 48, [0]),
    (48, 48, 16, 48, [0]),
    (49, 48, 16, 49, [0, 1]),
    # A stride longer than the window counts as the window: no gap.
    (100, 30, 50, 100, [0, 23, 46, 70]),
])
def test_window_positions_by_hand(size, window, stride, padded, starts):
  got_padded, got = sliding_window.get_window_positions(
      (size, 7), (window, 7), (stride, 7))
  assert got_padded == (padded, 7)
  assert [y for y, _ in got] == starts


@pytest.mark.parametrize('size', [(5, 9), (48, 64), (97, 31), (160, 161)])
def test_windows_cover_the_padded_image(size):
  window, strides = (32, 40), (16, 24)
  padded, starts = sliding_window.get_window_positions(size, window, strides)
  assert padded == (max(size[0], 32), max(size[1], 40))
  covered = np.zeros(padded, int)
  for y0, x0 in starts:
    assert 0 <= y0 <= padded[0] - window[0]
    assert 0 <= x0 <= padded[1] - window[1]
    covered[y0:y0 + window[0], x0:x0 + window[1]] += 1
  assert covered.min() >= 1
  ys = sorted({y for y, _ in starts})
  xs = sorted({x for _, x in starts})
  assert ys[0] == 0 and ys[-1] == padded[0] - window[0]
  assert max(np.diff(ys), default=0) <= strides[0]
  assert max(np.diff(xs), default=0) <= strides[1]


def _position_dependent_fn(calls):
  """f(window)[y, x] = (window[y, x] * (1 + y + 10 x), 1): depends on where
  a pixel sits in its window, so misplaced outputs would show."""
  def window_fn(window):
    calls.append(window.copy())
    height, width = window.shape[:2]
    weight = 1.0 + np.arange(height)[:, None] + 10.0 * np.arange(width)
    return np.concatenate([window * weight[:, :, None],
                           np.ones((height, width, 1))], axis=2)
  return window_fn


def _np_sliding_sum(image, window, starts):
  """Pixel by pixel: sum over the windows containing it of f(window)."""
  height, width = image.shape[:2]
  out = np.zeros((height, width, image.shape[2] + 1))
  for y0, x0 in starts:
    for y in range(y0, min(y0 + window[0], height)):
      for x in range(x0, min(x0 + window[1], width)):
        weight = 1.0 + (y - y0) + 10.0 * (x - x0)
        out[y, x, :-1] += image[y, x] * weight
        out[y, x, -1] += 1
  return out


@pytest.mark.parametrize('size', [(20, 25), (45, 70), (33, 41)])
def test_embed_sliding_window_matches_numpy(size):
  rng = np.random.RandomState(0)
  image = rng.randn(size[0], size[1], 3).astype(np.float32)
  window, strides = (32, 40), (16, 24)
  _, starts = sliding_window.get_window_positions(size, window, strides)
  expected = _np_sliding_sum(image, window, starts)
  calls = []
  fn = _position_dependent_fn(calls)
  summed = sliding_window.embed_sliding_window(image, fn, window, strides,
                                               'none')
  np.testing.assert_allclose(summed, expected, rtol=1e-5, atol=1e-4)
  assert len(calls) == len(starts)
  for (y0, x0), w in zip(starts, calls):
    assert w.shape == window + (3,)
    # The window holds the image where it overlaps it and zeros elsewhere.
    valid_h, valid_w = min(32, size[0] - y0), min(40, size[1] - x0)
    np.testing.assert_array_equal(w[:valid_h, :valid_w],
                                  image[y0:y0 + valid_h, x0:x0 + valid_w])
    assert not w[valid_h:].any() and not w[:, valid_w:].any()

  unit = sliding_window.embed_sliding_window(image, fn, window, strides,
                                             'l2')
  np.testing.assert_allclose(
      unit, expected / np.linalg.norm(expected, axis=2, keepdims=True),
      rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(unit, axis=2), 1.0, atol=1e-5)
  mean = sliding_window.embed_sliding_window(image, fn, window, strides,
                                             'mean')
  np.testing.assert_allclose(mean, expected / expected[:, :, -1:],
                             rtol=1e-5, atol=1e-4)


def test_accumulate_votes_matches_loop():
  rng = np.random.RandomState(1)
  votes = rng.rand(6, 7, 5).astype(np.float32)
  cluster_votes = rng.randint(0, 4, size=(9, 5)).astype(np.float32)
  labels = rng.randint(0, 9, size=(3, 4))
  expected = votes.copy()
  for y in range(3):
    for x in range(4):
      for c in range(5):
        expected[2 + y, 1 + x, c] += cluster_votes[labels[y, x], c]
  out = sliding_window.accumulate_votes(votes, cluster_votes, labels, (2, 1))
  assert out is votes
  np.testing.assert_array_equal(votes, expected)


def test_views_fold_back_to_the_image():
  rng = np.random.RandomState(3)
  image = rng.rand(6, 9, 2).astype(np.float32)
  views = list(sliding_window.iter_views(image, [1.0, 0.5], flip=True))
  assert [(s, f) for s, f, _ in views] == [(1.0, False), (1.0, True),
                                           (0.5, False), (0.5, True)]
  assert [v.shape for _, _, v in views] == [(6, 9, 2)] * 2 + [(3, 4, 2)] * 2
  # At scale 1, folding a view back gives the image, flipped or not.
  for _, flipped, view in views[:2]:
    np.testing.assert_array_equal(
        sliding_window.fold_back(view, flipped, (6, 9)), image)
  half, half_flipped = views[2][2], views[3][2]
  np.testing.assert_array_equal(half_flipped, half[:, ::-1])
  np.testing.assert_allclose(
      sliding_window.fold_back(half_flipped, True, (6, 9)),
      sliding_window.resize_bilinear(half, (6, 9)), atol=1e-6)


def _np_resize_half_pixel(array, size):
  def axis(n_in, n_out):
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, n_in - 1), src - lo
  out = np.zeros(size + array.shape[2:])
  ylo, yhi, fy = axis(array.shape[0], size[0])
  xlo, xhi, fx = axis(array.shape[1], size[1])
  for i in range(size[0]):
    for j in range(size[1]):
      out[i, j] = ((1 - fy[i]) * (1 - fx[j]) * array[ylo[i], xlo[j]] +
                   (1 - fy[i]) * fx[j] * array[ylo[i], xhi[j]] +
                   fy[i] * (1 - fx[j]) * array[yhi[i], xlo[j]] +
                   fy[i] * fx[j] * array[yhi[i], xhi[j]])
  return out


@pytest.mark.parametrize('shape, size', [((3, 4, 2), (5, 7)),
                                         ((6, 8, 21), (3, 3)),
                                         ((4, 4), (8, 8))])
def test_resize_bilinear_matches_numpy(shape, size):
  array = np.random.RandomState(2).rand(*shape).astype(np.float32)
  np.testing.assert_allclose(sliding_window.resize_bilinear(array, size),
                             _np_resize_half_pixel(array, size), atol=1e-4)
  np.testing.assert_array_equal(
      sliding_window.resize_bilinear(array, shape[:2]), array)


def test_prototype_boxes_match_loop():
  clusters = np.array([[0, 0, 2, 2],
                       [0, 3, 3, 2],
                       [-1, 3, 3, -1]])
  label = np.array([[1, 1, 0, 0],
                    [2, 1, 1, 0],
                    [255, 1, 2, 255]])
  # Non-empty clusters 0, 2, 3 -> majority classes 1, 0, 1.
  prototype_labels = np.array([1, 0, 1])
  boxes, sizes = prototype_sets.get_prototype_boxes(clusters, label,
                                                   prototype_labels)
  np.testing.assert_array_equal(boxes, [[0, 0, 1, 2], [0, 2, 2, 4],
                                        [1, 1, 3, 3]])
  np.testing.assert_array_equal(sizes, [2, 3, 3])


# ---------------------------------------------------------------------------
# Prototype files.
# ---------------------------------------------------------------------------


def _collector(seed=0, count=(3, 2)):
  rng = np.random.RandomState(seed)
  collector = prototype_sets.PrototypeCollector(4, '/data', '/data/list.txt')
  for i, n in enumerate(count):
    collector.add('/data/img%d.jpg' % i, 'img%d' % i,
                  prototype_sets.ImagePrototypes(
                      sliding_window.normalize_rows(rng.randn(n, 4)),
                      rng.randint(0, 3, n), rng.randint(0, 9, (n, 4)),
                      rng.randint(1, 50, n)))
  return collector


def _files(folder):
  return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_prototype_set_round_trip(tmp_path):
  collector = _collector()
  saved = collector.save(str(tmp_path))
  assert _files(str(tmp_path)) == [prototype_sets.PROTOTYPE_FEATURES,
                                   prototype_sets.PROTOTYPE_INDEX,
                                   prototype_sets.PROTOTYPE_LABELS]
  loaded = prototype_sets.load_prototypes(str(tmp_path), embedding_dim=4,
                                     num_classes=3, need_index=True)
  np.testing.assert_array_equal(loaded.features, saved.features)
  np.testing.assert_array_equal(loaded.labels, saved.labels)
  np.testing.assert_array_equal(loaded.index['image_index'],
                                [0, 0, 0, 1, 1])
  np.testing.assert_array_equal(loaded.index['boxes'],
                                saved.index['boxes'])
  assert loaded.index['images'] == ['img0.jpg', 'img1.jpg']
  with pytest.raises(prototype_sets.PrototypeError, match='--embedding_dim'):
    prototype_sets.load_prototypes(str(tmp_path), embedding_dim=8)
  with pytest.raises(prototype_sets.PrototypeError, match='--num_classes'):
    prototype_sets.load_prototypes(str(tmp_path),
                              num_classes=int(saved.labels.max()))


@pytest.mark.parametrize('fail_at', ['labels', 'index'])
def test_interrupted_prototype_write_leaves_nothing(tmp_path, monkeypatch,
                                                    fail_at):
  folder = str(tmp_path / 'prototypes')
  old = _collector(seed=1).save(folder)  # A complete earlier set.

  real_save, real_dump = np.save, json.dump
  saves = []

  def failing_save(f, array, **kwargs):
    saves.append(1)
    if fail_at == 'labels' and len(saves) == 2:
      raise KeyboardInterrupt  # Ctrl-C while the second file is written.
    return real_save(f, array, **kwargs)

  def failing_dump(obj, f, **kwargs):
    f.write('{"format": ')  # Half a file, then the crash.
    raise OSError('disk full')

  monkeypatch.setattr(np, 'save', failing_save)
  if fail_at == 'index':
    monkeypatch.setattr(json, 'dump', failing_dump)
  with pytest.raises((KeyboardInterrupt, OSError)):
    _collector(seed=2, count=(4, 4, 4)).save(folder)
  monkeypatch.setattr(np, 'save', real_save)
  monkeypatch.setattr(json, 'dump', real_dump)
  # The earlier set is untouched and complete; no staging folder is left.
  assert _files(folder) == [prototype_sets.PROTOTYPE_FEATURES,
                            prototype_sets.PROTOTYPE_INDEX,
                            prototype_sets.PROTOTYPE_LABELS]
  loaded = prototype_sets.load_prototypes(folder, need_index=True)
  np.testing.assert_array_equal(loaded.features, old.features)

  # Into an empty folder: nothing at all.
  fresh = str(tmp_path / 'fresh')
  monkeypatch.setattr(np, 'save', failing_save)
  saves.clear()
  if fail_at == 'index':
    monkeypatch.setattr(json, 'dump', failing_dump)
  with pytest.raises((KeyboardInterrupt, OSError)):
    _collector().save(fresh)
  assert _files(fresh) == []


def test_inconsistent_prototype_sets_are_refused(tmp_path):
  folder = str(tmp_path)
  _collector().save(folder)
  labels_path = os.path.join(folder, prototype_sets.PROTOTYPE_LABELS)
  labels = np.load(labels_path)
  np.save(labels_path, (labels + 1) % 3)  # Same count, other extraction.
  with pytest.raises(prototype_sets.PrototypeError, match='inconsistent'):
    prototype_sets.load_prototypes(folder)
  np.save(labels_path, labels[:-1])
  with pytest.raises(prototype_sets.PrototypeError, match='not from the same'):
    prototype_sets.load_prototypes(folder)
  _collector().save(str(tmp_path / 'results' / 'prototypes'))
  with pytest.raises(prototype_sets.PrototypeError,
                     match='did you mean --prototype_dir .*prototypes'):
    prototype_sets.load_prototypes(str(tmp_path / 'results'))


# ---------------------------------------------------------------------------
# End to end on the tiny dataset.
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def prototype_dir(tiny_dataset, tiny_segsort_snapshot, tmp_path_factory):
  """extract_prototypes.py on the training list (sliding window)."""
  save_dir = str(tmp_path_factory.mktemp('train_results'))
  extract_prototypes.main(
      ['--data_dir', tiny_dataset,
       '--data_list', os.path.join(tiny_dataset, 'train.txt'),
       '--restore_from', tiny_segsort_snapshot, '--save_dir', save_dir] +
      SEGSORT_FLAGS + SMALL_WINDOW)
  return os.path.join(save_dir, 'prototypes')


def test_extracted_prototypes(tiny_dataset, prototype_dir,
                              tiny_segsort_snapshot):
  prototypes = prototype_sets.load_prototypes(
      prototype_dir, tiny_data.EMBEDDING_DIM, NUM_CLASSES, need_index=True)
  index = prototypes.index
  assert len(prototypes) > 0
  np.testing.assert_allclose(np.linalg.norm(prototypes.features, axis=1),
                             1.0, atol=1e-5)
  assert len(index['images']) == 8 and index['names'][0] == 'train_000000'
  boxes = index['boxes']
  assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2] <= HEIGHT)
  assert np.all(boxes[:, 3] <= WIDTH) and np.all(boxes[:, 2:] > boxes[:, :2])
  assert np.all(index['num_pixels'] > 0)
  assert np.all(index['num_pixels'] <= (boxes[:, 2] - boxes[:, 0]) *
                (boxes[:, 3] - boxes[:, 1]))

  # The first image's prototypes are extract_trained_prototypes' on the
  # sliding-window embedding (the k-means run once, labels shared).
  entry = image_reader.read_data_list(
      tiny_dataset, os.path.join(tiny_dataset, 'train.txt'))[0]
  image = image_reader.load_image(entry.image)
  label = label_images.read_label_png(entry.label)
  opts = _options(tiny_segsort_snapshot, (32, 40), (16, 24))
  with predictor.SegSortPredictor(opts) as model:
    embedding = model.embed(image, 'none')
    extracted = model.extract_prototypes(image, label)
  grid = common_utils.initialize_cluster_labels([3, 3], [HEIGHT, WIDTH])
  location = common_utils.generate_location_features([HEIGHT, WIDTH],
                                                     'float')
  direct = eval_utils.extract_trained_prototypes(
      embedding, location, grid, 9, 3, label, 1, 255, 'semantic')
  with tf.Session() as sess:
    want_features, want_labels, _ = sess.run(direct)
  np.testing.assert_allclose(extracted.features, want_features, atol=1e-5)
  np.testing.assert_array_equal(extracted.labels, want_labels)
  first = index['image_index'] == 0
  np.testing.assert_allclose(prototypes.features[first], extracted.features,
                             atol=1e-5)
  np.testing.assert_array_equal(index['boxes'][first], extracted.boxes)
  np.testing.assert_array_equal(index['num_pixels'][first],
                                extracted.num_pixels)


def _check_outputs(save_dir, names):
  colormap = colormaps.get_colormap()
  for name in names:
    gray = _read_png(os.path.join(save_dir, 'gray', name + '.png'))
    color = _read_png(os.path.join(save_dir, 'color', name + '.png'))
    assert gray.shape == (HEIGHT, WIDTH) and gray.dtype == np.uint8
    assert gray.max() < NUM_CLASSES
    assert color.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(color, colormap[gray])


def _confusion(pred_dir, gt_dir, names):
  cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
  for name in names:
    pred = _read_png(os.path.join(pred_dir, name + '.png')).astype(int)
    gt = _read_png(os.path.join(gt_dir, name + '.png')).astype(int)
    keep = gt < NUM_CLASSES
    cm += np.bincount(gt[keep] * NUM_CLASSES + pred[keep],
                      minlength=NUM_CLASSES ** 2).reshape(cm.shape)
  return cm


def _val_flags(tiny_dataset, save_dir):
  return ['--data_dir', tiny_dataset,
          '--data_list', os.path.join(tiny_dataset, 'val.txt'),
          '--save_dir', save_dir]


def test_segsort_inference_end_to_end(tiny_dataset, tiny_segsort_snapshot,
                                      prototype_dir, tmp_path):
  knn = ['--prototype_dir', prototype_dir, '--k_in_nearest_neighbors',
         str(K), '--restore_from', tiny_segsort_snapshot]
  single = str(tmp_path / 'single')
  names = inference_segsort.main(_val_flags(tiny_dataset, single) +
                                 SEGSORT_FLAGS + knn + LARGE_WINDOW)
  assert len(names) == 4
  _check_outputs(single, names)

  msc = str(tmp_path / 'msc')
  inference_segsort_msc.main(_val_flags(tiny_dataset, msc) + SEGSORT_FLAGS +
                             knn + SMALL_WINDOW + ['--scale_aug',
                                                   '--flip_aug'])
  _check_outputs(msc, names)

  # The benchmark's numbers are those of the confusion matrix of the files.
  gt_dir = os.path.join(tiny_dataset, 'segcls')
  results = benchmark_by_mIoU.main(
      ['--pred_dir', os.path.join(single, 'gray'), '--gt_dir', gt_dir,
       '--num_classes', str(NUM_CLASSES), '--allow_extra_gt'])
  cm = _confusion(os.path.join(single, 'gray'), gt_dir, names)
  assert results['num_images'] == 4
  assert results['pixel_accuracy'] == pytest.approx(
      100.0 * np.trace(cm) / cm.sum())
  union = cm.sum(0) + cm.sum(1) - np.diag(cm)
  iou = np.diag(cm)[union > 0] / union[union > 0]
  assert results['miou'] == pytest.approx(100.0 * iou.mean())


def test_softmax_inference_end_to_end(tiny_dataset, tiny_softmax_snapshot,
                                      tmp_path):
  flags = MODEL_FLAGS + ['--restore_from', tiny_softmax_snapshot]
  single = str(tmp_path / 'single')
  names = inference.main(_val_flags(tiny_dataset, single) + flags +
                         SMALL_WINDOW)
  _check_outputs(single, names)
  msc = str(tmp_path / 'msc')
  inference_msc.main(_val_flags(tiny_dataset, msc) + flags + SMALL_WINDOW +
                     ['--scales', '0.5,1.5', '--flip_aug'])
  _check_outputs(msc, names)
  # inference.py is single scale, as the original's.
  with pytest.raises(SystemExit):
    inference.main(_val_flags(tiny_dataset, msc) + flags + ['--flip_aug'])


def _hyphenated(argv):
  """argv with the original softmax scripts' spelling: --data-dir, ..."""
  return [a.replace('_', '-') if a.startswith('--') and
          a[2:] in flags_module.SOFTMAX_INFERENCE_HYPHENATED else a
          for a in argv]


@pytest.mark.parametrize('script', [inference, inference_msc])
def test_softmax_scripts_take_the_original_hyphenated_flags(script):
  """The original inference.py / inference_msc.py spelled them --data-dir,
  --data-list, --input-size, --num-classes, --ignore-label, --restore-from,
  --save-dir (and inference_msc.py --flip-aug, --scale-aug)."""
  argv = ['--data_dir', 'D/', '--data_list', 'D/val.txt', '--input_size',
          '33,44', '--num_classes', '7', '--ignore_label', '9',
          '--restore_from', 'ckpt', '--save_dir', 'out', '--flip_aug',
          '--scale_aug', '--strides', '11,22', '--colormap', 'c.mat']
  hyphenated = _hyphenated(argv)
  assert '--data-dir' in hyphenated and '--scale-aug' in hyphenated
  assert vars(script.get_arguments(hyphenated)) == vars(
      script.get_arguments(argv))
  # The SegSort scripts never had them.
  with pytest.raises(SystemExit):
    inference_segsort.get_arguments(['--data-list', 'D/val.txt'])


def _window_probabilities(model, image):
  """(y0, x0, valid_h, valid_w, softmax of the window's logits) per window."""
  out = []
  for y0, x0, window, valid_h, valid_w in sliding_window.iter_windows(
      image, model.window_size, model.strides):
    out.append((y0, x0, valid_h, valid_w, model.run_window(window)))
  return out


def _merged(windows, size, num_classes, mean):
  """Probabilities summed (or averaged) where the windows overlap."""
  total = np.zeros(size + (num_classes,))
  count = np.zeros(size + (1,))
  for y0, x0, valid_h, valid_w, probabilities in windows:
    total[y0:y0 + valid_h, x0:x0 + valid_w] += probabilities[:valid_h,
                                                             :valid_w]
    count[y0:y0 + valid_h, x0:x0 + valid_w] += 1
  return total / count if mean else total


def test_softmax_merges_probabilities_as_the_original(tiny_dataset,
                                                      tiny_softmax_snapshot):
  """Windows merge softmax probabilities, not logits.

  The original inference.py summed the windows' softmax probabilities
  (lab_batch[:, sh:eh, sw:ew, :] += out, out = tf.nn.softmax(...)); its
  inference_msc.py averaged them over the windows of a scale (lab_batch /=
  num_batch), resized each scale to the image, flipped back and summed
  over the scales.
  """
  image = _val_image(tiny_dataset)
  size = image.shape[:2]
  with predictor.SoftmaxPredictor(
      _options(tiny_softmax_snapshot, (32, 40), (16, 24))) as model:
    windows = _window_probabilities(model, image)
    labels, scores = model.predict(image, return_scores=True)
    scales = [0.5, 1.5]
    msc_labels, msc_scores = model.predict_multiscale(
        image, scales, flip=True, return_scores=True)
    want_msc = np.zeros(size + (NUM_CLASSES,))
    for scale in scales:
      view = sliding_window.resize_bilinear(
          image, sliding_window.get_scaled_size(size, scale))
      for flipped in (False, True):
        mean = _merged(_window_probabilities(
            model, view[:, ::-1] if flipped else view), view.shape[:2],
                       NUM_CLASSES, mean=True)
        back = sliding_window.resize_bilinear(mean, size)
        want_msc += back[:, ::-1] if flipped else back
  for *_, probabilities in windows:
    np.testing.assert_allclose(probabilities.sum(axis=2), 1.0, atol=1e-5)
  want = _merged(windows, size, NUM_CLASSES, mean=False)
  np.testing.assert_allclose(scores, want, atol=1e-5)
  np.testing.assert_array_equal(labels, np.argmax(want, axis=2))
  np.testing.assert_allclose(msc_scores, want_msc, atol=1e-4)
  np.testing.assert_array_equal(msc_labels, np.argmax(want_msc, axis=2))


def test_command_line(tiny_dataset, tiny_segsort_snapshot, prototype_dir,
                      tmp_path):
  save_dir = str(tmp_path / 'cli')
  script = os.path.join(ROOT, 'pyscripts', 'inference',
                        'inference_segsort.py')
  result = subprocess.run(
      [sys.executable, script] + _val_flags(tiny_dataset, save_dir) +
      SEGSORT_FLAGS + LARGE_WINDOW +
      ['--restore_from', tiny_segsort_snapshot, '--prototype_dir',
       prototype_dir, '--k_in_nearest_neighbors', str(K)],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  _check_outputs(save_dir, ['val_%06d' % i for i in range(4)])


def _val_image(tiny_dataset, i=0):
  entry = image_reader.read_data_list(
      tiny_dataset, os.path.join(tiny_dataset, 'val.txt'))[i]
  return image_reader.load_image(entry.image)


@pytest.mark.parametrize('kmeans_grid,window', [
    # The 64x80 window is larger than the 48x64 image: one padded window.
    (predictor.KMEANS_GRID_IMAGE, (64, 80)),
    # Grid over the window (multi-scale) and over the canvas, locations over
    # the image (single scale): the same when the window is the image.
    (predictor.KMEANS_GRID_CANVAS, (HEIGHT, WIDTH)),
])
def test_multiscale_with_scale_one_equals_single_scale(
    tiny_dataset, tiny_segsort_snapshot, prototype_dir, kmeans_grid, window):
  prototypes = prototype_sets.load_prototypes(prototype_dir)
  image = _val_image(tiny_dataset)
  with predictor.SegSortPredictor(
      _options(tiny_segsort_snapshot, window, kmeans_grid=kmeans_grid),
      prototypes) as model:
    for i in range(2):
      image = _val_image(tiny_dataset, i)
      single = model.predict(image, details=True)
      labels, votes = model.predict_multiscale(image, [1.0], flip=False,
                                               return_votes=True)
      np.testing.assert_array_equal(labels, single.labels)
      # Every pixel holds exactly its cluster's k votes.
      np.testing.assert_array_equal(votes,
                                    single.cluster_votes[single.cluster_labels])
      np.testing.assert_array_equal(votes.sum(axis=2), K)
    # A flipped view gives the flipped prediction back after un-flipping.
    flip_labels, flip_votes = model.predict_multiscale(
        image[:, ::-1], [1.0], flip=False, return_votes=True)
    both = model.predict_multiscale(image, [1.0], flip=True,
                                    return_votes=True)[1]
    np.testing.assert_array_equal(both, votes + flip_votes[:, ::-1])


def test_softmax_multiscale_with_scale_one_equals_single_scale(
    tiny_dataset, tiny_softmax_snapshot):
  image = _val_image(tiny_dataset)
  with predictor.SoftmaxPredictor(_options(tiny_softmax_snapshot)) as model:
    np.testing.assert_array_equal(
        model.predict(image), model.predict_multiscale(image, [1.0], False))


def test_interrupted_extraction_writes_no_prototypes(
    tiny_dataset, tiny_segsort_snapshot, tmp_path, monkeypatch):
  real = predictor.SegSortPredictor.extract_prototypes
  calls = []

  def interrupted(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return real(self, *args, **kwargs)

  monkeypatch.setattr(predictor.SegSortPredictor, 'extract_prototypes',
                      interrupted)
  save_dir = str(tmp_path / 'interrupted')
  with pytest.raises(SystemExit) as exit_info:
    extract_prototypes.main(
        ['--data_dir', tiny_dataset,
         '--data_list', os.path.join(tiny_dataset, 'train.txt'),
         '--restore_from', tiny_segsort_snapshot, '--save_dir', save_dir] +
        SEGSORT_FLAGS + LARGE_WINDOW)
  assert exit_info.value.code == 130
  assert _files(os.path.join(save_dir, 'prototypes')) == []


def test_visualize_retrieval(tiny_dataset, tiny_segsort_snapshot,
                             prototype_dir, tmp_path):
  save_dir = str(tmp_path / 'pictures')
  paths = visualize_retrieval.main(
      _val_flags(tiny_dataset, save_dir) + SEGSORT_FLAGS + LARGE_WINDOW +
      ['--restore_from', tiny_segsort_snapshot, '--prototype_dir',
       prototype_dir, '--k_in_nearest_neighbors', '3', '--max_images', '1',
       '--num_segments', '2', '--thumbnail_size', '32'])
  picture = _read_png(paths[0])
  # Overview row (48x64 pictures fitted in 96 px: 72x96) + 2 rows of
  # thumbnails, with captions; the widest row is the 5 overview pictures
  # (image, segments, prediction, ground truth, PCA).
  assert picture.ndim == 3 and picture.shape[0] > 72 + 2 * 10
  assert picture.shape[1] >= 5 * 96
  pca = _read_png(os.path.join(save_dir, 'pca', 'val_000000.png'))
  assert pca.shape == (HEIGHT, WIDTH, 3)


# Stages timed apart by each path (the batched one fuses the others).
PLAIN_STAGES = (predictor.STAGE_NETWORK, predictor.STAGE_KMEANS,
                predictor.STAGE_KNN, predictor.STAGE_VOTES)
BATCHED_STAGES = {'single': (predictor.STAGE_NETWORK, predictor.STAGE_FUSED),
                  'msc': (predictor.STAGE_FUSED, predictor.STAGE_VOTES)}


@pytest.mark.parametrize('batch_size', [1, 4])
def test_speed_benchmark(tiny_dataset, tiny_segsort_snapshot, prototype_dir,
                         tmp_path, batch_size):
  output = str(tmp_path / 'timings.json')
  benchmark_inference.main(
      ['--data_dir', tiny_dataset,
       '--data_list', os.path.join(tiny_dataset, 'val.txt'),
       '--restore_from', tiny_segsort_snapshot, '--prototype_dir',
       prototype_dir, '--k_in_nearest_neighbors', str(K),
       '--max_images', '1', '--scales', '0.5,1', '--flip_aug',
       '--inference_batch_size', str(batch_size),
       '--output_json', output] + SEGSORT_FLAGS + SMALL_WINDOW)
  with open(output) as f:
    results = json.load(f)
  assert results['settings']['scales'] == [0.5, 1.0]
  for mode in ('single', 'msc'):
    timings = results['images'][0][mode]
    timed = PLAIN_STAGES if batch_size == 1 else BATCHED_STAGES[mode]
    for stage in predictor.STAGES:
      assert (timings[stage] > 0) == (stage in timed), (mode, stage)
    assert timings['total'] >= sum(timings[s] for s in predictor.STAGES)


def _error_of(main, argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(argv)
  assert exit_info.value.code == 1
  return capsys.readouterr().err


def test_clean_errors(tiny_dataset, tiny_segsort_snapshot, prototype_dir,
                      tmp_path, capsys):
  base = _val_flags(tiny_dataset, str(tmp_path / 'out')) + SEGSORT_FLAGS
  knn = ['--prototype_dir', prototype_dir]
  restore = ['--restore_from', tiny_segsort_snapshot]

  err = _error_of(inference_segsort.main, base + restore +
                  ['--prototype_dir', str(tmp_path / 'none')], capsys)
  assert 'prototype_features.npy' in err and '--prototype_dir' in err
  assert err.count('\n') == 1

  err = _error_of(inference_segsort.main, base + knn +
                  ['--restore_from', str(tmp_path / 'model.ckpt-9')], capsys)
  assert 'model.ckpt-9' in err

  err = _error_of(inference_segsort.main, base + knn + restore +
                  ['--flip_aug'], capsys)
  assert '--flip_aug' in err and err.count('\n') == 1

  err = _error_of(inference_segsort.main, base + knn + restore +
                  ['--colormap', str(tmp_path / 'map.mat')], capsys)
  assert '--colormap' in err and 'map.mat' in err

  missing_list = tmp_path / 'missing.txt'
  missing_list.write_text('JPEGImages/nowhere.jpg\n')
  err = _error_of(inference_segsort_msc.main,
                  ['--data_dir', tiny_dataset, '--data_list',
                   str(missing_list), '--save_dir', str(tmp_path / 'o')] +
                  SEGSORT_FLAGS + knn + restore, capsys)
  assert 'nowhere.jpg' in err

  err = _error_of(inference_segsort.main,
                  base + knn + restore + ['--embedding_dim', '16'], capsys)
  assert '--embedding_dim' in err
