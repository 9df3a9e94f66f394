"""Colormaps, label pictures, atomic file writes, config snapshots, class names.

NumPy / PIL only (no TensorFlow), so that tools and the benchmark import it
cheaply. Every writer here is atomic: the data goes to a temporary file in the
target's own folder, which then replaces the target with os.replace, so a
reader (or a crash) never sees a half-written file.
"""
import contextlib
import os
import secrets
import shutil
import tempfile

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

# PASCAL VOC 2012 class names, background first (index = class id).
VOC_CLASSES = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

COLORMAP_SIZE = 256


# ---------------------------------------------------------------------------
# Colormaps.
# ---------------------------------------------------------------------------


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
  """Validates a loaded [N, 3] colour table and converts it to uint8 [256, 3]."""
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
  # Floats whose maximum is <= 1 are MATLAB-style [0, 1] colours (the
  # original's colormap.mat); integers and larger floats are [0, 255].
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
  # The original read the variable named like the file (colormapvoc.mat ->
  # 'colormapvoc'); then the conventional 'colormap'; then the first [N, 3]
  # numeric matrix.
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
  colormap = VOC_COLORMAP if colormap is None else np.asarray(colormap)
  if colormap.ndim != 2 or colormap.shape[1] != 3:
    raise ValueError('colormap must be [N, 3], got shape %s'
                     % (colormap.shape,))
  if label.size:
    low, high = int(label.min()), int(label.max())
    if low < 0 or high >= colormap.shape[0]:
      raise ValueError('label values must be in [0, %d) to be painted, got '
                       'range [%d, %d]' % (colormap.shape[0], low, high))
  return colormap.astype(np.uint8)[label.astype(np.intp)]


# ---------------------------------------------------------------------------
# Atomic writes.
# ---------------------------------------------------------------------------


def _make_parent(path):
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  return parent


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
  """Opens a temporary file that replaces `path` when the block succeeds.

  The temporary file lives in the target's folder (so os.replace is an atomic
  rename on the same file system) and is created with the usual umask-based
  permissions. If the block raises, the temporary file is removed and `path`
  is left untouched. Parent folders are created.

  Args:
    path: final file path.
    mode: 'wb' (binary) or 'w' (UTF-8 text).

  Yields:
    The open file object.
  """
  if mode not in ('w', 'wb'):
    raise ValueError('atomic_open mode must be "w" or "wb", got %r' % (mode,))
  parent = _make_parent(path)
  base = os.path.basename(path)
  while True:
    tmp_path = os.path.join(
        parent, '.%s.%s.tmp' % (base, secrets.token_hex(6)))
    try:
      fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
      break
    except FileExistsError:
      continue
  try:
    kwargs = {'encoding': 'utf-8'} if mode == 'w' else {}
    with os.fdopen(fd, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp_path)
    raise


def atomic_write_text(path, text):
  """Writes a UTF-8 text file atomically (parent folders created)."""
  with atomic_open(path, 'w') as f:
    f.write(text)


def atomic_save_npy(path, array):
  """np.save to exactly `path` (no '.npy' appended), atomically."""
  with atomic_open(path, 'wb') as f:
    np.save(f, np.asarray(array), allow_pickle=False)


