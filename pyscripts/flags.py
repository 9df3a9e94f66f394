"""Command-line flags, each declared once, in groups the scripts combine.

Names, types and defaults are the original release's; the flags that are
new here (--model, --backbone, --backbone_variant, --width_multiplier,
--num_gpu for the single-tower scripts, ...) say so in their help. The
softmax baseline's scripts (train.py, inference.py, inference_msc.py) also
take the hyphenated spellings their originals had (--data-dir, ...; the
SOFTMAX_*_HYPHENATED sets, see accept_hyphenated).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Default --input_size and --strides of the inference scripts
# (extract_prototypes.py, inference_segsort.py, inference_segsort_msc.py,
# inference.py, inference_msc.py): one 512x512 window per image up to that
# size. The VOC recipes pass their own (480,480 / 320,320 windows, 720,720
# single scale).
INFERENCE_WINDOW = '512,512'

# The flags the softmax baseline's original scripts spelled with hyphens
# (--data-dir, ...): those of the original's baseline codebase AAF, which
# its README points to. A parser given one of these sets (accept_hyphenated)
# takes both spellings of the flags in it.
SOFTMAX_INFERENCE_HYPHENATED = frozenset([
    'data_dir', 'data_list', 'input_size', 'num_classes', 'ignore_label',
    'restore_from', 'save_dir', 'flip_aug', 'scale_aug'])
SOFTMAX_TRAINING_HYPHENATED = frozenset([
    'batch_size', 'data_dir', 'data_list', 'ignore_label', 'input_size',
    'random_seed', 'is_training', 'use_global_status', 'learning_rate',
    'weight_decay', 'num_classes', 'num_steps', 'iter_size', 'random_mirror',
    'random_crop', 'random_scale', 'restore_from', 'save_pred_every',
    'update_tb_every', 'snapshot_dir', 'not_restore_classifier'])


def _int_pair(text):
  """Parses 'H,W' into (H, W)."""
  try:
    values = tuple(int(v) for v in text.split(','))
  except ValueError:
    values = ()
  if len(values) != 2 or min(values) <= 0:
    raise argparse.ArgumentTypeError(
        'expected two positive integers "H,W", got %r' % (text,))
  return values


# Public name of the 'H,W' parser, for the scripts that declare their own
# size flags (export_model.py).
int_pair = _int_pair


def _positive_int(text):
  value = int(text)
  if value <= 0:
    raise argparse.ArgumentTypeError('expected a positive integer, got %r'
                                     % (text,))
  return value


def _positive_float(text):
  value = float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError('expected a positive number, got %r'
                                     % (text,))
  return value


def int_at_least(minimum):
  """An argparse type: an integer >= minimum."""
  def parse(text):
    try:
      value = int(text)
    except ValueError:
      value = minimum - 1
    if value < minimum:
      raise argparse.ArgumentTypeError('expected an integer >= %d, got %r'
                                       % (minimum, text))
    return value
  return parse


def _float_list(text):
  try:
    return [float(v) for v in text.split(',') if v]
  except ValueError:
    raise argparse.ArgumentTypeError('expected comma-separated numbers, got '
                                     '%r' % (text,))


# The flags that describe a benchmarked run, in the benchmarks' JSON.
BENCHMARK_SETTINGS = (
    'model', 'backbone', 'backbone_variant', 'width_multiplier',
    'input_size', 'batch_size', 'num_classes', 'embedding_dim',
    'num_clusters', 'kmeans_iterations', 'num_banks', 'restore_from',
    'steps', 'warmup')


def get_values(args, names):
  """{name: value} of the parsed flags names, tuples as lists (for JSON)."""
  values = {}
  for name in names:
    value = getattr(args, name)
    values[name] = list(value) if isinstance(value, tuple) else value
  return values


def add_hidden_alias(group, alias, dest, **kwargs):
  """An old spelling of a flag: same dest, absent from --help.

  Args:
    group: the parser or argument group of the flag.
    alias: the old spelling, e.g. '--output'.
    dest: the flag's dest, e.g. 'output_json'.
    **kwargs: the flag's type or action.
  """
  group.add_argument(alias, dest=dest, default=argparse.SUPPRESS,
                     help=argparse.SUPPRESS, **kwargs)


def accept_hyphenated(parser, names):
  """Lets the flags `names` of parser also be spelled with hyphens
  (--data-dir for --data_dir), as the original softmax scripts spelled
  them; --help lists both spellings."""
  for action in parser._actions:  # pylint: disable=protected-access
    if action.dest not in names:
      continue
    alias = '--' + action.dest.replace('_', '-')
    if alias not in action.option_strings:
      action.option_strings.append(alias)
      parser._option_string_actions[alias] = action  # pylint: disable=W0212


class HelpFormatter(argparse.RawDescriptionHelpFormatter,
                    argparse.ArgumentDefaultsHelpFormatter):
  """--help with the description as written (its paragraphs and example
  commands keep their lines) and every flag's default."""


