"""Command-line flags, each declared once, in groups the scripts combine.

Names, types and defaults are the original release's; the flags that are
new here (--model, --backbone, --backbone_variant, --width_multiplier,
--num_gpu for the single-tower scripts, ...) say so in their help. The
softmax baseline's scripts (train.py, inference.py, inference_msc.py) also
take the hyphenated spellings their originals had (--data-dir, ...; the
SOFTMAX_*_HYPHENATED sets).
"""
import argparse
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Default --input_size and --strides of the inference scripts
# (extract_prototypes.py, inference_segsort.py, inference_segsort_msc.py,
# inference.py, inference_msc.py): one 512x512 window per image up to that
# size. The VOC recipes pass their own (480,480 / 320,320 windows, 720,720
# single scale).
INFERENCE_WINDOW = '512,512'

# The flags the softmax baseline's original scripts spelled with hyphens
# (--data-dir, ...): those of the original's baseline codebase AAF, which
# its README points to. A group given hyphenated=one of these sets accepts
# both spellings of the flags in it.
SOFTMAX_INFERENCE_HYPHENATED = frozenset([
    'data_dir', 'data_list', 'input_size', 'num_classes', 'ignore_label',
    'restore_from', 'save_dir', 'flip_aug', 'scale_aug'])
SOFTMAX_TRAINING_HYPHENATED = frozenset([
    'batch_size', 'data_dir', 'data_list', 'ignore_label', 'input_size',
    'random_seed', 'is_training', 'use_global_status', 'learning_rate',
    'weight_decay', 'num_classes', 'num_steps', 'iter_size', 'random_mirror',
    'random_crop', 'random_scale', 'restore_from', 'save_pred_every',
    'update_tb_every', 'snapshot_dir', 'not_restore_classifier'])


def _names(name, hyphenated=()):
  """The option strings of flag `name`: --na_me, and --na-me if in
  hyphenated."""
  names = ['--' + name]
  if name in hyphenated:
    names.append('--' + name.replace('_', '-'))
  return names


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


