"""IoU statistics for semantic segmentation (NumPy only).

Conventions: the confusion matrix has ground truth along rows and prediction
along columns, cm[g, p] = number of pixels of class g predicted as p.
For class c: TP = cm[c, c], FP = sum_g cm[g, c] - TP, FN = sum_p cm[c, p] - TP,
IoU_c = TP / (TP + FP + FN). Pixels whose ground truth is outside
[0, num_classes) (e.g. 255 = ignore) are not counted at all.

A prediction outside [0, num_classes) on a counted pixel is an error: it means
--num_classes is wrong or the files are not class-id maps, and silently
counting it would distort the numbers without saying why.

Mean IoU averages over the classes whose union TP + FP + FN is positive, i.e.
that appear in the ground truth or in the prediction; a class absent from both
has no defined IoU and is left out (the original averaged over all classes,
counting absent ones as 0).
"""
import math
import os

import numpy as np
from tqdm import tqdm

from utils import atomic_io
from utils import classes
from utils import label_images


def confusion_matrix(pred, gt, num_classes):
  """Confusion matrix of one prediction against its ground truth.

  Args:
    pred: integer array of predicted class ids, any shape.
    gt: integer array of ground-truth ids, same shape; values outside
      [0, num_classes) are ignored.
    num_classes: number of classes C.

  Returns:
    An int64 array [C, C], cm[g, p] = #pixels with gt g and prediction p.

  Raises:
    ValueError: shapes differ, arrays are not integers, or a counted pixel
      has a prediction outside [0, C).
  """
  num_classes = _check_num_classes(num_classes)
  pred = np.asarray(pred)
  gt = np.asarray(gt)
  if pred.shape != gt.shape:
    raise ValueError('prediction shape %s differs from ground truth shape %s'
                     % (pred.shape, gt.shape))
  for name, array in (('prediction', pred), ('ground truth', gt)):
    if not (np.issubdtype(array.dtype, np.integer) or
            array.dtype == np.bool_):
      raise ValueError('%s must hold integer class ids, got dtype %s'
                       % (name, array.dtype))
  # int64 before any arithmetic: uint8 inputs would overflow in g * C + p.
  gt = gt.astype(np.int64).ravel()
  pred = pred.astype(np.int64).ravel()
  valid = (gt >= 0) & (gt < num_classes)
  gt = gt[valid]
  pred = pred[valid]
  bad = (pred < 0) | (pred >= num_classes)
  if np.any(bad):
    values = np.unique(pred[bad])
    raise ValueError(
        'prediction has %d pixel(s) with class ids %s outside [0, %d) where '
        'the ground truth is valid (wrong --num_classes?)'
        % (int(bad.sum()), values[:10].tolist(), num_classes))
  counts = np.bincount(gt * num_classes + pred,
                       minlength=num_classes * num_classes)
  return counts.reshape(num_classes, num_classes).astype(np.int64)


def _class_histogram(values, num_classes):
  values = values[np.logical_and(values >= 0, values < num_classes)]
  return np.bincount(values.astype(np.int64), minlength=num_classes)


def iou_stats(pred, target, num_classes=21, background=0):
  """Per-class pixel counts TP + FN, TP + FP and TP (the original's API).

  Only pixels whose target is in [0, num_classes) count; a prediction
  outside that range adds to no class. IoU_c = tp / (tp_fn + tp_fp - tp).

  Args:
    pred: An integer array of predicted class ids.
    target: An integer array of the same shape, ground-truth ids.
    num_classes: The number of classes.
    background: Accepted for the original's call shape; not used.

  Returns:
    (tp_fn, tp_fp, tp), three int64 arrays [num_classes].
  """
  del background
  pred = np.asarray(pred)
  target = np.asarray(target)
  counted = np.logical_and(target >= 0, target < num_classes)
  tp_fn = _class_histogram(target[counted], num_classes)
  tp_fp = _class_histogram(pred[counted], num_classes)
  hits = np.logical_and(counted, pred == target)
  tp = _class_histogram(target[hits], num_classes)
  return tp_fn, tp_fp, tp


def accuracy(pred, target):
  """Fraction of the elements where pred equals target (in [0, 1])."""
  pred = np.asarray(pred)
  return float((pred == np.asarray(target)).sum()) / max(pred.size, 1)


def _check_num_classes(num_classes):
  if int(num_classes) != num_classes or num_classes < 1:
    raise ValueError('num_classes must be a positive integer, got %r'
                     % (num_classes,))
  return int(num_classes)


