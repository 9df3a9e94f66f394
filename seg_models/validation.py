"""Validation while training: val mIoU the way inference computes it.

Every --val_every steps the trainer writes a checkpoint and scores it here:

- SegSort (supervised or not): the prototypes of the first
  --val_train_images images of the training list (extract_prototypes.py's
  computation), then the single-scale kNN prediction of the first
  --val_max_images images of --val_data_list (inference_segsort.py's);
- softmax: the argmax prediction (inference.py's).

The predictors are those of the inference scripts (seg_models/predictor.py)
with the training flags: window --input_size slid by the same stride,
--num_clusters, --kmeans_iterations, k = 15. The best checkpoint so far is
copied with its model.json to SNAPSHOT_DIR/best/, with best.json:
{"step", "miou", "pixel_accuracy", "num_images", "val_data_list"}.

The cost is bounded by the two image counts; every validation's wall time is
logged with its share of the time since the previous one.
"""
import dataclasses
import glob
import json
import os
import shutil
import time

from seg_models import checkpoints
from seg_models import image_reader
from seg_models import losses
from seg_models import predictor
from seg_models import prototype_sets
from seg_models import snapshot_folder
from utils import atomic_io
from utils import errors
from utils import label_images
from utils import metrics

BEST_SUBDIR = 'best'
BEST_RECORD = 'best.json'
# The k of the kNN vote (the inference scripts' default).
K_IN_NEAREST_NEIGHBORS = 15


@dataclasses.dataclass
class ValidationData:
  """The images a validation reads (checked once, before training)."""
  val_entries: list
  train_entries: list
  val_data_list: str


def get_validation_data(opts, loss_output):
  """The val images (and the training subset for SegSort), files checked.

  Args:
    opts: trainer.TrainOptions with val_data_list set.
    loss_output: losses.EMBEDDING or losses.LOGITS.

  Raises:
    errors.DataListError: a list or one of its files is missing or bad.
    errors.TrainingError: a bad --val_max_images / --val_train_images.
  """
  if opts.val_every <= 0:
    raise errors.TrainingError('--val_every must be > 0 with '
                               '--val_data_list, got %d' % opts.val_every)
  if opts.val_max_images < 1 or opts.val_train_images < 1:
    raise errors.TrainingError('--val_max_images and --val_train_images '
                               'must be >= 1')
  val = image_reader.read_data_list(opts.data_dir, opts.val_data_list)
  val = val[:opts.val_max_images]
  image_reader.check_files(val, need_label=True,
                           data_list=opts.val_data_list)
  train = []
  if loss_output == losses.EMBEDDING:
    train = image_reader.read_data_list(opts.data_dir, opts.data_list)
    train = train[:opts.val_train_images]
    image_reader.check_files(train, need_label=True,
                             data_list=opts.data_list)
  return ValidationData(val, train, opts.val_data_list)


def get_predictor_options(opts, checkpoint):
  """The inference scripts' PredictorOptions for a training run's model."""
  return predictor.PredictorOptions(
      input_size=tuple(opts.input_size), strides=tuple(opts.input_size),
      model=opts.model, backbone=opts.backbone,
      backbone_variant=opts.backbone_variant,
      width_multiplier=opts.width_multiplier, num_classes=opts.num_classes,
      embedding_dim=opts.embedding_dim, restore_from=checkpoint,
      ignore_label=opts.ignore_label, num_clusters=opts.num_clusters,
      kmeans_iterations=opts.kmeans_iterations,
      k_in_nearest_neighbors=K_IN_NEAREST_NEIGHBORS)


def _load(entry):
  """The entry's image (minus the mean) and label."""
  image = image_reader.load_image(entry.image)
  label = label_images.read_label_png(entry.label)
  return image, label


def validate(opts, checkpoint, loss_output, data):
  """Scores checkpoint on data.val_entries.

  Returns:
    {'miou', 'pixel_accuracy' (percent, None if undefined), 'num_images',
    'num_prototypes' (SegSort), 'seconds'}.
  """
  start = time.time()
  popts = get_predictor_options(opts, checkpoint)
  accumulator = metrics.IouAccumulator(opts.num_classes)
  result = {}
  if loss_output == losses.EMBEDDING:
    collector = prototype_sets.PrototypeCollector(opts.embedding_dim)
    with predictor.SegSortPredictor(popts) as model:
      for entry in data.train_entries:
        image, label = _load(entry)
        collector.add(entry.image, entry.name,
                      model.extract_prototypes(image, label))
    prototypes = collector.get_set()
    result['num_prototypes'] = len(prototypes)
    if not len(prototypes):
      raise errors.TrainingError(
          'Validation: the %d training images gave no prototype (all '
          'ignored?)' % len(data.train_entries))
    model = predictor.SegSortPredictor(popts, prototypes)
  else:
    model = predictor.SoftmaxPredictor(popts)
  with model:
    for entry in data.val_entries:
      image, label = _load(entry)
      gt = label.copy()
      gt[(gt >= opts.num_classes) & (gt != opts.ignore_label)] = (
          opts.ignore_label)
      accumulator.update(model.predict(image), gt)
  summary = accumulator.get_results()
  result.update(miou=summary['miou'],
                pixel_accuracy=summary['pixel_accuracy'],
                num_images=summary['num_images'],
                seconds=time.time() - start)
  return result


def read_best(snapshot_dir):
  """SNAPSHOT_DIR/best/best.json as a dict, or None."""
  try:
    with open(os.path.join(snapshot_dir, BEST_SUBDIR, BEST_RECORD)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def is_better(result, best):
  if result['miou'] is None:
    return False
  return best is None or best.get('miou') is None or (
      result['miou'] > best['miou'])


def keep_best(snapshot_dir, checkpoint, step, result, val_data_list):
  """Copies checkpoint (and model.json) to SNAPSHOT_DIR/best/, replacing
  the previous best; writes best.json last.

  Returns:
    The best checkpoint's prefix.
  """
  best_dir = os.path.join(snapshot_dir, BEST_SUBDIR)
  os.makedirs(best_dir, exist_ok=True)
  record = os.path.join(best_dir, BEST_RECORD)
  if os.path.exists(record):
    os.remove(record)  # A torn copy is never described as the best.
  for path in glob.glob(os.path.join(best_dir,
                                     checkpoints.CHECKPOINT_PREFIX + '-*')):
    os.remove(path)
  for path in glob.glob(checkpoint + '.*'):
    shutil.copyfile(path, os.path.join(best_dir, os.path.basename(path)))
  name = os.path.basename(checkpoint)
  atomic_io.atomic_write_text(
      os.path.join(best_dir, 'checkpoint'),
      'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n'
      % (name, name))
  settings = os.path.join(snapshot_dir, snapshot_folder.SETTINGS_NAME)
  if os.path.isfile(settings):
    shutil.copyfile(settings, os.path.join(best_dir,
                                           snapshot_folder.SETTINGS_NAME))
  atomic_io.atomic_write_text(record, json.dumps(dict(
      step=step, miou=result['miou'],
      pixel_accuracy=result['pixel_accuracy'],
      num_images=result['num_images'], val_data_list=val_data_list),
      indent=2, sort_keys=True) + '\n')
  return os.path.join(best_dir, name)
