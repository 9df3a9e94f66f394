"""Is the input pipeline fast enough? Pipeline alone against training.

Measures, in one run on the same machine and settings:

1. The training input pipeline alone (seg_models/image_reader.py
   get_train_dataset, exactly as the SegSort trainer builds it: decode,
   random scale, mirror and crop to --input_size, grid cluster labels and
   locations), with no network: --pipeline_batches batches after --warmup
   untimed ones -> examples/s and batches/s.
2. Training steps with the trainer's real graph (seg_models/trainer.py
   build_train_graph with the SegSort loss, the same pipeline feeding it,
   one batch per step), --steps steps after --warmup untimed ones, through
   seg_models/benchmarking.benchmark_train_step -> steps/s, and the
   examples/s training consumes, batch_size * steps/s.
3. Their ratio, pipeline examples/s / training examples/s: above 1 the
   pipeline delivers faster than training consumes, so training does not
   wait for its input. Its inverse is the share of the pipeline's capacity
   (measured with the whole machine to itself) that feeding training needs;
   during training the pipeline's threads share the CPU with the step.

Rates are counts over the total time of the timed calls (what a run sees),
not 1 / median. Without --data_list, a synthetic VOC-like dataset
(pyscripts/tools/make_synthetic_dataset.py) of --synthetic_images JPEG
images of --synthetic_size (VOC's typical 375x500 by default, so that
decoding and scaling cost what they cost on VOC) is written to a temporary
folder and removed afterwards. The weights are the initial ones unless
--restore_from is given (the step time does not depend on them). Timings on
a machine shared with other jobs vary: the 1-minute load average before and
after the run is recorded.

JSON written to --output_json (if given; times in seconds):
  settings   flags, data, machine, load_average {before, after}
  pipeline   {examples_per_s, batches_per_s, batches, total_seconds,
              batch_seconds, build_seconds, batch_shapes}
  training   {steps_per_s, examples_per_s, steps, step_seconds,
              step_median_seconds, step_min_seconds, forward_median_seconds,
              build_seconds, final_loss}
  ratio_pipeline_over_training, input_cpu_share
  goals      {pipeline_faster_than_training}

The defaults are the paper's setting (PSPNet ResNet-101, 336x336, batch 8),
slow on a CPU (~10 s or more per step on 2 cores); a short run of it and a
small CPU setting:

  python pyscripts/benchmark/benchmark_input_pipeline.py --steps 3 --warmup 1
  python pyscripts/benchmark/benchmark_input_pipeline.py \\
    --width_multiplier 0.125 --backbone resnet_v1_50 --input_size 224,224
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import flags  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import benchmarking  # noqa: E402
from seg_models import trainer  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import profiling  # noqa: E402
from utils import synthetic_data  # noqa: E402

# What the pipeline does to every training example (the VOC recipe).
AUGMENTATION = ('random_scale', 'random_mirror', 'random_crop')
# The goal: the pipeline delivers examples faster than a training step
# consumes them, i.e. training never waits for its input.
MIN_PIPELINE_RATIO = 1.0


def _image_size(text):
  """'H,W' with both >= 16 (the synthetic generator's minimum)."""
  try:
    values = [int(v) for v in text.split(',')]
  except ValueError:
    values = []
  if len(values) != 2 or min(values) < 16:
    raise argparse.ArgumentTypeError('expected "H,W" with both >= 16, got %r'
                                     % (text,))
  return tuple(values)


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_data_flags(parser, input_size='336,336', batch_size=8)
  flags.add_model_flags(parser)
  flags.add_segsort_flags(parser)
  group = parser.add_argument_group('benchmark')
  group.add_argument('--steps', type=flags.int_at_least(1), default=10,
                     help='Timed training steps.')
  group.add_argument('--warmup', type=flags.int_at_least(0), default=2,
                     help='Untimed training steps, and untimed pipeline '
                          'batches (at least one), before the timed ones.')
  group.add_argument('--pipeline_batches', type=flags.int_at_least(1),
                     default=40,
                     help='Timed batches of the pipeline alone.')
  group.add_argument('--output_json', type=str, default='',
                     help='Where to write the results as JSON (nothing is '
                          'written without it).')
  group.add_argument('--synthetic_images', type=flags.int_at_least(1),
                     default=64,
                     help='Without --data_list: images of the synthetic '
                          'dataset (the pipeline cycles through them).')
  group.add_argument('--synthetic_size', type=_image_size, default='375,500',
                     help='Without --data_list: H,W of the synthetic images '
                          '(VOC-like by default).')
  return parser.parse_args(argv)


def _write_synthetic_data(args, folder):
  """The synthetic dataset; returns (data_dir, data_list)."""
  height, width = args.synthetic_size
  return synthetic_data.write_training_set(
      folder, max(args.synthetic_images, args.batch_size), height, width,
      args.num_classes, args.random_seed)


def get_settings(args, synthetic):
  """The settings part of the JSON."""
  settings = flags.get_values(args, flags.BENCHMARK_SETTINGS +
                              ('pipeline_batches',))
  settings.update({
      'loss': trainer.LOSS_SEGSORT, 'augmentation': list(AUGMENTATION),
      'data': ('synthetic %d images %dx%d (JPEG)'
               % ((max(args.synthetic_images, args.batch_size),) +
                  tuple(args.synthetic_size)) if synthetic else
               {'data_dir': args.data_dir, 'data_list': args.data_list}),
      'machine': benchmarking.get_machine()})
  return settings


def _load_average():
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return None


def summarize_input_pipeline(settings, pipeline, train):
  """The results dict of benchmark_input_pipeline.py (its JSON layout).

  Args:
    settings: dict of the settings used (with batch_size).
    pipeline: a benchmark_input_pipeline result.
    train: a benchmark_train_step result.

  Returns:
    A JSON-able dict:
      settings;
      pipeline {examples_per_s, batches_per_s, batches, total_seconds,
                batch_seconds, build_seconds, batch_shapes};
      training {steps_per_s, examples_per_s (= batch_size * steps_per_s),
                steps, step_seconds, step_median_seconds,
                step_min_seconds, forward_median_seconds, build_seconds,
                final_loss};
      ratio_pipeline_over_training  pipeline / training examples per second;
      input_cpu_share  its inverse: the share of the pipeline's capacity a
                       training run uses;
      goals {pipeline_faster_than_training}.
  """
  batch_size = settings['batch_size']
  steps = len(train['step_seconds'])
  steps_per_s = benchmarking.get_rate(steps, train['step_seconds'],
                                      'training steps')
  training = {
      'steps_per_s': steps_per_s,
      'examples_per_s': batch_size * steps_per_s,
      'steps': steps,
      'step_seconds': list(train['step_seconds']),
      'step_median_seconds': train['step_median_seconds'],
      'step_min_seconds': float(min(train['step_seconds'])),
      'forward_median_seconds': train['forward_median_seconds'],
      'build_seconds': train['build_seconds'],
      'final_loss': train['final_loss'],
  }
  keys = ('examples_per_s', 'batches_per_s', 'batches', 'total_seconds',
          'batch_seconds', 'build_seconds', 'batch_shapes')
  ratio = pipeline['examples_per_s'] / training['examples_per_s']
  return {
      'settings': settings,
      'pipeline': {key: pipeline[key] for key in keys},
      'training': training,
      'ratio_pipeline_over_training': ratio,
      'input_cpu_share': 1.0 / ratio,
      'goals': {'pipeline_faster_than_training':
                    bool(ratio > MIN_PIPELINE_RATIO)},
  }


def format_input_pipeline_report(results):
  """The printed summary of a summarize_input_pipeline() dict."""
  s = results['settings']
  pipeline, training = results['pipeline'], results['training']
  ratio = results['ratio_pipeline_over_training']
  data = s['data']
  if isinstance(data, dict):
    data = data['data_list']
  load = s.get('load_average') or {}
  lines = [
      'Input pipeline vs training: %s %s x%g, %dx%d crops, batch %d, '
      'augmentation %s; data: %s' % (
          s['model'], s['backbone'], s['width_multiplier'],
          s['input_size'][0], s['input_size'][1], s['batch_size'],
          ', '.join(s['augmentation']) or 'none', data),
      '%-15s %12.2f examples/s  (%8.3f batches/s; %d batches after %d '
      'warm-up in %.2f s)' % (
          'pipeline alone', pipeline['examples_per_s'],
          pipeline['batches_per_s'], pipeline['batches'],
          max(s['warmup'], 1),
          pipeline['total_seconds']),
      '%-15s %12.2f examples/s  (%8.3f steps/s; %d steps after %d warm-up,'
      ' median step %.3f s, fastest %.3f s)' % (
          'training', training['examples_per_s'], training['steps_per_s'],
          training['steps'], s['warmup'], training['step_median_seconds'],
          training['step_min_seconds']),
      'ratio pipeline / training examples/s: %.2f (goal > %g: %s); the '
      'pipeline needs %.1f%% of its own capacity to feed training' % (
          ratio, MIN_PIPELINE_RATIO,
          profiling.get_goal_status(ratio > MIN_PIPELINE_RATIO),
          100.0 * results['input_cpu_share']),
  ]
  if load:
    lines.append('load average (1 min) before / after: %s / %s on %s CPUs'
                 % (load.get('before', ['n/a'])[0],
                    load.get('after', ['n/a'])[0],
                    s['machine']['cpu_count']))
  return '\n'.join(lines)


def benchmark(args):
  """Times the pipeline, then training; prints and returns the results."""
  synthetic = not args.data_list
  if synthetic and args.data_dir:
    raise benchmarking.BenchmarkError(
        '--data_dir %s was given without --data_list (the list of examples '
        'to read from it)' % args.data_dir)
  load_before = _load_average()
  folder = (tempfile.mkdtemp(prefix='benchmark_input_pipeline_')
            if synthetic else None)
  try:
    data_dir, data_list = (_write_synthetic_data(args, folder) if synthetic
                           else (args.data_dir, args.data_list))
    opts = script_glue.options_from_args(
        trainer.TrainOptions, args, data_dir=data_dir, data_list=data_list,
        is_training=True, iter_size=1, num_gpu=1,
        snapshot_dir=tempfile.gettempdir(),
        show_progress=True, **{name: True for name in AUGMENTATION})
    # The pipeline first: a bad data list fails here, in seconds, before
    # the network is built.
    pipeline = benchmarking.benchmark_input_pipeline(
        opts, args.pipeline_batches, args.warmup, trainer.LOSS_SEGSORT)
    train = benchmarking.benchmark_train_step(opts, trainer.LOSS_SEGSORT,
                                              args.steps, args.warmup)
  finally:
    if folder:
      shutil.rmtree(folder, ignore_errors=True)
  settings = get_settings(args, synthetic)
  settings['load_average'] = {'before': load_before,
                              'after': _load_average()}
  results = summarize_input_pipeline(settings, pipeline, train)
  print(format_input_pipeline_report(results))
  if args.output_json:
    atomic_io.atomic_write_json(args.output_json, results)
    print('Wrote %s' % args.output_json)
  return results


def main(argv=None):
  return script_glue.run_script(benchmark, get_arguments(argv))


if __name__ == '__main__':
  main()
