"""The VOC 2012 pipelines in bashscripts/voc12.

Three kinds of runs, as a user starts them: with `bash`, or sourced from
the user's shell (the original README's usage), which must keep its options,
directory, variables and functions, and see the recipe's status:

- SMOKE=1: every step on a tiny synthetic dataset (the scripts generate it);
  the outputs must exist and the benchmark's numbers must equal a NumPy
  recomputation from the written predictions.
- A dry run of the full pipeline: PYTHON points to a stand-in that records
  its command line, so every setting of every step is checked against the
  original recipes (tests/original_recipes.py, each value with its source
  line) without training anything.
- No data: the script stops at once with a message naming what is missing
  and how to build it, before any Python starts; sourced, the caller's next
  line runs.
"""
import collections
import glob
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests import original_recipes
from tests import stand_ins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT_DIR = os.path.join(ROOT, 'bashscripts', 'voc12')
SCRIPTS = ('train_segsort.sh', 'train_segsort_mgpu.sh',
           'train_segsort_unsup.sh')
# What the smoke block sets (the scripts' SMOKE settings).
SMOKE_NUM_CLASSES = 4
SMOKE_EMBEDDING_DIM = 8
SMOKE_STEPS = 2
SMOKE_TRAIN, SMOKE_VAL = 6, 3
SMOKE_HEIGHT, SMOKE_WIDTH = 48, 64
IMAGENET_CKPT = 'snapshots/imagenet/trained/resnet_v1_101.ckpt'
# Variables the scripts read from the environment; cleared so that a
# developer's shell cannot change what the tests run.
SCRIPT_ENV = ('DATAROOT', 'LIST_DIR', 'SNAPSHOT_ROOT', 'IMAGENET_CKPT',
              'PYTHON', 'SMOKE', 'SMOKE_DIR', 'MASKS')


def _clean_env():
  env = {k: v for k, v in os.environ.items()
         if k not in SCRIPT_ENV and not k.startswith('IS_')}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  return env


def _run(script, timeout, **env_vars):
  """Runs `bash bashscripts/voc12/SCRIPT` with env_vars in its environment."""
  env = _clean_env()
  env.update(env_vars)
  return subprocess.run(['bash', os.path.join(SCRIPT_DIR, script)],
                        env=env, capture_output=True, text=True,
                        timeout=timeout)


# The callers that source a recipe: (shell options, folder to cd to, how to
# source). One without options, in the repository's bashscripts/ folder,
# naming the recipe by a relative path; one under the strict options a
# careful script starts with (where a failing plain `source` would end the
# caller by its own choice, hence `|| status=$?`), outside the repository.
# Neither sits at the repository root, the recipe's own working directory.
CALLERS = {
    'plain': ('', os.path.join(ROOT, 'bashscripts'),
              'source voc12/{script}\nstatus=$?'),
    'strict': ('set -euo pipefail', None,
               'status=0\nsource %s/{script} || status=$?' % SCRIPT_DIR),
}

Sourced = collections.namedtuple(
    'Sourced', 'status stdout stderr options_kept cwd_kept leaked')


