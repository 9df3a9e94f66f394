"""Validation while training: val mIoU as inference computes it, best/."""
import json
import os
import re

import pytest
import tensorflow.compat.v1 as tf

from pyscripts.benchmark import benchmark_by_mIoU
from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference_segsort
from pyscripts.train import train as train_softmax
from pyscripts.train import train_segsort
from seg_models import train_log
from seg_models import validation
from tests import tiny_data

NUM_VAL, NUM_TRAIN = 3, 2


def _head(src, dst, n):
  with open(src) as f:
    lines = f.readlines()[:n]
  with open(dst, 'w') as f:
    f.writelines(lines)
  return dst


def test_segsort_validation_is_inference_and_keeps_the_best(tiny_dataset,
                                                           tmp_path):
  snap = str(tmp_path / 'snap')
  val_list = os.path.join(tiny_dataset, 'val.txt')
  train_segsort.main(tiny_data.train_args(
      tiny_dataset, snap, backbone='resnet_v1_50', num_steps=2,
      save_pred_every=100, val_data_list=val_list, val_every=1,
      val_max_images=NUM_VAL, val_train_images=NUM_TRAIN))
  # A checkpoint for each validation.
  assert os.path.exists(os.path.join(snap, 'model.ckpt-1.index'))
  log = open(os.path.join(snap, train_log.LOG_NAME)).read()
  lines = re.findall(r'Validation at step (\d): mIoU ([0-9.]+)%.*\((\d) '
                     r'images, (\d+) prototypes\) in [0-9.]+ s', log)
  assert [(step, images) for step, _, images, _ in lines] == [
      ('1', str(NUM_VAL)), ('2', str(NUM_VAL))]
  mious = {int(step): float(miou) for step, miou, _, _ in lines}
  events = dict(tiny_data.read_scalars(snap, 'val/miou'))
  assert sorted(events) == [1, 2]
  for step in events:
    assert events[step] == pytest.approx(mious[step], abs=0.01)

  best_dir = os.path.join(snap, validation.BEST_SUBDIR)
  with open(os.path.join(best_dir, validation.BEST_RECORD)) as f:
    best = json.load(f)
  assert best['miou'] == pytest.approx(max(mious.values()), abs=0.01)
  assert best['num_images'] == NUM_VAL and best['val_data_list'] == val_list
  prefix = os.path.join(best_dir, 'model.ckpt-%d' % best['step'])
  assert os.path.exists(prefix + '.index')
  assert tf.train.latest_checkpoint(best_dir) == prefix
  assert os.path.exists(os.path.join(best_dir, 'model.json'))

  # The same number from the inference scripts on the best checkpoint, with
  # no model flag (best/model.json) and the validation's settings.
  window = ['--input_size', '%d,%d' % (tiny_data.HEIGHT, tiny_data.WIDTH),
            '--strides', '%d,%d' % (tiny_data.HEIGHT, tiny_data.WIDTH),
            '--num_clusters', '2', '--kmeans_iterations', '3']
  train_list = _head(os.path.join(tiny_dataset, 'train.txt'),
                     str(tmp_path / 'train_head.txt'), NUM_TRAIN)
  val_head = _head(val_list, str(tmp_path / 'val_head.txt'), NUM_VAL)
  results = str(tmp_path / 'results')
  extract_prototypes.main(
      ['--data_dir', tiny_dataset, '--data_list', train_list,
       '--restore_from', best_dir, '--save_dir', results + '/train'] + window)
  inference_segsort.main(
      ['--data_dir', tiny_dataset, '--data_list', val_head,
       '--restore_from', prefix, '--save_dir', results + '/val',
       '--prototype_dir', results + '/train/prototypes'] + window)
  scores = benchmark_by_mIoU.main(
      ['--pred_dir', results + '/val/gray', '--data_dir', tiny_dataset,
       '--data_list', val_head, '--num_classes', str(tiny_data.NUM_CLASSES)])
  assert scores['miou'] == pytest.approx(best['miou'], abs=1e-6)
  assert scores['pixel_accuracy'] == pytest.approx(best['pixel_accuracy'],
                                                   abs=1e-6)


def test_softmax_validation(tiny_dataset, tmp_path):
  snap = str(tmp_path / 'snap')
  train_softmax.main(tiny_data.train_args(
      tiny_dataset, snap, segsort=False, backbone='resnet_v1_50',
      num_steps=1, val_data_list=os.path.join(tiny_dataset, 'val.txt'),
      val_every=5, val_max_images=2))
  # At the end of the run (step 1 < --val_every).
  with open(os.path.join(snap, validation.BEST_SUBDIR,
                         validation.BEST_RECORD)) as f:
    best = json.load(f)
  assert best['step'] == 1 and best['num_images'] == 2
  assert 0.0 <= best['miou'] <= 100.0


def test_a_bad_validation_list_fails_before_training(tiny_dataset, tmp_path,
                                                     capsys):
  snap = str(tmp_path / 'snap')
  with pytest.raises(SystemExit) as exit_info:
    train_segsort.main(tiny_data.train_args(
        tiny_dataset, snap, num_steps=1,
        val_data_list=str(tmp_path / 'missing.txt')))
  assert exit_info.value.code == 1
  assert 'missing.txt' in capsys.readouterr().err
  assert not os.path.exists(os.path.join(snap, 'model.ckpt-1.index'))
