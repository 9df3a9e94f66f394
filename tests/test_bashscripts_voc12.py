"""The VOC 2012 pipelines in bashscripts/voc12.

Three kinds of runs, all through `bash` as a user runs them:

- SMOKE=1: every step on a tiny synthetic dataset (the scripts generate it);
  the outputs must exist and the benchmark's numbers must equal a NumPy
  recomputation from the written predictions.
- A dry run of the full pipeline: PYTHON points to a stand-in that records
  its command line, so the real settings (batch 8, 336x336, 30k steps, ...)
  are checked against SPEC without training anything.
- No data: the script stops at once with a message naming what is missing
  and how to build it, before any Python starts.
"""
import glob
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

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


def _run(script, timeout, **env_vars):
  env = {k: v for k, v in os.environ.items()
         if k not in SCRIPT_ENV and not k.startswith('IS_')}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  env.update(env_vars)
  return subprocess.run(['bash', os.path.join(SCRIPT_DIR, script)],
                        env=env, capture_output=True, text=True,
                        timeout=timeout)


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


def _run_smoke(script, tmp_path):
  result = _run(script, timeout=600, SMOKE='1', SMOKE_DIR=str(tmp_path),
                PYTHON=sys.executable)
  assert result.returncode == 0, (result.stdout[-2000:] +
                                  result.stderr[-4000:])
  data_dir = os.path.join(str(tmp_path), 'data', 'VOCdevkit')
  gt_dir = os.path.join(data_dir, 'VOC2012', 'segcls')
  for split, count in (('train+', SMOKE_TRAIN), ('train', SMOKE_TRAIN),
                       ('val', SMOKE_VAL)):
    lines = open(os.path.join(str(tmp_path), 'lists',
                              split + '.txt')).read().split('\n')[:-1]
    assert len(lines) == count
    for line in lines:  # the format make_voc_lists.py writes
      image, label = line.split(' ')
      assert image.startswith('VOC2012/JPEGImages/')
      assert label.startswith('VOC2012/segcls/')
      assert os.path.exists(os.path.join(data_dir, image))
  return gt_dir


@pytest.mark.parametrize('script,num_gpu', [('train_segsort.sh', 1),
                                            ('train_segsort_mgpu.sh', 2)])