def _source(script, tmp_path, timeout, caller='plain', **settings):
  """Sources the recipe from a caller bash script, as the original README.

  The caller (see CALLERS; None: a folder of its own under tmp_path) sets
  `settings` as plain shell variables (not exported), plus BATCH_SIZE=99
  and a check_inputs function of its own, which the recipe must leave
  alone.

  Returns:
    A Sourced: the status of `source`, the output, whether the caller's
    `set -o` and working directory are those it had before, and what of
    the caller's own variable and function changed (empty when nothing).
  """
  options, folder, source = CALLERS[caller]
  state = tmp_path / ('caller_' + caller)
  state.mkdir()
  lines = [options, 'cd %s' % shlex.quote(folder or str(state)),
           'BATCH_SIZE=99',
           'check_inputs() { echo mine; }']
  lines += ['%s=%s' % (k, shlex.quote(v)) for k, v in settings.items()]
  lines += ['set -o > %s/options_before' % state,
            'pwd > %s/cwd_before' % state,
            source.format(script=script),
            'set -o > %s/options_after' % state,
            'pwd > %s/cwd_after' % state,
            'echo "leaked: batch_size=${BATCH_SIZE} check_inputs=$('
            'check_inputs)"',
            'echo "status of source: ${status}"']
  caller_path = state / 'caller.sh'
  caller_path.write_text('\n'.join(lines) + '\n')
  result = subprocess.run(['bash', str(caller_path)], cwd=str(state),
                          env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  tail = result.stdout.rstrip('\n').split('\n')[-2:]
  assert tail[1].startswith('status of source: '), result.stdout[-2000:]
  leaked = tail[0] != 'leaked: batch_size=99 check_inputs=mine'

  def same(name):
    return ((state / (name + '_before')).read_text() ==
            (state / (name + '_after')).read_text())
  return Sourced(int(tail[1].split(': ')[1]), result.stdout, result.stderr,
                 same('options'), same('cwd'), tail[0] if leaked else '')


def _read_config(snapshot_dir):
  """SNAPSHOT_DIR/config ('name: value' lines) as a dict of strings."""
  with open(os.path.join(snapshot_dir, 'config')) as f:
    return dict(line.rstrip('\n').split(': ', 1) for line in f if line.strip())


def _numpy_benchmark(pred_dir, gt_dir, num_classes):
  """mIoU and pixel accuracy (percent) of pred_dir's PNGs against gt_dir.

  IoU_c = TP_c / (TP_c + FP_c + FN_c) over pixels whose ground truth is in
  [0, num_classes); the mean runs over classes with a positive union.
  """
  tp = np.zeros(num_classes)
  fp = np.zeros(num_classes)
  fn = np.zeros(num_classes)
  for path in sorted(glob.glob(os.path.join(pred_dir, '*.png'))):
    pred = np.array(Image.open(path)).astype(np.int64)
    gt = np.array(Image.open(os.path.join(gt_dir, os.path.basename(path))))
    valid = gt < num_classes
    for c in range(num_classes):
      p, g = (pred == c) & valid, (gt == c) & valid
      tp[c] += np.sum(p & g)
      fp[c] += np.sum(p & ~g)
      fn[c] += np.sum(~p & g)
  union = tp + fp + fn
  miou = np.mean(tp[union > 0] / union[union > 0]) * 100
  return miou, tp.sum() / (tp + fn).sum() * 100


def _check_prototypes(prototype_dir, num_images):
  features = np.load(os.path.join(prototype_dir, 'prototype_features.npy'))
  labels = np.load(os.path.join(prototype_dir, 'prototype_labels.npy'))
  # At most 2x2 clusters per training image.
  assert 0 < features.shape[0] <= 4 * num_images
  assert features.shape == (labels.shape[0], SMOKE_EMBEDDING_DIM)
  np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0,
                             atol=1e-5)
  assert labels.min() >= 0 and labels.max() < SMOKE_NUM_CLASSES


def _check_predictions_and_benchmark(save_dir, gt_dir):
  for kind in ('gray', 'color'):
    names = sorted(os.listdir(os.path.join(save_dir, kind)))
    assert names == ['val_%06d.png' % i for i in range(SMOKE_VAL)], kind
  for path in glob.glob(os.path.join(save_dir, 'gray', '*.png')):
    gray = np.array(Image.open(path))
    assert gray.shape == (SMOKE_HEIGHT, SMOKE_WIDTH)
    assert gray.max() < SMOKE_NUM_CLASSES
    color = np.array(Image.open(path.replace('/gray/', '/color/'))
                     .convert('RGB'))
    assert color.shape == (SMOKE_HEIGHT, SMOKE_WIDTH, 3)
  with open(os.path.join(save_dir, 'miou.json')) as f:
    results = json.load(f)
  assert results['num_images'] == SMOKE_VAL
  miou, accuracy = _numpy_benchmark(os.path.join(save_dir, 'gray'), gt_dir,
                                    SMOKE_NUM_CLASSES)
  assert results['miou'] == pytest.approx(miou, abs=1e-6)
  assert results['pixel_accuracy'] == pytest.approx(accuracy, abs=1e-6)


def _check_checkpoint(snapshot_dir):
  assert os.path.exists(os.path.join(
      snapshot_dir, 'model.ckpt-%d.index' % SMOKE_STEPS))
  assert glob.glob(os.path.join(snapshot_dir, 'events.out.tfevents.*'))


def _only_dir(pattern):
  found = glob.glob(pattern)
  assert len(found) == 1, (pattern, found)
  return found[0]


