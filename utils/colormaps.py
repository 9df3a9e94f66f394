"""Colour tables for label pictures: the VOC palette, or one from a file.

NumPy only (scipy for .mat files, imported when one is read).
"""
import os

import numpy as np

COLORMAP_SIZE = 256


def get_voc_colormap(num_entries=COLORMAP_SIZE):
  """The standard PASCAL VOC palette.

  Entry i spreads the bits of i over the three channels, most significant
  colour bit first: bit 3k of i goes to bit (7 - k) of red, bit 3k+1 to bit
  (7 - k) of green, bit 3k+2 to bit (7 - k) of blue, for k = 0..7.
  So 0 -> (0, 0, 0), 1 -> (128, 0, 0), 15 -> (192, 128, 128),
  255 -> (224, 224, 192).

  Args:
    num_entries: number of palette entries (python int, 1..256).

  Returns:
    A uint8 array [num_entries, 3] (R, G, B).
  """
  if not 1 <= num_entries <= COLORMAP_SIZE:
    raise ValueError('num_entries must be in [1, %d], got %r'
                     % (COLORMAP_SIZE, num_entries))
  ids = np.arange(num_entries, dtype=np.int64)
  colormap = np.zeros((num_entries, 3), dtype=np.int64)
  for k in range(8):
    for channel in range(3):
      bit = (ids >> (3 * k + channel)) & 1
      colormap[:, channel] |= bit << (7 - k)
  return colormap.astype(np.uint8)


VOC_COLORMAP = get_voc_colormap()
VOC_COLORMAP.setflags(write=False)


def _colormap_from_array(array, path):
  """Checks a loaded [N, 3] colour table; returns it as uint8 [256, 3]."""
  array = np.asarray(array)
  if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
    raise ValueError('colormap %s: expected an [N, 3] array, got shape %s'
                     % (path, array.shape))
  if array.shape[0] > COLORMAP_SIZE:
    raise ValueError('colormap %s: %d entries, at most %d are supported'
                     % (path, array.shape[0], COLORMAP_SIZE))
  if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
    raise ValueError('colormap %s: expected numbers, got dtype %s'
                     % (path, array.dtype))
  if np.issubdtype(array.dtype, np.complexfloating):
    raise ValueError('colormap %s: complex values are not colours' % path)
  values = array.astype(np.float64)
  if not np.all(np.isfinite(values)):
    raise ValueError('colormap %s: contains NaN or infinite values' % path)
  if values.min() < 0:
    raise ValueError('colormap %s: negative value %g' % (path, values.min()))
  # Floats whose maximum is <= 1 are MATLAB-style [0, 1] colours (as in
  # colormap .mat files); integers and larger floats are [0, 255].
  if np.issubdtype(array.dtype, np.floating) and values.max() <= 1.0:
    values = values * 255.0
  if values.max() > 255.0:
    raise ValueError('colormap %s: value %g is above 255'
                     % (path, values.max()))
  colormap = VOC_COLORMAP.copy()
  # Round rather than truncate: 128/255 * 255 can come out as 127.99999.
  colormap[:array.shape[0]] = np.rint(values).astype(np.uint8)
  return colormap


def _load_mat_colormap(path):
  import scipy.io  # Only needed for .mat files; keeps the import cheap.
  try:
    contents = scipy.io.loadmat(path)
  except Exception as e:  # scipy raises several types for corrupt files.
    raise ValueError('colormap %s: cannot read it as a MATLAB file (%s)'
                     % (path, e)) from e
  arrays = {k: v for k, v in contents.items() if not k.startswith('__')}
  # The variable named like the file (colormapvoc.mat -> 'colormapvoc'),
  # then the conventional 'colormap', then the first [N, 3] numeric matrix.
  stem = os.path.splitext(os.path.basename(path))[0]
  for key in (stem, 'colormap'):
    if key in arrays:
      return _colormap_from_array(arrays[key], '%s (variable %r)' % (path, key))
  for key, value in arrays.items():
    if (isinstance(value, np.ndarray) and value.ndim == 2 and
        value.shape[1] == 3 and np.issubdtype(value.dtype, np.number)):
      return _colormap_from_array(value, '%s (variable %r)' % (path, key))
  raise ValueError('colormap %s: no [N, 3] numeric matrix among its variables '
                   '%s' % (path, sorted(arrays)))


def get_colormap(path=None):
  """The colour table used for label pictures.

  Args:
    path: None or '' for the VOC palette; else a .npy file holding an [N, 3]
      array (uint8 / integers in [0, 255], or floats in [0, 1] or [0, 255]),
      or a .mat file (read with scipy.io.loadmat; the variable named like the
      file, else 'colormap', else the first [N, 3] numeric matrix; MATLAB
      colormaps are floats in [0, 1]). Entries beyond N are taken from the
      VOC palette.

  Returns:
    A uint8 array [256, 3].

  Raises:
    FileNotFoundError / ValueError naming the file when it is missing, of an
    unknown type, or does not hold a valid colour table.
  """
  if not path:
    return VOC_COLORMAP.copy()
  if not os.path.isfile(path):
    raise FileNotFoundError('colormap file not found: %s' % path)
  extension = os.path.splitext(path)[1].lower()
  if extension == '.npy':
    try:
      array = np.load(path, allow_pickle=False)
    except Exception as e:
      raise ValueError('colormap %s: cannot read it as a .npy file (%s)'
                       % (path, e)) from e
    return _colormap_from_array(array, path)
  if extension == '.mat':
    return _load_mat_colormap(path)
  raise ValueError('colormap %s: unknown file type %r (expected .npy or .mat)'
                   % (path, extension))
