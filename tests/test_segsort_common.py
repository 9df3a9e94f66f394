"""network/segsort/common_utils.py against the NumPy reference."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tests import segsort_reference as ref
from network.segsort import common_utils


def _run(fetches, feed_dict=None):
  with tf.Session() as sess:
    return sess.run(fetches, feed_dict)


def _random_unit(rng, *shape):
  return ref.normalize(rng.randn(*shape)).astype(np.float32)


def test_normalize_embedding_unit_norms_and_zero_vector():
  rng = np.random.RandomState(0)
  x = tf.constant(rng.randn(2, 3, 4, 5).astype(np.float32) * 7)
  zeros = tf.zeros([3, 5]) * x[0, 0, 0, 0]
  normalized, normalized_zero = (common_utils.normalize_embedding(x),
                                 common_utils.normalize_embedding(zeros))
  gradient = tf.gradients(tf.reduce_sum(normalized_zero), x)[0]
  out, out_zero, grad = _run([normalized, normalized_zero, gradient])
  np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(out, ref.normalize(_run(x)), atol=1e-6)
  assert np.array_equal(out_zero, np.zeros([3, 5]))
  assert np.all(np.isfinite(grad))


def test_calculate_prototypes_from_labels_matches_reference():
  rng = np.random.RandomState(1)
  embedding = rng.randn(2, 3, 4, 6).astype(np.float32)
  labels = rng.randint(0, 4, size=(2, 3, 4))
  labels[0, 0, 0] = -1  # dropped
  labels[1, 2, 3] = 9   # >= max_label: dropped
  protos = _run(common_utils.calculate_prototypes_from_labels(
      embedding, labels, max_label=6))
  expected = ref.prototypes(embedding.reshape(-1, 6), labels.reshape(-1), 6)
  np.testing.assert_allclose(protos, expected, atol=1e-5)
  # Labels 4 and 5 have no pixel: zero, not NaN.
  assert np.array_equal(protos[4:], np.zeros([2, 6]))
  # Default max_label = max + 1.
  labels[1, 2, 3] = 3
  protos = _run(common_utils.calculate_prototypes_from_labels(
      embedding, labels))
  assert protos.shape == (4, 6)
  np.testing.assert_allclose(
      protos, ref.prototypes(embedding.reshape(-1, 6), labels.reshape(-1), 4),
      atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-5)


def test_find_nearest_prototypes_with_invalid_prototypes():
  rng = np.random.RandomState(2)
  embedding = _random_unit(rng, 20, 3)
  protos = _random_unit(rng, 4, 3)
  valid = np.array([True, False, True, True])
  nearest, nearest_valid = _run([
      common_utils.find_nearest_prototypes(embedding, protos),
      common_utils.find_nearest_prototypes(embedding, protos, valid)])
  sims = embedding @ protos.T
  assert np.array_equal(nearest, np.argmax(sims, axis=1))
  sims[:, 1] = -np.inf
  assert np.array_equal(nearest_valid, np.argmax(sims, axis=1))


def test_kmeans_with_initial_labels_matches_reference():
  rng = np.random.RandomState(3)
  embedding = _random_unit(rng, 60, 5)
  initial = rng.randint(0, 6, size=60)
  labels = _run(common_utils.kmeans_with_initial_labels(
      embedding, initial, 6, iterations=4))
  assert labels.dtype == np.int32
  assert np.array_equal(labels, ref.kmeans(embedding, initial, 6, 4))
  # Zero iterations keep the start.
  assert np.array_equal(_run(common_utils.kmeans_with_initial_labels(
      embedding, initial, 6, iterations=0)), initial)


def test_batch_kmeans_matches_per_image_reference_with_mask():
  rng = np.random.RandomState(4)
  embedding = _random_unit(rng, 3, 40, 4)
  initial = rng.randint(0, 5, size=(3, 40))
  valid = rng.rand(3, 40) > 0.3
  valid[2] = False  # an image with no valid pixel
  labels = _run(common_utils.batch_kmeans_with_initial_labels(
      embedding, initial, 5, 3, valid))
  for b in range(2):
    expected = ref.kmeans(embedding[b][valid[b]], initial[b][valid[b]], 5, 3)
    assert np.array_equal(labels[b][valid[b]], expected)
    assert np.all(labels[b][~valid[b]] == -1)
  assert np.all(labels[2] == -1)


def test_kmeans_recovers_well_separated_clusters():
  # Three vertical stripes (columns 0-1, 2-8, 9-11) of distinct directions;
  # the 1 x 3 grid start (columns 0-3, 4-7, 8-11) straddles them.
  rng = np.random.RandomState(5)
  truth = np.repeat(np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2])[None], 6,
                    axis=0)
  embedding = ref.normalize(np.eye(4)[truth] + 0.05 * rng.randn(6, 12, 4))
  labels = _run(common_utils.kmeans(embedding[None].astype(np.float32),
                                    [1, 3], 5))[0]
  for k in range(3):
    assert len(set(labels[truth == k].tolist())) == 1
  assert len(set(labels.reshape(-1).tolist())) == 3


def test_empty_cluster_never_attracts_pixels():
  # All pixels start in cluster 0; clusters 1 and 2 are empty. The third
  # pixel has a negative similarity to cluster 0's prototype, so a zero
  # prototype (similarity 0) would steal it, as in the original.
  embedding = ref.normalize(np.array(
      [[1.0, 0.0], [1.0, 0.2], [-1.0, 0.05]])).astype(np.float32)
  with_empty = common_utils.kmeans_with_initial_labels(
      embedding, np.zeros(3, np.int32), 3, iterations=3)
  protos = common_utils.calculate_prototypes_from_labels(
      embedding, with_empty, 3)
  labels, protos = _run([with_empty, protos])
  assert np.array_equal(labels, [0, 0, 0])
  assert np.all(np.isfinite(protos))


def test_kmeans_clusters_each_image_separately():
  rng = np.random.RandomState(6)
  embedding = _random_unit(rng, 2, 6, 8, 3)
  both = _run(common_utils.kmeans(embedding, [2, 2], 4))
  assert both.shape == (2, 6, 8)
  initial = ref.grid_labels(2, 2, 6, 8).reshape(-1)
  for b in range(2):
    expected = ref.kmeans(embedding[b].reshape(-1, 3), initial, 4, 4)
    assert np.array_equal(both[b].reshape(-1), expected)
    alone = _run(common_utils.kmeans(embedding[b:b + 1], 2, 4))
    assert np.array_equal(alone[0], both[b])


def test_prepare_prototype_labels_matches_reference():
  semantic = np.array([3, 3, 1, 3, 1, 0])
  instance = np.array([0, 0, 0, 2, 0, 2])
  segments, proto_labels = _run(
      common_utils.prepare_prototype_labels(semantic, instance, offset=256))
  # Keys in order of first appearance: (0,3), (0,1), (2,3), (2,0).
  assert np.array_equal(segments, [0, 0, 1, 2, 1, 3])
  assert np.array_equal(proto_labels, [3, 1, 3, 0])


def test_grid_and_location_helpers_unchanged():
  labels, loc = _run([common_utils.initialize_cluster_labels([5, 5], [7, 9]),
                      common_utils.generate_location_features([7, 9],
                                                              'float')])
  assert np.array_equal(labels, ref.grid_labels(5, 5, 7, 9))
  assert labels.max() < 25
  np.testing.assert_allclose(loc, ref.location_features(7, 9), atol=1e-6)
  with pytest.raises(ValueError, match='feature_type'):
    common_utils.generate_location_features([3, 3], 'double')


@pytest.mark.parametrize('num_clusters, grid', [
    (5, (5, 5)), (np.int64(3), (3, 3)), ([2, 4], (2, 4)), ((1, 1), (1, 1))])
def test_cluster_grid(num_clusters, grid):
  got = common_utils.cluster_grid(num_clusters)
  assert tuple(got) == grid and (got.rows, got.cols) == grid
  assert got.count == grid[0] * grid[1]
  assert all(type(n) is int for n in got)


@pytest.mark.parametrize('bad', [0, -2, [2], [2, 0], (2, 3, 4), 2.5, 'ab',
                                 None])
def test_cluster_grid_refuses_bad_settings(bad):
  with pytest.raises(ValueError, match='num_clusters'):
    common_utils.cluster_grid(bad)
