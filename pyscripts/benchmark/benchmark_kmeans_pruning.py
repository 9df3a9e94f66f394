r"""How much of test-time k-means an exact per-block pruning could skip.

A feasibility study for issue 17 (item 5), not a fast path: it measures how
few clusters can win in each block of pixels, before anyone writes a pruned
E-step.

Test-time k-means (common_utils.upsampled_kmeans) runs on the network's
output x upsampled bilinearly to the window. Every pixel p whose
interpolation reads the same four low-resolution cells forms a block (8 x 8
pixels for an output stride of 8); inside a block, the similarity
S_k(p) = <x(p), prototype_k> is a bilinear function of p, so its extremes,
and those of any difference S_j - S_k, lie on the block's four corner
pixels. The E-step's score is S_k(p) + ||x(p)|| <location(p),
prototype_k^loc> + bias_k (upsampled_kmeans' docstring), with location
linear in p. For every E-step of every window, this script runs the k-means
exactly (float64 NumPy) and counts, per block, the clusters that two exact
bounds cannot rule out:

  interval  k stays unless its upper bound over the block is below the
            best lower bound of any cluster;
  pairwise  k stays unless the block's best cluster j (by lower bound)
            beats it on every pixel: min over the block of score_j -
            score_k, bounded from the corners and the interval of ||x||,
            is above 0;
  winners   the clusters that do win some pixel of the block (what any
            exact pruning must keep).

It reports their means over blocks, and the share of pixel x cluster
scores a pruned E-step would compute (block sizes weighted). A winner that
a bound rules out would be a bug of the bound: such blocks are counted
(`violations`, always 0 when the study is sound). Windows are those of
single-scale inference (--input_size, --strides) over each image, the
k-means start that of the multi-scale path's windows (--kmeans_grid).
Without --restore_from the network keeps its random initial weights, which
says nothing about trained embeddings; use a checkpoint.

example:
  python pyscripts/benchmark/benchmark_kmeans_pruning.py \
    --data_dir DATA --data_list DATA/val.txt --max_images 11 \
    --restore_from SNAPSHOT_DIR --input_size 224,224 --strides 224,224 \
    --output_json pruning.json
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from network.segsort import common_utils  # noqa: E402
from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import sliding_window  # noqa: E402
from utils import atomic_io  # noqa: E402

BOUNDS = ('interval', 'pairwise', 'winners')
# Similarity of an empty cluster, as in common_utils: it never wins.
EMPTY_CLUSTER_SIMILARITY = -1e9
# A cluster is ruled out only if the bound beats it by more than this: the
# upsampled x is float32, so bilinearity holds up to rounding.
MARGIN = 1e-5


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_segsort_inference_flags(parser, input_size='224,224',
                                    strides='224,224')
  group = parser.add_argument_group('benchmark')
  group.add_argument('--max_images', type=flags.int_at_least(0), default=0,
                     help='Only the first this many images (0 = all).')
  group.add_argument('--output_json', type=str, default='',
                     help='Optional path to write the counts as JSON.')
  return flags.parse(parser, argv)


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


def benchmark(args):
  """Runs the study over the images; returns the results (also printed)."""
  if args.restore_from:
    inference_main.apply_checkpoint_settings(args, 'embedding')
  entries = inference_main.get_entries(args)
  if args.max_images > 0:
    entries = entries[:args.max_images]
  opts = inference_main.get_predictor_options(args)
  steps = []
  with predictor.Predictor(opts, opts.embedding_dim,
                           allow_random_weights=True) as model:
    for entry in tqdm(entries, desc='pruning study', unit='image'):
      image = inference_main.load_image(entry)
      for _, _, window, valid_h, valid_w in sliding_window.iter_windows(
          image, opts.input_size, opts.strides):
        upsampled, low = model.run_windows_with_network_outputs(
            window[np.newaxis])
        _, window_steps = study_window(upsampled[0], low.shape[1:3],
                                       (valid_h, valid_w), opts)
        steps.extend(window_steps)
  results = summarize(steps)
  results['settings'] = {
      'input_size': list(opts.input_size), 'strides': list(opts.strides),
      'model': opts.model, 'backbone': opts.backbone,
      'width_multiplier': opts.width_multiplier,
      'embedding_dim': opts.embedding_dim,
      'num_clusters': opts.num_clusters,
      'kmeans_iterations': opts.kmeans_iterations,
      'kmeans_grid': opts.kmeans_grid, 'images': len(entries),
      'restored': bool(args.restore_from)}
  print('E-steps %d over %d images, %d clusters; violations %d'
        % (results['e_steps'], len(entries), results['clusters'],
           results['violations']))
  print('%-10s %22s %26s' % ('bound', 'clusters kept per block',
                             'share of pixel x cluster'))
  for b in BOUNDS:
    print('%-10s %22.2f %25.1f%%' % (b, results['candidates_per_block'][b],
                                     100 * results['score_share'][b]))
  if args.output_json:
    atomic_io.atomic_write_json(args.output_json, results)
  return results


def main(argv=None):
  return script_glue.run_script(benchmark, get_arguments(argv))


if __name__ == '__main__':
  main()