def _check_confusion(cm):
  cm = np.asarray(cm)
  if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
    raise ValueError('confusion matrix must be square [C, C], got shape %s'
                     % (cm.shape,))
  return cm.astype(np.float64)


def iou_per_class(cm):
  """IoU_c = TP / (TP + FP + FN) for every class.

  Args:
    cm: confusion matrix [C, C] (rows ground truth, columns prediction).

  Returns:
    float64 [C]; NaN for classes with TP + FP + FN = 0 (absent from both
    ground truth and prediction).
  """
  cm = _check_confusion(cm)
  tp = np.diag(cm)
  union = cm.sum(axis=0) + cm.sum(axis=1) - tp
  iou = np.full(cm.shape[0], np.nan)
  present = union > 0
  iou[present] = tp[present] / union[present]
  return iou


def mean_iou(cm):
  """Mean of iou_per_class over classes with a positive union; NaN if none."""
  iou = iou_per_class(cm)
  present = ~np.isnan(iou)
  return float(iou[present].mean()) if present.any() else float('nan')


def pixel_accuracy(cm):
  """trace(cm) / sum(cm), the fraction of counted pixels labelled right.

  NaN if no pixel is counted.
  """
  cm = _check_confusion(cm)
  total = cm.sum()
  return float(np.trace(cm) / total) if total > 0 else float('nan')


def _percent_or_none(value):
  return None if np.isnan(value) else float(value) * 100.0


class IouAccumulator(object):
  """Sums confusion matrices over images.

  Attributes:
    num_classes: C.
    confusion: int64 [C, C], the running sum.
    num_images: number of update() calls.
  """

  def __init__(self, num_classes):
    self.num_classes = _check_num_classes(num_classes)
    self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)
    self.num_images = 0

  def update(self, pred, gt):
    """Adds one image; returns its own confusion matrix [C, C]."""
    cm = confusion_matrix(pred, gt, self.num_classes)
    self.confusion += cm
    self.num_images += 1
    return cm

  def iou_per_class(self):
    return iou_per_class(self.confusion)

  def mean_iou(self):
    return mean_iou(self.confusion)

  def pixel_accuracy(self):
    return pixel_accuracy(self.confusion)

  def get_results(self, class_names=None):
    """The summary as plain Python values, all in percent.

    Args:
      class_names: list of C names; None for classes.get_class_names(C).

    Returns:
      {'miou': float or None, 'pixel_accuracy': float or None,
       'per_class_iou': {name: float or None}, 'num_images': int};
      None where the value is undefined (no pixels / class absent).
    """
    names = _check_names(class_names, self.num_classes)
    iou = self.iou_per_class()
    return {
        'miou': _percent_or_none(self.mean_iou()),
        'pixel_accuracy': _percent_or_none(self.pixel_accuracy()),
        'per_class_iou': {n: _percent_or_none(v) for n, v in zip(names, iou)},
        'num_images': self.num_images,
    }


def _check_names(class_names, num_classes):
  if class_names is None:
    return classes.get_class_names(num_classes)
  names = [str(n) for n in class_names]
  if len(names) != num_classes:
    raise ValueError('%d class names given for %d classes'
                     % (len(names), num_classes))
  if len(set(names)) != len(names):
    raise ValueError('class names must be distinct: %s' % names)
  return names


def format_results(results):
  """Formats get_results() output as a per-class IoU table and the summary.

  Args:
    results: dict returned by IouAccumulator.get_results.

  Returns:
    A multi-line string (no trailing newline): one line per class with its
    id, name and IoU in percent ('n/a' for classes absent from ground truth
    and prediction), a line with the image and class counts, then
    'mean IOU: X%' and 'mean Pixel Acc: X%' as the original printed them.
  """
  def fmt(value):
    return '     n/a' if value is None else '%8.4f%%' % value

  names = list(results['per_class_iou'])
  width = max([10] + [len(n) for n in names])
  lines = ['%-5s %-*s %9s' % ('id', width, 'class', 'IoU')]
  for i, name in enumerate(names):
    lines.append('%-5d %-*s %9s'
                 % (i, width, name, fmt(results['per_class_iou'][name])))
  lines.append('images: %d, classes present: %d of %d' % (
      results['num_images'],
      sum(v is not None for v in results['per_class_iou'].values()),
      len(names)))
  # The last two lines keep the original's wording so log parsers still work.
  lines.append('mean IOU: %s' % fmt(results['miou']).strip())
  lines.append('mean Pixel Acc: %s' % fmt(results['pixel_accuracy']).strip())
  return '\n'.join(lines)


