"""The snapshot folder of a training run: one writer, same model, writable.

    SNAPSHOT_DIR/training.lock   "HOST PID" of the run writing the folder
    SNAPSHOT_DIR/config          the flags of the run (utils/config_snapshot)
    SNAPSHOT_DIR/model.json      the model's settings (see below)

The lock is created atomically (O_EXCL); a lock left by a process that no
longer runs on this host is stale and taken over. A lock of another host
cannot be checked from here: the message names it, so the user can delete
it once that run is gone.
"""
import errno
import json
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

# SNAPSHOT_DIR/model.json: what a checkpoint of the folder is, read by
# inference, prototype extraction, export and resume when a flag is not
# given (pyscripts/checkpoint_settings.py):
#
#   {"format": 1,
#    "loss": "segsort" | "segsort_unsup" | "softmax",
#    "output": "embedding" | "logits",
#    "network": {"model": ..., "backbone": ..., "backbone_variant": ...,
#                "width_multiplier": ..., "embedding_dim" or "num_classes":
#                the output depth},
#    "training": {"num_classes": ..., "num_banks": ...}}
#
# "network" decides the checkpoint's variables and what they mean: a flag
# that contradicts one is an error. "training" holds the other settings of
# the trained model (those its loss reads): inference takes them when not
# given; a resumed run must keep them.
SETTINGS_NAME = 'model.json'
SETTINGS_FORMAT = 1
NETWORK_FLAGS = ('model', 'backbone', 'backbone_variant', 'width_multiplier')


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


def get_model_settings(values, loss, output, output_depth_flag,
                       training_flags):
  """The model.json content of a run (see SETTINGS_NAME).

  Args:
    values: {flag: value} of the run.
    loss: the loss name.
    output: what the network outputs ('embedding' or 'logits').
    output_depth_flag: the flag giving the output's depth.
    training_flags: the other model flags the loss reads.

  Returns:
    A dict, JSON-serialisable.
  """
  network = {name: values[name]
             for name in NETWORK_FLAGS + (output_depth_flag,)}
  training = {name: values[name] for name in training_flags
              if name in values and name not in network}
  return {'format': SETTINGS_FORMAT, 'loss': loss, 'output': output,
          'network': network, 'training': training}


def save_model_settings(folder, settings):
  """Writes FOLDER/model.json (atomically); returns its path."""
  path = os.path.join(folder, SETTINGS_NAME)
  atomic_io.atomic_write_text(path, json.dumps(settings, indent=2,
                                               sort_keys=True) + '\n')
  return path


def get_settings_path(restore_from):
  """The model.json that goes with a checkpoint (prefix or folder)."""
  if not restore_from:
    return None
  folder = (restore_from if os.path.isdir(restore_from) else
            os.path.dirname(restore_from) or '.')
  return os.path.join(folder, SETTINGS_NAME)


def read_model_settings(restore_from):
  """(path, settings) of the checkpoint's model.json, or (None, None).

  Args:
    restore_from: a checkpoint prefix or a folder.

  Raises:
    SnapshotFolderError: the file exists but is not valid.
  """
  path = get_settings_path(restore_from)
  if path is None or not os.path.isfile(path):
    return None, None
  try:
    with open(path) as f:
      settings = json.load(f)
    if (not isinstance(settings.get('network'), dict) or
        not isinstance(settings.get('training', {}), dict)):
      raise ValueError('no "network" settings')
  except (OSError, ValueError, AttributeError) as e:
    raise SnapshotFolderError('Cannot read the model settings %s: %s (delete '
                              'it and pass the model flags by hand).'
                              % (path, e))
  settings.setdefault('training', {})
  return path, settings


def check_same_model(snapshot_dir, values):
  """Raises unless the model flags equal those of the folder.

  The folder's model.json when it has one, else its config (the flags of
  MODEL_FLAGS, as text; folders written before model.json).

  Args:
    snapshot_dir: a folder holding checkpoints to resume from.
    values: {flag name: value} of the new run.

  Raises:
    SnapshotFolderError: naming every differing flag.
  """
  _, settings = read_model_settings(snapshot_dir)
  if settings is not None:
    saved = dict(settings['training'], **settings['network'])
    differ = ['--%s: %s in the folder, %s now' % (name, saved[name],
                                                  values[name])
              for name in sorted(saved)
              if name in values and saved[name] != values[name]]
  else:
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