def get_parser(description):
  return argparse.ArgumentParser(
      description=description,
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_data_flags(parser, input_size='336,336', batch_size=1,
                   hyphenated=()):
  group = parser.add_argument_group('data')
  group.add_argument(*_names('batch_size', hyphenated), type=_positive_int,
                     default=batch_size, help='Number of images in a batch.')
  group.add_argument(*_names('data_dir', hyphenated), type=str, default='',
                     help='/path/to/dataset/ (list paths are relative to it).')
  group.add_argument(*_names('data_list', hyphenated), type=str, default='',
                     help='/path/to/datalist/file.')
  group.add_argument(*_names('ignore_label', hyphenated), type=int,
                     default=255, help='The index of the label to ignore.')
  group.add_argument(*_names('input_size', hyphenated), type=_int_pair,
                     default=input_size,
                     help='Comma-separated H,W of the network input.')
  group.add_argument(*_names('random_seed', hyphenated), type=int,
                     default=1234,
                     help='Random seed for reproducible results.')
  return group


def add_image_list_flags(parser, contour_dir_help, contour_dir_required):
  """--data_dir, --data_list, --contour_dir of the oversegmentation tools."""
  parser.add_argument('--data_dir', type=str, required=True,
                      help='Folder the list paths are relative to.')
  parser.add_argument('--data_list', type=str, required=True,
                      help='Lines "IMAGE [LABEL [OVERSEG]]".')
  parser.add_argument('--contour_dir', type=str,
                      required=contour_dir_required, default=None,
                      help=contour_dir_help)


def add_model_flags(parser, hyphenated=()):
  """Model choice; --model/--backbone/--width_multiplier are new here."""
  # Imported here, not at the top: seg_models switches TensorFlow to graph
  # mode, and the tools that share the other flag groups (make_contours.py
  # runs HED eagerly) must not import it.
  from seg_models import models  # pylint: disable=import-outside-toplevel
  group = parser.add_argument_group('model')
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
  group.add_argument('--bn_decay', type=float, default=None,
                     help='Batch-norm moving-average decay of backbone and '
                          'head (new here; default: the original 0.9997 / '
                          '0.99, which need tens of thousands of steps to '
                          'settle; short CPU runs use e.g. 0.99).')
  group.add_argument(*_names('num_classes', hyphenated), type=int,
                     default=21, help='Number of classes to predict.')
  group.add_argument(
      *_names('is_training', hyphenated), action='store_true',
      help='Whether to updates weights.')
  group.add_argument(
      *_names('use_global_status', hyphenated), action='store_true',
      help='Use the moving mean and variance in batch norm '
           'instead of batch statistics.')
  group.add_argument(*_names('restore_from', hyphenated), type=str,
                     default='',
                     help='Checkpoint (file prefix or folder) to restore '
                          'model parameters from.')
  group.add_argument('--xla', action='store_true',
                     help='Compile the graph with XLA (session-level JIT; '
                          'new here). Off by default: on 2 CPU cores it was '
                          'measured slower (README, Speed).')
  return group


def add_segsort_flags(parser, kmeans=True):
  """The SegSort flags; without kmeans only those the unsupervised loss uses.

  Args:
    parser: the parser.
    kmeans: also --num_clusters, --kmeans_iterations and --num_banks (the
      k-means and memory of the supervised loss and of inference).
  """
  group = parser.add_argument_group('segsort')
  group.add_argument('--embedding_dim', type=_positive_int, default=32,
                     help='Dimension of the feature embeddings.')
  group.add_argument('--concentration', type=_positive_float, default=10.0,
                     help='Concentration of the vMF distribution.')
  if not kmeans:
    return group
  group.add_argument('--num_clusters', type=_positive_int, default=5,
                     help='Number of kmeans clusters along each axis.')
  group.add_argument('--kmeans_iterations', type=_positive_int, default=10,
                     help='Number of kmeans iterations.')
  group.add_argument('--num_banks', type=int, default=2,
                     help='Number of memory banks for prototypes.')
  return group


def add_training_flags(parser, num_gpu=1, learning_rate=1e-3, hyphenated=()):
  # Imported here for the reason add_model_flags gives.
  from seg_models import trainer  # pylint: disable=import-outside-toplevel
  group = parser.add_argument_group('training')
  group.add_argument(
      *_names('learning_rate', hyphenated), type=_positive_float,
      default=learning_rate, help='Base learning rate.')
  group.add_argument('--power', type=float, default=0.9,
                     help='Decay for poly learning rate policy.')
  group.add_argument('--momentum', type=float, default=0.9,
                     help='Momentum component of the optimiser.')
  group.add_argument(
      *_names('weight_decay', hyphenated), type=float, default=5e-4,
      help='Regularization hyperparameter for L2-loss.')
  group.add_argument(
      *_names('num_steps', hyphenated), type=_positive_int, default=20000,
      help='Number of training steps.')
  group.add_argument(
      *_names('iter_size', hyphenated), type=_positive_int, default=10,
      help='Number of batches whose gradients are accumulated '
           'into one update.')
  group.add_argument(
      *_names('random_mirror', hyphenated), action='store_true',
      help='Whether to randomly mirror the inputs.')
  group.add_argument(
      *_names('random_crop', hyphenated), action='store_true',
      help='Whether to randomly crop the inputs.')
  group.add_argument(
      *_names('random_scale', hyphenated), action='store_true',
      help='Whether to randomly scale the inputs.')
  group.add_argument(
      *_names('save_pred_every', hyphenated), type=_positive_int,
      default=10000, help='Save a checkpoint every this many steps.')
  group.add_argument('--save_every_minutes', type=float, default=30.0,
                     help='Also save a checkpoint when this many minutes '
                          'have passed since the last one (0: never).')
  group.add_argument(
      *_names('update_tb_every', hyphenated), type=_positive_int, default=20,
      help='Update TensorBoard summaries every this many steps.')
  group.add_argument(
      *_names('snapshot_dir', hyphenated), type=str, default='',
      help='Where to save snapshots of the model.')
  group.add_argument(
      *_names('not_restore_classifier', hyphenated), action='store_true',
      help='Whether to not restore classifier layers.')
  group.add_argument('--num_gpu', type=_positive_int, default=num_gpu,
                     help='Number of GPUs to train on, as in the original: '
                          'N >= 2 splits the batch over N - 1 network towers '
                          '(synchronised batch norm) and computes the loss '
                          'on the N-th GPU (see --loss_device); virtual CPU '
                          'devices stand in when fewer than N GPUs are '
                          'visible.')
  group.add_argument('--loss_device', type=str,
                     default=trainer.LOSS_DEVICE_SEPARATE,
                     choices=trainer.LOSS_DEVICES,
                     help="Where the loss runs with --num_gpu N >= 2 (new "
                          "here): 'separate' = on the N-th device, after N - "
                          "1 network towers (the original's); 'tower' = on "
                          "the first of N network towers (every device runs "
                          "the network).")
  return group


def add_inference_flags(parser, strides=INFERENCE_WINDOW, hyphenated=()):
  group = parser.add_argument_group(
      'inference', 'Inference always runs the network in inference mode '
      '(--is_training and --use_global_status do not apply to it).')
  group.add_argument('--strides', type=_int_pair, default=strides,
                     help='Comma-separated H,W strides of the sliding window.')
  group.add_argument('--colormap', type=str, default='',
                     help='Colormap (.mat or .npy); VOC colours by default.')
  group.add_argument(*_names('save_dir', hyphenated), type=str, default='',
                     help='/path/to/save/predictions.')
  group.add_argument(*_names('flip_aug', hyphenated), action='store_true',
                     help='Add horizontally flipped inputs.')
  group.add_argument(*_names('scale_aug', hyphenated), action='store_true',
                     help='Add scales 0.5, 0.75, 1, 1.25, 1.5, 1.75.')
  group.add_argument('--scales', type=_float_list, default=None,
                     help='Explicit scales, overriding --scale_aug (new '
                          'here).')
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


def parse(parser, argv=None):
  """Parses argv and checks the paths every script needs."""
  args = parser.parse_args(argv)
  if getattr(args, 'data_list', None) is not None and not args.data_list:
    parser.error('--data_list is required')
  if getattr(args, 'xla', False):
    # XLA on CPU must be asked for before TensorFlow runs anything. Imported
    # here: importing network switches TensorFlow to graph mode, and the
    # tools that parse flags with this module (make_contours.py runs HED
    # eagerly) must not.
    from network.multigpu import towers  # pylint: disable=C0415
    towers.enable_xla_on_cpu()
  return args


def add_prediction_flags(parser):
  """Inference options new here (not in the original release)."""
  # Imported here for the reason add_model_flags gives.
  from seg_models import predictor  # pylint: disable=import-outside-toplevel
  group = parser.add_argument_group('prediction')
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
                                strides=INFERENCE_WINDOW):
  """Every flag of a SegSort kNN inference script."""
  add_data_flags(parser, input_size=input_size)
  add_model_flags(parser)
  add_segsort_flags(parser)
  add_inference_flags(parser, strides=strides)
  add_knn_flags(parser)
  add_prediction_flags(parser)


def get_training_arguments(description, argv=None, segsort=True, num_gpu=1,
                           learning_rate=1e-3, kmeans=True, hyphenated=()):
  """Parses the flags of a training script (SegSort flags if segsort).

  Args:
    description: the script's --help text.
    argv: the arguments (None: sys.argv[1:]).
    segsort: whether to add the SegSort flags.
    num_gpu: the script's default --num_gpu.
    learning_rate: the script's default --learning_rate.
    kmeans: with segsort, also the k-means and memory-bank flags (see
      add_segsort_flags).
    hyphenated: the flags that also take the hyphenated spelling (e.g.
      SOFTMAX_TRAINING_HYPHENATED).

  Returns:
    The parsed arguments (argparse.Namespace).
  """
  parser = get_parser(description)
  add_data_flags(parser, hyphenated=hyphenated)
  add_model_flags(parser, hyphenated=hyphenated)
  if segsort:
    add_segsort_flags(parser, kmeans=kmeans)
  add_training_flags(parser, num_gpu=num_gpu, learning_rate=learning_rate,
                     hyphenated=hyphenated)
  return parse(parser, argv)
