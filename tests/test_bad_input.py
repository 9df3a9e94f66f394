"""Bad input gets a named error before any work: labels beyond
--num_classes, truncated images, colliding outputs; prototype sets
survive a killed extraction."""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from pyscripts import script_glue
from pyscripts.train import train_segsort
from seg_models import image_reader
from seg_models import prototype_sets
from seg_models import trainer
from tests import tiny_data
from utils import metrics


def _opts(data_dir, snapshot_dir):
  args = train_segsort.get_arguments(tiny_data.train_args(
      data_dir, snapshot_dir))
  return script_glue.options_from_args(trainer.TrainOptions, args,
                                       show_progress=False)


def _copy_dataset(tiny_dataset, tmp_path):
  data_dir = str(tmp_path / 'data')
  shutil.copytree(tiny_dataset, data_dir)
  with open(os.path.join(data_dir, 'train.txt')) as f:
    first = f.readline().split()
  return data_dir, first


def test_label_ids_beyond_num_classes_are_named_before_training(
    tiny_dataset, tmp_path):
  data_dir, (_, label) = _copy_dataset(tiny_dataset, tmp_path)
  path = os.path.join(data_dir, label)
  pixels = np.array(Image.open(path))
  pixels[:2, :2] = 7
  pixels[2:4, :2] = 9
  Image.fromarray(pixels).save(path)
  opts = _opts(data_dir, str(tmp_path / 'snap'))
  with pytest.raises(image_reader.DataListError) as error:
    trainer.get_train_dataset(opts, trainer.LOSS_SEGSORT)
  assert path in str(error.value) and 'ids 7, 9 ' in str(error.value)
  # The unsupervised loss reads no labels.
  trainer.get_train_dataset(opts, trainer.LOSS_UNSUPERVISED)


def test_benchmark_refuses_ground_truth_beyond_num_classes(tmp_path):
  pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
  pred_dir.mkdir()
  gt_dir.mkdir()
  gt = np.array([[0, 1], [5, 255]], np.uint8)
  Image.fromarray(np.zeros_like(gt)).save(str(pred_dir / 'x.png'))
  Image.fromarray(gt).save(str(gt_dir / 'x.png'))
  with pytest.raises(ValueError, match=r'gt/x.png has ids 5,'):
    metrics.evaluate_folders(str(pred_dir), str(gt_dir), 2,
                             show_progress=False)
  assert metrics.evaluate_folders(str(pred_dir), str(gt_dir), 6,
                                  show_progress=False).mean_iou() < 1


def test_truncated_jpeg_is_named_before_training(tiny_dataset, tmp_path):
  data_dir, (image, _) = _copy_dataset(tiny_dataset, tmp_path)
  path = os.path.join(data_dir, image)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  opts = _opts(data_dir, str(tmp_path / 'snap'))
  with pytest.raises(image_reader.DataListError,
                     match='%s: image cannot be decoded' % path):
    trainer.get_train_dataset(opts, trainer.LOSS_SEGSORT)


def test_same_base_name_in_two_folders_is_refused(tmp_path):
  data_list = str(tmp_path / 'list.txt')
  with open(data_list, 'w') as f:
    f.write('d1/x.jpg\nd2/y.jpg\nd2/x.jpg\n')
  entries = image_reader.read_data_list(str(tmp_path), data_list)
  with pytest.raises(image_reader.DataListError) as error:
    image_reader.check_unique_names(entries, data_list)
  assert 'd1/x.jpg and %s' % os.path.join(str(tmp_path), 'd2/x.jpg') in \
      str(error.value)
  image_reader.check_unique_names(entries[:2], data_list)


def _dead_pid():
  process = subprocess.Popen([sys.executable, '-c', 'pass'])
  process.wait()
  return process.pid


def test_prototype_swap_survives_a_kill_between_renames(tmp_path):
  """The state a kill between the two renames leaves, then the next start."""
  folder = str(tmp_path / 'prototypes')
  features = np.eye(3, dtype=np.float32)
  prototype_sets.save_prototypes(folder, features, [0, 1, 2])
  pid = _dead_pid()
  staged = str(tmp_path / ('.prototypes.staging-%d' % pid))
  prototype_sets.save_prototypes(staged, features[:2], [0, 1])
  os.rename(folder, str(tmp_path / ('.prototypes.previous-%d' % pid)))
  loaded = prototype_sets.load_prototypes(folder)
  np.testing.assert_array_equal(loaded.labels, [0, 1, 2])
  assert os.listdir(str(tmp_path)) == ['prototypes']
  with pytest.warns(UserWarning, match='no prototype_index.json'):
    prototype_sets.load_prototypes(folder)
  prototype_sets.save_prototypes(folder, features[:2], [0, 1])
  assert prototype_sets.load_prototypes(folder).labels.tolist() == [0, 1]
  assert os.listdir(str(tmp_path)) == ['prototypes']
