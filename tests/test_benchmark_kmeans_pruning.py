"""The k-means pruning study: its k-means is the fast path's, its bounds sound.

The study's NumPy k-means must give common_utils.upsampled_kmeans' labels
and predictor._get_test_start's start; its bounds must never rule out a
cluster that the exact per-pixel comparison keeps; and the script must run
end to end on a tiny model.
"""
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.segsort import common_utils
from pyscripts.benchmark import benchmark_kmeans_pruning
from seg_models import kmeans_pruning as study
from seg_models import predictor
from tests import tiny_data


def test_blocks_by_hand():
  rows, cols = study.interpolation_blocks((2, 3), (8, 9), (8, 9))
  # Row y reads low row floor(y * 2 / 8); column x floor(x * 3 / 9).
  np.testing.assert_array_equal(rows[0], [0, 4])
  np.testing.assert_array_equal(rows[1], [3, 7])
  np.testing.assert_array_equal(cols[0], [0, 3, 6])
  np.testing.assert_array_equal(cols[1], [2, 5, 8])
  # A region smaller than the window cuts the last blocks short.
  rows, cols = study.interpolation_blocks((2, 3), (8, 9), (6, 7))
  np.testing.assert_array_equal(rows[1], [3, 5])
  np.testing.assert_array_equal(cols[0], [0, 3, 6])
  np.testing.assert_array_equal(cols[1], [2, 5, 6])


@pytest.mark.parametrize('kmeans_grid', predictor.KMEANS_GRIDS)
@pytest.mark.parametrize('valid', [(20, 24), (13, 17)])
def test_grid_start_equals_the_predictors(kmeans_grid, valid):
  options = predictor.PredictorOptions(input_size=(20, 24), num_clusters=3,
                                       kmeans_grid=kmeans_grid)
  labels, location = predictor._get_test_start(
      [tf.constant(valid[0]), tf.constant(valid[1])], options,
      in_window=True)
  with tf.Session() as sess:
    want_labels, want_location = sess.run([labels, location])
  got_labels, got_location = study.grid_start(3, valid, (20, 24),
                                              kmeans_grid)
  np.testing.assert_array_equal(got_labels, want_labels)
  np.testing.assert_allclose(got_location, want_location, atol=1e-7)


def _window(seed, low_size=(5, 6), depth=4, window=(20, 24)):
  rng = np.random.RandomState(seed)
  low = rng.normal(size=low_size + (depth,)).astype(np.float32)
  upsampled = tf.image.resize_bilinear(low[np.newaxis], window,
                                       align_corners=False)[0]
  with tf.Session() as sess:
    return low, sess.run(upsampled)


@pytest.mark.parametrize('seed,valid,num_clusters',
                         [(0, (20, 24), 3), (1, (17, 22), 3),
                          (2, (20, 24), 4)])
def test_kmeans_equals_upsampled_kmeans(seed, valid, num_clusters):
  window = (20, 24)
  low, upsampled = _window(seed, window=window)
  initial, location = study.grid_start(
      num_clusters, valid, window, predictor.KMEANS_GRID_CANVAS)
  count = num_clusters * num_clusters
  labels, _ = common_utils.upsampled_kmeans(
      low, list(window), initial.astype(np.int32), count, iterations=6,
      location_features=location.astype(np.float32))
  with tf.Session() as sess:
    want = sess.run(labels)
  got, steps = study.kmeans_study(
      upsampled[:valid[0], :valid[1]], low.shape[:2], window, initial,
      location, count, 6)
  np.testing.assert_array_equal(got, want)
  assert 1 <= len(steps) <= 6


def _exact_kept(similarity, norms, location_terms, bias, runs):
  """Per block, the clusters that the lower-bound leader j does not beat on
  every pixel, by brute force over the block's pixels."""
  scores = similarity + norms[..., None] * location_terms + bias
  (row_starts, row_ends), (col_starts, col_ends) = runs
  corners = [(r, c) for r in (row_starts, row_ends)
             for c in (col_starts, col_ends)]
  corner_s = np.stack([similarity[r][:, c] for r, c in corners])
  corner_l = np.stack([location_terms[r][:, c] for r, c in corners])
  kept = np.zeros(corner_s.shape[1:], bool)
  for i, (r0, r1) in enumerate(zip(row_starts, row_ends)):
    for j, (c0, c1) in enumerate(zip(col_starts, col_ends)):
      block_norms = norms[r0:r1 + 1, c0:c1 + 1]
      loc = corner_l[:, i, j]
      products = np.stack([block_norms.min() * loc.min(0),
                           block_norms.min() * loc.max(0),
                           block_norms.max() * loc.min(0),
                           block_norms.max() * loc.max(0)])
      lower = corner_s[:, i, j].min(0) + products.min(0) + bias
      leader = np.argmax(lower)
      block = scores[r0:r1 + 1, c0:c1 + 1]
      margin = (block[..., leader:leader + 1] - block).min(axis=(0, 1))
      kept[i, j] = ~(margin > 0)
  return kept


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_bounds_keep_every_cluster_the_exact_comparison_keeps(seed):
  window = (24, 30)
  low, upsampled = _window(seed, low_size=(4, 5), depth=3, window=window)
  rng = np.random.RandomState(seed)
  num_clusters = 6
  prototypes = study._normalize(rng.normal(size=(num_clusters, 5)))
  x = upsampled.astype(np.float64)
  norms = np.sqrt(np.maximum(np.sum(x * x, axis=2), 1e-12))
  _, location = study.grid_start(2, window, window,
                                 predictor.KMEANS_GRID_CANVAS)
  similarity = x @ prototypes[:, :3].T
  location_terms = location @ prototypes[:, 3:].T
  bias = np.zeros(num_clusters)
  bias[seed % num_clusters] = study.EMPTY_CLUSTER_SIMILARITY
  scores = similarity + norms[..., None] * location_terms + bias
  labels = scores.argmax(axis=2)
  runs = study.interpolation_blocks(low.shape[:2], window, window)
  kept, violations = study.count_candidates(
      similarity, norms, location_terms, bias, labels, runs)
  assert violations == 0
  exact = _exact_kept(similarity, norms, location_terms, bias, runs)
  # Sound: the bounds keep every cluster the exact comparison keeps, and
  # the pairwise bound every one the interval bound keeps.
  assert np.all(kept['pairwise'] | ~exact)
  assert np.all(kept['interval'] | ~kept['pairwise'])
  assert np.all(kept['pairwise'] | ~kept['winners'])
  counts = {b: k.sum(axis=2) for b, k in kept.items()}
  assert np.all(counts['winners'] >= 1)
  # The empty cluster is never kept; the bounds do prune.
  assert np.all(counts['interval'] <= num_clusters - 1)
  assert counts['pairwise'].mean() < num_clusters - 1


