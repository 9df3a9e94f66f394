"""What keeps a training run's checkpoints sound.

Interrupts (Ctrl-C, SIGTERM) stop the loop between steps; a step that left
non-finite values in the model's state, or a loss that exploded, stops the
run before anything is saved; a checkpoint is written completely or not at
all, and a folder that cannot take it is reported in one line.
"""
import contextlib
import os
import signal
import threading

import tensorflow.compat.v1 as tf
from tqdm import tqdm

from seg_models import checkpoints
from seg_models import snapshot_folder
from utils import errors

# Signals that stop training at the next step boundary, after a checkpoint.
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A loss this many times its first value (at least 1) means divergence.
DIVERGENCE_FACTOR = 1e3


def save_checkpoint(saver, sess, snapshot_dir, step):
  """Writes SNAPSHOT_DIR/model.ckpt-STEP (the `checkpoint` index is updated
  only once the files are complete, so a checkpoint is there or absent).

  Raises:
    snapshot_folder.SnapshotFolderError: the folder is not writable (full,
      read-only or gone); the earlier checkpoints are left as they were.
  """
  try:
    return saver.save(sess, os.path.join(snapshot_dir,
                                         checkpoints.CHECKPOINT_PREFIX),
                      global_step=step, write_meta_graph=False)
  except (OSError, tf.errors.OpError) as e:
    message = getattr(e, 'message', None) or str(e)
    raise snapshot_folder.SnapshotFolderError(
        'Cannot write checkpoint %d to %s: %s' % (
            step, snapshot_dir, message.strip().splitlines()[0]))


@contextlib.contextmanager
def deferred_interrupts():
  """SIGINT and SIGTERM only set a flag while training runs.

  The loop reads the flag between steps, so an interrupt never leaves
  half-accumulated batch-norm statistics or memory banks in a checkpoint.

  Yields:
    A dict whose 'signal' is the number of the first signal received, or
    None.
  """
  state = {'signal': None}

  def handler(signum, frame):
    del frame
    if state['signal'] is None:
      state['signal'] = signum
      tqdm.write('%s received: stopping after this step.'
                 % signal.Signals(signum).name)

  previous = {}
  if threading.current_thread() is threading.main_thread():
    for signum in INTERRUPT_SIGNALS:
      previous[signum] = signal.signal(signum, handler)
  try:
    yield state
  finally:
    for signum, old in previous.items():
      signal.signal(signum, old)


def check_finite_state(finite, step, last_checkpoint, snapshot_dir):
  """Raises errors.NonFiniteStateError unless the state after `step` is finite."""
  if not finite:
    raise errors.NonFiniteStateError(
        'Step %d left NaN or infinite values in the weights, batch-norm '
        'statistics or memory banks; nothing was saved. The last finite '
        'checkpoint is %s (try a lower --learning_rate).' % (
            step, last_checkpoint or 'none (no checkpoint in %s)'
            % snapshot_dir))


def check_divergence(loss, first_loss, step, last_checkpoint):
  """Raises errors.DivergenceError when loss exceeds DIVERGENCE_FACTOR x the first."""
  if first_loss is not None and loss > DIVERGENCE_FACTOR * max(first_loss,
                                                               1.0):
    raise errors.DivergenceError(
        'Training diverged: the loss reached %.4g at step %d (%.4g at the '
        'start of this run); nothing was saved. The last checkpoint is %s '
        '(try a lower --learning_rate).' % (loss, step, first_loss,
                                           last_checkpoint or 'none'))