def _run_smoke(script, tmp_path, sourced=False):
  """Runs the recipe with SMOKE=1 (sourced: from a caller's shell)."""
  settings = dict(SMOKE='1', SMOKE_DIR=str(tmp_path / 'smoke'),
                  PYTHON=sys.executable)
  if sourced:
    run = _source(script, tmp_path, timeout=600, **settings)
    assert run.status == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.options_kept and run.cwd_kept and not run.leaked, run
  else:
    run = _run(script, timeout=600, **settings)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
  smoke_dir = str(tmp_path / 'smoke')
  data_dir = os.path.join(smoke_dir, 'data', 'VOCdevkit')
  gt_dir = os.path.join(data_dir, 'VOC2012', 'segcls')
  for split, count in (('train+', SMOKE_TRAIN), ('train', SMOKE_TRAIN),
                       ('val', SMOKE_VAL)):
    lines = open(os.path.join(smoke_dir, 'lists',
                              split + '.txt')).read().split('\n')[:-1]
    assert len(lines) == count
    for line in lines:  # the format make_voc_lists.py writes
      image, label = line.split(' ')
      assert image.startswith('VOC2012/JPEGImages/')
      assert label.startswith('VOC2012/segcls/')
      assert os.path.exists(os.path.join(data_dir, image))
  return gt_dir


@pytest.mark.parametrize('script,num_gpu', [('train_segsort.sh', 1),
                                            ('train_segsort_mgpu.sh', 3)])
def test_smoke_supervised(tmp_path, script, num_gpu):
  """Both stages: checkpoints, configs, prototypes, predictions, mIoU."""
  gt_dir = _run_smoke(script, tmp_path)
  smoke_dir = str(tmp_path / 'smoke')
  snapshot_dir = _only_dir(os.path.join(smoke_dir, 'snapshots', 'voc12',
                                        'segsort', 'segsort_pspnet_*'))
  stage1 = os.path.join(snapshot_dir, 'stage1')
  stage2 = os.path.join(snapshot_dir, 'stage2')
  for stage in (stage1, stage2):
    _check_checkpoint(stage)
  config1, config2 = _read_config(stage1), _read_config(stage2)
  assert config1['num_gpu'] == config2['num_gpu'] == str(num_gpu)
  assert config1['data_list'].endswith('/train+.txt')
  assert config2['data_list'].endswith('/train.txt')
  # Stage 2 starts from the whole stage 1 model, head included.
  assert config1['not_restore_classifier'] == 'True'
  assert config2['not_restore_classifier'] == 'False'
  assert config2['restore_from'] == os.path.join(
      stage1, 'model.ckpt-%d' % SMOKE_STEPS)
  assert float(config2['learning_rate']) == pytest.approx(
      float(config1['learning_rate']) / 10)
  _check_prototypes(os.path.join(stage1, 'results', 'train+', 'prototypes'),
                    SMOKE_TRAIN)
  _check_prototypes(os.path.join(stage2, 'results', 'train', 'prototypes'),
                    SMOKE_TRAIN)
  _check_predictions_and_benchmark(os.path.join(stage1, 'results', 'val'),
                                   gt_dir)
  # Stage 2: single scale (train_segsort.sh only) and multi-scale, each
  # benchmarked in its own folder.
  _check_predictions_and_benchmark(
      os.path.join(stage2, 'results', 'val_msc'), gt_dir)
  single = os.path.join(stage2, 'results', 'val')
  assert os.path.isdir(single) == (num_gpu == 1)
  if num_gpu == 1:
    _check_predictions_and_benchmark(single, gt_dir)


def test_smoke_unsupervised(tmp_path):
  """Masks, checkpoint, prototypes, multi-scale predictions, mIoU.

  Sourced from a caller's shell (the supervised recipes run with bash; each
  recipe runs both ways in test_smoke_sourced_runs_what_bash_runs).
  """
  gt_dir = _run_smoke('train_segsort_unsup.sh', tmp_path, sourced=True)
  smoke_dir = str(tmp_path / 'smoke')
  hed_dir = os.path.join(smoke_dir, 'data', 'VOCdevkit', 'VOC2012', 'hed')
  masks = sorted(os.listdir(hed_dir))
  assert masks == ['train_%06d.png' % i for i in range(SMOKE_TRAIN)]
  for name in masks:
    mask = np.array(Image.open(os.path.join(hed_dir, name)))
    assert mask.shape == (SMOKE_HEIGHT, SMOKE_WIDTH) and mask.dtype == np.uint8
  snapshot_dir = _only_dir(os.path.join(
      smoke_dir, 'snapshots', 'voc12', 'unsup_segsort',
      'unsup_segsort_pspnet_*'))
  _check_checkpoint(snapshot_dir)
  config = _read_config(snapshot_dir)
  assert config['data_list'].endswith('/train+.txt')
  assert config['not_restore_classifier'] == 'True'
  _check_prototypes(os.path.join(snapshot_dir, 'results', 'train+',
                                 'prototypes'), SMOKE_TRAIN)
  _check_predictions_and_benchmark(
      os.path.join(snapshot_dir, 'results', 'val'), gt_dir)


