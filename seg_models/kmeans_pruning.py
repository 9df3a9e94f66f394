"""Bounds on which clusters can win per block of test-time k-means.

The computation behind pyscripts/benchmark/benchmark_kmeans_pruning.py (see
its docstring for the study): a float64 NumPy replica of
common_utils.upsampled_kmeans that, at every E-step, counts per
interpolation block the clusters that exact bounds cannot rule out.
"""
import numpy as np

from network.segsort import common_utils
from seg_models import predictor

BOUNDS = ('interval', 'pairwise', 'winners')
# Similarity of an empty cluster in the E-step: it never wins.
EMPTY_CLUSTER_SIMILARITY = common_utils._EMPTY_CLUSTER_SIMILARITY
# A cluster is ruled out only if the bound beats it by more than this: the
# upsampled x is float32, so bilinearity holds up to rounding.
MARGIN = 1e-5


def interpolation_blocks(low_size, size, region):
  """The blocks of pixels that read the same four low-resolution cells.

  TF 1.x bilinear resize (align_corners=False) from low_size to size reads,
  for output row y, rows floor(y * h_low / H) and the next one (clamped).
  A block is a product of such a run of rows and a run of columns.

  Args:
    low_size: (h_low, w_low), the network's output.
    size: (H, W), the window it is upsampled to.
    region: (h, w) <= size, the part clustered (top-left).

  Returns:
    For rows and for columns: a (starts, ends) pair of int arrays, the
    first and last index of each run, in order.
  """
  runs = []
  for low, full, part in zip(low_size, size, region):
    cells = np.floor(np.arange(part) * (float(low) / full)).astype(int)
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    ends = np.r_[starts[1:] - 1, part - 1]
    runs.append((starts, ends))
  return runs


