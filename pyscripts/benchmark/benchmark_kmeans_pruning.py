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
exactly (float64 NumPy, seg_models/kmeans_pruning.py) and counts, per
block, the clusters that two exact bounds cannot rule out:

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

from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import kmeans_pruning  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import sliding_window  # noqa: E402
from utils import atomic_io  # noqa: E402


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
        _, window_steps = kmeans_pruning.study_window(
            upsampled[0], low.shape[1:3], (valid_h, valid_w), opts)
        steps.extend(window_steps)
  results = kmeans_pruning.summarize(steps)
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
  for b in kmeans_pruning.BOUNDS:
    print('%-10s %22.2f %25.1f%%' % (b, results['candidates_per_block'][b],
                                     100 * results['score_share'][b]))
  if args.output_json:
    atomic_io.atomic_write_json(args.output_json, results)
  return results


def main(argv=None):
  return script_glue.run_script(benchmark, get_arguments(argv))


if __name__ == '__main__':
  main()
