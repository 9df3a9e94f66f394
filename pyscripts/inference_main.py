"""What every inference script does around its loop: inputs, outputs, errors.

Errors a user can fix (a missing file, a bad flag, a checkpoint that does not
fit the model) end the script with one `error: ...` message naming the file
or flag, not a stack trace.
"""
import json
import os

import numpy as np
from tqdm import tqdm

from pyscripts import checkpoint_settings
from pyscripts import script_glue
from seg_models import image_reader
from seg_models import predictor
from utils import atomic_io
from utils import colormaps
from utils import label_images

# Output folders of the inference scripts, inside --save_dir.
GRAY_SUBDIR = 'gray'
COLOR_SUBDIR = 'color'
# What wrote a --save_dir: {"script", "mode", "scales", "flip",
# "restore_from", "data_list", "images"}.
RECORD_NAME = 'inference.json'
SINGLE_SCALE = 'single_scale'
MULTI_SCALE = 'multi_scale'


def reject_multiscale_flags(args, script,
                            msc_script='inference_segsort_msc.py'):
  """Single-scale scripts refuse --flip_aug / --scale_aug / --scales."""
  for flag in ('flip_aug', 'scale_aug', 'scales'):
    if getattr(args, flag, None):
      raise predictor.PredictorError(
          '--%s is a multi-scale option: %s is single scale (use %s)'
          % (flag, script, msc_script))


def get_entries(args, need_label=False):
  """The data list's entries, every file checked up front."""
  if not args.data_list:
    raise predictor.PredictorError('--data_list is required')
  entries = image_reader.read_data_list(args.data_dir, args.data_list)
  image_reader.check_files(entries, need_label=need_label,
                           data_list=args.data_list)
  return entries


def require_save_dir(args):
  if not args.save_dir:
    raise predictor.PredictorError('--save_dir is required')
  return args.save_dir


def make_output_dirs(save_dir):
  """Creates SAVE_DIR/gray and SAVE_DIR/color."""
  for sub in (GRAY_SUBDIR, COLOR_SUBDIR):
    os.makedirs(os.path.join(save_dir, sub), exist_ok=True)


def get_colormap(path):
  """utils.colormaps.get_colormap with errors naming --colormap."""
  try:
    return colormaps.get_colormap(path)
  except (OSError, ValueError) as e:
    raise predictor.PredictorError('--colormap: %s' % e) from e


def load_image(entry):
  """The entry's image, float32 [H, W, 3] minus the mean."""
  try:
    return image_reader.load_image(entry.image)
  except (OSError, ValueError) as e:
    raise predictor.PredictorError(str(e)) from e


def load_label(entry, num_classes, ignore_label):
  """The entry's label [H, W]; ids outside [0, C) other than ignore fail."""
  try:
    label = label_images.read_label_png(entry.label)
  except (OSError, ValueError) as e:
    raise predictor.PredictorError(str(e)) from e
  bad = (label != ignore_label) & ((label < 0) | (label >= num_classes))
  if bad.any():
    raise predictor.PredictorError(
        'label %s has class ids %s outside [0, %d) (--num_classes) that are '
        'not --ignore_label %d' % (entry.label, np.unique(label[bad])[:10]
                                   .tolist(), num_classes, ignore_label))
  return label


def apply_checkpoint_settings(args, expected_output):
  """Fills the model flags not given from --restore_from's model.json and
  refuses a given one that contradicts it (pyscripts/checkpoint_settings).

  Args:
    args: parsed flags.
    expected_output: 'embedding' (SegSort scripts) or 'logits' (softmax).
  """
  return checkpoint_settings.apply(args, args.restore_from, expected_output,
                                   what='--restore_from', log=tqdm.write)


def get_predictor_options(args, **overrides):
  """predictor.PredictorOptions from the parsed flags."""
  return script_glue.options_from_args(predictor.PredictorOptions, args,
                                       **overrides)