def get_parser(description):
  return argparse.ArgumentParser(description=description,
                                 formatter_class=HelpFormatter)


# The parser attribute naming the flags a script accepts but ignores
# (add_ignored_flags).
_IGNORED_ATTR = '_segsort_ignored_flags'


def add_ignored_flags(parser, reason, **flags):
  """Flags a script accepts but does not use: absent from --help; given,
  they print a note (parse).

  Args:
    parser: the script's parser.
    reason: why they are accepted (e.g. "the original release's script
      had it").
    **flags: {name: add_argument kwargs (type/action/default)}.
  """
  ignored = getattr(parser, _IGNORED_ATTR, {})
  for name, kwargs in flags.items():
    parser.add_argument('--' + name, help=argparse.SUPPRESS, **kwargs)
    ignored[name] = reason
  setattr(parser, _IGNORED_ATTR, ignored)


def add_hidden_flags(parser, **flags):
  """Flags absent from --help that the script refuses itself (e.g. the
  multi-scale flags of a single-scale script, with a message pointing to
  the right script)."""
  for name, kwargs in flags.items():
    parser.add_argument('--' + name, help=argparse.SUPPRESS, **kwargs)


def add_data_flags(parser, input_size='336,336', batch_size=1,
                   training=True, ignore_label=True):
  """--data_dir, --data_list, --input_size (+ --batch_size, --random_seed
  with training; --ignore_label if the script reads labels)."""
  group = parser.add_argument_group('data')
  if training:
    group.add_argument('--batch_size', type=_positive_int,
                       default=batch_size,
                       help='Number of images in a batch.')
  group.add_argument('--data_dir', type=str, default='',
                     help='/path/to/dataset/ (list paths are relative to it).')
  group.add_argument('--data_list', type=str, default='',
                     help='/path/to/datalist/file.')
  if ignore_label:
    group.add_argument('--ignore_label', type=int, default=255,
                       help='The index of the label to ignore.')
  else:
    add_ignored_flags(parser, ORIGINAL_FLAG,
                      ignore_label=dict(type=int, default=255))
  group.add_argument('--input_size', type=_int_pair, default=input_size,
                     help='Comma-separated H,W of the network input.')
  if training:
    group.add_argument('--random_seed', type=int, default=1234,
                       help='Random seed for reproducible results.')
  return group


# Why a script accepts a flag it ignores.
ORIGINAL_FLAG = "the original release's script had it"


def add_image_list_flags(parser, contour_dir_help, contour_dir_required):
  """--data_dir, --data_list, --contour_dir of the oversegmentation tools."""
  parser.add_argument('--data_dir', type=str, required=True,
                      help='Folder the list paths are relative to.')
  parser.add_argument('--data_list', type=str, required=True,
                      help='Lines "IMAGE [LABEL [OVERSEG]]".')
  parser.add_argument('--contour_dir', type=str,
                      required=contour_dir_required, default=None,
                      help=contour_dir_help)