_write_recorder = stand_ins.write_stand_in_python


def _write_fake_voc(tmp_path):
  """Folders and (empty) list files the input checks look for."""
  dataroot = tmp_path / 'datasets'
  (dataroot / 'VOCdevkit' / 'VOC2012' / 'segcls').mkdir(parents=True)
  lists = tmp_path / 'lists'
  lists.mkdir()
  for split in ('train+', 'train', 'val'):
    (lists / (split + '.txt')).write_text('')
  ckpt = tmp_path / 'resnet_v1_101.ckpt'
  ckpt.write_text('')
  return str(dataroot), str(lists), str(ckpt)


def _dry_run(script, tmp_path):
  """Runs the full (non-smoke) pipeline with the recorder as python.

  Returns:
    A list of (script file name, {flag: value or True}) in call order.
  """
  dataroot, lists, ckpt = _write_fake_voc(tmp_path)
  log = str(tmp_path / 'calls.jsonl')
  recorder = str(tmp_path / 'python')
  _write_recorder(recorder, log)
  result = _run(script, timeout=60, DATAROOT=dataroot, LIST_DIR=lists,
                SNAPSHOT_ROOT=str(tmp_path / 'snapshots'),
                IMAGENET_CKPT=ckpt, PYTHON=recorder)
  assert result.returncode == 0, result.stderr[-3000:]
  calls = []
  for line in open(log):
    argv = json.loads(line)
    flags, i = {}, 1
    while i < len(argv):
      assert argv[i].startswith('--'), argv
      if i + 1 < len(argv) and not argv[i + 1].startswith('--'):
        flags[argv[i][2:]] = argv[i + 1]
        i += 2
      else:
        flags[argv[i][2:]] = True
        i += 1
    calls.append((os.path.basename(argv[0]), flags))
  return calls, dataroot, lists, ckpt


def _format(value, context):
  return value.format(**context) if isinstance(value, str) else value


def _same_value(actual, expected):
  if actual == expected:
    return True
  try:  # 2e-3 and 0.002 are the same learning rate.
    return float(actual) == pytest.approx(float(expected), rel=1e-12)
  except (TypeError, ValueError):
    return False


def _check_against_original(script, tmp_path):
  """Runs the recipe dry and compares every step with the original's."""
  calls, dataroot, lists, ckpt = _dry_run(script, tmp_path)
  expected = original_recipes.RECIPES[script]
  assert [c[0] for c in calls] == [
      name or c[0] for (name, _), c in zip(expected, calls)], calls
  assert len(calls) == len(expected)
  first_train = next(flags for name, flags in calls if name.startswith(
      'train_segsort'))
  snap = first_train['snapshot_dir']
  if snap.endswith('/stage1'):
    snap = snap[:-len('/stage1')]
  assert snap.startswith(str(tmp_path / 'snapshots' / 'voc12'))
  context = dict(data=dataroot + '/VOCdevkit', lists=lists, ckpt=ckpt,
                 snap=snap)
  for (name, flags), (original_name, settings) in zip(calls, expected):
    if original_name is None:
      continue  # A step new here.
    for flag, setting in settings.items():
      want = _format(setting.expected, context)
      where = '%s %s: original %s%s' % (
          name, flag, setting.source,
          '' if setting.now is original_recipes.SAME else
          ', passed here: %r (%s)' % (setting.now, setting.why))
      if want is None:
        assert flag not in flags, where
      else:
        assert _same_value(flags.get(flag), want), (where, flags.get(flag))
    for flag in set(flags) - set(settings):
      assert flag in original_recipes.NEW_FLAGS, (name, flag)
      want = original_recipes.NEW_FLAGS[flag]
      if flag == 'output_json':
        want = want.format(save_dir=flags['pred_dir'].rstrip('/')[
            :-len('/gray')])
      assert _same_value(flags[flag], want), (name, flag, flags[flag])
  return calls, dataroot, lists


