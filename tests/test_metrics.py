"""IoU statistics and the benchmark script, against hand-computed numbers."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from utils import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'pyscripts', 'benchmark', 'benchmark_by_mIoU.py')

# Image A (3 classes + one ignored pixel).
GT_A = np.array([[0, 0, 1],
                 [1, 1, 2],
                 [2, 2, 255]], np.uint8)
PRED_A = np.array([[0, 1, 1],
                   [1, 0, 2],
                   [2, 1, 0]], np.uint8)
# Counted (gt, pred) pairs: (0,0) (0,1) (1,1) (1,1) (1,0) (2,2) (2,2) (2,1);
# the pixel with gt 255 (pred 0) is not counted.
CM_A = np.array([[1, 1, 0],
                 [1, 2, 0],
                 [0, 1, 2]])
# TP = (1, 2, 2); FP + TP = column sums (2, 4, 2); FN + TP = row sums (2, 3, 3)
# IoU_0 = 1 / (2 + 2 - 1) = 1/3, IoU_1 = 2 / (4 + 3 - 2) = 2/5,
# IoU_2 = 2 / (2 + 3 - 2) = 2/3; mean = (1/3 + 2/5 + 2/3) / 3 = 7/15;
# pixel accuracy = 5 / 8.
IOU_A = [1 / 3, 2 / 5, 2 / 3]

# Image B adds class 3: counted pairs (3,3) (3,0) (0,0); gt 255 ignored.
GT_B = np.array([[3, 3],
                 [0, 255]], np.uint8)
PRED_B = np.array([[3, 0],
                   [0, 0]], np.uint8)
# A + B with 4 classes:
#   [[2, 1, 0, 0],
#    [1, 2, 0, 0],
#    [0, 1, 2, 0],
#    [1, 0, 0, 1]]
# TP = (2, 2, 2, 1), column sums (4, 4, 2, 1), row sums (3, 3, 3, 2):
# IoU = 2/5, 2/5, 2/3, 1/(1 + 2 - 1) = 1/2; mean = (2/5 + 2/5 + 2/3 + 1/2) / 4
# = 59/120; pixel accuracy = 7 / 11.
IOU_AB = [2 / 5, 2 / 5, 2 / 3, 1 / 2]
MIOU_AB = 59 / 120
ACC_AB = 7 / 11


def test_confusion_matrix_hand_computed():
  cm = metrics.confusion_matrix(PRED_A, GT_A, 3)
  np.testing.assert_array_equal(cm, CM_A)
  assert cm.dtype == np.int64
  np.testing.assert_allclose(metrics.iou_per_class(cm), IOU_A)
  assert metrics.mean_iou(cm) == pytest.approx(7 / 15)
  assert metrics.pixel_accuracy(cm) == pytest.approx(5 / 8)


def test_gt_outside_range_is_ignored():
  # Changing the predictions under the ignored pixel changes nothing, even to
  # an out-of-range id.
  pred = PRED_A.copy()
  pred[2, 2] = 200
  np.testing.assert_array_equal(metrics.confusion_matrix(pred, GT_A, 3), CM_A)
  # gt ids >= num_classes are ignored too: with 2 classes, class-2 pixels go.
  cm2 = metrics.confusion_matrix(PRED_A, GT_A, 2)
  np.testing.assert_array_equal(cm2, CM_A[:2, :2])


def test_absent_classes_excluded_from_mean():
  # With 6 classes, classes 3..5 appear in neither map: IoU NaN, mean 7/15
  # (the original's sum / num_classes would give 7/30).
  cm = metrics.confusion_matrix(PRED_A, GT_A, 6)
  iou = metrics.iou_per_class(cm)
  np.testing.assert_allclose(iou[:3], IOU_A)
  assert np.all(np.isnan(iou[3:]))
  assert metrics.mean_iou(cm) == pytest.approx(7 / 15)
  # A class only predicted (never in gt) counts, with IoU 0.
  cm = metrics.confusion_matrix(np.array([[1, 1]]), np.array([[1, 0]]), 2)
  np.testing.assert_allclose(metrics.iou_per_class(cm), [0.0, 0.5])
  assert metrics.mean_iou(cm) == pytest.approx(0.25)


def test_nothing_counted_gives_nan():
  cm = metrics.confusion_matrix(np.zeros((2, 2), int),
                                np.full((2, 2), 255), 3)
  assert cm.sum() == 0
  assert np.isnan(metrics.mean_iou(cm))
  assert np.isnan(metrics.pixel_accuracy(cm))


def test_accumulator_sums_images():
  acc = metrics.IouAccumulator(4)
  acc.update(PRED_A, GT_A)
  acc.update(PRED_B, GT_B)
  assert acc.num_images == 2
  np.testing.assert_allclose(acc.iou_per_class(), IOU_AB)
  assert acc.mean_iou() == pytest.approx(MIOU_AB)
  assert acc.pixel_accuracy() == pytest.approx(ACC_AB)
  results = acc.get_results(['a', 'b', 'c', 'd'])
  assert results['num_images'] == 2
  assert results['miou'] == pytest.approx(100 * MIOU_AB)
  assert results['pixel_accuracy'] == pytest.approx(100 * ACC_AB)
  assert list(results['per_class_iou']) == ['a', 'b', 'c', 'd']
  np.testing.assert_allclose(list(results['per_class_iou'].values()),
                             100 * np.array(IOU_AB))
  text = metrics.format_results(results)
  assert 'mean IOU: %.4f%%' % (100 * MIOU_AB) in text
  assert 'mean Pixel Acc: %.4f%%' % (100 * ACC_AB) in text


def test_confusion_matrix_matches_loop_reference():
  rng = np.random.RandomState(0)
  gt = rng.randint(0, 7, size=(9, 11))
  gt[rng.rand(9, 11) < 0.2] = 255
  pred = rng.randint(0, 5, size=(9, 11))
  reference = np.zeros((5, 5), np.int64)
  for g, p in zip(gt.ravel(), pred.ravel()):
    if g < 5:
      reference[g, p] += 1
  np.testing.assert_array_equal(metrics.confusion_matrix(pred, gt, 5),
                                reference)


def test_bad_inputs():
  with pytest.raises(ValueError, match='shape'):
    metrics.confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
  with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
    metrics.confusion_matrix(np.array([[5]]), np.array([[1]]), 3)
  with pytest.raises(ValueError, match='integer'):
    metrics.confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), int), 2)
  with pytest.raises(ValueError, match='num_classes'):
    metrics.IouAccumulator(0)
  with pytest.raises(ValueError, match='string_replace'):
    metrics.parse_string_replace('a,b,c')
  assert metrics.parse_string_replace(',') is None
  assert metrics.parse_string_replace('_pred,') == ('_pred', '')


def _write_png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.asarray(array, np.uint8), mode='L').save(path)


@pytest.fixture
def folders(tmp_path):
  pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
  _write_png(str(pred_dir / 'a_pred.png'), PRED_A)
  _write_png(str(pred_dir / 'b_pred.png'), PRED_B)
  _write_png(str(gt_dir / 'a.png'), GT_A)
  _write_png(str(gt_dir / 'b.png'), GT_B)
  return str(pred_dir), str(gt_dir)


def test_evaluate_folders(folders):
  pred_dir, gt_dir = folders
  acc = metrics.evaluate_folders(pred_dir, gt_dir, 4, '_pred,',
                                 show_progress=False)
  assert acc.num_images == 2
  assert acc.mean_iou() == pytest.approx(MIOU_AB)


def test_missing_ground_truth_names_file(folders):
  pred_dir, gt_dir = folders
  os.remove(os.path.join(gt_dir, 'b.png'))
  with pytest.raises(FileNotFoundError, match=r'b\.png'):
    metrics.evaluate_folders(pred_dir, gt_dir, 4, '_pred,',
                             show_progress=False)


def test_extra_ground_truth(folders):
  pred_dir, gt_dir = folders
  _write_png(os.path.join(gt_dir, 'c.png'), GT_B)
  with pytest.raises(ValueError, match=r'c\.png'):
    metrics.match_prediction_files(pred_dir, gt_dir, '_pred,')
  pairs = metrics.match_prediction_files(pred_dir, gt_dir, '_pred,',
                                         allow_extra_gt=True)
  assert [os.path.basename(g) for _, g in pairs] == ['a.png', 'b.png']


def test_shape_mismatch_names_file(folders):
  pred_dir, gt_dir = folders
  _write_png(os.path.join(gt_dir, 'b.png'), np.zeros((3, 3)))
  with pytest.raises(ValueError, match=r'b_pred\.png.*shape'):
    metrics.evaluate_folders(pred_dir, gt_dir, 4, '_pred,',
                             show_progress=False)


def _run_script(*flags):
  env = dict(os.environ)
  env.pop('PYTHONPATH', None)  # The script must find utils by itself.
  return subprocess.run([sys.executable, SCRIPT] + list(flags), cwd='/',
                        capture_output=True, text=True, env=env, timeout=120)


def test_script_output_and_json(folders, tmp_path):
  pred_dir, gt_dir = folders
  json_path = str(tmp_path / 'out' / 'results.json')
  proc = _run_script('--pred_dir', pred_dir, '--gt_dir', gt_dir,
                     '--num_classes', '21', '--string_replace', '_pred,',
                     '--output_json', json_path)
  assert proc.returncode == 0, proc.stderr
  # 21 classes: VOC names, classes 4..20 absent and left out of the mean.
  assert 'mean IOU: %.4f%%' % (100 * MIOU_AB) in proc.stdout
  assert 'mean Pixel Acc: %.4f%%' % (100 * ACC_AB) in proc.stdout
  assert 'aeroplane' in proc.stdout and 'tvmonitor' in proc.stdout
  with open(json_path) as f:
    results = json.load(f)
  assert results['num_images'] == 2
  assert results['miou'] == pytest.approx(100 * MIOU_AB)
  assert results['pixel_accuracy'] == pytest.approx(100 * ACC_AB)
  assert results['per_class_iou']['background'] == pytest.approx(40.0)
  assert results['per_class_iou']['bird'] == pytest.approx(50.0)  # Class 3.
  assert results['per_class_iou']['boat'] is None
  assert results['per_class_iou']['tvmonitor'] is None
  assert len(results['per_class_iou']) == 21


def test_script_missing_ground_truth_error(folders):
  pred_dir, gt_dir = folders
  proc = _run_script('--pred_dir', pred_dir, '--gt_dir', gt_dir,
                     '--num_classes', '4')  # No replacement: a_pred.png.
  assert proc.returncode != 0
  assert 'a_pred.png' in proc.stderr and 'no ground truth' in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_mean_std_over_seeds_and_its_text():
  values = [45.23, 45.35, 48.08]
  mean, std = metrics.mean_std(values)
  np.testing.assert_allclose(mean, np.mean(values))
  np.testing.assert_allclose(std, np.std(values, ddof=1))
  assert metrics.mean_std([40.0]) == (40.0, None)
  assert metrics.format_mean_std(mean, std) == '46.22 +- 1.61'
  assert metrics.format_mean_std(2.806, 2.02, signed=True) == '+2.81 +- 2.02'
  assert metrics.format_mean_std(-0.96, None, signed=True) == '-0.96'
