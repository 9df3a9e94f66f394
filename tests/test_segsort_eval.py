"""network/segsort/eval_utils.py: prototype extraction and kNN vs NumPy."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tests import segsort_reference as ref
from network.segsort import eval_utils


def _run(fetches, feed_dict=None):
  with tf.Session() as sess:
    return sess.run(fetches, feed_dict)


def _np_extract(embedding, loc, clusters, num_clusters, iterations, labels,
                ignore_label=255):
  """SPEC's prototype extraction for one image, in NumPy."""
  depth = embedding.shape[-1]
  emb = ref.normalize(embedding.reshape(-1, depth))
  loc = loc.reshape(-1, 2)
  clusters = clusters.reshape(-1)
  labels = labels.reshape(-1)
  valid = (labels != ignore_label) & (labels >= 0)
  emb, loc, clusters, labels = (emb[valid], loc[valid], clusters[valid],
                                labels[valid])
  clusters = ref.kmeans(ref.normalize(np.concatenate([emb, loc], axis=1)),
                        clusters, num_clusters, iterations)
  pixel_clusters = np.full(valid.shape, -1)
  pixel_clusters[valid] = clusters
  features, classes = [], []
  for k in range(num_clusters):
    members = clusters == k
    if not members.any():
      continue
    majority = np.argmax(np.bincount(labels[members]))
    features.append(ref.normalize(emb[members & (labels == majority)].sum(0)))
    classes.append(majority)
  return (np.array(features).reshape(-1, depth), np.array(classes),
          pixel_clusters)


def _np_top_k(queries, bank, k):
  sims = queries @ bank.T
  # Stable sort of -similarity: ties keep the lower bank index.
  return np.argsort(-sims, axis=1, kind='stable')[:, :k]


def _np_votes(indices, bank_labels, num_classes):
  votes = np.zeros((len(indices), num_classes))
  for q, row in enumerate(indices):
    for label in bank_labels[row]:
      if 0 <= label < num_classes:
        votes[q, label] += 1
  return votes


def _image(rng, height=8, width=8, depth=4, num_classes=3):
  embedding = rng.randn(height, width, depth).astype(np.float32)
  labels = np.repeat((np.arange(width) * num_classes // width)[None],
                     height, axis=0)
  noise = rng.rand(height, width) < 0.25
  labels[noise] = rng.randint(0, num_classes, size=noise.sum())
  labels[rng.rand(height, width) < 0.15] = 255
  loc = ref.location_features(height, width).astype(np.float32)
  grid = ref.grid_labels(2, 2, height, width)
  return embedding, labels, loc, grid


def test_find_majority_label_index():
  labels = np.array([1, 1, 2, 0, 0, 2, 2, 5])
  clusters = np.array([0, 0, 0, 2, 2, 2, 3, 3])
  select, majority = _run(eval_utils.find_majority_label_index(labels,
                                                               clusters))
  # Cluster 1 is empty (label 0); cluster 2 ties 0 vs 2 -> 0; cluster 3
  # ties 2 vs 5 -> 2.
  assert np.array_equal(majority, [1, 0, 0, 2])
  assert np.array_equal(select[:, 0], [0, 1, 3, 4, 6])


@pytest.mark.parametrize('divisor', [1, 1000])
def test_extract_trained_prototypes_matches_reference(divisor):
  rng = np.random.RandomState(0)
  embedding, labels, loc, grid = _image(rng)
  # With a divisor the labels carry an instance id below it, as panoptic
  # labels do; the ignore test applies to the semantic part.
  panoptic = labels * divisor + (rng.randint(0, divisor, labels.shape)
                                 if divisor > 1 else 0)
  args = (embedding.reshape(-1, 4), loc.reshape(-1, 2), grid.reshape(-1), 4,
          3, panoptic.reshape(-1), divisor, 255, 'semantic')
  (features, classes, instances), with_clusters = _run(
      [eval_utils.extract_trained_prototypes(*args),
       eval_utils.extract_trained_prototypes(*args,
                                             return_cluster_labels=True)])
  expected_features, expected_classes, expected_clusters = _np_extract(
      embedding, loc, grid, 4, 3, labels)
  assert len(expected_classes) >= 2
  np.testing.assert_allclose(features, expected_features, atol=1e-5)
  assert np.array_equal(classes, expected_classes)
  assert np.array_equal(instances, np.zeros_like(classes))
  # The cluster map is the clustering the prototypes came from (-1 where
  # the label is ignored).
  assert len(with_clusters) == 4
  for got, want in zip(with_clusters[:3], (features, classes, instances)):
    np.testing.assert_array_equal(got, want)
  assert np.array_equal(with_clusters[3], expected_clusters)
  assert np.array_equal(with_clusters[3] == -1, labels.reshape(-1) == 255)
  np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0,
                             atol=1e-5)


