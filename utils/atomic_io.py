"""Atomic file writes: a reader (or a crash) never sees a half-written file.

The data goes to a temporary file in the target's own folder, which then
replaces the target with os.replace (an atomic rename on one file system).
Temporary files get the usual umask-based permissions, and parent folders
are created. NumPy / PIL only.
"""
import contextlib
import json
import os
import secrets
import shutil
import tempfile

import numpy as np
from PIL import Image


def _make_parent(path):
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  return parent


@contextlib.contextmanager
def atomic_open(path, mode='wb'):
  """Opens a temporary file that replaces `path` when the block succeeds.

  If the block raises, the temporary file is removed and `path` is left
  untouched.

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
  """Writes a UTF-8 text file atomically."""
  with atomic_open(path, 'w') as f:
    f.write(text)


def atomic_write_json(path, value):
  """Writes value as indented JSON (and a final newline), atomically."""
  atomic_write_text(path, json.dumps(value, indent=2) + '\n')


def atomic_save_png(path, image):
  """Saves an array as a PNG, atomically.

  Args:
    path: output PNG.
    image: uint8 [H, W] (8-bit grayscale), uint16 [H, W] (16-bit
      grayscale) or uint8 [H, W, 3] (RGB).
  """
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[2] == 3:
    dtypes = (np.uint8,)
  elif image.ndim == 2:
    dtypes = (np.uint8, np.uint16)
  else:
    raise ValueError('PNG %s: expected [H, W] or [H, W, 3], got shape %s'
                     % (path, image.shape))
  if image.dtype.type not in dtypes:
    raise ValueError('PNG %s: expected a %s array of shape %s, got dtype %s'
                     % (path, ' or '.join(np.dtype(d).name for d in dtypes),
                        image.shape, image.dtype))
  # Pillow maps uint8 [H, W] to mode L, uint16 to I;16, [H, W, 3] to RGB.
  pil_image = Image.fromarray(np.ascontiguousarray(image))
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


def is_process_alive(pid):
  """Whether a process of this host with that id exists.

  Used to tell the leftovers (staging folders, locks) of a killed process
  from those of a running one.
  """
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # It exists, under another user.
  return True