@pytest.mark.parametrize('script', SCRIPTS)
def test_full_pipeline_settings_are_the_originals(tmp_path, script):
  """Every step the recipe runs by default, every flag it passes: the
  original recipe's value (tests/original_recipes.py cites each one by
  file:line), or a difference README lists; flags new here have fixed
  values."""
  calls, dataroot, lists = _check_against_original(script, tmp_path)
  # The run above sets them; by default they are the original's paths.
  text = open(os.path.join(SCRIPT_DIR, script)).read()
  assert 'LIST_DIR=${LIST_DIR:-dataset/voc12}\n' in text
  assert ('IMAGENET_CKPT=${IMAGENET_CKPT-snapshots/imagenet/trained/'
          'resnet_v1_101.ckpt}\n') in text
  if script == 'train_segsort_unsup.sh':
    # HED contours, then the HED-owt-ucm masks of train+, are made first
    # (existing ones kept).
    (contour_name, contours), (name, overseg) = calls[:2]
    assert contour_name == 'make_contours.py'
    assert name == 'make_oversegmentation.py'
    contour_dir = dataroot + '/VOCdevkit/VOC2012/hed_contours'
    for step in (contours, overseg):
      assert step['data_list'] == lists + '/train+.txt'
      assert step['data_dir'] == dataroot + '/VOCdevkit/'
      assert step['contour_dir'] == contour_dir
      assert 'overwrite' not in step
    assert overseg['watershed'] == 'oriented'
    assert overseg['threshold'] == '0.2'


def test_toggles_skip_steps(tmp_path):
  """IS_* from the environment switch steps off; IS_OVERSEG=0 skips the
  masks."""
  dataroot, lists, ckpt = _write_fake_voc(tmp_path)
  log = str(tmp_path / 'calls.jsonl')
  recorder = str(tmp_path / 'python')
  _write_recorder(recorder, log)
  result = _run('train_segsort_unsup.sh', timeout=60, DATAROOT=dataroot,
                LIST_DIR=lists, SNAPSHOT_ROOT=str(tmp_path / 'snapshots'),
                IMAGENET_CKPT=ckpt, PYTHON=recorder, IS_OVERSEG='0',
                IS_TRAIN='0', IS_BENCHMARK='0')
  assert result.returncode == 0, result.stderr
  called = [os.path.basename(json.loads(line)[0]) for line in open(log)]
  assert called == ['extract_prototypes.py', 'inference_segsort_msc.py']


@pytest.mark.parametrize('way', ['bash', 'plain', 'strict'])
@pytest.mark.parametrize('script', SCRIPTS)
def test_fails_fast_without_data(tmp_path, script, way):
  """No DATAROOT, no lists: status 1 with the fix, and no Python started.

  Run with bash, or sourced from a caller's shell (plain, or under `set
  -euo pipefail`): the caller's next line runs and sees status 1; its
  options, directory, variables and functions are those it had.
  """
  marker = tmp_path / 'python_was_called'
  fake_python = tmp_path / 'python'
  fake_python.write_text('#!/bin/sh\ntouch %s\n' % marker)
  fake_python.chmod(0o755)
  dataroot = str(tmp_path / 'no_such_datasets')
  lists = str(tmp_path / 'no_lists')
  settings = dict(DATAROOT=dataroot, LIST_DIR=lists,
                  SNAPSHOT_ROOT=str(tmp_path / 'snapshots'),
                  IMAGENET_CKPT=str(tmp_path / 'no.ckpt'),
                  PYTHON=str(fake_python))
  if way == 'bash':
    result = _run(script, timeout=30, **settings)
    status, message = result.returncode, result.stderr
  else:
    run = _source(script, tmp_path, timeout=30, caller=way, **settings)
    status, message = run.status, run.stderr
    assert run.options_kept and run.cwd_kept and not run.leaked, run
  assert status == 1
  # Named by the recipe's own file name, however it was started.
  assert message.startswith('error: %s: nothing was run, missing:' % script)
  assert dataroot + '/VOCdevkit' in message
  assert lists + '/train+.txt' in message and lists + '/val.txt' in message
  assert str(tmp_path / 'no.ckpt') in message
  assert 'make_voc_lists.py' in message and 'README' in message
  assert 'bash bashscripts/voc12/%s' % script in message
  assert not marker.exists()
  assert not (tmp_path / 'snapshots').exists()