def add_model_flags(parser, training=True):
  """Model choice; --model/--backbone/--width_multiplier are new here.

  Without training: no --bn_decay, --is_training, --use_global_status
  (inference always runs the network in inference mode). The model flags a
  script is not given are read from the checkpoint's model.json
  (pyscripts/checkpoint_settings.py).
  """
  # Imported here, not at the top: seg_models switches TensorFlow to graph
  # mode, and the tools that share the other flag groups (make_contours.py
  # runs HED eagerly) must not import it.
  from seg_models import models  # pylint: disable=import-outside-toplevel
  group = parser.add_argument_group(
      'model', None if training else
      'Not given, --model, --backbone, --backbone_variant,\n'
      '--width_multiplier, --num_classes and --embedding_dim come from the\n'
      'model.json beside the checkpoint (written by training); given, they\n'
      'must agree with it.')
  group.add_argument('--model', type=str, default='pspnet',
                     choices=list(models.MODELS),
                     help='Head on the backbone (new here).')
  group.add_argument('--backbone', type=str, default='resnet_v1_101',
                     choices=models.BACKBONES,
                     help='Backbone (new here).')
  group.add_argument('--backbone_variant', type=str, default='original',
                     choices=models.VARIANTS,
                     help="Backbone numerics (new here): 'original' = the "
                          "original release's pool1 padding and BN epsilon "
                          "1e-3 (its released checkpoints); 'slim' = "
                          "TF-Slim's (the ImageNet checkpoint).")
  group.add_argument('--width_multiplier', type=_positive_float, default=1.0,
                     help='Scales every conv width (new here; <1 for small '
                          'CPU models, variable names unchanged).')
  if training:
    group.add_argument('--bn_decay', type=float, default=None,
                       help='Batch-norm moving-average decay of backbone '
                            'and head (new here; default: the original '
                            '0.9997 / 0.99, which need tens of thousands of '
                            'steps to settle; short CPU runs use e.g. '
                            '0.99).')
  group.add_argument('--num_classes', type=int, default=21,
                     help='Number of classes to predict.')
  if training:
    group.add_argument('--is_training', action='store_true',
                       help='Whether to updates weights.')
    group.add_argument('--use_global_status', action='store_true',
                       help='Use the moving mean and variance in batch norm '
                            'instead of batch statistics.')
  group.add_argument('--restore_from', type=str, default='',
                     help='Checkpoint (file prefix or folder) to restore '
                          'model parameters from.')
  group.add_argument('--xla', action='store_true',
                     help='Compile the graph with XLA (session-level JIT; '
                          'new here). Off by default: on 2 CPU cores it was '
                          'measured slower (README, Speed).')
  return group


def add_segsort_flags(parser, training=True, clustering=True):
  """--embedding_dim; --concentration and (with clustering) --num_banks
  for training; --num_clusters and --kmeans_iterations with clustering.

  Unsupervised training (clustering=False) takes its segments from the
  oversegmentation masks and has neither k-means nor memory banks: as the
  original unsupervised script, it has no such flags (argparse refuses
  them).
  """
  group = parser.add_argument_group('segsort')
  group.add_argument('--embedding_dim', type=_positive_int, default=32,
                     help='Dimension of the feature embeddings.')
  if training:
    group.add_argument('--concentration', type=_positive_float,
                       default=10.0,
                       help='Concentration of the vMF distribution.')
  clustering_flags = dict(
      num_clusters=dict(type=_positive_int, default=5,
                        help='Number of kmeans clusters along each axis.'),
      kmeans_iterations=dict(type=_positive_int, default=10,
                             help='Number of kmeans iterations.'))
  if training:
    clustering_flags['num_banks'] = dict(
        type=int, default=2, help='Number of memory banks for prototypes.')
  if clustering:
    for name, kwargs in clustering_flags.items():
      group.add_argument('--' + name, **kwargs)
  return group


