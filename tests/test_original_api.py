"""The original release's library functions, by name and call shape.

Each is checked against a plain NumPy computation (tests/segsort_reference.py
or a few lines here) on tiny inputs.
"""
import argparse
import os

import numpy as np
import tensorflow.compat.v1 as tf

from network.segsort import common_utils
from network.segsort import eval_utils
from network.segsort import vis_utils
from tests import segsort_reference as ref
from utils import colormaps
from utils import general
from utils import metrics


def test_decode_labels_paints_with_the_voc_palette():
  labels = np.array([[[0, 1], [15, 255]], [[2, 2], [0, 20]]])[..., None]
  painted = general.decode_labels(labels, num_classes=21)
  assert painted.shape == (2, 2, 2, 3) and painted.dtype == np.uint8
  palette = colormaps.get_voc_colormap()
  np.testing.assert_array_equal(painted, palette[labels[..., 0]])
  # VOC: background black, aeroplane (1) dark red, person (15) (192,128,128).
  assert painted[0, 0, 1].tolist() == [128, 0, 0]
  assert painted[0, 1, 0].tolist() == [192, 128, 128]


def test_inv_preprocess_adds_the_mean_back():
  mean = np.array([122.675, 116.669, 104.008])
  pixels = np.array([[0, 1, 2], [200, 50, 9]], np.float64)
  imgs = (pixels - mean)[None, None].astype(np.float32)  # [1, 1, 2, 3]
  restored = general.inv_preprocess(imgs, mean)
  assert restored.dtype == np.uint8
  np.testing.assert_array_equal(restored[0, 0], pixels)


def test_snapshot_arg_writes_the_config(tmp_path, capsys):
  args = argparse.Namespace(snapshot_dir=str(tmp_path / 'snap'),
                            learning_rate=2.5e-4, batch_size=8)
  path = general.snapshot_arg(args)
  assert path == os.path.join(str(tmp_path / 'snap'), 'config')
  text = open(path).read()
  assert 'learning_rate: 0.00025' in text and 'batch_size: 8' in text
  assert '| batch_size = 8' in capsys.readouterr().out


def test_iou_stats_against_hand_counts():
  pred = np.array([[0, 1, 1], [2, 2, 255], [1, 0, 0]])
  target = np.array([[0, 1, 2], [2, 2, 2], [255, 0, 1]])
  tp_fn, tp_fp, tp = metrics.iou_stats(pred, target, num_classes=3)
  # Counted pixels: target != 255 (8 of 9). Class 0: target at (0,0),
  # (2,1); class 1: (0,1), (2,2); class 2: (0,2), (1,0), (1,1), (1,2).
  assert tp_fn.tolist() == [2, 2, 4]
  # Predictions on counted pixels: 0,1,1,2,2,255,0,0 (255 adds nowhere).
  assert tp_fp.tolist() == [3, 2, 2]
  assert tp.tolist() == [2, 1, 2]
  # The same from the confusion matrix.
  cm = metrics.confusion_matrix(np.where(pred == 255, 0, pred), target, 3)
  assert np.diag(cm).tolist() == tp.tolist()


def test_accuracy_is_the_fraction_of_equal_elements():
  pred = np.array([1, 2, 3, 4])
  assert metrics.accuracy(pred, np.array([1, 0, 3, 0])) == 0.5
  grid = np.array([[1, 1, 1], [0, 0, 0]])
  assert metrics.accuracy(grid, np.ones((2, 3))) == 0.5


# --------------------------------------------------------------------------
# network/segsort: common_utils, vis_utils, eval_utils.
# --------------------------------------------------------------------------

def _run(fetches):
  with tf.Session() as sess:
    return sess.run(fetches)


def test_generate_location_features_np():
  features = common_utils.generate_location_features_np([3, 5])
  assert features.shape == (1, 3, 5, 2)
  np.testing.assert_allclose(features[0, :, 0, 0], [0, 0.5, 1])
  np.testing.assert_allclose(features[0, 0, :, 1], [0, 0.25, 0.5, 0.75, 1])
  np.testing.assert_allclose(features[0, 2, 3], [1.0, 0.75])


def test_pca_projects_on_the_principal_directions():
  rng = np.random.RandomState(0)
  # Variance 9 along axis 2, 1 along axis 0, 0.01 along axis 1.
  flat = rng.randn(200, 3) * [1.0, 0.1, 3.0] + [5.0, 0.0, 0.0]
  embedding = flat.reshape(2, 10, 10, 3).astype(np.float32)
  projected = _run(vis_utils.pca(tf.constant(embedding), 2))
  assert projected.shape == (2, 10, 10, 2) and projected.dtype == np.float32
  centred = flat - flat.mean(axis=0)
  _, vectors = np.linalg.eigh(centred.T @ centred)
  directions = vectors[:, ::-1][:, :2]
  directions *= np.sign(directions[np.argmax(np.abs(directions), axis=0),
                                   [0, 1]])
  np.testing.assert_allclose(projected.reshape(-1, 2), flat @ directions,
                             rtol=1e-3, atol=1e-3)
  # Given components are used as they are.
  given = np.eye(3, 2, dtype=np.float32)
  np.testing.assert_allclose(
      _run(vis_utils.pca(tf.constant(embedding), 2, tf.constant(given))),
      embedding[..., :2], rtol=1e-6)