def parse_string_replace(string_replace):
  """Parses the --string_replace value 'old,new'.

  Args:
    string_replace: '' or ',' for no replacement, else 'old,new' with a
      non-empty old.

  Returns:
    None or the pair (old, new).
  """
  if string_replace is None or string_replace in ('', ','):
    return None
  parts = string_replace.split(',')
  if len(parts) != 2 or not parts[0]:
    raise ValueError('--string_replace must be "old,new" with a non-empty '
                     'old part and exactly one comma, got %r' % string_replace)
  return parts[0], parts[1]


def _list_pngs(folder):
  """Relative paths of all .png files under `folder` (recursive), sorted."""
  found = []
  for dirpath, dirnames, filenames in os.walk(folder):
    dirnames.sort()
    for filename in filenames:
      if filename.lower().endswith('.png'):
        found.append(os.path.relpath(os.path.join(dirpath, filename), folder))
  return sorted(found)


def _name_list(names, limit=10):
  shown = ', '.join(names[:limit])
  return shown + (' ... (%d in all)' % len(names) if len(names) > limit else '')


def match_prediction_files(pred_dir, gt_dir, string_replace=None,
                           allow_extra_gt=False):
  """Pairs every prediction PNG with its ground truth.

  The ground-truth name of a prediction is its path relative to pred_dir,
  with every occurrence of `old` replaced by `new` when string_replace is
  given (the original applied the replacement to the whole path, folders
  included; here the folders given on the command line are never altered).

  Args:
    pred_dir: folder of prediction PNGs (searched recursively).
    gt_dir: folder of ground-truth PNGs.
    string_replace: None, '' or ',' for identical names, else 'old,new'.
    allow_extra_gt: if False, a ground-truth PNG that no prediction maps to
      is an error; if True it is skipped (for gt_dir = VOC2012/segcls, which
      holds the labels of every split).

  Returns:
    A sorted list of (pred_path, gt_path) pairs.

  Raises:
    FileNotFoundError / ValueError naming the folders or files at fault.
  """
  for flag, folder in (('--pred_dir', pred_dir), ('--gt_dir', gt_dir)):
    if not folder or not os.path.isdir(folder):
      raise FileNotFoundError('%s is not a folder: %r' % (flag, folder))
  replace = parse_string_replace(string_replace)
  predictions = _list_pngs(pred_dir)
  if not predictions:
    raise ValueError('no prediction PNGs found in --pred_dir %s' % pred_dir)
  ground_truths = set(_list_pngs(gt_dir))
  pairs, missing, gt_used = [], [], {}
  for pred_name in predictions:
    gt_name = pred_name.replace(*replace) if replace else pred_name
    if gt_name in gt_used:
      raise ValueError('predictions %s and %s both map to the ground truth %s'
                       % (gt_used[gt_name], pred_name,
                          os.path.join(gt_dir, gt_name)))
    gt_used[gt_name] = pred_name
    if gt_name not in ground_truths:
      missing.append(os.path.join(gt_dir, gt_name))
      continue
    pairs.append((os.path.join(pred_dir, pred_name),
                  os.path.join(gt_dir, gt_name)))
  if missing:
    raise FileNotFoundError(
        '%d prediction(s) in %s have no ground truth: %s'
        % (len(missing), pred_dir, _name_list(missing)))
  extra = sorted(ground_truths - set(gt_used))
  if extra and not allow_extra_gt:
    raise ValueError(
        '%d ground truth(s) in %s have no prediction in %s: %s (pass '
        '--allow_extra_gt if the ground-truth folder holds more images than '
        'were predicted)' % (len(extra), gt_dir, pred_dir,
                             _name_list([os.path.join(gt_dir, e)
                                         for e in extra])))
  return pairs