def test_smoke_supervised(tmp_path, script, num_gpu):
  """Both stages: checkpoints, configs, prototypes, predictions, mIoU."""
  gt_dir = _run_smoke(script, tmp_path)
  snapshot_dir = _only_dir(os.path.join(str(tmp_path), 'snapshots', 'voc12',
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
  if num_gpu == 1:
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
  """Masks, checkpoint, prototypes, multi-scale predictions, mIoU."""
  gt_dir = _run_smoke('train_segsort_unsup.sh', tmp_path)
  hed_dir = os.path.join(str(tmp_path), 'data', 'VOCdevkit', 'VOC2012', 'hed')
  masks = sorted(os.listdir(hed_dir))
  assert masks == ['train_%06d.png' % i for i in range(SMOKE_TRAIN)]
  for name in masks:
    mask = np.array(Image.open(os.path.join(hed_dir, name)))
    assert mask.shape == (SMOKE_HEIGHT, SMOKE_WIDTH) and mask.dtype == np.uint8
  snapshot_dir = _only_dir(os.path.join(
      str(tmp_path), 'snapshots', 'voc12', 'unsup_segsort',
      'unsup_segsort_pspnet_*'))
  _check_checkpoint(snapshot_dir)
  config = _read_config(snapshot_dir)
  assert config['data_list'].endswith('/train+.txt')
  assert config['not_restore_classifier'] == 'True'
  _check_prototypes(os.path.join(snapshot_dir, 'results', 'train+',
                                 'prototypes'), SMOKE_TRAIN)
  _check_predictions_and_benchmark(
      os.path.join(snapshot_dir, 'results', 'val'), gt_dir)


def _write_recorder(path, log_path):
  """A stand-in for python: logs its argv as one JSON line, and creates
  SAVE_DIR/gray for inference steps, so that the benchmark step finds it."""
  with open(path, 'w') as f:
    f.write('#!%s\n' % sys.executable)
    f.write('import json, os, sys\n'
            'args = sys.argv[1:]\n'
            'with open(%r, "a") as f:\n'
            '  f.write(json.dumps(args) + "\\n")\n'
            'if "--save_dir" in args:\n'
            '  save_dir = args[args.index("--save_dir") + 1]\n'
            '  os.makedirs(os.path.join(save_dir, "gray"), exist_ok=True)\n'
            % log_path)
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


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


def _check_train(flags, batch, size, steps, lr, data_list, restore_from,
                 restore_classifier):
  assert flags['batch_size'] == batch
  assert flags['input_size'] == size
  assert flags['num_steps'] == steps
  assert float(flags['learning_rate']) == pytest.approx(lr)
  assert float(flags['weight_decay']) == pytest.approx(5e-4)
  assert float(flags['concentration']) == 10
  assert flags['embedding_dim'] == '32'
  assert flags['num_classes'] == '21'
  assert flags['iter_size'] == '1'
  assert flags['data_list'] == data_list
  assert flags['restore_from'] == restore_from
  assert flags['backbone'] == 'resnet_v1_101'
  assert flags['backbone_variant'] == 'original'
  assert float(flags['width_multiplier']) == 1.0
  for flag in ('random_mirror', 'random_scale', 'random_crop', 'is_training'):
    assert flags[flag] is True
  assert ('not_restore_classifier' in flags) == (not restore_classifier)


def _check_segsort(flags, banks=True):
  if banks:
    assert flags['num_banks'] == '2'
  assert flags['num_clusters'] == '5'
  assert flags['kmeans_iterations'] == '10'


def _check_inference(flags, data_list, restore_from, prototype_dir, k,
                     multi_scale):
  assert flags['data_list'] == data_list
  assert flags['restore_from'] == restore_from
  assert flags['prototype_dir'] == prototype_dir
  assert flags['k_in_nearest_neighbors'] == k
  assert flags['strides'] == '320,320'
  assert flags['input_size'] == ('480,480' if multi_scale else '720,720')
  assert ('flip_aug' in flags) == ('scale_aug' in flags) == multi_scale
  assert flags['backbone_variant'] == 'original'
  _check_segsort(flags, banks=False)


def _check_prototype_step(flags, data_list, restore_from):
  assert flags['data_list'] == data_list
  assert flags['restore_from'] == restore_from
  assert flags['input_size'] == '480,480'
  assert flags['strides'] == '320,320'
  assert flags['ignore_label'] == '255'
  _check_segsort(flags, banks=False)
  return os.path.join(flags['save_dir'], 'prototypes')


def _check_benchmark(flags, dataroot, save_dir):
  assert flags['pred_dir'] == save_dir + '/gray/'
  assert flags['gt_dir'] == dataroot + '/VOCdevkit/VOC2012/segcls/'
  assert flags['num_classes'] == '21'
  assert flags['allow_extra_gt'] is True


def test_full_pipeline_settings_train_segsort(tmp_path):
  """SPEC: stage 1 on train+ (batch 8, 336x336, 30k steps, lr 2e-3, ...),
  prototypes of train+, single scale at 720; stage 2 on train at 2e-4 from
  stage 1, prototypes of train, single and multi-scale; benchmarks."""
  calls, dataroot, lists, ckpt = _dry_run('train_segsort.sh', tmp_path)
  assert [c[0] for c in calls] == [
      'train_segsort.py', 'extract_prototypes.py', 'inference_segsort.py',
      'benchmark_by_mIoU.py', 'train_segsort.py', 'extract_prototypes.py',
      'inference_segsort.py', 'inference_segsort_msc.py',
      'benchmark_by_mIoU.py', 'benchmark_by_mIoU.py']
  (_, train1), (_, proto1), (_, infer1), (_, bench1) = calls[:4]
  (_, train2), (_, proto2), (_, infer2), (_, msc2) = calls[4:8]
  stage1, stage2 = train1['snapshot_dir'], train2['snapshot_dir']
  assert stage1.startswith(str(tmp_path / 'snapshots' / 'voc12' / 'segsort'))
  assert stage1.endswith('/stage1') and stage2.endswith('/stage2')
  ckpt1 = stage1 + '/model.ckpt-30000'
  _check_train(train1, '8', '336,336', '30000', 2e-3,
               lists + '/train+.txt', ckpt, restore_classifier=False)
  _check_train(train2, '8', '336,336', '30000', 2e-4,
               lists + '/train.txt', ckpt1, restore_classifier=True)
  for flags in (train1, train2):
    _check_segsort(flags)
  prototypes1 = _check_prototype_step(proto1, lists + '/train+.txt', ckpt1)
  prototypes2 = _check_prototype_step(proto2, lists + '/train.txt',
                                      stage2 + '/model.ckpt-30000')
  _check_inference(infer1, lists + '/val.txt', ckpt1, prototypes1, '15',
                   multi_scale=False)
  _check_inference(infer2, lists + '/val.txt', stage2 + '/model.ckpt-30000',
                   prototypes2, '15', multi_scale=False)
  _check_inference(msc2, lists + '/val.txt', stage2 + '/model.ckpt-30000',
                   prototypes2, '15', multi_scale=True)
  _check_benchmark(bench1, dataroot, infer1['save_dir'])
  _check_benchmark(calls[8][1], dataroot, infer2['save_dir'])
  _check_benchmark(calls[9][1], dataroot, msc2['save_dir'])
  assert infer2['save_dir'] != msc2['save_dir']


def test_full_pipeline_settings_train_segsort_mgpu(tmp_path):
  """SPEC: batch 16 at 480x480, 100k + 30k steps, k 21, several GPUs."""
  calls, dataroot, lists, ckpt = _dry_run('train_segsort_mgpu.sh', tmp_path)
  assert [c[0] for c in calls] == [
      'train_segsort_mgpu.py', 'extract_prototypes.py',
      'inference_segsort.py', 'benchmark_by_mIoU.py',
      'train_segsort_mgpu.py', 'extract_prototypes.py',
      'inference_segsort_msc.py', 'benchmark_by_mIoU.py']
  (_, train1), (_, proto1), (_, infer1), (_, bench1) = calls[:4]
  (_, train2), (_, proto2), (_, msc2), (_, bench2) = calls[4:]
  stage1, stage2 = train1['snapshot_dir'], train2['snapshot_dir']
  ckpt1, ckpt2 = stage1 + '/model.ckpt-100000', stage2 + '/model.ckpt-30000'
  _check_train(train1, '16', '480,480', '100000', 2e-3,
               lists + '/train+.txt', ckpt, restore_classifier=False)
  _check_train(train2, '16', '480,480', '30000', 2e-3,
               lists + '/train.txt', ckpt1, restore_classifier=True)
  for flags in (train1, train2):
    _check_segsort(flags)
    # The original's 4 towers of 4 images (its fifth GPU held the loss).
    assert flags['num_gpu'] == '4'
    assert int(flags['batch_size']) % int(flags['num_gpu']) == 0
  assert train1['save_pred_every'] == '100000'
  assert train2['save_pred_every'] == '10000'
  prototypes1 = _check_prototype_step(proto1, lists + '/train+.txt', ckpt1)
  prototypes2 = _check_prototype_step(proto2, lists + '/train.txt', ckpt2)
  _check_inference(infer1, lists + '/val.txt', ckpt1, prototypes1, '21',
                   multi_scale=False)
  _check_inference(msc2, lists + '/val.txt', ckpt2, prototypes2, '21',
                   multi_scale=True)
  _check_benchmark(bench1, dataroot, infer1['save_dir'])
  _check_benchmark(bench2, dataroot, msc2['save_dir'])


def test_full_pipeline_settings_train_segsort_unsup(tmp_path):
  """SPEC: HED-owt-ucm oversegmentation of train+, batch 8 at 336x336, 10k
  steps, lr 2e-3, prototypes of train+, multi-scale inference with k 15."""
  calls, dataroot, lists, ckpt = _dry_run('train_segsort_unsup.sh', tmp_path)
  assert [c[0] for c in calls] == [
      'make_contours.py', 'make_oversegmentation.py',
      'train_segsort_unsup.py', 'extract_prototypes.py',
      'inference_segsort_msc.py', 'benchmark_by_mIoU.py']
  ((_, contours), (_, overseg), (_, train), (_, proto), (_, msc),
   (_, bench)) = calls
  contour_dir = dataroot + '/VOCdevkit/VOC2012/hed_contours'
  for step in (contours, overseg):
    assert step['data_list'] == lists + '/train+.txt'
    assert step['data_dir'] == dataroot + '/VOCdevkit/'
    assert step['contour_dir'] == contour_dir
    assert 'overwrite' not in step
  assert overseg['watershed'] == 'oriented'
  assert overseg['threshold'] == '0.2'
  snapshot_dir = train['snapshot_dir']
  assert snapshot_dir.startswith(
      str(tmp_path / 'snapshots' / 'voc12' / 'unsup_segsort'))
  _check_train(train, '8', '336,336', '10000', 2e-3, lists + '/train+.txt',
               ckpt, restore_classifier=False)
  prototypes = _check_prototype_step(proto, lists + '/train+.txt',
                                     snapshot_dir + '/model.ckpt-10000')
  _check_inference(msc, lists + '/val.txt', snapshot_dir + '/model.ckpt-10000',
                   prototypes, '15', multi_scale=True)
  _check_benchmark(bench, dataroot, msc['save_dir'])


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


@pytest.mark.parametrize('script', SCRIPTS)
def test_fails_fast_without_data(tmp_path, script):
  """No DATAROOT, no lists: exit 1 with the fix, and no Python started."""
  marker = tmp_path / 'python_was_called'
  fake_python = tmp_path / 'python'
  fake_python.write_text('#!/bin/sh\ntouch %s\n' % marker)
  fake_python.chmod(0o755)
  dataroot = str(tmp_path / 'no_such_datasets')
  lists = str(tmp_path / 'no_lists')
  result = _run(script, timeout=30, DATAROOT=dataroot, LIST_DIR=lists,
                SNAPSHOT_ROOT=str(tmp_path / 'snapshots'),
                IMAGENET_CKPT=str(tmp_path / 'no.ckpt'),
                PYTHON=str(fake_python))
  assert result.returncode == 1
  message = result.stderr
  assert dataroot + '/VOCdevkit' in message
  assert lists + '/train+.txt' in message and lists + '/val.txt' in message
  assert str(tmp_path / 'no.ckpt') in message
  assert 'make_voc_lists.py' in message and 'README' in message
  assert not marker.exists()
  assert not (tmp_path / 'snapshots').exists()


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
