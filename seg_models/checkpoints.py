"""Restoring checkpoints with errors that say what is wrong.

A checkpoint is named by its file prefix (`.../model.ckpt-1000`) or by a
folder, meaning the latest checkpoint in it. Before anything is restored,
the names and shapes of the requested variables are checked against the
checkpoint, and every missing or mismatched variable is reported in one
error; head variables among them point the user to --not_restore_classifier,
and variables holding NaN or infinite values are refused.

A folder's checkpoints are its own `model.ckpt-STEP` files: the `checkpoint`
index may hold the absolute paths of another folder (after a move or a
copy), so it only serves folders without such files.
"""
import os
import re

import numpy as np
import tensorflow.compat.v1 as tf

from network.common import resnet_v1
from seg_models import models
from seg_models.models import common
from utils import errors

CHECKPOINT_PREFIX = 'model.ckpt'


RestoreError = errors.RestoreError


def resolve_checkpoint(path):
  """Returns the checkpoint prefix that `path` (file prefix or folder) names."""
  if not path:
    raise RestoreError('No checkpoint given (empty --restore_from).')
  if os.path.isdir(path):
    own = list_checkpoints(path)
    latest = own[0][1] if own else tf.train.latest_checkpoint(path)
    if latest is None:
      latest = _newest_prefix_in(path)
    if latest is None:
      raise RestoreError('No checkpoint found in folder %s (expected %s-STEP '
                         'files or a `checkpoint` index).' % (path,
                                                              CHECKPOINT_PREFIX))
    return latest
  if os.path.exists(path + '.index') or os.path.exists(path):
    return path
  raise RestoreError('Checkpoint %s does not exist (no %s.index).'
                     % (path, path))


def _newest_prefix_in(folder):
  """Newest `*.index` checkpoint in folder when no `checkpoint` file exists."""
  steps = []
  for fname in os.listdir(folder):
    if fname.endswith('.index'):
      prefix = os.path.join(folder, fname[:-len('.index')])
      steps.append((os.path.getmtime(prefix + '.index'), prefix))
  return max(steps)[1] if steps else None


def list_checkpoints(folder):
  """The folder's own `model.ckpt-STEP` checkpoints, newest first.

  Args:
    folder: a snapshot folder.

  Returns:
    A list of (step, prefix) sorted by decreasing step (empty when the
    folder does not exist).
  """
  if not folder or not os.path.isdir(folder):
    return []
  pattern = re.compile(r'^%s-(\d+)\.index$' % re.escape(CHECKPOINT_PREFIX))
  found = []
  for fname in os.listdir(folder):
    match = pattern.match(fname)
    if match:
      found.append((int(match.group(1)),
                    os.path.join(folder, fname[:-len('.index')])))
  return sorted(found, reverse=True)