def test_counts_by_hand():
  # One 2 x 2 block, two clusters, no location: cluster 0 ahead on every
  # pixel is the only one kept; crossing similarities keep both.
  runs = study.interpolation_blocks((1, 1), (2, 2), (2, 2))
  zeros = np.zeros((2, 2, 2))
  norms = np.ones((2, 2))
  ahead = np.stack([np.full((2, 2), 0.9), np.full((2, 2), 0.1)], axis=2)
  kept, violations = study.count_candidates(
      ahead, norms, zeros, np.zeros(2), np.zeros((2, 2), int), runs)
  assert violations == 0
  assert {b: int(k.sum()) for b, k in kept.items()} == {
      'interval': 1, 'pairwise': 1, 'winners': 1}
  crossing = np.stack([np.array([[0.9, 0.9], [0.1, 0.1]]),
                       np.array([[0.1, 0.1], [0.9, 0.9]])], axis=2)
  labels = crossing.argmax(axis=2)
  kept, violations = study.count_candidates(
      crossing, norms, zeros, np.zeros(2), labels, runs)
  assert violations == 0
  assert {b: int(k.sum()) for b, k in kept.items()} == {
      'interval': 2, 'pairwise': 2, 'winners': 2}


def test_summary_numbers():
  steps = [{'blocks': 4, 'pixels': 16, 'clusters': 4, 'violations': 0,
            'sum': {'interval': 8, 'pairwise': 6, 'winners': 4},
            'pixel_sum': {'interval': 32, 'pairwise': 24, 'winners': 16}},
           {'blocks': 4, 'pixels': 16, 'clusters': 4, 'violations': 0,
            'sum': {'interval': 4, 'pairwise': 4, 'winners': 4},
            'pixel_sum': {'interval': 16, 'pairwise': 16, 'winners': 16}}]
  summary = study.summarize(steps)
  assert summary['e_steps'] == 2
  assert summary['candidates_per_block'] == {
      'interval': 1.5, 'pairwise': 1.25, 'winners': 1.0}
  assert summary['score_share'] == {
      'interval': 48 / 128.0, 'pairwise': 40 / 128.0, 'winners': 32 / 128.0}


def test_end_to_end_tiny(tiny_dataset, tmp_path):
  output = str(tmp_path / 'pruning.json')
  results = benchmark_kmeans_pruning.main(
      ['--data_dir', tiny_dataset,
       '--data_list', os.path.join(tiny_dataset, 'val.txt'),
       '--max_images', '2', '--backbone', 'resnet_v1_50',
       '--width_multiplier', str(tiny_data.WIDTH_MULTIPLIER),
       '--embedding_dim', str(tiny_data.EMBEDDING_DIM),
       '--num_classes', str(tiny_data.NUM_CLASSES),
       '--input_size', '32,40', '--strides', '32,40',
       '--num_clusters', '3', '--kmeans_iterations', '3',
       '--output_json', output])
  with open(output) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(results))
  assert saved['settings']['images'] == 2
  assert saved['violations'] == 0
  # 48x64 images in 32x40 windows: 4 windows each, 1 to 3 E-steps per
  # window.
  assert 8 <= saved['e_steps'] <= 24
  per_block = saved['candidates_per_block']
  assert 1 <= per_block['winners'] <= per_block['pairwise']
  assert per_block['pairwise'] <= per_block['interval'] <= 9
  share = saved['score_share']
  assert 0 < share['winners'] <= share['pairwise'] <= share['interval'] <= 1


def test_missing_data_list_is_named(tmp_path, capsys):
  missing = str(tmp_path / 'missing.txt')
  with pytest.raises(SystemExit) as exit_info:
    benchmark_kmeans_pruning.main(['--data_dir', str(tmp_path),
                                   '--data_list', missing])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert missing in err and '--data_list' in err
  assert 'Traceback' not in err