def match_listed_files(pred_dir, names, gt_dir=None, string_replace=None,
                       label_paths=None):
  """Pairs the prediction of every listed image with its ground truth.

  Exactly the listed images are scored: other PNGs of pred_dir and gt_dir
  are left out (no error).

  Args:
    pred_dir: folder of prediction PNGs, NAME.png per image (as the
      inference scripts write them).
    names: the images' names (data list basenames without extension).
    gt_dir: folder of ground-truth PNGs, NAME.png (after string_replace);
      if empty, label_paths give the ground truths.
    string_replace: 'old,new' applied to NAME.png to name its ground truth.
    label_paths: the list's label paths, one per name (used without
      gt_dir).

  Returns:
    A list of (pred_path, gt_path), in list order.

  Raises:
    FileNotFoundError naming the missing predictions or ground truths.
  """
  if not pred_dir or not os.path.isdir(pred_dir):
    raise FileNotFoundError('--pred_dir is not a folder: %r' % (pred_dir,))
  if gt_dir and not os.path.isdir(gt_dir):
    raise FileNotFoundError('--gt_dir is not a folder: %r' % (gt_dir,))
  replace = parse_string_replace(string_replace)
  pairs, no_pred, no_gt = [], [], []
  for i, name in enumerate(names):
    pred = os.path.join(pred_dir, name + '.png')
    if gt_dir:
      gt_name = name + '.png'
      gt = os.path.join(gt_dir, gt_name.replace(*replace) if replace
                        else gt_name)
    else:
      gt = label_paths[i] if label_paths is not None else None
      if gt is None:
        raise ValueError('the data list has no label column for %s: pass '
                         '--gt_dir' % name)
    if not os.path.isfile(pred):
      no_pred.append(pred)
    if not os.path.isfile(gt):
      no_gt.append(gt)
    pairs.append((pred, gt))
  for missing, what in ((no_pred, 'prediction'), (no_gt, 'ground truth')):
    if missing:
      raise FileNotFoundError('%d listed image(s) have no %s: %s' % (
          len(missing), what, _name_list(missing)))
  return pairs


def evaluate_folders(pred_dir, gt_dir, num_classes, string_replace=None,
                     allow_extra_gt=False, show_progress=True,
                     ignore_label=255, pairs=None):
  """Accumulates IoU statistics over two folders of class-id PNGs.

  Args:
    pred_dir, gt_dir, string_replace, allow_extra_gt: see
      match_prediction_files.
    num_classes: C; ground-truth ids are in [0, C) or ignore_label.
    show_progress: draw a tqdm bar over the files.
    ignore_label: the ground-truth id of pixels not scored.
    pairs: (pred_path, gt_path) pairs to score instead of matching the
      folders (match_listed_files).

  Returns:
    An IouAccumulator holding the sum over all pairs.

  Raises:
    ValueError naming the file pair when shapes differ or a prediction is out
    of range, or the ground truth and its ids >= C other than ignore_label
    (a wrong --num_classes would otherwise score them as ignored).
  """
  if pairs is None:
    pairs = match_prediction_files(pred_dir, gt_dir, string_replace,
                                   allow_extra_gt)
  accumulator = IouAccumulator(num_classes)
  for pred_path, gt_path in tqdm(pairs, desc='benchmark', unit='image',
                                 disable=not show_progress):
    pred = label_images.read_label_png(pred_path)
    gt = label_images.read_label_png(gt_path)
    ids = np.unique(gt)
    bad = ids[(ids >= num_classes) & (ids != ignore_label)]
    if bad.size:
      raise ValueError('ground truth %s has ids %s, >= --num_classes %d '
                       '(only %d marks ignored pixels)' % (
                           gt_path, ', '.join(str(i) for i in bad[:10]),
                           num_classes, ignore_label))
    if pred.shape != gt.shape:
      raise ValueError('prediction %s has shape %s but its ground truth %s '
                       'has shape %s' % (pred_path, pred.shape, gt_path,
                                         gt.shape))
    try:
      accumulator.update(pred, gt)
    except ValueError as e:
      raise ValueError('%s (ground truth %s): %s'
                       % (pred_path, gt_path, e)) from e
  return accumulator


def save_results_json(path, results):
  """Writes get_results() output as JSON, atomically."""
  atomic_io.atomic_write_json(path, results)


def mean_std(values):
  """(mean, sample standard deviation, with n - 1) of values over seeds;
  the deviation is None for fewer than 2 values."""
  values = [float(v) for v in values]
  mean = sum(values) / len(values)
  if len(values) < 2:
    return mean, None
  var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
  return mean, math.sqrt(var)


def format_mean_std(mean, std, signed=False):
  """'46.22 +- 1.61' ('+2.81 +- 2.02' signed); the mean alone without std."""
  text = ('%+.2f' if signed else '%.2f') % mean
  return text + (' +- %.2f' % std if std is not None else '')
