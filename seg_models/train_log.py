"""What a training run tells: TensorBoard events and SNAPSHOT_DIR/train.log.

TensorBoard (EventLog): one events file per snapshot folder. The first run
writes the graph once (a ResNet-101 training graph is several MB; TF's
FileWriter(graph=...) also wrote a meta graph holding it again, so every
start added a file of that size); a resumed run writes to a file of its own
that is appended to the folder's file when the run ends, and a file left by
a killed run is appended at the next start. A resumed run starts with a
SessionLog START at its step, so TensorBoard drops the events a killed run
wrote after its last checkpoint.

Text (text_log): SNAPSHOT_DIR/train.log, appended by every run through
Python's `logging` (logger LOGGER_NAME): the configuration, every
--log_every steps the step, loss, learning rate and speed, checkpoints,
warnings and errors. The console gets the same messages, except the step
lines (the progress bar shows them): INFO on stdout, WARNING and above on
stderr as `warning: ...`, written through tqdm so they do not break the
bar. TensorFlow's log level (TF_CPP_MIN_LOG_LEVEL, absl) does not apply to
this logger.
"""
import contextlib
import glob
import logging
import os
import struct
import sys

import tensorflow.compat.v1 as tf
from tqdm import tqdm

LOGGER_NAME = 'segsort.train'
LOG_NAME = 'train.log'
EVENTS_GLOB = 'events.out.tfevents.*'
# The file a resumed run writes (FileWriter's filename_suffix) until it is
# appended to the folder's events file.
RESUMED_SUFFIX = '.resumed'
LOG_FORMAT = '%(asctime)s %(levelname)s %(message)s'

# Scalars of the training speed (TensorBoard tags).
STEPS_PER_SEC = 'steps_per_sec'
IMAGES_PER_SEC = 'images_per_sec'


def _split_records(data):
  """The complete TFRecord records of data (a torn last one is dropped)."""
  records, pos = [], 0
  while pos + 12 <= len(data):
    length, = struct.unpack('<Q', data[pos:pos + 8])
    end = pos + 12 + length + 4
    if end > len(data):
      break
    records.append(data[pos:end])
    pos = end
  return records


def _events_files(logdir):
  """(main files, resumed files) of logdir, each sorted oldest first."""
  paths = sorted(glob.glob(os.path.join(logdir, EVENTS_GLOB)))
  resumed = [p for p in paths if p.endswith(RESUMED_SUFFIX)]
  return [p for p in paths if p not in resumed], resumed


def append_events(source, target):
  """Appends source's events (less its file-version record) to target and
  deletes source."""
  with open(source, 'rb') as f:
    records = _split_records(f.read())
  with open(target, 'ab') as f:
    f.write(b''.join(records[1:]))
  os.remove(source)


class EventLog(object):
  """The TensorBoard events of a snapshot folder (see the module doc)."""

  def __init__(self, logdir, graph, start_step):
    """Opens the events of logdir.

    Args:
      logdir: the snapshot folder.
      graph: the training graph (written when the folder has no events).
      start_step: the step the run starts at (> 0: a resumed run).
    """
    mains, leftovers = _events_files(logdir)
    self._main = mains[-1] if mains else None
    for path in leftovers:
      if self._main is None:
        self._main = path[:-len(RESUMED_SUFFIX)]
        os.rename(path, self._main)
      else:
        append_events(path, self._main)
    if self._main is None:
      self._writer = tf.summary.FileWriter(logdir)
      self._writer.add_graph(graph)
    else:
      self._writer = tf.summary.FileWriter(logdir,
                                           filename_suffix=RESUMED_SUFFIX)
      self._writer.add_session_log(
          tf.SessionLog(status=tf.SessionLog.START), start_step)

  def add_summary(self, summary, step):
    self._writer.add_summary(summary, step)

  def add_scalars(self, values, step):
    """Writes {tag: float} as TensorBoard scalars at step."""
    self._writer.add_summary(tf.Summary(value=[
        tf.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in sorted(values.items())]), step)

  def flush(self):
    self._writer.flush()

  def close(self):
    """Closes the file; a resumed run's events join the folder's file."""
    self._writer.close()
    if self._main is not None:
      path = self._writer.get_logdir()
      own = [p for p in _events_files(path)[1]]
      for source in own:
        append_events(source, self._main)


class _ConsoleHandler(logging.Handler):
  """INFO to stdout, WARNING and above to stderr, through tqdm.write."""

  def emit(self, record):
    if not getattr(record, 'console', True):
      return
    try:
      message = self.format(record)
      if record.levelno >= logging.WARNING:
        tqdm.write('%s: %s' % (record.levelname.lower(), message),
                   file=sys.stderr)
      else:
        tqdm.write(message, file=sys.stdout)
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def get_logger():
  """The training logger (handlers added by text_log)."""
  return logging.getLogger(LOGGER_NAME)


@contextlib.contextmanager
def text_log(snapshot_dir, console=True):
  """Sends the training logger to SNAPSHOT_DIR/train.log (appended) and the
  console while the block runs.

  Yields:
    The logger.
  """
  logger = get_logger()
  logger.setLevel(logging.INFO)
  logger.propagate = False
  handlers = []
  file_handler = logging.FileHandler(os.path.join(snapshot_dir, LOG_NAME),
                                     encoding='utf-8')
  file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
  handlers.append(file_handler)
  if console:
    handlers.append(_ConsoleHandler())
  for handler in handlers:
    logger.addHandler(handler)
  try:
    yield logger
  finally:
    for handler in handlers:
      logger.removeHandler(handler)
      handler.close()


def log_config(logger, values):
  """One `config: name = value` line per setting, sorted (train.log only:
  the console has the command line)."""
  for name in sorted(values):
    if not name.startswith('_'):
      logger.info('config: %s = %s', name, values[name],
                  extra={'console': False})


class SpeedMeter(object):
  """Steps/s and images/s between two calls of measure()."""

  def __init__(self, step, images_per_step, clock):
    self._clock = clock
    self._images_per_step = images_per_step
    self._step, self._time = step, clock()

  def restart(self, step):
    """Starts a new interval at step (after untimed work, e.g. a
    checkpoint or a validation)."""
    self._step, self._time = step, self._clock()

  def measure(self, step):
    """{STEPS_PER_SEC, IMAGES_PER_SEC} since the last call, or {} when no
    step has passed."""
    now = self._clock()
    steps, seconds = step - self._step, now - self._time
    self._step, self._time = step, now
    if steps <= 0 or seconds <= 0:
      return {}
    rate = steps / seconds
    return {STEPS_PER_SEC: rate, IMAGES_PER_SEC: rate * self._images_per_step}