def atomic_save_png(path, image):
  """Saves a uint8 [H, W] (grayscale) or [H, W, 3] (RGB) array as PNG, atomically."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError('PNG %s: expected a uint8 array, got dtype %s'
                     % (path, image.dtype))
  if image.ndim == 2:
    pil_image = Image.fromarray(image, mode='L')
  elif image.ndim == 3 and image.shape[2] == 3:
    pil_image = Image.fromarray(image, mode='RGB')
  else:
    raise ValueError('PNG %s: expected [H, W] or [H, W, 3], got shape %s'
                     % (path, image.shape))
  with atomic_open(path, 'wb') as f:
    pil_image.save(f, format='PNG')


@contextlib.contextmanager
def atomic_files(paths):
  """Stages several files so that a failure while writing leaves none of them.

    with atomic_files([features_path, labels_path]) as (tmp_f, tmp_l):
      np.save(tmp_f, features)
      np.save(tmp_l, labels)

  The yielded temporary paths keep the targets' base names (so extension-
  driven writers such as np.save or PIL behave the same) and live in a
  hidden temporary folder inside each target's folder. When the block
  returns normally, each staged file is renamed onto its target with
  os.replace, in the order given; if the block raises, every staged file is
  deleted and no target is touched.

  What is guaranteed: each target individually is either its old content or
  its complete new content, never partial; an exception inside the block
  writes none of them. What is not: the renames are not one transaction, so
  a process killed between two renames, or a reader looking at that moment,
  sees some new files and some old ones. Put the file that marks completion
  last: it appears only after all the others are in place.

  Args:
    paths: the final file paths (distinct).

  Yields:
    A list of temporary paths, one per target, in the same order.
  """
  paths = [os.path.abspath(p) for p in paths]
  if len(set(paths)) != len(paths):
    raise ValueError('atomic_files: target paths must be distinct: %s' % paths)
  staging = {}  # parent folder -> temporary folder inside it.
  tmp_paths = []
  try:
    for path in paths:
      parent = _make_parent(path)
      if parent not in staging:
        staging[parent] = tempfile.mkdtemp(prefix='.staging-', dir=parent)
      tmp_paths.append(os.path.join(staging[parent], os.path.basename(path)))
    yield list(tmp_paths)
    missing = [p for p, t in zip(paths, tmp_paths) if not os.path.isfile(t)]
    if missing:
      raise FileNotFoundError('atomic_files: the block did not write %s'
                              % missing)
    for path, tmp_path in zip(paths, tmp_paths):
      os.replace(tmp_path, path)
  finally:
    for folder in staging.values():
      shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------
# Label pictures.
# ---------------------------------------------------------------------------


def save_label_png(path, label):
  """Saves class ids [H, W] (values 0..255) as a grayscale PNG, atomically."""
  label = _check_label(label)
  if label.size and (label.min() < 0 or label.max() > 255):
    raise ValueError('label PNG %s: values must be in [0, 255], got [%d, %d]'
                     % (path, label.min(), label.max()))
  atomic_save_png(path, label.astype(np.uint8))


def save_color_png(path, label, colormap=None):
  """Saves class ids [H, W] painted with `colormap` (VOC if None) as RGB PNG."""
  atomic_save_png(path, label_to_color(label, colormap))


def read_label_png(path):
  """Reads a class-id PNG.

  Grayscale (L, I, I;16) PNGs give their values; palette (P) PNGs, such as
  VOC's SegmentationClass, give their palette indices, which are the class
  ids; an RGB PNG is accepted only when its three channels are equal.

  Args:
    path: PNG file.

  Returns:
    An int64 array [H, W].
  """
  try:
    with Image.open(path) as image:
      mode = image.mode
      array = np.asarray(image)
  except FileNotFoundError:
    raise FileNotFoundError('label PNG not found: %s' % path) from None
  except Exception as e:
    raise ValueError('cannot read label PNG %s (%s)' % (path, e)) from e
  if mode in ('LA', 'RGB', 'RGBA'):
    channels = array[..., :1 if mode == 'LA' else 3]
    if not np.all(channels == channels[..., :1]):
      raise ValueError('label PNG %s is a colour (%s) picture; expected '
                       'grayscale class ids' % (path, mode))
    array = channels[..., 0]
  if array.ndim != 2:
    raise ValueError('label PNG %s: unsupported mode %s' % (path, mode))
  return array.astype(np.int64)


def save_grid_png(path, images, titles=None, ncols=None, padding=4):
  """Tiles pictures in a grid, each under a small caption, and saves a PNG.

  Cells are as large as the largest picture; smaller pictures sit in the top
  left of their cell; the background is white. Captions are drawn with PIL's
  default font and shortened with '...' to fit their cell.

  Args:
    path: output PNG (parent folders created, written atomically).
    images: list of uint8 arrays [H, W, 3] (or [H, W] grayscale).
    titles: None or a list of strings, one per picture.
    ncols: pictures per row; None puts them all side by side.
    padding: pixels between cells and around the grid.

  Returns:
    The grid as a uint8 array [H_grid, W_grid, 3].
  """
  if not images:
    raise ValueError('save_grid_png %s: no pictures given' % path)
  pictures = []
  for i, image in enumerate(images):
    image = np.asarray(image)
    if image.dtype != np.uint8:
      raise ValueError('save_grid_png %s: picture %d has dtype %s, expected '
                       'uint8' % (path, i, image.dtype))
    if image.ndim == 2:
      image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
      raise ValueError('save_grid_png %s: picture %d has shape %s, expected '
                       '[H, W, 3] or [H, W]' % (path, i, image.shape))
    pictures.append(image)
  if titles is not None and len(titles) != len(pictures):
    raise ValueError('save_grid_png %s: %d titles for %d pictures'
                     % (path, len(titles), len(pictures)))
  ncols = len(pictures) if ncols is None else int(ncols)
  if ncols < 1:
    raise ValueError('save_grid_png %s: ncols must be >= 1, got %d'
                     % (path, ncols))
  ncols = min(ncols, len(pictures))
  nrows = -(-len(pictures) // ncols)
  cell_h = max(p.shape[0] for p in pictures)
  cell_w = max(p.shape[1] for p in pictures)

  font = ImageFont.load_default()
  caption_h = 0
  if titles is not None:
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    top, bottom = probe.textbbox((0, 0), 'Hgy|', font=font)[1::2]
    caption_h = bottom + max(top, 0) + 2

  grid_h = padding + nrows * (caption_h + cell_h + padding)
  grid_w = padding + ncols * (cell_w + padding)
  canvas = Image.new('RGB', (grid_w, grid_h), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for i, picture in enumerate(pictures):
    row, col = divmod(i, ncols)
    x = padding + col * (cell_w + padding)
    y = padding + row * (caption_h + cell_h + padding)
    if titles is not None:
      draw.text((x, y), _fit_text(draw, str(titles[i]), font, cell_w),
                fill=(0, 0, 0), font=font)
    canvas.paste(Image.fromarray(picture, mode='RGB'), (x, y + caption_h))
  grid = np.asarray(canvas).copy()
  atomic_save_png(path, grid)
  return grid


def _fit_text(draw, text, font, width):
  """Shortens `text` with '...' until it is at most `width` pixels wide."""
  if draw.textlength(text, font=font) <= width:
    return text
  while text and draw.textlength(text + '...', font=font) > width:
    text = text[:-1]
  return text + '...' if text else ''


# ---------------------------------------------------------------------------
# Config snapshot and class names.
# ---------------------------------------------------------------------------


def save_config(snapshot_dir, args):
  """Writes SNAPSHOT_DIR/config: one `name: value` line per argument, sorted.

  Args:
    snapshot_dir: folder (created if needed).
    args: an argparse.Namespace or a dict of argument values.

  Returns:
    The path of the config file.
  """
  values = args if isinstance(args, dict) else vars(args)
  lines = ['%s: %s\n' % (name, values[name]) for name in sorted(values)]
  path = os.path.join(snapshot_dir, 'config')
  atomic_write_text(path, ''.join(lines))
  return path


def get_class_names(num_classes, names_file=None):
  """Names of the classes, index = class id.

  Args:
    num_classes: number of classes (python int >= 1).
    names_file: optional text file with one name per line (blank lines
      skipped; surrounding spaces stripped); it must hold exactly
      num_classes distinct names.

  Returns:
    A list of num_classes strings: the file's names if given, else
    VOC_CLASSES when num_classes == 21, else 'class_0', 'class_1', ...
  """
  if int(num_classes) != num_classes or num_classes < 1:
    raise ValueError('num_classes must be a positive integer, got %r'
                     % (num_classes,))
  num_classes = int(num_classes)
  if names_file:
    try:
      with open(names_file, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
      raise FileNotFoundError('class names file not found: %s'
                              % names_file) from None
    if len(names) != num_classes:
      raise ValueError('class names file %s holds %d names, expected '
                       'num_classes=%d' % (names_file, len(names), num_classes))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
      raise ValueError('class names file %s repeats %s'
                       % (names_file, duplicates))
    return names
  if num_classes == len(VOC_CLASSES):
    return list(VOC_CLASSES)
  return ['class_%d' % i for i in range(num_classes)]