def test_extract_trained_prototypes_all_ignore_and_modes():
  rng = np.random.RandomState(1)
  embedding, labels, loc, grid = _image(rng)
  labels[:] = 255
  features, classes, _, clusters = _run(eval_utils.extract_trained_prototypes(
      embedding, loc, grid, 4, 3, labels, 1, 255, 'semantic', True))
  assert features.shape == (0, 4) and classes.shape == (0,)
  assert np.array_equal(clusters, np.full(labels.size, -1))
  with pytest.raises(ValueError, match='semantic'):
    eval_utils.extract_trained_prototypes(embedding, loc, grid, 4, 3, labels,
                                          1, 255, 'instance')


def test_k_nearest_neighbors_ties_go_to_lowest_class():
  bank_labels = np.array([3, 1, 3, 1, 2, 2, 0])
  k_predictions = np.array([[0, 1, 2, 3],    # 3 vs 1 -> 1
                            [4, 5, 0, 2],    # 2 vs 3 -> 2
                            [6, 0, 1, 4]])   # all 1 vote -> 0
  predictions = _run(eval_utils.k_nearest_neighbors(k_predictions,
                                                    bank_labels))
  assert np.array_equal(predictions, [1, 2, 0])


def _search(queries, bank, k, chunk_size=None, labels=None, classes=None):
  """get_k_nearest_prototypes; without labels, every prototype has class 0."""
  if labels is None:
    labels = tf.zeros(tf.shape(bank)[:1], tf.int32)
  return eval_utils.get_k_nearest_prototypes(queries, bank, labels, k,
                                             classes, chunk_size)


def test_chunked_search_equals_full_search_with_ties():
  rng = np.random.RandomState(2)
  bank = ref.normalize(rng.randn(50, 8)).astype(np.float32)
  bank[30] = bank[3]     # exact ties across chunks
  bank[31] = bank[3]
  queries = ref.normalize(rng.randn(6, 8)).astype(np.float32)
  queries[0] = bank[3]
  full = _search(queries, bank, 5)
  chunked = [_search(queries, bank, 5, size) for size in (1, 7, 50, 64)]
  too_many = _search(queries, bank, 60, 16)
  full, chunked, too_many = _run([full, chunked, too_many])
  assert np.array_equal(full.indices, _np_top_k(queries, bank, 5))
  assert np.array_equal(full.indices[0, :3], [3, 30, 31])
  for result in chunked:
    assert np.array_equal(result.indices, full.indices)
    np.testing.assert_allclose(result.similarities, full.similarities,
                               atol=1e-6)
  # k larger than the bank: every prototype, once.
  assert too_many.indices.shape == (6, 50)
  assert np.all(np.isfinite(too_many.similarities))
  assert np.array_equal(np.sort(too_many.indices, axis=1),
                        np.tile(np.arange(50), [6, 1]))
  assert np.array_equal(too_many.votes, np.full((6, 1), 50))


def test_chunked_search_on_a_large_bank():
  rng = np.random.RandomState(3)
  bank = rng.randn(20000, 32).astype(np.float32)
  queries = rng.randn(25, 32).astype(np.float32)
  bank_ph = tf.placeholder(tf.float32, [None, 32])
  full = _search(queries, bank_ph, 15).indices
  chunked = _search(queries, bank_ph, 15, chunk_size=4096).indices
  full, chunked = _run([full, chunked], {bank_ph: bank})
  assert np.array_equal(full, chunked)
  assert np.array_equal(full, _np_top_k(queries, bank, 15))


@pytest.mark.parametrize('k', [1, 15, 130])
@pytest.mark.parametrize('chunk_size', [None, 7, 64, 1000])
def test_two_stage_top_k_keeps_every_tie_in_index_order(k, chunk_size):
  """Banks of many groups (eval_utils._TOP_K_GROUP) whose similarities are
  small integers (exact in float32): long runs of equal values inside and
  across groups and chunks. Indices and values must be those of a stable
  NumPy sort (ties: lower bank index)."""
  rng = np.random.RandomState(11)
  bank = rng.randint(-2, 3, size=(3001, 4)).astype(np.float32)
  queries = rng.randint(-2, 3, size=(9, 4)).astype(np.float32)
  queries[0] = 0   # every prototype ties
  result = _run(_search(queries, bank, k, chunk_size))
  top = _np_top_k(queries, bank, k)
  assert np.array_equal(result.indices, top)
  assert np.array_equal(result.similarities,
                        np.take_along_axis(queries @ bank.T, top, 1))
  assert np.array_equal(result.indices[0], np.arange(k))