def test_oracle_region_and_oracle_labels():
  labels = np.array([[[3, 3, 0], [255, 0, 7]]])  # [1, 2, 3]
  embedding = np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3)
  clusters, protos = _run(eval_utils.oracle_region(tf.constant(embedding),
                                                   tf.constant(labels)))
  # Regions in order of first appearance: 3 -> 0, 0 -> 1, 255 -> 2, 7 -> 3.
  assert clusters.tolist() == [[[0, 0, 1], [2, 1, 3]]]
  flat = embedding.reshape(-1, 3)
  assert protos.shape == (256, 3)
  np.testing.assert_allclose(protos[0], flat[0] + flat[1])
  np.testing.assert_allclose(protos[1], flat[2] + flat[4])
  np.testing.assert_allclose(protos[4:], 0)
  # Majority label per cluster; 255 counts as 0.
  regions = np.array([[[0, 0, 0], [1, 1, 1]]])
  truth = np.array([[[2, 2, 5], [255, 255, 4]]])
  predicted = _run(eval_utils.predict_oracle_labels(
      tf.constant(regions), tf.constant(truth)))
  assert predicted.tolist() == [[[2, 2, 2], [0, 0, 0]]]


def _panoptic_reference(embedding, loc, grid, num_clusters, iterations,
                        panoptic, divisor):
  emb = ref.normalize(embedding)
  valid = panoptic // divisor != 255
  emb, loc = emb[valid], loc[valid]
  grid, panoptic = grid[valid], panoptic[valid]
  clusters = ref.kmeans(ref.normalize(np.concatenate([emb, loc], 1)), grid,
                        num_clusters, iterations)
  _, first = np.unique(panoptic, return_index=True)
  ids = panoptic[np.sort(first)]
  keys = np.array([list(ids).index(p) for p in panoptic])
  features, classes, instances = [], [], []
  for k in range(num_clusters):
    if not (clusters == k).any():
      continue
    majority = np.argmax(np.bincount(keys[clusters == k],
                                     minlength=len(ids)))
    rows = emb[(clusters == k) & (keys == majority)]
    features.append(ref.normalize(rows.sum(axis=0)))
    classes.append(ids[majority] // divisor)
    instances.append(majority)
  return np.array(features), np.array(classes), np.array(instances)


def test_extract_trained_prototypes_panoptic_splits_instances():
  rng = np.random.RandomState(3)
  height, width, divisor = 8, 8, 1000
  embedding = rng.randn(height * width, 4).astype(np.float32)
  semantic = np.repeat([0, 1], height * width // 2)
  # Two instances of class 1 side by side inside the same clusters.
  instance = np.where(semantic == 1, rng.randint(1, 3, height * width), 0)
  panoptic = semantic * divisor + instance
  panoptic[rng.rand(height * width) < 0.1] = 255 * divisor
  loc = ref.location_features(height, width).reshape(-1, 2)
  grid = ref.grid_labels(2, 2, height, width).reshape(-1)
  got = _run(eval_utils.extract_trained_prototypes(
      embedding, loc.astype(np.float32), grid, 4, 3, panoptic, divisor, 255,
      'panoptic'))
  want = _panoptic_reference(embedding.astype(np.float64), loc, grid, 4, 3,
                             panoptic, divisor)
  np.testing.assert_allclose(got[0], want[0], atol=1e-5)
  assert got[1].tolist() == want[1].tolist()
  assert got[2].tolist() == want[2].tolist()
  assert set(got[1].tolist()) == {0, 1}


def test_predict_all_labels_against_numpy():
  rng = np.random.RandomState(4)
  height, width, depth = 6, 6, 3
  embedding = rng.randn(1, height, width, depth).astype(np.float32)
  bank = ref.normalize(rng.randn(12, depth)).astype(np.float32)
  bank_classes = np.array([0, 1, 2] * 4)
  bank_instances = np.array([0, 1, 2, 3, 4, 5] * 2)
  panoptic, semantic, instance, clusters = _run(eval_utils.predict_all_labels(
      tf.constant(embedding), 2, 3, tf.constant(bank),
      tf.constant(bank_classes), tf.constant(bank_instances), 3, 1000, [1]))
  emb = ref.normalize(embedding[0].reshape(-1, depth))
  loc = ref.location_features(height, width).reshape(-1, 2)
  want_clusters = ref.kmeans(ref.normalize(np.concatenate([emb, loc], 1)),
                             ref.grid_labels(2, 2, height, width).reshape(-1),
                             4, 3)
  assert clusters.reshape(-1).tolist() == want_clusters.tolist()
  protos = ref.prototypes(emb, want_clusters, 4)
  nearest = np.argsort(-(protos @ bank.T), axis=1)[:, :3]
  votes = np.array([np.argmax(np.bincount(bank_classes[n], minlength=3))
                    for n in nearest])
  want_semantic = votes[want_clusters]
  assert semantic.reshape(-1).tolist() == want_semantic.tolist()
  # Instances: only class 1 has them; the ids are renumbered, so compare
  # the partition of the class-1 pixels.
  inst_votes = np.array([np.argmax(np.bincount(bank_instances[n]))
                         for n in nearest])[want_clusters]
  flat_instance = instance.reshape(-1)
  assert (flat_instance[want_semantic != 1] == 0).all()
  things = want_semantic == 1
  assert things.any() and not things.all()
  pairs = set(zip(inst_votes[things], flat_instance[things]))
  assert len(pairs) == len(set(inst_votes[things]))
  assert len(pairs) == len(set(flat_instance[things]))
  np.testing.assert_array_equal(panoptic, semantic * 1000 + instance)