def grid_start(num_clusters, region, window, kmeans_grid):
  """A window's k-means start in NumPy (predictor._get_test_start).

  Args:
    num_clusters: n (an n x n grid) or [n_y, n_x]
      (common_utils.cluster_grid).
    region: (h, w), the window's part inside the view.
    window: (win_h, win_w).
    kmeans_grid: predictor.KMEANS_GRID_CANVAS (grid and locations over
      the whole window) or KMEANS_GRID_IMAGE (over the region).

  Returns:
    initial_labels int [h, w]; location float64 [h, w, 2] (y, x).
  """
  grid = common_utils.cluster_grid(num_clusters)
  canvas = window if kmeans_grid == predictor.KMEANS_GRID_CANVAS else region
  height, width = region
  step_y = -(-canvas[0] // grid[0])
  step_x = -(-canvas[1] // grid[1])
  num_y_labels = (canvas[0] - 1) // step_y + 1
  labels = (np.arange(height)[:, None] // step_y +
            num_y_labels * (np.arange(width)[None, :] // step_x))
  y, x = np.meshgrid(np.arange(height) / float(canvas[0]),
                     np.arange(width) / float(canvas[1]), indexing='ij')
  return labels, np.stack([y, x], axis=2)


def _normalize(v):
  return v / np.sqrt(np.maximum(np.sum(v * v, axis=-1, keepdims=True),
                                1e-12))


def _block_reduce(values, runs, ufunc):
  """ufunc over every block of values [h, w, ...] -> [n_rows, n_cols, ...]."""
  (row_starts, _), (col_starts, _) = runs
  return ufunc.reduceat(ufunc.reduceat(values, row_starts, axis=0),
                        col_starts, axis=1)


def _interval_product(a_min, a_max, b_min, b_max):
  """(min, max) of a * b over a in [a_min, a_max], b in [b_min, b_max]."""
  products = np.stack([a_min * b_min, a_min * b_max, a_max * b_min,
                       a_max * b_max])
  return products.min(axis=0), products.max(axis=0)


def count_candidates(similarity, norms, location_terms, bias, labels, runs):
  """Per block, the clusters each bound keeps and those that win.

  Args:
    similarity: [h, w, K], S_k(p) = <x(p), prototype_k^x>.
    norms: [h, w], max(||x(p)||, 1e-6).
    location_terms: [h, w, K], <location(p), prototype_k^loc>.
    bias: [K], 0 or EMPTY_CLUSTER_SIMILARITY.
    labels: [h, w], the E-step's result (the winners).
    runs: interpolation_blocks(...).

  Returns:
    kept: {bound: bool [n_rows, n_cols, K]}, the clusters each bound keeps
      in each block (winners: the labels found there); violations: the
      (block, winner) pairs a bound rules out.
  """
  num_clusters = similarity.shape[2]
  (row_starts, row_ends), (col_starts, col_ends) = runs
  corners = [(rows, cols) for rows in (row_starts, row_ends)
             for cols in (col_starts, col_ends)]
  # [4, n_rows, n_cols, K] at the corner pixels of every block.
  corner_s = np.stack([similarity[r][:, c] for r, c in corners])
  corner_l = np.stack([location_terms[r][:, c] for r, c in corners])
  norm_min = _block_reduce(norms, runs, np.minimum)[..., None]
  norm_max = _block_reduce(norms, runs, np.maximum)[..., None]
  loc_min, loc_max = _interval_product(norm_min, norm_max,
                                       corner_l.min(axis=0),
                                       corner_l.max(axis=0))
  lower = corner_s.min(axis=0) + loc_min + bias
  upper = corner_s.max(axis=0) + loc_max + bias
  best = lower.max(axis=2, keepdims=True)
  keep = {'interval': upper + MARGIN >= best}
  # Pairwise against the cluster j with the best lower bound.
  j = np.argmax(lower, axis=2)[None, ..., None]
  diff_s = np.take_along_axis(corner_s, j, axis=3) - corner_s
  diff_l = np.take_along_axis(corner_l, j, axis=3) - corner_l
  diff_min, _ = _interval_product(norm_min, norm_max, diff_l.min(axis=0),
                                  diff_l.max(axis=0))
  bias_diff = np.take_along_axis(bias[None, None], j[0], axis=2) - bias
  keep['pairwise'] = ~(diff_s.min(axis=0) + diff_min + bias_diff > MARGIN)
  one_hot = np.eye(num_clusters, dtype=np.int64)[labels]
  keep['winners'] = _block_reduce(one_hot, runs, np.add) > 0
  violations = sum(int(np.sum(keep['winners'] & ~keep[b]))
                   for b in ('interval', 'pairwise'))
  return keep, violations


def kmeans_study(upsampled, low_size, window, initial_labels, location,
                 num_clusters, iterations):
  """Test-time k-means of one window in float64, bounds at every E-step.

  The iteration of common_utils.upsampled_kmeans: pixels
  z = normalize(concat(normalize(x), location)); M-step prototypes
  normalize(sum of z); E-step argmax of S_k + ||x|| <location, p_k^loc> +
  bias_k, a pixel keeping its cluster unless another is strictly better;
  stops at a fixed point.

  Args:
    upsampled: [h, w, D], x (the output upsampled to the window) cropped
      to the region.
    low_size: (h_low, w_low) of the network's output.
    window: (win_h, win_w), the size x was upsampled to.
    initial_labels: int [h, w] in [0, K).
    location: [h, w, 2].
    num_clusters: K.
    iterations: the most E-steps.

  Returns:
    labels int [h, w]; steps: one dict per E-step with, per bound, the
    count summed over blocks ('sum') and weighted by block pixels
    ('pixel_sum'), and the numbers of blocks, pixels, clusters and
    violations.
  """
  x = np.asarray(upsampled, np.float64)
  height, width, depth = x.shape
  runs = interpolation_blocks(low_size, window, (height, width))
  norms = np.sqrt(np.maximum(np.sum(x * x, axis=2), 1e-12))
  pixels = _normalize(np.concatenate([_normalize(x), location], axis=2))
  flat = pixels.reshape(-1, depth + 2)
  labels = np.asarray(initial_labels).copy()
  block_pixels = np.outer(runs[0][1] - runs[0][0] + 1,
                          runs[1][1] - runs[1][0] + 1)
  steps = []
  for _ in range(iterations):
    sums = np.zeros((num_clusters, depth + 2))
    np.add.at(sums, labels.reshape(-1), flat)
    counts = np.bincount(labels.reshape(-1), minlength=num_clusters)
    prototypes = _normalize(sums)
    bias = np.where(counts > 0, 0.0, EMPTY_CLUSTER_SIMILARITY)
    similarity = x @ prototypes[:, :depth].T
    location_terms = location @ prototypes[:, depth:].T
    scores = similarity + norms[..., None] * location_terms + bias
    own = np.take_along_axis(scores, labels[..., None], axis=2)[..., 0]
    moving = own < scores.max(axis=2)
    new_labels = np.where(moving, scores.argmax(axis=2), labels)
    kept, violations = count_candidates(similarity, norms, location_terms,
                                        bias, new_labels, runs)
    counted = {b: kept[b].sum(axis=2) for b in BOUNDS}
    steps.append({
        'blocks': int(block_pixels.size), 'pixels': int(height * width),
        'clusters': int(num_clusters), 'violations': violations,
        'sum': {b: int(counted[b].sum()) for b in BOUNDS},
        'pixel_sum': {b: int((counted[b] * block_pixels).sum())
                      for b in BOUNDS}})
    labels = new_labels
    if not moving.any():
      break
  return labels, steps


def study_window(upsampled, low_size, valid_size, options):
  """kmeans_study of one window at the predictor's k-means settings."""
  window = tuple(options.input_size)
  initial_labels, location = grid_start(options.num_clusters, valid_size,
                                        window, options.kmeans_grid)
  h, w = valid_size
  return kmeans_study(upsampled[:h, :w], low_size, window, initial_labels,
                      location,
                      common_utils.cluster_grid(options.num_clusters).count,
                      options.kmeans_iterations)


def summarize(steps):
  """Means over every E-step of every window (blocks weighted equally)."""
  blocks = sum(s['blocks'] for s in steps)
  pairs = sum(s['pixels'] * s['clusters'] for s in steps)
  return {
      'e_steps': len(steps),
      'clusters': max(s['clusters'] for s in steps),
      'violations': sum(s['violations'] for s in steps),
      'candidates_per_block': {
          b: sum(s['sum'][b] for s in steps) / float(blocks)
          for b in BOUNDS},
      'score_share': {
          b: sum(s['pixel_sum'][b] for s in steps) / float(pairs)
          for b in BOUNDS}}
