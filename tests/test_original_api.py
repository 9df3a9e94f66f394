"""The original release's library functions, by name and call shape.

Each is checked against a plain NumPy computation (tests/segsort_reference.py
or a few lines here) on tiny inputs.
"""
import argparse
import os

import numpy as np

from utils import colormaps
from utils import general
from utils import metrics


def test_decode_labels_paints_with_the_voc_palette():
  labels = np.array([[[0, 1], [15, 255]], [[2, 2], [0, 20]]])[..., None]
  painted = general.decode_labels(labels, num_classes=21)
  assert painted.shape == (2, 2, 2, 3) and painted.dtype == np.uint8
  palette = colormaps.get_voc_colormap()
  np.testing.assert_array_equal(painted, palette[labels[..., 0]])
  # VOC: background black, aeroplane (1) dark red, person (15) (192,128,128).
  assert painted[0, 0, 1].tolist() == [128, 0, 0]
  assert painted[0, 1, 0].tolist() == [192, 128, 128]


def test_inv_preprocess_adds_the_mean_back():
  mean = np.array([122.675, 116.669, 104.008])
  pixels = np.array([[0, 1, 2], [200, 50, 9]], np.float64)
  imgs = (pixels - mean)[None, None].astype(np.float32)  # [1, 1, 2, 3]
  restored = general.inv_preprocess(imgs, mean)
  assert restored.dtype == np.uint8
  np.testing.assert_array_equal(restored[0, 0], pixels)


def test_snapshot_arg_writes_the_config(tmp_path, capsys):
  args = argparse.Namespace(snapshot_dir=str(tmp_path / 'snap'),
                            learning_rate=2.5e-4, batch_size=8)
  path = general.snapshot_arg(args)
  assert path == os.path.join(str(tmp_path / 'snap'), 'config')
  text = open(path).read()
  assert 'learning_rate: 0.00025' in text and 'batch_size: 8' in text
  assert '| batch_size = 8' in capsys.readouterr().out


def test_iou_stats_against_hand_counts():
  pred = np.array([[0, 1, 1], [2, 2, 255], [1, 0, 0]])
  target = np.array([[0, 1, 2], [2, 2, 2], [255, 0, 1]])
  tp_fn, tp_fp, tp = metrics.iou_stats(pred, target, num_classes=3)
  # Counted pixels: target != 255 (8 of 9). Class 0: target at (0,0),
  # (2,1); class 1: (0,1), (2,2); class 2: (0,2), (1,0), (1,1), (1,2).
  assert tp_fn.tolist() == [2, 2, 4]
  # Predictions on counted pixels: 0,1,1,2,2,255,0,0 (255 adds nowhere).
  assert tp_fp.tolist() == [3, 2, 2]
  assert tp.tolist() == [2, 1, 2]
  # The same from the confusion matrix.
  cm = metrics.confusion_matrix(np.where(pred == 255, 0, pred), target, 3)
  assert np.diag(cm).tolist() == tp.tolist()


def test_accuracy_is_the_fraction_of_equal_elements():
  pred = np.array([1, 2, 3, 4])
  assert metrics.accuracy(pred, np.array([1, 0, 3, 0])) == 0.5
  grid = np.array([[1, 1, 1], [0, 0, 0]])
  assert metrics.accuracy(grid, np.ones((2, 3))) == 0.5
