"""Every default of the scripts the original release had is the original's.

Each row states a flag's default in the original release's script, with its
file and line there (pyscripts/train/, pyscripts/inference/,
pyscripts/benchmark/ of the original), and the test parses this
repository's script of the same name with no flags but --data_list.

The softmax baseline's scripts (train.py, inference.py, inference_msc.py)
are those of the original's baseline codebase, which its README sends to:
AAF (github.com/twke18/Adaptive_Affinity_Fields, pyscripts/train/train.py,
pyscripts/inference/inference.py and inference_msc.py), with hyphenated
flags (--data-dir, ...), accepted here in both spellings.

Not listed: the flags each script adds here (--model, --backbone, ...).
"""
import pytest

from pyscripts import flags

from pyscripts.benchmark import benchmark_by_mIoU
from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference
from pyscripts.inference import inference_msc
from pyscripts.inference import inference_segsort
from pyscripts.inference import inference_segsort_msc
from pyscripts.train import train as train_softmax
from pyscripts.train import train_segsort
from pyscripts.train import train_segsort_mgpu
from pyscripts.train import train_segsort_unsup

# (original default, line of the original script).
_TRAINING = {
    'train_segsort.py': {
        'batch_size': (1, 33), 'data_dir': ('', 35), 'ignore_label': (255, 39),
        'input_size': ('336,336', 41), 'random_seed': (1234, 43),
        'is_training': (False, 46), 'use_global_status': (False, 48),
        'learning_rate': (1e-3, 50), 'power': (0.9, 52),
        'momentum': (0.9, 54), 'weight_decay': (5e-4, 56),
        'num_classes': (21, 58), 'num_steps': (20000, 60),
        'iter_size': (10, 62), 'random_mirror': (False, 64),
        'random_crop': (False, 66), 'random_scale': (False, 68),
        'embedding_dim': (32, 71), 'concentration': (10.0, 73),
        'num_clusters': (5, 75), 'kmeans_iterations': (10, 77),
        'num_banks': (2, 79), 'restore_from': ('', 82),
        'save_pred_every': (10000, 84), 'update_tb_every': (20, 86),
        'snapshot_dir': ('', 88), 'not_restore_classifier': (False, 90),
    },
    'train_segsort_unsup.py': {
        'batch_size': (1, 32), 'data_dir': ('', 34), 'ignore_label': (255, 38),
        'input_size': ('336,336', 40), 'random_seed': (1234, 42),
        'is_training': (False, 45), 'use_global_status': (False, 47),
        'learning_rate': (2.5e-4, 49), 'power': (0.9, 51),
        'momentum': (0.9, 53), 'weight_decay': (5e-4, 55),
        'num_classes': (21, 57), 'num_steps': (20000, 59),
        'iter_size': (10, 61), 'random_mirror': (False, 63),
        'random_crop': (False, 65), 'random_scale': (False, 67),
        'embedding_dim': (32, 70), 'concentration': (10.0, 72),
        'restore_from': ('', 75), 'save_pred_every': (10000, 77),
        'update_tb_every': (20, 79), 'snapshot_dir': ('', 81),
        'not_restore_classifier': (False, 83),
    },
}

# The same flags and lines as train_segsort.py from --is_training on.
_TRAINING['train_segsort_mgpu.py'] = dict(_TRAINING['train_segsort.py'], **{
    'batch_size': (1, 31), 'data_dir': ('', 33), 'ignore_label': (255, 37),
    'input_size': ('336,336', 39), 'random_seed': (1234, 41),
    # N GPUs: N - 1 towers and one for the loss, as here by default.
    'num_gpu': (2, 43),
    'learning_rate': (2.5e-4, 50),
})