def test_two_stage_top_k_on_rows_shorter_than_a_group():
  """Rows of 1 to 2 groups, k up to the row length: same as tf.nn.top_k."""
  rng = np.random.RandomState(12)
  for length in (1, 5, eval_utils._TOP_K_GROUP, eval_utils._TOP_K_GROUP + 1,
                 2 * eval_utils._TOP_K_GROUP + 3):
    rows = rng.randint(0, 4, size=(3, length)).astype(np.float32)
    for k in sorted({1, min(3, length), length}):
      values, indices = _run(eval_utils._exact_top_k(tf.constant(rows), k))
      order = np.argsort(-rows, axis=1, kind='stable')[:, :k]
      assert np.array_equal(indices, order), (length, k)
      assert np.array_equal(values, np.take_along_axis(rows, order, 1))


@pytest.mark.parametrize('chunk_size', [None, 6, 40])
def test_k_nearest_prototypes_match_reference(chunk_size):
  """Similarities, indices and votes of the one kNN function vs NumPy."""
  rng = np.random.RandomState(4)
  bank = ref.normalize(rng.randn(40, 6)).astype(np.float32)
  bank_labels = rng.randint(0, 6, size=40)   # label 5 is outside 5 classes
  queries = ref.normalize(rng.randn(7, 6)).astype(np.float32)
  result = _run(_search(queries, bank, 9, chunk_size, bank_labels, 5))
  top = _np_top_k(queries, bank, 9)
  assert result.indices.shape == (7, 9) and result.votes.shape == (7, 5)
  assert np.array_equal(result.indices, top)
  np.testing.assert_allclose(
      result.similarities, np.take_along_axis(queries @ bank.T, top, 1),
      atol=1e-6)
  assert np.all(np.diff(result.similarities, axis=1) <= 0)
  assert np.array_equal(result.votes, _np_votes(top, bank_labels, 5))
  # Without num_classes: one column per label up to the largest neighbour.
  votes = _run(_search(queries, bank, 9, chunk_size, bank_labels).votes)
  width = bank_labels[top].max() + 1
  assert np.array_equal(votes, _np_votes(top, bank_labels, width))


def test_k_nearest_prototypes_refuse_bad_k_and_chunk():
  bank = np.eye(3, dtype=np.float32)
  with pytest.raises(ValueError, match='k_in_nearest_neighbors'):
    _search(bank, bank, 0)
  with pytest.raises(ValueError, match='chunk_size'):
    _search(bank, bank, 1, chunk_size=0)


def test_predict_semantic_instance_labels_matches_reference():
  rng = np.random.RandomState(5)
  bank = ref.normalize(rng.randn(30, 5)).astype(np.float32)
  bank_classes = rng.randint(0, 4, size=30)
  bank_instances = rng.randint(10, 14, size=30)
  queries = ref.normalize(rng.randn(6, 5)).astype(np.float32)
  clusters = rng.randint(0, 6, size=(1, 5, 7))
  semantic, none = eval_utils.predict_semantic_instance_labels(
      clusters, queries, bank, bank_classes, None, k=4)
  assert none is None
  semantic_chunked, instance = eval_utils.predict_semantic_instance_labels(
      clusters, queries, bank, bank_classes, bank_instances, k=4,
      chunk_size=8)
  semantic, semantic_chunked, instance = _run(
      [semantic, semantic_chunked, instance])
  top = _np_top_k(queries, bank, 4)
  cluster_classes = np.argmax(_np_votes(top, bank_classes, 4), axis=1)
  assert semantic.shape == (1, 5, 7)
  assert np.array_equal(semantic, cluster_classes[clusters])
  assert np.array_equal(semantic_chunked, semantic)
  cluster_instances = np.argmax(_np_votes(top, bank_instances, 14), axis=1)
  _, first = np.unique(cluster_instances, return_index=True)
  order = cluster_instances[np.sort(first)]
  renumbered = np.array([list(order).index(v) for v in cluster_instances])
  assert np.array_equal(instance, renumbered[clusters])


def test_extract_test_prototypes_offsets_clusters_per_image():
  rng = np.random.RandomState(6)
  embedding = rng.randn(2, 6, 8, 4).astype(np.float32)
  clusters, prototypes = _run(
      eval_utils.extract_test_prototypes(embedding, 2, 3))
  assert clusters.shape == (2, 6, 8) and prototypes.shape == (8, 4)
  grid = ref.grid_labels(2, 2, 6, 8).reshape(-1)
  loc = ref.location_features(6, 8).reshape(-1, 2)
  for b in range(2):
    emb = ref.normalize(embedding[b].reshape(-1, 4))
    expected = ref.kmeans(ref.normalize(np.concatenate([emb, loc], 1)),
                          grid, 4, 3)
    assert np.array_equal(clusters[b].reshape(-1), expected + 4 * b)
    np.testing.assert_allclose(prototypes[4 * b:4 * b + 4],
                               ref.prototypes(emb, expected, 4), atol=1e-5)