def add_training_flags(parser, num_gpu=1, learning_rate=1e-3):
  # Imported here for the reason add_model_flags gives.
  from seg_models import trainer  # pylint: disable=import-outside-toplevel
  group = parser.add_argument_group('training')
  group.add_argument('--learning_rate', type=_positive_float,
                     default=learning_rate, help='Base learning rate.')
  group.add_argument('--power', type=float, default=0.9,
                     help='Decay for poly learning rate policy.')
  group.add_argument('--momentum', type=float, default=0.9,
                     help='Momentum component of the optimiser.')
  group.add_argument('--weight_decay', type=float, default=5e-4,
                     help='Regularization hyperparameter for L2-loss.')
  group.add_argument('--num_steps', type=_positive_int, default=20000,
                     help='Number of training steps.')
  group.add_argument('--iter_size', type=_positive_int, default=10,
                     help='Number of batches whose gradients are accumulated '
                          'into one update.')
  group.add_argument('--random_mirror', action='store_true',
                     help='Whether to randomly mirror the inputs.')
  group.add_argument('--random_crop', action='store_true',
                     help='Whether to randomly crop the inputs.')
  group.add_argument('--random_scale', action='store_true',
                     help='Whether to randomly scale the inputs.')
  group.add_argument('--save_pred_every', type=_positive_int, default=10000,
                     help='Save a checkpoint every this many steps.')
  group.add_argument('--save_every_minutes', type=float, default=30.0,
                     help='Also save a checkpoint when this many minutes '
                          'have passed since the last one (0: never).')
  group.add_argument('--update_tb_every', type=_positive_int, default=20,
                     help='Update TensorBoard summaries every this many '
                          'steps.')
  group.add_argument('--log_every', type=_positive_int, default=20,
                     help='Write step, loss, learning rate and steps/s to '
                          'SNAPSHOT_DIR/train.log every this many steps '
                          '(new here).')
  group.add_argument('--snapshot_dir', type=str, default='',
                     help='Where to save snapshots of the model.')
  group.add_argument('--not_restore_classifier', action='store_true',
                     help='Whether to not restore classifier layers.')
  group.add_argument('--num_gpu', type=_positive_int, default=num_gpu,
                     help='Number of GPUs to train on, as in the original: '
                          'N >= 2 splits the batch over N - 1 network towers '
                          '(synchronised batch norm) and computes the loss '
                          'on the N-th GPU (see --loss_device); virtual CPU '
                          'devices stand in when fewer than N GPUs are '
                          'visible. On a cluster: the devices of each task.')
  group.add_argument('--loss_device', type=str,
                     default=trainer.LOSS_DEVICE_SEPARATE,
                     choices=trainer.LOSS_DEVICES,
                     help="Where the loss runs with --num_gpu N >= 2 (new "
                          "here): 'separate' = on the N-th device, after N - "
                          "1 network towers (the original's); 'tower' = on "
                          "the first of N network towers (every device runs "
                          "the network).")
  add_cluster_flags(parser)
  return group


def add_cluster_flags(parser):
  """Training across machines (new here; seg_models/cluster.py)."""
  group = parser.add_argument_group(
      'cluster', 'Training across machines (new here). Without these flags '
      'the cluster comes from the TF_CONFIG environment variable; without '
      'either, training runs in this process. Every task runs the same '
      'command; the chief (task 0 of the worker job, or the chief job) '
      'trains with --num_gpu towers on every task and alone writes '
      '--snapshot_dir; --batch_size is the batch of all towers together.')
  group.add_argument('--cluster_spec', type=str, default='',
                     help='The cluster: a JSON object such as {"worker": '
                          '["host0:2222", "host1:2222"]} or a comma-'
                          'separated host:port list of the worker job.')
  group.add_argument('--job_name', type=str, default='',
                     help='This task\'s job (worker or chief; default '
                          'worker).')
  group.add_argument('--task_index', type=int, default=None,
                     help='This task\'s index in its job.')
  group.add_argument('--cluster_wait_seconds', type=_positive_float,
                     default=120.0,
                     help='How long the chief waits for the other tasks to '
                          'come up (and a task for the chief) before it '
                          'stops with an error naming them.')
  group.add_argument('--run_timeout_seconds', type=float, default=600.0,
                     help='With a cluster, a session call (one micro-batch) '
                          'that takes longer fails (a task hung); 0: no '
                          'limit.')
  return group