def get_checkpoint_problem(prefix, names=None):
  """Why a checkpoint cannot be used, or None when it is intact and finite.

  Every tensor is read, so a torn data file (a truncated write) is found,
  and every float tensor is checked for NaN and infinite values.

  Args:
    prefix: a checkpoint prefix.
    names: the variable names to check (default: all in the checkpoint).

  Returns:
    None, or a one-line description of the first problem.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    non_finite = []
    for name in sorted(shapes if names is None else
                       [n for n in names if n in shapes]):
      value = np.asarray(reader.get_tensor(name))
      if value.dtype.kind == 'f' and not np.all(np.isfinite(value)):
        non_finite.append(name)
  except Exception as e:  # pylint: disable=broad-except
    lines = str(e).strip().splitlines() or [type(e).__name__]
    return 'unreadable (%s)' % lines[0]
  if non_finite:
    return '%d variable(s) hold NaN or infinite values (%s%s)' % (
        len(non_finite), ', '.join(non_finite[:3]),
        ', ...' if len(non_finite) > 3 else '')
  return None


def find_resume_checkpoint(snapshot_dir, log=None):
  """The newest of the folder's own checkpoints that is intact and finite.

  Args:
    snapshot_dir: a snapshot folder.
    log: optional fn(message) told about every checkpoint passed over.

  Returns:
    (step, prefix), or (0, None) when there is none to resume from.
  """
  for step, prefix in list_checkpoints(snapshot_dir):
    problem = get_checkpoint_problem(prefix)
    if problem is None:
      return step, prefix
    if log is not None:
      log('Skipping checkpoint %s: %s; trying the previous one.'
          % (prefix, problem))
  return 0, None


def latest_step(snapshot_dir):
  """Step of the latest usable `model.ckpt-STEP` in snapshot_dir, or None."""
  step, prefix = find_resume_checkpoint(snapshot_dir)
  return step if prefix is not None else None


def check_variables(checkpoint, var_list, head_scopes=None):
  """Raises RestoreError unless every variable is in checkpoint with its shape.

  Args:
    checkpoint: a checkpoint prefix.
    var_list: list of tf.Variable.
    head_scopes: the model's head scopes, for the hint (None: every
      model's, see models.get_extra_layer_scopes).
  """
  if head_scopes is None:
    head_scopes = models.get_extra_layer_scopes()
  try:
    reader = tf.train.load_checkpoint(checkpoint)
  except Exception as e:  # pylint: disable=broad-except
    raise RestoreError('Cannot read checkpoint %s: %s'
                       % (checkpoint, str(e).splitlines()[0]))
  shapes = reader.get_variable_to_shape_map()
  missing, mismatched = [], []
  for var in var_list:
    name = var.op.name
    if name not in shapes:
      missing.append(name)
    elif list(shapes[name]) != var.shape.as_list():
      mismatched.append('%s: checkpoint %s, model %s'
                        % (name, shapes[name], var.shape.as_list()))
  if not missing and not mismatched:
    problem = get_checkpoint_problem(checkpoint,
                                     [var.op.name for var in var_list])
    if problem is not None:
      raise RestoreError('Checkpoint %s cannot be used: %s.'
                         % (checkpoint, problem))
    return
  raise RestoreError('\n'.join(
      get_mismatch_report(checkpoint, shapes, missing, mismatched,
                          head_scopes)))


# Names listed in a mismatch report, per kind.
MAX_LISTED_VARIABLES = 30


def _top_scopes(names):
  return {name.split('/', 1)[0] for name in names if '/' in name}


def get_mismatch_report(checkpoint, shapes, missing, mismatched,
                        head_scopes):
  """The lines of the error for a checkpoint that does not fit the model.

  The hint names the likely flag: --backbone when the checkpoint's
  variables live under another backbone scope (then every variable is
  missing), --not_restore_classifier when only head variables are missing
  or mismatched, --width_multiplier when conv1's width differs.
  """
  lines = ['Checkpoint %s does not match the model:' % checkpoint]
  for title, names in (('missing', missing), ('shape mismatch', mismatched)):
    if names:
      lines.append('  %d variable(s) %s, e.g.:' % (len(names), title))
      lines.extend('    ' + n for n in names[:MAX_LISTED_VARIABLES])
      if len(names) > MAX_LISTED_VARIABLES:
        lines.append('    ... and %d more' % (len(names) -
                                               MAX_LISTED_VARIABLES))
  wrong = missing + [m.split(':')[0] for m in mismatched]
  model_scopes = _top_scopes(wrong)
  checkpoint_scopes = _top_scopes(shapes)
  other = sorted(scope for scope in checkpoint_scopes - model_scopes
                 if scope in models.BACKBONES)
  if other and not model_scopes & checkpoint_scopes:
    lines.append('  The checkpoint holds a %s backbone and the model is a '
                 '%s: pass --backbone %s.' % (other[0], ', '.join(sorted(model_scopes)),
                                   other[0]))
    return lines
  conv1 = [m for m in mismatched if m.split(':')[0].endswith(
      '/conv1/weights') and '/block' not in m]
  if conv1:
    name = conv1[0].split(':')[0]
    channels = shapes[name][-1]
    lines.append('  conv1 has %d channels in the checkpoint: pass '
                 '--width_multiplier %g.' % (
                     channels, channels / float(resnet_v1.ROOT_FILTERS)))
  elif all(common.is_head_variable(n, head_scopes) for n in wrong):
    lines.append('  Only head (%s) variables differ: to start the head '
                 'afresh from a backbone checkpoint, pass '
                 '--not_restore_classifier; else check --model and '
                 '--embedding_dim / --num_classes.' % ', '.join(head_scopes))
  else:
    lines.append('  Check --model, --backbone, --width_multiplier and '
                 '--embedding_dim / --num_classes against the checkpoint.')
  return lines


def get_restorer(path, var_list, skip_head=False, head_scopes=None):
  """Checks path against var_list and returns what restores it.

  Builds the Saver now, so that the graph can be finalised before the
  session restores.

  Args:
    path: a checkpoint prefix or a folder (latest checkpoint).
    var_list: variables to restore.
    skip_head: leave the head variables as initialised.
    head_scopes: the model's head scopes (None: every model's, see
      models.get_extra_layer_scopes).

  Returns:
    (checkpoint prefix, restored variables, fn(sess) that restores).
  """
  checkpoint = resolve_checkpoint(path)
  if head_scopes is None:
    head_scopes = models.get_extra_layer_scopes()
  if skip_head:
    var_list = [v for v in var_list
                if not common.is_head_variable(v, head_scopes)]
  check_variables(checkpoint, var_list, head_scopes)
  saver = tf.train.Saver(var_list=var_list)
  return checkpoint, var_list, lambda sess: saver.restore(sess, checkpoint)


def restore_variables(sess, path, var_list, skip_head=False,
                      head_scopes=None):
  """Restores var_list (minus head variables if skip_head) from path.

  Args:
    sess: the session.
    path, var_list, skip_head, head_scopes: see get_restorer.

  Returns:
    (checkpoint prefix used, list of restored variables).
  """
  checkpoint, var_list, restore = get_restorer(path, var_list, skip_head,
                                               head_scopes)
  restore(sess)
  return checkpoint, var_list