_INFERENCE = {
    'extract_prototypes.py': {
        'data_dir': ('', 30), 'input_size': ('512,512', 34),
        'strides': ('512,512', 36), 'num_classes': (21, 38),
        'ignore_label': (255, 40), 'restore_from': ('', 42),
        'save_dir': ('', 44), 'colormap': ('', 46),
        'embedding_dim': (32, 49), 'num_clusters': (5, 51),
        'kmeans_iterations': (10, 53),
    },
    'inference_segsort.py': {
        'data_dir': ('', 33), 'input_size': ('512,512', 37),
        'strides': ('512,512', 39), 'num_classes': (21, 41),
        'ignore_label': (255, 43), 'restore_from': ('', 45),
        'save_dir': ('', 47), 'colormap': ('', 49),
        'prototype_dir': ('', 52), 'embedding_dim': (32, 54),
        'num_clusters': (5, 56), 'kmeans_iterations': (10, 58),
        'k_in_nearest_neighbors': (15, 60),
    },
    'inference_segsort_msc.py': {
        'data_dir': ('', 33), 'input_size': ('512,512', 37),
        'strides': ('512,512', 39), 'num_classes': (21, 41),
        'ignore_label': (255, 43), 'restore_from': ('', 45),
        'save_dir': ('', 47), 'colormap': ('', 49),
        'flip_aug': (False, 51), 'scale_aug': (False, 53),
        'prototype_dir': ('', 56), 'embedding_dim': (32, 58),
        'num_clusters': (5, 60), 'kmeans_iterations': (10, 62),
        'k_in_nearest_neighbors': (15, 64),
    },
}

# AAF's train.py, inference.py and inference_msc.py (see the module
# docstring).
_SOFTMAX_TRAINING = {
    'train.py': {
        'batch_size': (1, 28), 'data_dir': ('', 30), 'ignore_label': (255, 34),
        'input_size': ('336,336', 36), 'random_seed': (1234, 38),
        'is_training': (False, 41), 'use_global_status': (False, 43),
        'learning_rate': (2.5e-4, 45), 'power': (0.9, 47),
        'momentum': (0.9, 49), 'weight_decay': (5e-4, 51),
        'num_classes': (21, 53), 'num_steps': (20000, 55),
        'iter_size': (10, 57), 'random_mirror': (False, 59),
        'random_crop': (False, 61), 'random_scale': (False, 63),
        'restore_from': ('', 66), 'save_pred_every': (10000, 68),
        'update_tb_every': (20, 70), 'snapshot_dir': ('', 72),
        'not_restore_classifier': (False, 74),
    },
}

_SOFTMAX_INFERENCE = {
    'inference.py': {
        'data_dir': ('', 29), 'input_size': ('512,512', 33),
        'strides': ('512,512', 35), 'num_classes': (21, 37),
        'ignore_label': (255, 39), 'restore_from': ('', 41),
        'save_dir': ('', 43), 'colormap': ('', 45),
    },
    'inference_msc.py': {
        'data_dir': ('', 30), 'input_size': ('512,512', 34),
        'strides': ('512,512', 36), 'num_classes': (21, 38),
        'ignore_label': (255, 40), 'restore_from': ('', 42),
        'save_dir': ('', 44), 'colormap': ('', 46),
        'flip_aug': (False, 48), 'scale_aug': (False, 50),
    },
}

_BENCHMARK = {
    'pred_dir': ('', 14), 'gt_dir': ('', 16), 'num_classes': (21, 18),
    'string_replace': (',', 20),
}

_PARSERS = {
    'train_segsort.py': train_segsort.get_arguments,
    'train_segsort_mgpu.py': train_segsort_mgpu.get_arguments,
    'train_segsort_unsup.py': train_segsort_unsup.get_arguments,
    'extract_prototypes.py': extract_prototypes.get_arguments,
    'inference_segsort.py': inference_segsort.get_arguments,
    'inference_segsort_msc.py': inference_segsort_msc.get_arguments,
    'train.py': train_softmax.get_arguments,
    'inference.py': inference.get_arguments,
    'inference_msc.py': inference_msc.get_arguments,
}

# 'H,W' strings parse to (H, W) here.
_PAIRS = ('input_size', 'strides')


def _rows(table):
  return [(script, flag, value, '%s:%d' % (script, line))
          for script, defaults in table.items()
          for flag, (value, line) in sorted(defaults.items())]


def _check(parsed, flag, value, source):
  if flag in _PAIRS:
    value = tuple(int(v) for v in value.split(','))
  assert hasattr(parsed, flag), source
  actual = getattr(parsed, flag)
  if isinstance(value, float):
    assert actual == pytest.approx(value, rel=1e-12), (source, actual)
  else:
    assert actual == value and type(actual) is type(value), (source, actual)


@pytest.mark.parametrize('script,flag,value,source',
                         _rows(_TRAINING) + _rows(_INFERENCE) +
                         _rows(_SOFTMAX_TRAINING) +
                         _rows(_SOFTMAX_INFERENCE))