def add_validation_flags(parser, prototypes=True):
  """Validation while training (new here; seg_models/validation.py).

  prototypes: whether the model is scored by kNN over training prototypes
  (SegSort; --val_train_images).
  """
  group = parser.add_argument_group(
      'validation',
      'With --val_data_list, every --val_every steps a checkpoint is written\n'
      'and scored as the inference scripts would score it (SegSort: the\n'
      'prototypes of the first --val_train_images training images + kNN;\n'
      'softmax: argmax), single scale, window --input_size. The val mIoU\n'
      'goes to TensorBoard and train.log, the best checkpoint to\n'
      'SNAPSHOT_DIR/best/.')
  group.add_argument('--val_data_list', type=str, default='',
                     help='Validation list "IMAGE LABEL" (paths relative '
                          'to --data_dir); empty: no validation.')
  group.add_argument('--val_every', type=_positive_int, default=1000,
                     help='Validate every this many steps (and at the '
                          'end).')
  group.add_argument('--val_max_images', type=_positive_int, default=100,
                     help='Score the first this many images of the list '
                          '(bounds the cost).')
  if prototypes:
    group.add_argument('--val_train_images', type=_positive_int,
                       default=100,
                       help='Prototypes of the first this many training '
                            'images (bounds the cost).')
  return group


def add_inference_flags(parser, strides=INFERENCE_WINDOW, multiscale=True,
                        colormap=True, overwrite=False):
  """The sliding window, outputs and views of an inference script.

  Args:
    parser: the script's parser.
    strides: the default --strides.
    multiscale: whether the script runs several views (--flip_aug,
      --scale_aug, --scales); a single-scale script accepts them hidden
      and refuses them (inference_main.reject_multiscale_flags).
    colormap: whether the script paints colour PNGs (--colormap).
    overwrite: whether the script writes gray/ and color/ predictions
      (--overwrite, see inference_main.check_save_dir).
  """
  group = parser.add_argument_group('inference')
  group.add_argument('--strides', type=_int_pair, default=strides,
                     help='Comma-separated H,W strides of the sliding window.')
  if colormap:
    group.add_argument('--colormap', type=str, default='',
                       help='Colormap (.mat or .npy); VOC colours by '
                            'default.')
  else:
    add_ignored_flags(parser, ORIGINAL_FLAG, colormap=dict(type=str,
                                                           default=''))
  group.add_argument('--save_dir', type=str, default='',
                     help='/path/to/save/predictions.')
  views = dict(
      flip_aug=dict(action='store_true',
                    help='Add horizontally flipped inputs.'),
      scale_aug=dict(action='store_true',
                     help='Add scales 0.5, 0.75, 1, 1.25, 1.5, 1.75.'),
      scales=dict(type=_float_list, default=None,
                  help='Explicit scales, overriding --scale_aug (new '
                       'here).'))
  for name, kwargs in views.items():
    if multiscale:
      group.add_argument('--' + name, **kwargs)
    else:
      kwargs.pop('help')
      add_hidden_flags(parser, **{name: kwargs})
  if overwrite:
    group.add_argument('--overwrite', action='store_true',
                       help='Write over results of the other mode (single '
                            '/ multi-scale) in --save_dir (new here; by '
                            'default a run refuses, see its inference.json).')
  group.add_argument('--inference_batch_size', type=_positive_int,
                     default=4,
                     help='Sliding windows per network call (new here); '
                          'memory grows with it. 1 = one window at a time, '
                          'as the original, with the stages in separate '
                          'session calls.')
  return group


def add_knn_flags(parser):
  group = parser.add_argument_group('knn')
  group.add_argument('--k_in_nearest_neighbors', type=_positive_int,
                     default=15, help='K in k nearest neighbours.')
  group.add_argument('--prototype_dir', type=str, default='',
                     help='/path/to/prototype/folder (holding '
                          'prototype_features.npy, prototype_labels.npy).')
  return group


# The attribute of the parsed flags that names those given on the command
# line (get_explicit_flags); names starting with '_' are not written to
# SNAPSHOT_DIR/config.
EXPLICIT_ATTR = '_explicit_flags'


def _get_explicit_dests(parser, argv):
  """The dests of the flags argv gives (abbreviations and --f=v included).

  argv is parsed again with every default suppressed: what the namespace
  then holds was on the command line.
  """
  defaults = {}
  for action in parser._actions:  # pylint: disable=protected-access
    defaults[action] = action.default
    action.default = argparse.SUPPRESS
  try:
    given, _ = parser.parse_known_args(argv)
  finally:
    for action, default in defaults.items():
      action.default = default
  return frozenset(vars(given))


def get_explicit_flags(args):
  """The dests of the flags given on the command line.

  None for flags that were not parsed by parse() (e.g. a Namespace built by
  hand): every value then counts as given.
  """
  return getattr(args, EXPLICIT_ATTR, None)


