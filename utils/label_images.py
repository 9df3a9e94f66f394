"""Label pictures: class-id PNGs read and written, label maps painted.

A label PNG holds one class id per pixel (255 = ignore). It is written as
8-bit grayscale; it is read from grayscale, from a palette PNG (VOC's
SegmentationClass: the palette index is the class id), or from a colour PNG
whose channels are all equal. NumPy / PIL only.
"""
import os

import numpy as np
from PIL import Image

from utils import atomic_io
from utils import colormaps

# PIL modes of one channel of integers; reading gives their values (for
# palette PNGs the indices, not the colours).
_SINGLE_CHANNEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16B', 'I;16L')
# Colour modes accepted when their colour channels are equal, and how many
# leading channels carry the colour (the rest is alpha).
_GRAY_AS_COLOUR_MODES = {'LA': 1, 'RGB': 3, 'RGBA': 3}


def _check_label(label, name='label'):
  label = np.asarray(label)
  if label.ndim != 2:
    raise ValueError('%s must be a 2-D [H, W] array, got shape %s'
                     % (name, label.shape))
  if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
    raise ValueError('%s must hold integer class ids, got dtype %s'
                     % (name, label.dtype))
  return label


def label_to_color(label, colormap=None):
  """Paints a label map: out[y, x] = colormap[label[y, x]].

  Args:
    label: integer array [H, W] of ids in [0, len(colormap)).
    colormap: uint8 [N, 3]; None for the VOC palette.

  Returns:
    A uint8 array [H, W, 3].
  """
  label = _check_label(label)
  colormap = (colormaps.VOC_COLORMAP if colormap is None
              else np.asarray(colormap))
  if colormap.ndim != 2 or colormap.shape[1] != 3:
    raise ValueError('colormap must be [N, 3], got shape %s'
                     % (colormap.shape,))
  if label.size:
    low, high = int(label.min()), int(label.max())
    if low < 0 or high >= colormap.shape[0]:
      raise ValueError('label values must be in [0, %d) to be painted, got '
                       'range [%d, %d]' % (colormap.shape[0], low, high))
  return colormap.astype(np.uint8)[label.astype(np.intp)]


def save_label_png(path, label):
  """Saves class ids [H, W] (values 0..255) as a grayscale PNG, atomically."""
  label = _check_label(label)
  if label.size and (label.min() < 0 or label.max() > 255):
    raise ValueError('label PNG %s: values must be in [0, 255], got [%d, %d]'
                     % (path, label.min(), label.max()))
  atomic_io.atomic_save_png(path, label.astype(np.uint8))


def save_color_png(path, label, colormap=None):
  """Saves class ids [H, W] painted with `colormap` (VOC if None) as RGB PNG."""
  atomic_io.atomic_save_png(path, label_to_color(label, colormap))


def read_label_png(path, modes=None):
  """Reads a class-id PNG.

  Args:
    path: PNG file.
    modes: None to accept every class-id picture (one channel of integers,
      or a colour picture whose channels are equal); else the PIL modes
      accepted, e.g. ('P', 'L').

  Returns:
    An int32 array [H, W] (int32, so that arithmetic such as
    label * num_classes + prediction does not overflow).

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: the file cannot be decoded, or is not a class-id picture
      (the message names the file and its PIL mode).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError('label PNG not found: %s' % path)
  try:
    with Image.open(path) as image:
      mode = image.mode
      if modes is not None and mode not in modes:
        raise ValueError('label PNG %s has PIL mode %s, expected %s'
                         % (path, mode, ' or '.join(modes)))
      if (mode not in _SINGLE_CHANNEL_MODES and
          mode not in _GRAY_AS_COLOUR_MODES):
        raise ValueError('label PNG %s has PIL mode %s, expected a '
                         'single-channel (grayscale or palette) picture'
                         % (path, mode))
      array = np.asarray(image)
  except (OSError, Image.DecompressionBombError) as e:
    raise ValueError('cannot read label PNG %s (%s)' % (path, e)) from e
  if mode in _GRAY_AS_COLOUR_MODES:
    channels = array[..., :_GRAY_AS_COLOUR_MODES[mode]]
    if not np.all(channels == channels[..., :1]):
      raise ValueError('label PNG %s is a colour picture (PIL mode %s); '
                       'expected grayscale class ids' % (path, mode))
    array = channels[..., 0]
  return array.astype(np.int32)
