"""Readable --help, no flag a script ignores, evaluation without traps.

- --help keeps the description's lines (its example commands are shown as
  written, one flag group per line, under "example:");
- each script lists only the flags it uses; the original release's flags
  it ignores are accepted (its commands still run) with a note;
- benchmark_by_mIoU.py --data_list scores exactly the listed images;
- multi-scale results never overwrite single-scale ones by default.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pyscripts import inference_main
from pyscripts.benchmark import benchmark_by_mIoU
from pyscripts.benchmark import benchmark_inference
from pyscripts.benchmark import benchmark_kmeans_pruning
from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference
from pyscripts.inference import inference_segsort
from pyscripts.inference import inference_segsort_msc
from pyscripts.tools import visualize_retrieval
from pyscripts.train import train
from pyscripts.train import train_segsort
from pyscripts.train import train_segsort_unsup
from seg_models import predictor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARSERS = {
    'extract_prototypes.py': extract_prototypes.get_arguments,
    'inference_segsort.py': inference_segsort.get_arguments,
    'inference_segsort_msc.py': inference_segsort_msc.get_arguments,
    'inference.py': inference.get_arguments,
    'visualize_retrieval.py': visualize_retrieval.get_arguments,
    'benchmark_inference.py': benchmark_inference.get_arguments,
    'benchmark_kmeans_pruning.py': benchmark_kmeans_pruning.get_arguments,
    'benchmark_by_mIoU.py': benchmark_by_mIoU.get_arguments,
    'train_segsort.py': train_segsort.get_arguments,
    'train_segsort_unsup.py': train_segsort_unsup.get_arguments,
    'train.py': train.get_arguments,
}

TRAINING_ONLY = ('batch_size', 'random_seed', 'is_training',
                 'use_global_status', 'bn_decay', 'concentration',
                 'num_banks', 'num_gpu', 'learning_rate', 'snapshot_dir')
# The flags each script must not list (it would ignore them).
NOT_LISTED = {
    'extract_prototypes.py': TRAINING_ONLY + (
        'colormap', 'flip_aug', 'scale_aug', 'scales', 'prototype_dir',
        'k_in_nearest_neighbors', 'knn_chunk_size', 'overwrite'),
    'inference_segsort.py': TRAINING_ONLY + (
        'flip_aug', 'scale_aug', 'scales', 'ignore_label'),
    'inference_segsort_msc.py': TRAINING_ONLY + ('ignore_label',),
    'inference.py': TRAINING_ONLY + (
        'ignore_label', 'embedding_dim', 'num_clusters', 'prototype_dir'),
    'visualize_retrieval.py': TRAINING_ONLY + (
        'flip_aug', 'scale_aug', 'scales', 'ignore_label', 'overwrite'),
    'train_segsort_unsup.py': ('num_clusters', 'kmeans_iterations',
                               'num_banks', 'strides', 'save_dir'),
    'train.py': ('embedding_dim', 'num_clusters', 'num_banks',
                 'concentration', 'strides'),
}
WITH_EXAMPLES = ('extract_prototypes.py', 'inference_segsort.py',
                 'inference_segsort_msc.py', 'inference.py',
                 'visualize_retrieval.py', 'benchmark_inference.py',
                 'benchmark_kmeans_pruning.py', 'benchmark_by_mIoU.py')


def _help(script, capsys):
  with pytest.raises(SystemExit):
    PARSERS[script](['--help'])
  return capsys.readouterr().out


@pytest.mark.parametrize('script', WITH_EXAMPLES)
def test_help_shows_examples_as_written(script, capsys):
  text = _help(script, capsys)
  lines = text.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(
      'example'))
  command = [line for line in lines[start + 1:]
             if not line.lstrip().startswith('#')]
  assert command[0].startswith('  python pyscripts/')
  assert command[0].endswith(' \\')  # Continued on the next line, as in a
  assert command[1].startswith('    --')  # shell, not run together.


@pytest.mark.parametrize('script', sorted(NOT_LISTED))
def test_help_lists_only_used_flags(script, capsys):
  text = _help(script, capsys)
  for name in NOT_LISTED[script]:
    # Neither in the usage line nor as an option.
    assert '[--%s' % name not in text, name
    assert '\n  --%s' % name not in text, name


def test_ignored_original_flags_are_accepted_with_a_note(capsys):
  args = extract_prototypes.get_arguments(
      ['--data_list', 'l.txt', '--colormap', 'misc/colormapvoc.mat'])
  assert args.colormap == 'misc/colormapvoc.mat'
  assert '--colormap is ignored' in capsys.readouterr().err
  inference_segsort.get_arguments(['--data_list', 'l.txt', '--ignore_label',
                                   '255'])
  assert '--ignore_label is ignored' in capsys.readouterr().err
  # The original unsupervised script had no k-means or bank flags: refused
  # (tests/test_script_defaults.py), not ignored.
  for flag in ('--num_banks', '--num_clusters'):
    with pytest.raises(SystemExit):
      train_segsort_unsup.get_arguments(['--data_list', 'l.txt', flag, '5'])
    assert 'unrecognized arguments: %s' % flag in capsys.readouterr().err
  # Not given: no note.
  inference_segsort.get_arguments(['--data_list', 'l.txt'])
  assert 'ignored' not in capsys.readouterr().err


def test_flags_no_script_had_are_refused(capsys):
  for flags in (['--num_gpu', '2'], ['--is_training'], ['--batch_size', '4']):
    with pytest.raises(SystemExit) as exit_info:
      inference_segsort.get_arguments(['--data_list', 'l.txt'] + flags)
    assert exit_info.value.code == 2
    assert 'unrecognized arguments: %s' % flags[0] in capsys.readouterr().err


def test_single_scale_scripts_still_explain_multiscale_flags():
  args = inference_segsort.get_arguments(['--data_list', 'l.txt',
                                          '--flip_aug'])
  with pytest.raises(predictor.PredictorError,
                     match='inference_segsort_msc.py'):
    inference_main.reject_multiscale_flags(args, 'inference_segsort.py')


def test_multiscale_examples_use_their_own_folder():
  singles = [line for line in inference_segsort.__doc__.splitlines()
             if '--save_dir' in line]
  multis = [line for line in inference_segsort_msc.__doc__.splitlines()
            if '--save_dir' in line]
  assert multis[0].split()[1].endswith('_msc')
  assert singles[0].split()[1] != multis[0].split()[1]


def test_multiscale_never_overwrites_single_scale_by_default(tmp_path):
  save_dir = str(tmp_path / 'val')
  args = inference_segsort_msc.get_arguments(['--data_list', 'l.txt',
                                              '--save_dir', save_dir])
  inference_main.check_save_dir(args, inference_main.MULTI_SCALE)  # Empty.
  os.makedirs(save_dir)
  inference_main.write_record(args, inference_main.SINGLE_SCALE,
                              'inference_segsort.py', 4)
  with open(os.path.join(save_dir, 'inference.json')) as f:
    assert json.load(f)['mode'] == 'single_scale'
  inference_main.check_save_dir(args, inference_main.SINGLE_SCALE)
  with pytest.raises(predictor.PredictorError) as err:
    inference_main.check_save_dir(args, inference_main.MULTI_SCALE)
  assert 'single_scale results' in str(err.value)
  assert save_dir + '_msc' in str(err.value)
  assert '--overwrite' in str(err.value)
  args.overwrite = True
  inference_main.check_save_dir(args, inference_main.MULTI_SCALE)


# ---------------------------------------------------------------------------
# benchmark_by_mIoU.py --data_list
# ---------------------------------------------------------------------------


def _png(path, values):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(values, np.uint8)).save(path)


@pytest.fixture
def split(tmp_path):
  """gt/ holds a, b (val) and c (train); pred/ holds a, b and a stale z."""
  root = tmp_path
  gt_a, gt_b = [[0, 1], [1, 1]], [[2, 2], [0, 255]]
  _png(str(root / 'segcls' / 'a.png'), gt_a)
  _png(str(root / 'segcls' / 'b.png'), gt_b)
  _png(str(root / 'segcls' / 'c.png'), [[1, 1], [1, 1]])
  _png(str(root / 'pred' / 'a.png'), [[0, 1], [0, 1]])
  _png(str(root / 'pred' / 'b.png'), [[2, 2], [0, 0]])
  _png(str(root / 'pred' / 'z.png'), [[3, 3], [3, 3]])
  with open(str(root / 'val.txt'), 'w') as f:
    f.write('JPEGImages/a.jpg segcls/a.png\nJPEGImages/b.jpg segcls/b.png\n')
  return str(root)


def _expected(split_dir):
  from utils import metrics
  acc = metrics.IouAccumulator(4)
  for name in 'ab':
    acc.update(np.array(Image.open(os.path.join(split_dir, 'pred',
                                                name + '.png'))),
               np.array(Image.open(os.path.join(split_dir, 'segcls',
                                                name + '.png'))))
  return acc


def test_benchmark_scores_exactly_the_listed_images(split, capsys):
  base = ['--pred_dir', os.path.join(split, 'pred'), '--num_classes', '4',
          '--data_list', os.path.join(split, 'val.txt')]
  expected = _expected(split)
  # Extra ground truth (c) and an extra prediction (z): no error.
  results = benchmark_by_mIoU.main(base + ['--gt_dir',
                                           os.path.join(split, 'segcls')])
  assert results['num_images'] == 2
  assert results['miou'] == pytest.approx(100 * expected.mean_iou())
  # The list's label column, without --gt_dir.
  results = benchmark_by_mIoU.main(base + ['--data_dir', split])
  assert results['miou'] == pytest.approx(100 * expected.mean_iou())
  capsys.readouterr()
  # Without the list the extra ground truth is still an error.
  with pytest.raises(SystemExit):
    benchmark_by_mIoU.main(['--pred_dir', os.path.join(split, 'pred'),
                            '--gt_dir', os.path.join(split, 'segcls'),
                            '--num_classes', '4'])
  capsys.readouterr()


def test_benchmark_names_a_listed_image_without_prediction(split, capsys):
  os.remove(os.path.join(split, 'pred', 'b.png'))
  with pytest.raises(SystemExit) as exit_info:
    benchmark_by_mIoU.main(['--pred_dir', os.path.join(split, 'pred'),
                            '--gt_dir', os.path.join(split, 'segcls'),
                            '--num_classes', '4', '--data_list',
                            os.path.join(split, 'val.txt')])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert 'no prediction' in err and 'b.png' in err


def test_benchmark_help_runs_from_anywhere():
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'pyscripts', 'benchmark',
                                    'benchmark_by_mIoU.py'), '--help'],
      cwd='/', capture_output=True, text=True, timeout=120)
  assert result.returncode == 0
  assert '--data_list' in result.stdout
