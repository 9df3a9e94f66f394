r"""Where SegSort inference spends its time: network, k-means, kNN, votes.

For every image of --data_list, runs single-scale inference
(inference_segsort.py's computation) and multi-scale inference
(inference_segsort_msc.py's, with --scale_aug / --scales / --flip_aug) and
prints the seconds spent in each stage. The stages are separate session
runs, so the split is honest:

  network  the network on every window, outputs upsampled, summed/normalised
  kmeans   test-time clustering (k-means from the grid start, prototypes)
  knn      nearest training prototypes of every cluster and their votes
  votes    painting / accumulating the votes per pixel, resizing the votes
           of every view to the image, flipping back, argmax
  other    the rest (resizing and flipping the image, padding)

Without --restore_from the network keeps its initial (random) weights and
without --prototype_dir the bank is --num_random_prototypes random unit
vectors: the timings do not depend on the values. One untimed warm-up pass
on the first image comes first (--warmup).

example:
  python pyscripts/benchmark/benchmark_inference.py \
    --data_dir DATA --data_list DATA/val.txt --width_multiplier 0.25 \
    --input_size 480,480 --strides 320,320 --scale_aug --flip_aug \
    --output_json timings.json
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
from seg_models import benchmarking  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import prototype_sets  # noqa: E402
from utils import atomic_io  # noqa: E402

MODES = ('single', 'msc')
COLUMNS = benchmarking.INFERENCE_COLUMNS


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_segsort_inference_flags(parser, input_size='480,480',
                                    strides='320,320')
  group = parser.add_argument_group('benchmark')
  group.add_argument('--modes', type=str, default='single,msc',
                     help='Comma-separated modes to time: single, msc.')
  group.add_argument('--max_images', type=flags.int_at_least(0), default=0,
                     help='Only the first this many images (0 = all).')
  group.add_argument('--warmup', type=flags.int_at_least(0), default=1,
                     help='Untimed passes on the first image.')
  group.add_argument('--random_seed', type=int, default=1234,
                     help='Seed of the random bank.')
  group.add_argument('--num_random_prototypes', type=int, default=10000,
                     help='Size of the random bank used without '
                          '--prototype_dir.')
  group.add_argument('--output_json', type=str, default='',
                     help='Optional path to write the timings as JSON.')
  return flags.parse(parser, argv)


def format_row(name, mode, timings):
  share = timings['votes'] / timings['total'] if timings['total'] else 0.0
  return '%-24s %-6s %s %6.1f%%' % (
      name[:24], mode, ' '.join('%8.4f' % timings[c] for c in COLUMNS),
      100.0 * share)


def benchmark(args):
  """Times every image; returns the results dict (also printed)."""
  modes = [m for m in args.modes.split(',') if m]
  unknown = sorted(set(modes) - set(MODES))
  if unknown or not modes:
    raise predictor.PredictorError('--modes: expected a comma-separated '
                                   'subset of %s, got %r' % (MODES,
                                                             args.modes))
  scales = predictor.get_scales(args.scale_aug, args.scales)
  if args.restore_from:
    inference_main.apply_checkpoint_settings(args, 'embedding')
  entries = inference_main.get_entries(args)
  if args.max_images > 0:
    entries = entries[:args.max_images]
  if args.prototype_dir:
    prototypes = prototype_sets.load_prototypes(
        args.prototype_dir, args.embedding_dim, args.num_classes)
  else:
    if args.num_random_prototypes < 1:
      raise predictor.PredictorError('--num_random_prototypes must be >= 1')
    prototypes = benchmarking.get_random_prototypes(
        args.num_random_prototypes, args.embedding_dim, args.num_classes,
        args.random_seed)
  opts = inference_main.get_predictor_options(args)
  results = {'settings': {
      'input_size': list(opts.input_size), 'strides': list(opts.strides),
      'model': opts.model, 'backbone': opts.backbone,
      'width_multiplier': opts.width_multiplier,
      'embedding_dim': opts.embedding_dim, 'num_classes': opts.num_classes,
      'num_clusters': opts.num_clusters,
      'kmeans_iterations': opts.kmeans_iterations,
      'k_in_nearest_neighbors': opts.k_in_nearest_neighbors,
      'num_prototypes': len(prototypes), 'scales': scales,
      'flip_aug': bool(args.flip_aug),
      'inference_batch_size': opts.inference_batch_size, 'xla': opts.xla,
      'restored': bool(args.restore_from)}, 'images': []}
  header = '%-24s %-6s %s %7s' % ('image', 'mode', ' '.join(
      '%8s' % c for c in COLUMNS), 'votes%')
  with predictor.SegSortPredictor(opts, prototypes,
                                  allow_random_weights=True) as model:
    first = inference_main.load_image(entries[0])
    for _ in range(max(0, args.warmup)):
      for mode in modes:
        benchmarking.time_image(model, first, mode, scales, args.flip_aug)
    print(header)
    for entry in tqdm(entries, desc='benchmark', unit='image',
                      disable=len(entries) < 2):
      image = inference_main.load_image(entry)
      row = {'name': entry.name, 'size': list(image.shape[:2])}
      for mode in modes:
        row[mode] = benchmarking.time_image(model, image, mode, scales,
                                            args.flip_aug)
        tqdm.write(format_row(entry.name, mode, row[mode]))
      results['images'].append(row)
  results['mean'] = {
      mode: {c: float(np.mean([r[mode][c] for r in results['images']]))
             for c in COLUMNS} for mode in modes}
  for mode in modes:
    print(format_row('mean', mode, results['mean'][mode]))
  if args.output_json:
    atomic_io.atomic_write_json(args.output_json, results)
  return results


def main(argv=None):
  return script_glue.run_script(benchmark, get_arguments(argv))


if __name__ == '__main__':
  main()
