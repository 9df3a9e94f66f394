"""Speed and memory of SegSort against the pixel-wise softmax baseline.

In ONE run, on the same machine and settings, measures and prints:

1. Training step time of SegSort and of the softmax baseline with the same
   network, batch and input: the trainer's real graph
   (seg_models.trainer.build_train_graph, input pipeline included, one
   batch per step), median over --steps steps after --warmup untimed ones;
   their ratio; and the share of the SegSort step spent in k-means + loss.
   With --rounds R both are measured R times, each time in new processes
   and in alternating order; the ratio and the share are the medians of
   the rounds' (the step times the medians of the rounds' medians).
   With --interleaved, both graphs are also built in one process and
   stepped in turn (SegSort, softmax; softmax, SegSort; ...), one ratio
   per pair of steps.
   That share is measured, not estimated from profiles: in the same graph
   and session, seg_loss and its gradient w.r.t. the network's output (plus
   the memory-bank update) are run with a cached batch and the cached
   network output fed in, so that only k-means, prototypes, loss and the
   loss's backward pass run; share = (that time) / (full step time), both
   medians. The network's forward pass alone (same cached batch) is
   reported too.
2. Graph build time (graph + session + initialisation) and peak memory
   (peak resident set size) of each training configuration.
3. Inference per image, single- and multi-scale, split into network /
   k-means / kNN / votes / fused (/ other), with benchmark_inference.py's
   functions (SegSortPredictor's timed stages); multi-scale defaults to the
   original's scales 0.5..1.75 with flips (--scales picks others).
   Multi-scale runs with both paths, image after image: one window at a
   time (msc_plain, batch size 1) and batched (msc_batched,
   --inference_batch_size); 'msc' repeats the one --inference_batch_size
   selects, 'single' runs with it.
4. kNN of one image's cluster prototypes (num_clusters**2 of them) against
   banks of --knn_bank_sizes random unit prototypes: seconds per image and
   memory; the search is chunked (--knn_chunk_size, the predictor's), so
   what it adds to the memory of the bank itself stays bounded
   (O(clusters x (k + chunk)) floats), never bank x pixels.

The shared inference flags --colormap and --save_dir are accepted but
unused (nothing is saved but the JSON). Timings on a
machine shared with other jobs vary by tens of percent from run to run: the
fastest step (train_step_min_seconds) is reported next to the median.

Every configuration (SegSort training, softmax training, inference, each
bank size) runs in its own process (this script with a hidden worker flag),
one after the other, so that the peak memory figures do not mix.

Without --data_list, a synthetic dataset (pyscripts/tools/
make_synthetic_dataset.py) is written to a temporary folder at --input_size,
so that decoding and augmentation are cheap (augmentation is off) and the
step, not the input pipeline, is what is measured. Without --restore_from
the weights are the initial ones: the timings do not depend on them (with
it, the training runs restore the backbone only, since the two heads
differ). Inference uses a bank of --num_random_prototypes random prototypes
unless --prototype_dir is given.

JSON written to --output_json (all times in seconds, memory in MiB):
  settings                                  flags, data, machine
  train_step_seconds {segsort, softmax}     median step
  train_step_ratio_segsort_over_softmax     median of the rounds'
  train_step_ratio_rounds                   one ratio per round
  kmeans_loss_share_rounds                  one share per round
  train_step_interleaved (with --interleaved) {ratio_median, pair_ratios,
                                            step_median_seconds,
                                            step_seconds}
  kmeans_loss_share                         see 1.
  loss_seconds {segsort, softmax}           loss (+ k-means) fwd + bwd
  forward_seconds {segsort, softmax}        network forward only
  build_seconds {segsort, softmax}
  peak_rss_mb {segsort, softmax}
  train_step_min_seconds {segsort, softmax} fastest step (less sensitive
                                            to other load on the machine)
  train_step_all_seconds {segsort, softmax} every timed step
  inference_seconds {single, msc, msc_plain, msc_batched}:
                   {network, kmeans, knn, votes, fused, other, total},
                   mean per image
  msc_speedup_plain_over_batched    msc_plain.total / msc_batched.total
  settings.inference_paths          {xla, and the batch size of single,
                                     msc, msc_plain, msc_batched}
  inference_build_seconds, inference_peak_rss_mb, votes_share_msc
  knn_bank {"10000": {seconds, peak_rss_mb, rss_before_search_mb,
                      search_peak_rss_mb, search_extra_mb, bank_mb,
                      unchunked_similarities_mb, chunk_size, ...}, ...}
  goals {train_step_ratio_at_most_1.10, votes_share_msc_below_0.10}
  settings.conv_paths {onednn, atrous_conv, ...}  which kernels the
                                            SegSort training worker ran
                                            (oneDNN on/off; dilated convs
                                            native or portable)
  onednn_comparison (with --compare_onednn) {off, on: {segsort, softmax,
                                            conv_paths}, on_over_off}
                                            median training steps with
                                            TF_ENABLE_ONEDNN_OPTS=0 / =1

The defaults are the paper's setting (PSPNet ResNet-101, 336x336, batch 8),
slow on a CPU; a small CPU setting:

  python pyscripts/benchmark/benchmark_speed.py --width_multiplier 0.125 \\
    --input_size 128,128 --batch_size 4 --steps 10
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from network.common import layers  # noqa: E402
from network.multigpu import towers  # noqa: E402
from network.segsort import common_utils  # noqa: E402
from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import benchmarking  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import prototype_sets  # noqa: E402
from seg_models import trainer  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import profiling  # noqa: E402
from utils import synthetic_data  # noqa: E402

SCRIPT = os.path.abspath(__file__)
DEFAULT_OUTPUT = os.path.join('snapshots', 'benchmark_speed.json')
ONEDNN_ENV = 'TF_ENABLE_ONEDNN_OPTS'
# The goals: SegSort's step within 10% of softmax's, votes under 10% of
# multi-scale inference.
MAX_STEP_RATIO = 1.10
MAX_VOTES_SHARE = 0.10


def _int_list(text):
  try:
    values = [int(v) for v in text.split(',') if v]
  except ValueError:
    values = []
  if not values or min(values) < 1:
    raise argparse.ArgumentTypeError(
        'expected comma-separated positive integers, got %r' % (text,))
  return values


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_data_flags(parser, input_size='336,336', batch_size=8)
  flags.add_model_flags(parser)
  flags.add_segsort_flags(parser)
  flags.add_inference_flags(parser, strides='320,320')
  flags.add_knn_flags(parser)
  flags.add_prediction_flags(parser)
  # Multi-scale means scales 0.5..1.75 with flips unless --scales says
  # otherwise.
  parser.set_defaults(scale_aug=True, flip_aug=True)
  group = parser.add_argument_group('benchmark')
  group.add_argument('--steps', type=flags.int_at_least(1), default=20,
                     help='Timed repetitions (training steps, forward and '
                          'loss runs, kNN searches).')
  group.add_argument('--warmup', type=flags.int_at_least(0), default=3,
                     help='Untimed training steps before the timed ones.')
  group.add_argument('--output_json', type=str, default=DEFAULT_OUTPUT,
                     help='Where to write the results as JSON.')
  flags.add_hidden_alias(group, '--output', 'output_json', type=str)
  group.add_argument('--knn_bank_sizes', type=_int_list,
                     default='10000,100000,1000000',
                     help='Comma-separated prototype bank sizes of the kNN '
                          'benchmark.')
  group.add_argument('--max_images', type=flags.int_at_least(1),
                     default=2,
                     help='Images timed per inference mode (after one '
                          'untimed pass).')
  flags.add_hidden_alias(group, '--inference_images', 'max_images',
                         type=flags.int_at_least(1))
  group.add_argument('--rounds', type=flags.int_at_least(1), default=1,
                     help='Rounds of the two training measurements, each '
                          'in new processes, SegSort first in even rounds '
                          'and softmax first in odd ones; the step ratio is '
                          'the median of the rounds\' ratios (two processes '
                          'of the same graph can differ by ~10%%).')
  group.add_argument('--interleaved', action='store_true',
                     help='Also time the two training steps in one process, '
                          'in turn (--steps of each after --warmup): every '
                          'pair of steps gives a ratio, and the machine\'s '
                          'drift weighs on both alike.')
  group.add_argument('--compare_onednn', action='store_true',
                     help='Also time both training steps with oneDNN off '
                          'and on (TF_ENABLE_ONEDNN_OPTS=0 and =1, each in '
                          'its own process) and report the ratio.')
  group.add_argument('--num_random_prototypes', type=flags.int_at_least(1),
                     default=100000,
                     help='Size of the random bank used for inference '
                          'without --prototype_dir.')
  # Internal: one configuration in this process (see run_worker).
  group.add_argument('--_worker', type=str, default='',
                     help=argparse.SUPPRESS)
  group.add_argument('--_worker_output', type=str, default='',
                     help=argparse.SUPPRESS)
  group.add_argument('--_knn_bank_size', type=int, default=0,
                     help=argparse.SUPPRESS)
  return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# Workers (each in its own process).
# ---------------------------------------------------------------------------


def _train_options(args):
  """TrainOptions of the timed training steps: one batch per step, one
  device."""
  return script_glue.options_from_args(
      trainer.TrainOptions, args, is_training=True, iter_size=1, num_gpu=1,
      snapshot_dir=tempfile.gettempdir(), show_progress=True)


def _train_worker(args, loss_type):
  result = benchmarking.benchmark_train_step(_train_options(args), loss_type,
                                             args.steps, args.warmup)
  # Which kernels ran, seen from inside the process that ran them.
  result['conv_paths'] = layers.describe_conv_paths()
  return result


def _train_pair_worker(args):
  return benchmarking.benchmark_train_pair(_train_options(args), args.steps,
                                           args.warmup)


def _inference_worker(args):
  entries = inference_main.get_entries(args)[:args.max_images]
  if args.prototype_dir:
    prototypes = prototype_sets.load_prototypes(
        args.prototype_dir, args.embedding_dim, args.num_classes)
  else:
    prototypes = benchmarking.get_random_prototypes(
        args.num_random_prototypes, args.embedding_dim, args.num_classes,
        args.random_seed)
  scales = predictor.get_scales(args.scale_aug, args.scales)
  opts = inference_main.get_predictor_options(args)
  plain_opts = inference_main.get_predictor_options(args,
                                                    inference_batch_size=1)
  start = time.perf_counter()
  with predictor.SegSortPredictor(opts, prototypes,
                                  allow_random_weights=True) as model:
    build_seconds = time.perf_counter() - start
    with predictor.SegSortPredictor(plain_opts, prototypes,
                                    allow_random_weights=True) as plain:
      images = [inference_main.load_image(e) for e in entries]
      # (row, predictor, mode of time_image); multi-scale with both paths,
      # one image after the other so that both see the same load.
      runs = [('single', model, 'single'), ('msc_plain', plain, 'msc'),
              ('msc_batched', model, 'msc')]
      for _, runner, mode in runs:
        # One untimed pass (graph caches, memory pools).
        benchmarking.time_image(runner, images[0], mode, scales,
                                args.flip_aug)
      rows = {name: [] for name, _, _ in runs}
      for image in tqdm(images, desc='inference', leave=False):
        for name, runner, mode in runs:
          rows[name].append(benchmarking.time_image(
              runner, image, mode, scales, args.flip_aug))
  result = {name: {c: float(np.mean([r[c] for r in rows[name]]))
                   for c in benchmarking.INFERENCE_COLUMNS}
            for name in rows}
  # --inference_batch_size's path.
  result['msc'] = dict(result['msc_batched'] if model.batched
                       else result['msc_plain'])
  result.update(build_seconds=build_seconds,
                peak_rss_mb=profiling.get_peak_rss_mb(),
                image_sizes=[list(image.shape[:2]) for image in images],
                num_prototypes=len(prototypes), scales=scales,
                paths={'xla': bool(opts.xla),
                       'single': opts.inference_batch_size,
                       'msc': opts.inference_batch_size,
                       'msc_plain': 1,
                       'msc_batched': opts.inference_batch_size})
  return result


def _knn_worker(args):
  return benchmarking.benchmark_knn_bank(
      args._knn_bank_size, args.embedding_dim, args.num_classes,
      common_utils.cluster_grid(args.num_clusters).count,
      args.k_in_nearest_neighbors,
      args.knn_chunk_size, args.steps, 1, args.random_seed)


def run_worker(args):
  if args._worker in benchmarking.TRAIN_WORKERS:
    result = _train_worker(args, benchmarking.TRAIN_WORKERS[args._worker])
  elif args._worker == benchmarking.WORKER_TRAIN_PAIR:
    result = _train_pair_worker(args)
  elif args._worker == benchmarking.WORKER_INFERENCE:
    result = _inference_worker(args)
  elif args._worker == benchmarking.WORKER_KNN:
    result = _knn_worker(args)
  else:
    raise benchmarking.BenchmarkError('unknown worker %r' % args._worker)
  benchmarking.write_worker_result(args._worker_output, result)
  return result


# ---------------------------------------------------------------------------
# The run: data, one process per configuration, report.
# ---------------------------------------------------------------------------


def _write_synthetic_data(args, folder):
  """The synthetic dataset; returns (data_dir, data_list)."""
  height, width = args.input_size
  return synthetic_data.write_training_set(
      folder, max(2 * args.batch_size, args.max_images), height, width,
      args.num_classes, args.random_seed)


def get_settings(args, synthetic):
  """The settings part of the JSON."""
  settings = flags.get_values(args, flags.BENCHMARK_SETTINGS + (
      'concentration', 'use_global_status', 'strides',
      'k_in_nearest_neighbors', 'knn_chunk_size', 'knn_bank_sizes',
      'prototype_dir', 'rounds'))
  settings.update({
      'iter_size': 1, 'flip_aug': bool(args.flip_aug),
      'data': 'synthetic' if synthetic else {
          'data_dir': args.data_dir, 'data_list': args.data_list},
      'xla': bool(args.xla),
      'inference_batch_size': args.inference_batch_size,
      'machine': benchmarking.get_machine()})
  return settings


def _summarize_onednn(outputs):
  """{off, on: {segsort, softmax, conv_paths}, on_over_off: {...}}.

  Args:
    outputs: the four training results, oneDNN off (segsort, softmax) then
      on (segsort, softmax).
  """
  names = (trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX)
  table = {}
  for key, pair in (('off', outputs[:2]), ('on', outputs[2:])):
    table[key] = {n: r['step_median_seconds'] for n, r in zip(names, pair)}
    table[key]['conv_paths'] = pair[0]['conv_paths']
  table['on_over_off'] = {n: table['on'][n] / table['off'][n] for n in names}
  return table


def _format_onednn(table):
  lines = ['', 'training step (median), oneDNN off vs on:',
           '%-10s %12s %12s %10s' % ('loss', 'off s', 'on s', 'on/off')]
  for name in (trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX):
    lines.append('%-10s %12.4f %12.4f %10.3f' % (
        name, table['off'][name], table['on'][name],
        table['on_over_off'][name]))
  lines.append('dilated convs: off -> %s, on -> %s' % (
      table['off']['conv_paths']['atrous_conv'],
      table['on']['conv_paths']['atrous_conv']))
  return '\n'.join(lines)


def summarize(settings, train_rounds, inference, knn, pair=None):
  """The results dict (the JSON layout).

  Args:
    settings: dict of the settings used.
    train_rounds: one {'segsort': benchmark_train_step result, 'softmax':
      ...} per round (benchmarking.combine_train_rounds).
    inference: {'single': {stage: seconds, ..., 'total'}, 'msc': {...},
      'build_seconds', 'peak_rss_mb'}.
    knn: {bank size (int): benchmark_knn_bank result}.
    pair: a benchmarking.benchmark_train_pair result, or None.

  Returns:
    A JSON-able dict (see the script's docstring).
  """
  names = (trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX)
  train, ratios, shares = benchmarking.combine_train_rounds(train_rounds)
  step = {n: train[n]['step_median_seconds'] for n in names}
  # The median of the rounds' ratios: each pairs two processes run one
  # right after the other.
  ratio = profiling.median(ratios)
  share = profiling.median(shares)
  msc = inference['msc']
  votes_share = msc['votes'] / msc['total'] if msc['total'] else 0.0
  extra = {}
  if pair is not None:
    extra['train_step_interleaved'] = {
        'ratio_median': pair['ratio_median'],
        'pair_ratios': pair['pair_ratios'],
        'step_median_seconds': {n: profiling.median(pair['step_seconds'][n])
                                for n in names},
        'step_seconds': pair['step_seconds']}
  if 'msc_plain' in inference and 'msc_batched' in inference:
    extra['msc_speedup_plain_over_batched'] = (
        inference['msc_plain']['total'] / inference['msc_batched']['total'])
  return dict(extra, **{
      'settings': settings,
      'train_step_seconds': step,
      'train_step_ratio_segsort_over_softmax': ratio,
      'train_step_ratio_rounds': ratios,
      'kmeans_loss_share_rounds': shares,
      'kmeans_loss_share': share,
      'loss_seconds': {n: train[n]['loss_median_seconds'] for n in names},
      'forward_seconds': {n: train[n]['forward_median_seconds']
                          for n in names},
      'build_seconds': {n: train[n]['build_seconds'] for n in names},
      'peak_rss_mb': {n: train[n]['peak_rss_mb'] for n in names},
      'train_step_min_seconds': {n: float(min(train[n]['step_seconds']))
                                 for n in names},
      'train_step_all_seconds': {n: train[n]['step_seconds'] for n in names},
      'inference_seconds': {mode: {c: inference[mode][c]
                                   for c in benchmarking.INFERENCE_COLUMNS}
                            for mode in benchmarking.INFERENCE_MODES
                            if mode in inference},
      'inference_build_seconds': inference['build_seconds'],
      'inference_peak_rss_mb': inference['peak_rss_mb'],
      'votes_share_msc': votes_share,
      'knn_bank': {str(size): knn[size] for size in sorted(knn)},
      'goals': {
          'train_step_ratio_at_most_%.2f' % MAX_STEP_RATIO:
              bool(ratio <= MAX_STEP_RATIO),
          'votes_share_msc_below_%.2f' % MAX_VOTES_SHARE:
              bool(votes_share < MAX_VOTES_SHARE),
      },
  })


def _mb(value):
  """A MiB figure in a 9-wide column ('n/a' when not measured)."""
  return '%9s' % ('n/a' if value is None else '%.1f' % value)


def format_report(results):
  """The printed tables of a summarize() dict."""
  s = results['settings']
  seg, soft = trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX
  rounds = len(results['train_step_ratio_rounds'])
  lines = ['Training step: %s %s x%g, %dx%d, batch %d; median of %d steps '
           'after %d warm-up%s' % (
               s['model'], s['backbone'], s['width_multiplier'],
               s['input_size'][0], s['input_size'][1], s['batch_size'],
               s['steps'], s['warmup'],
               '' if rounds == 1 else
               ' (median over %d rounds, min over all)' % rounds),
           '%-10s %10s %10s %10s %10s %10s %12s' % (
               'loss', 'step s', 'min step s', 'forward s', 'loss s',
               'build s', 'peak RSS MB')]
  for name in (seg, soft):
    lines.append('%-10s %10.4f %10.4f %10.4f %10.4f %10.2f %12.1f' % (
        name, results['train_step_seconds'][name],
        results['train_step_min_seconds'][name],
        results['forward_seconds'][name], results['loss_seconds'][name],
        results['build_seconds'][name], results['peak_rss_mb'][name]))
  ratio = results['train_step_ratio_segsort_over_softmax']
  lines.append('step ratio segsort / softmax: %.3f%s (goal <= %.2f: %s)'
               % (ratio, '' if rounds == 1 else
                  ', median of %d rounds: %s' % (
                      rounds, ', '.join(
                          '%.3f' % r
                          for r in results['train_step_ratio_rounds'])),
                  MAX_STEP_RATIO,
                  profiling.get_goal_status(ratio <= MAX_STEP_RATIO)))
  if 'train_step_interleaved' in results:
    pair = results['train_step_interleaved']
    ratios = pair['pair_ratios']
    lines.append('interleaved in one process, %d pairs of steps: median %.4f '
                 's vs %.4f s, ratio %.3f (pairs %.3f-%.3f)' % (
                     len(ratios), pair['step_median_seconds'][seg],
                     pair['step_median_seconds'][soft], pair['ratio_median'],
                     min(ratios), max(ratios)))
  lines.append('k-means + loss share of the SegSort step: %.1f%%'
               % (100.0 * results['kmeans_loss_share']))
  lines.append('')
  sizes = s['inference_image_sizes']
  lines.append('Inference per image: mean of %d image(s) of %s, window %dx%d,'
               ' strides %d,%d; msc scales %s%s; %d prototypes; k %d'
               % ((len(sizes), ', '.join('%dx%d' % tuple(v) for v in
                                         sizes[:3]) +
                   (', ...' if len(sizes) > 3 else '')) +
                  tuple(s['input_size']) + tuple(s['strides']) + (
                      ','.join('%g' % v for v in s['scales']),
                      ' + flips' if s['flip_aug'] else '',
                      s['inference_num_prototypes'],
                      s['k_in_nearest_neighbors'])))
  lines.append('%-11s %s %7s' % ('mode', ' '.join(
      '%9s' % c for c in benchmarking.INFERENCE_COLUMNS), 'votes%'))
  for mode, row in results['inference_seconds'].items():
    lines.append('%-11s %s %6.1f%%' % (
        mode, ' '.join('%9.4f' % row[c]
                       for c in benchmarking.INFERENCE_COLUMNS),
        100.0 * row['votes'] / row['total'] if row['total'] else 0.0))
  if 'msc_speedup_plain_over_batched' in results:
    paths = s.get('inference_paths', {})
    lines.append('multi-scale, one window at a time / batched (%s windows '
                 'per call, XLA %s): %.2fx' % (
                     paths.get('msc_batched'),
                     'on' if paths.get('xla') else 'off',
                     results['msc_speedup_plain_over_batched']))
  share = results['votes_share_msc']
  lines.append('votes share of multi-scale inference: %.1f%% (goal < %.0f%%:'
               ' %s); build %.2f s, peak RSS %.1f MB'
               % (100.0 * share, 100.0 * MAX_VOTES_SHARE,
                  profiling.get_goal_status(share < MAX_VOTES_SHARE),
                  results['inference_build_seconds'],
                  results['inference_peak_rss_mb']))
  lines.append('')
  lines.append('kNN per image: %d cluster prototypes, dim %d, k %d, chunks '
               'of %s' % (s['num_clusters'] ** 2, s['embedding_dim'],
                          s['k_in_nearest_neighbors'],
                          s['knn_chunk_size'] or 'the whole bank'))
  lines.append('%11s %9s %10s %9s %9s %9s %9s' % (
      'prototypes', 'bank MB', 's/image', 'peak RSS', 'loaded', 'search+',
      'Q x P MB'))
  for size, row in results['knn_bank'].items():
    lines.append('%11s %s %10.5f %s %s %s %s' % (
        size, _mb(row['bank_mb']), row['seconds'], _mb(row['peak_rss_mb']),
        _mb(row['rss_before_search_mb']), _mb(row['search_extra_mb']),
        _mb(row['unchunked_similarities_mb'])))
  lines.append('(loaded: RSS with the bank in memory; search+: what the '
               'search adds, bounded by the chunk size; Q x P: one '
               'similarity matrix over the whole bank)')
  return '\n'.join(lines)


def benchmark(args, argv):
  """Runs every configuration in its own process; returns the results."""
  synthetic = not args.data_list
  if args.xla:
    # Before any worker (and its TensorFlow) starts.
    towers.enable_xla_on_cpu()
  if not synthetic:
    # Every file checked here, before any worker starts.
    inference_main.get_entries(args, need_label=True)
  folder = tempfile.mkdtemp(prefix='benchmark_speed_') if synthetic else None
  try:
    worker_argv = list(argv)
    if synthetic:
      data_dir, data_list = _write_synthetic_data(args, folder)
      worker_argv += ['--data_dir', data_dir, '--data_list', data_list]
    # (key of its result, worker, its extra flags, its extra environment
    # variables)
    jobs = ([(('train', r, name), name, (), None)
             for r, name in benchmarking.train_round_order(args.rounds)] +
            ([('pair', benchmarking.WORKER_TRAIN_PAIR, (), None)]
             if args.interleaved else []) +
            [('inference', benchmarking.WORKER_INFERENCE, (), None)] +
            [(('knn', size), benchmarking.WORKER_KNN,
              ('--_knn_bank_size', size), None)
             for size in args.knn_bank_sizes])
    if args.compare_onednn:
      jobs += [(('onednn', value, name), name, (), {ONEDNN_ENV: value})
               for value in ('0', '1')
               for name in (benchmarking.WORKER_TRAIN_SEGSORT,
                            benchmarking.WORKER_TRAIN_SOFTMAX)]
    outputs = {}
    for i, (key, name, extra, env) in enumerate(jobs):
      tqdm.write('[%d/%d] %s %s%s' % (
          i + 1, len(jobs), name, ' '.join(str(e) for e in extra[1:]),
          ' '.join('%s=%s' % kv for kv in (env or {}).items())))
      outputs[key] = benchmarking.run_worker(SCRIPT, worker_argv, name,
                                             extra, env=env)
  finally:
    if folder:
      shutil.rmtree(folder, ignore_errors=True)
  train_rounds = [
      {loss: outputs[('train', r, name)]
       for name, loss in benchmarking.TRAIN_WORKERS.items()}
      for r in range(args.rounds)]
  inference = outputs['inference']
  settings = get_settings(args, synthetic)
  settings.update(scales=inference['scales'],
                  inference_image_sizes=inference['image_sizes'],
                  inference_num_prototypes=inference['num_prototypes'],
                  inference_paths=inference['paths'],
                  conv_paths=train_rounds[0][trainer.LOSS_SEGSORT][
                      'conv_paths'])
  knn = {size: outputs[('knn', size)] for size in args.knn_bank_sizes}
  results = summarize(settings, train_rounds, inference, knn,
                      outputs.get('pair'))
  print(format_report(results))
  if args.compare_onednn:
    results['onednn_comparison'] = _summarize_onednn(
        [outputs[('onednn', value, name)] for value in ('0', '1')
         for name in (benchmarking.WORKER_TRAIN_SEGSORT,
                      benchmarking.WORKER_TRAIN_SOFTMAX)])
    print(_format_onednn(results['onednn_comparison']))
  atomic_io.atomic_write_json(args.output_json, results)
  print('Wrote %s' % args.output_json)
  return results


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  args = get_arguments(argv)
  if args._worker:
    return script_glue.run_script(run_worker, args)
  return script_glue.run_script(benchmark, args, argv)


if __name__ == '__main__':
  main()
