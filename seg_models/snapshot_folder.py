"""The snapshot folder of a training run: one writer, same model, writable.

    SNAPSHOT_DIR/training.lock   "HOST PID" of the run writing the folder
    SNAPSHOT_DIR/config          the flags of the run (utils/config_snapshot)

The lock is created atomically (O_EXCL); a lock left by a process that no
longer runs on this host is stale and taken over. A lock of another host
cannot be checked from here: the message names it, so the user can delete
it once that run is gone.
"""
import errno
import os
import socket

from utils import atomic_io
from utils import errors

LOCK_NAME = 'training.lock'
CONFIG_NAME = 'config'

# The flags that decide the variables' names and shapes: a run resumed with
# another value would not restore (or would silently mean another model).
MODEL_FLAGS = ('model', 'backbone', 'backbone_variant', 'width_multiplier',
               'embedding_dim', 'num_classes', 'num_banks')


SnapshotFolderError = errors.SnapshotFolderError


def check_folder(snapshot_dir):
  """Creates snapshot_dir if needed; raises unless it is a folder.

  Raises:
    SnapshotFolderError: the path is a file, or cannot be created.
  """
  if os.path.exists(snapshot_dir) and not os.path.isdir(snapshot_dir):
    raise SnapshotFolderError('--snapshot_dir %s is a file, not a folder.'
                              % snapshot_dir)
  try:
    os.makedirs(snapshot_dir, exist_ok=True)
  except OSError as e:
    raise SnapshotFolderError('Cannot create --snapshot_dir %s: %s.'
                              % (snapshot_dir, e.strerror or e))


def _read_lock(path):
  """(host, pid) written in a lock file, or None when it is unreadable."""
  try:
    with open(path) as f:
      host, pid = f.read().split()
    return host, int(pid)
  except (OSError, ValueError):
    return None


class SnapshotLock(object):
  """The exclusive right to write a snapshot folder (a context manager)."""

  def __init__(self, snapshot_dir, log=None):
    self.path = os.path.join(snapshot_dir, LOCK_NAME)
    self._log = log or (lambda message: None)
    self._held = False

  def acquire(self):
    """Takes the lock, taking over a stale one.

    Raises:
      SnapshotFolderError: another live run holds it, or the folder is not
        writable.
    """
    host = socket.gethostname()
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = _read_lock(self.path)
        if holder is not None and (holder[0] != host or
                                   atomic_io.is_process_alive(holder[1])):
          raise SnapshotFolderError(
              '%s is being written by another training run (host %s, PID '
              '%d; lock %s). Wait for it, or delete the lock if that run is '
              'gone.' % (os.path.dirname(self.path), holder[0], holder[1],
                         self.path))
        # Stale (its process is gone) or torn (killed while writing it).
        self._log('Removing the stale lock %s (%s).' % (
            self.path, 'host %s, PID %d, not running' % holder
            if holder else 'unreadable'))
        try:
          os.remove(self.path)
        except FileNotFoundError:
          pass
        continue
      except OSError as e:
        raise SnapshotFolderError('Cannot write to --snapshot_dir %s: %s.' % (
            os.path.dirname(self.path), e.strerror or e))
      with os.fdopen(fd, 'w') as f:
        f.write('%s %d\n' % (host, os.getpid()))
      self._held = True
      return self
    raise SnapshotFolderError('Cannot take the lock %s.' % self.path)

  def release(self):
    if self._held:
      self._held = False
      try:
        os.remove(self.path)
      except OSError as e:
        if e.errno != errno.ENOENT:
          raise

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc_info):
    self.release()


def read_config(snapshot_dir):
  """{name: value string} of SNAPSHOT_DIR/config ({} when absent)."""
  path = os.path.join(snapshot_dir, CONFIG_NAME)
  values = {}
  if not os.path.isfile(path):
    return values
  with open(path) as f:
    for line in f:
      name, sep, value = line.rstrip('\n').partition(': ')
      if sep:
        values[name] = value
  return values


def check_same_model(snapshot_dir, values):
  """Raises unless the model flags equal those in SNAPSHOT_DIR/config.

  Args:
    snapshot_dir: a folder holding checkpoints to resume from.
    values: {flag name: value} of the new run.

  Raises:
    SnapshotFolderError: naming every differing flag.
  """
  saved = read_config(snapshot_dir)
  differ = ['--%s: %s in the folder, %s now' % (name, saved[name],
                                                values[name])
            for name in MODEL_FLAGS
            if name in saved and name in values and
            saved[name] != str(values[name])]
  if differ:
    raise SnapshotFolderError(
        'Cannot resume from %s with other model flags:\n  %s\nUse the '
        'folder\'s values, or another --snapshot_dir for a new model.'
        % (snapshot_dir, '\n  '.join(differ)))