@pytest.mark.parametrize('script', SCRIPTS)
def test_smoke_sourced_runs_what_bash_runs(tmp_path, script):
  """SMOKE=1 sourced and run with bash: the same steps with the same flags.

  Python is the recorder here, except for the synthetic dataset, made for
  real; the steps themselves run in test_smoke_supervised (with bash) and
  test_smoke_unsupervised (sourced).
  """
  calls = {}
  for way in ('bash', 'source'):
    folder = tmp_path / way
    folder.mkdir()
    log = str(folder / 'calls.jsonl')
    recorder = str(folder / 'python')
    _write_recorder(recorder, log, run=('make_synthetic_dataset.py',))
    settings = dict(SMOKE='1', SMOKE_DIR=str(folder / 'smoke'),
                    PYTHON=recorder)
    if way == 'bash':
      result = _run(script, timeout=120, **settings)
      assert result.returncode == 0, result.stderr[-3000:]
    else:
      run = _source(script, folder, timeout=120, **settings)
      assert run.status == 0, run.stderr[-3000:]
      assert run.options_kept and run.cwd_kept and not run.leaked, run
    calls[way] = [json.loads(line) for line in open(log)]
  bash_dir = str(tmp_path / 'bash' / 'smoke')
  sourced_dir = str(tmp_path / 'source' / 'smoke')
  assert calls['source'] == [[arg.replace(bash_dir, sourced_dir)
                              for arg in argv] for argv in calls['bash']]
  names = [os.path.basename(argv[0]) for argv in calls['bash']]
  assert names[0] == 'make_synthetic_dataset.py'
  assert names[-1] == 'benchmark_by_mIoU.py'
  steps = len(original_recipes.RECIPES[script])
  if script == 'train_segsort_unsup.sh':
    # SMOKE makes the masks with the colour-gradient detector: no HED
    # contour step.
    assert 'make_contours.py' not in names
    steps -= 1
  assert len(names) == 1 + steps


def test_fails_fast_names_only_what_is_missing(tmp_path):
  """Data and lists present, ImageNet checkpoint absent: only it is named;
  with training off it is not needed."""
  dataroot, lists, _ = _write_fake_voc(tmp_path)
  missing_ckpt = str(tmp_path / 'absent' / 'resnet_v1_101.ckpt')
  marker = tmp_path / 'python_was_called'
  fake_python = tmp_path / 'fake_python'
  fake_python.write_text('#!/bin/sh\ntouch %s\n' % marker)
  fake_python.chmod(0o755)
  env = dict(DATAROOT=dataroot, LIST_DIR=lists,
             SNAPSHOT_ROOT=str(tmp_path / 'snapshots'),
             IMAGENET_CKPT=missing_ckpt, PYTHON=str(fake_python))
  result = _run('train_segsort.sh', timeout=30, **env)
  assert result.returncode == 1
  assert missing_ckpt in result.stderr
  assert 'list file' not in result.stderr and 'VOCdevkit folder' not in (
      result.stderr)
  assert not marker.exists()
  # Without stage 1 training the checkpoint is not needed; the stand-in
  # python then runs (and the benchmark finds no predictions).
  result = _run('train_segsort.sh', timeout=30, IS_TRAIN_1='0', **env)
  assert missing_ckpt not in result.stderr
  assert marker.exists()


def test_unsup_masks_from_the_colour_gradient(tmp_path):
  """MASKS=gradient-ucm: no HED, the built-in detector; a wrong name stops
  the script before any step."""
  dataroot, lists, ckpt = _write_fake_voc(tmp_path)
  log = str(tmp_path / 'calls.jsonl')
  recorder = str(tmp_path / 'python')
  _write_recorder(recorder, log)
  env = dict(DATAROOT=dataroot, LIST_DIR=lists,
             SNAPSHOT_ROOT=str(tmp_path / 'snapshots'), IMAGENET_CKPT=ckpt,
             PYTHON=recorder, IS_TRAIN='0', IS_PROTOTYPE='0',
             IS_INFERENCE_MSC='0', IS_BENCHMARK='0')
  result = _run('train_segsort_unsup.sh', timeout=60, MASKS='gradient-ucm',
                **env)
  assert result.returncode == 0, result.stderr
  calls = [json.loads(line) for line in open(log)]
  assert [os.path.basename(c[0]) for c in calls] == [
      'make_oversegmentation.py']
  assert '--contour_dir' not in calls[0]
  result = _run('train_segsort_unsup.sh', timeout=60, MASKS='hed', **env)
  assert result.returncode == 1 and 'MASKS must be' in result.stderr
  assert len(open(log).readlines()) == 1