def test_default_is_the_originals(script, flag, value, source):
  """The original script's default (source: file:line there)."""
  _check(_PARSERS[script](['--data_list', 'list.txt']), flag, value, source)


@pytest.mark.parametrize('flag,value,source',
                         [row[1:] for row in _rows(
                             {'benchmark_by_mIoU.py': _BENCHMARK})])
def test_benchmark_default_is_the_originals(flag, value, source):
  _check(benchmark_by_mIoU.get_arguments([]), flag, value, source)


def test_every_original_flag_is_listed():
  """The tables above hold every flag the original scripts had.

  Less --data_list (required here; train_segsort.py:37,
  train_segsort_mgpu.py:35, train_segsort_unsup.py:36,
  extract_prototypes.py:32, inference_segsort.py:35,
  inference_segsort_msc.py:35; AAF's train.py:32, inference.py:31,
  inference_msc.py:32).
  """
  assert len(_TRAINING['train_segsort.py']) == 27
  assert len(_TRAINING['train_segsort_mgpu.py']) == 28
  assert len(_TRAINING['train_segsort_unsup.py']) == 24
  assert [len(_INFERENCE[s]) for s in _INFERENCE] == [11, 13, 15]
  assert len(_SOFTMAX_TRAINING['train.py']) == 22
  assert [len(_SOFTMAX_INFERENCE[s]) for s in _SOFTMAX_INFERENCE] == [8, 10]


@pytest.mark.parametrize('script,names', [
    ('train.py', flags.SOFTMAX_TRAINING_HYPHENATED),
    ('inference.py', flags.SOFTMAX_INFERENCE_HYPHENATED),
    ('inference_msc.py', flags.SOFTMAX_INFERENCE_HYPHENATED),
])
def test_softmax_scripts_take_the_hyphenated_spelling(script, names):
  """Every flag the AAF original spelled with a hyphen, both ways."""
  table = dict(_SOFTMAX_TRAINING, **_SOFTMAX_INFERENCE)[script]
  # (inference.py shares inference_msc.py's set: it also parses, then
  # refuses, --flip-aug and --scale-aug.)
  assert names >= (set(table) | {'data_list'}) - {'power', 'momentum',
                                                  'strides', 'colormap'}
  parse = _PARSERS[script]
  defaults = parse(['--data_list', 'l.txt'])
  for name in sorted(names):
    hyphenated = '--' + name.replace('_', '-')
    if isinstance(getattr(defaults, name), bool):
      underscored, argv = ['--' + name], [hyphenated]
    else:
      value = '3,4' if name == 'input_size' else '7'
      underscored, argv = ['--' + name, value], [hyphenated, value]
    if name != 'data_list':
      underscored += ['--data_list', 'l.txt']
      argv += ['--data_list', 'l.txt']
    want = getattr(parse(underscored), name)
    assert want != getattr(defaults, name), name
    assert getattr(parse(argv), name) == want, name


# Flags train_segsort_unsup.py adds to the original's, each of which works
# with the unsupervised loss (the model choice, --bn_decay, --xla, the
# time-based checkpoints, the log, validation, the towers, the cluster).
UNSUP_NEW_FLAGS = {
    'model', 'backbone', 'backbone_variant', 'width_multiplier', 'bn_decay',
    'xla', 'save_every_minutes', 'num_gpu', 'loss_device', 'log_every',
    'val_data_list', 'val_every', 'val_max_images', 'val_train_images',
    'cluster_spec', 'job_name', 'task_index', 'cluster_wait_seconds',
    'run_timeout_seconds'}


def test_unsupervised_script_has_the_original_flags_and_working_new_ones():
  """No --num_clusters, --kmeans_iterations, --num_banks: the original
  train_segsort_unsup.py had none, and the loss uses none of them."""
  parsed = {name for name in vars(train_segsort_unsup.get_arguments(
      ['--data_list', 'l.txt'])) if not name.startswith('_')}
  original = set(_TRAINING['train_segsort_unsup.py']) | {'data_list'}
  assert parsed == original | UNSUP_NEW_FLAGS
  for flag in ('--num_banks', '--num_clusters', '--kmeans_iterations'):
    with pytest.raises(SystemExit):
      train_segsort_unsup.get_arguments(['--data_list', 'l.txt', flag, '2'])