def is_explicit(args, name):
  """Whether flag `name` was given on the command line (see parse)."""
  explicit = get_explicit_flags(args)
  return explicit is None or name in explicit


def parse(parser, argv=None):
  """Parses argv and checks the paths every script needs.

  The result also records which flags argv gives (get_explicit_flags), so
  that settings saved with a checkpoint can fill the others.
  """
  args = parser.parse_args(argv)
  setattr(args, EXPLICIT_ATTR, _get_explicit_dests(parser, argv))
  for name, reason in sorted(getattr(parser, _IGNORED_ATTR, {}).items()):
    if name in getattr(args, EXPLICIT_ATTR):
      sys.stderr.write('note: --%s is ignored by %s (accepted because %s).\n'
                       % (name, parser.prog, reason))
  if getattr(args, 'data_list', None) is not None and not args.data_list:
    parser.error('--data_list is required')
  if getattr(args, 'xla', False):
    # XLA on CPU must be asked for before TensorFlow runs anything.
    # Imported here: importing network switches TensorFlow to graph mode,
    # and make_contours.py (which parses these flags) runs HED eagerly.
    from network.multigpu import towers  # pylint: disable=C0415
    towers.enable_xla_on_cpu()
  return args


def add_prediction_flags(parser):
  """Inference options new here (not in the original release)."""
  group = parser.add_argument_group('prediction')
  # Imported here for the reason add_model_flags gives.
  from seg_models import predictor  # pylint: disable=import-outside-toplevel
  group.add_argument('--knn_chunk_size', type=int, default=65536,
                     help='Training prototypes compared per chunk in the kNN '
                          'search, bounding its memory (new here; 0 = the '
                          'whole bank at once).')
  group.add_argument('--kmeans_grid', type=str,
                     default=predictor.KMEANS_GRID_CANVAS,
                     choices=predictor.KMEANS_GRIDS,
                     help="Where the test-time k-means start grid lies (new "
                          "here). 'canvas', the original's: the n x n grid "
                          "over the zero-padded input the network saw (single "
                          "scale: the image padded to --input_size, locations "
                          "over the image; multi-scale: the whole window, "
                          "locations over it), so an image smaller than the "
                          "canvas starts with fewer clusters (500x375 in "
                          "720x720: 12 of 25). 'image': grid and locations "
                          "over the image (or the window's part inside it) "
                          "only, always n x n clusters.")
  return group


def add_segsort_inference_flags(parser, input_size=INFERENCE_WINDOW,
                                strides=INFERENCE_WINDOW,
                                multiscale=True, overwrite=False):
  """Every flag of a SegSort kNN inference script."""
  add_data_flags(parser, input_size=input_size, training=False,
                 ignore_label=False)
  add_model_flags(parser, training=False)
  add_segsort_flags(parser, training=False)
  add_inference_flags(parser, strides=strides, multiscale=multiscale,
                      overwrite=overwrite)
  add_knn_flags(parser)
  add_prediction_flags(parser)


def get_training_arguments(description, argv=None, segsort=True, num_gpu=1,
                           learning_rate=1e-3, clustering=True,
                           hyphenated=()):
  """Parses the flags of a training script (SegSort flags if segsort).

  Args:
    description: the script's --help text.
    argv: the arguments (None: sys.argv[1:]).
    segsort: whether to add the SegSort flags.
    num_gpu: the script's default --num_gpu.
    learning_rate: the script's default --learning_rate.
    clustering: whether the loss clusters (k-means, memory banks); the
      unsupervised loss does not.
    hyphenated: the flags that also take the hyphenated spelling (e.g.
      SOFTMAX_TRAINING_HYPHENATED).

  Returns:
    The parsed arguments (argparse.Namespace).
  """
  parser = get_parser(description)
  add_data_flags(parser)
  add_model_flags(parser)
  if segsort:
    add_segsort_flags(parser, clustering=clustering)
  add_training_flags(parser, num_gpu=num_gpu, learning_rate=learning_rate)
  add_validation_flags(parser, prototypes=segsort)
  accept_hyphenated(parser, hyphenated)
  return parse(parser, argv)