def save_prediction(save_dir, name, labels, colormap):
  """Writes SAVE_DIR/gray/NAME.png (class ids) and color/NAME.png."""
  label_images.save_label_png(
      os.path.join(save_dir, GRAY_SUBDIR, name + '.png'), labels)
  label_images.save_color_png(
      os.path.join(save_dir, COLOR_SUBDIR, name + '.png'), labels, colormap)


def read_record(save_dir):
  """SAVE_DIR/inference.json as a dict, or None."""
  path = os.path.join(save_dir, RECORD_NAME)
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def check_save_dir(args, mode):
  """Refuses to write mode's results over results of the other mode.

  Multi-scale results never replace single-scale ones (or the reverse)
  unless --overwrite: the folder's inference.json tells what wrote it.
  """
  record = read_record(args.save_dir)
  if record is None or record.get('mode') == mode:
    return
  if getattr(args, 'overwrite', False):
    tqdm.write('Overwriting the %s results in %s (--overwrite).'
               % (record.get('mode'), args.save_dir))
    return
  suggestion = (args.save_dir.rstrip('/') + '_msc' if mode == MULTI_SCALE
                else args.save_dir.rstrip('/') + '_single')
  raise predictor.PredictorError(
      '--save_dir %s holds %s results (%s, written by %s); this run is %s. '
      'Use another --save_dir (e.g. %s), or pass --overwrite.' % (
          args.save_dir, record.get('mode'),
          os.path.join(args.save_dir, RECORD_NAME), record.get('script'),
          mode, suggestion))


def write_record(args, mode, script, num_images, scales=None, flip=False):
  atomic_io.atomic_write_text(
      os.path.join(args.save_dir, RECORD_NAME), json.dumps({
          'script': script, 'mode': mode,
          'scales': list(scales) if scales else None, 'flip': bool(flip),
          'restore_from': args.restore_from, 'data_list': args.data_list,
          'images': num_images}, indent=2, sort_keys=True) + '\n')


def predict_list(args, open_model, predict, desc='inference',
                 mode=SINGLE_SCALE, script='', scales=None, flip=False):
  """Predicts every image of --data_list and writes gray/ and color/ PNGs.

  The flags, the list and its files are checked before the model is built;
  results of the other mode (single / multi-scale) in --save_dir are not
  overwritten (check_save_dir). SAVE_DIR/inference.json records the run.

  Args:
    args: parsed flags (--save_dir, --colormap, --data_dir, --data_list).
    open_model: fn() -> a predictor, used as a context manager.
    predict: fn(model, image) -> [H, W] class ids.
    desc: the progress bar's label.
    mode: SINGLE_SCALE or MULTI_SCALE.
    script: the script's name (recorded).
    scales, flip: the multi-scale views (recorded).

  Returns:
    The names of the images written.
  """
  save_dir = require_save_dir(args)
  check_save_dir(args, mode)
  colormap = get_colormap(args.colormap)
  entries = get_entries(args)
  image_reader.check_unique_names(entries, args.data_list)
  make_output_dirs(save_dir)
  with open_model() as model:
    tqdm.write('Restored model parameters from %s' % model.checkpoint)
    for entry in tqdm(entries, desc=desc, unit='image'):
      labels = predict(model, load_image(entry))
      save_prediction(save_dir, entry.name, labels, colormap)
  write_record(args, mode, script, len(entries), scales, flip)
  return [entry.name for entry in entries]


def predict_list_multiscale(args, open_model, script):
  """predict_list with every image predicted over --scale_aug / --scales
  (and --flip_aug) views by the model's predict_multiscale."""
  scales = predictor.get_scales(args.scale_aug, args.scales)
  return predict_list(
      args, open_model,
      lambda model, image: model.predict_multiscale(image, scales,
                                                    args.flip_aug),
      desc='inference (msc)', mode=MULTI_SCALE, script=script, scales=scales,
      flip=args.flip_aug)
