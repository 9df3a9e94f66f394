"""Training under a bad day: non-finite states, interrupts, moved, locked,
torn or foreign snapshot folders."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from pyscripts import script_glue
from pyscripts.train import train_segsort
from seg_models import checkpoints
from seg_models import run_guards
from seg_models import snapshot_folder
from seg_models import trainer
from tests import tiny_data

BACKBONE = 'resnet_v1_50'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _opts(data_dir, snapshot_dir, **kw):
  args = train_segsort.get_arguments(tiny_data.train_args(
      data_dir, snapshot_dir, backbone=BACKBONE))
  kw.setdefault('show_progress', False)
  kw.setdefault('update_tb_every', 100)
  return script_glue.options_from_args(trainer.TrainOptions, args, **kw)


def _read_checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def _write_checkpoint(values, prefix):
  with tf.Graph().as_default():
    created = [tf.Variable(value, name=name) for name, value in
               values.items()]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(created))
      tf.train.Saver(created).save(sess, prefix, write_meta_graph=False)


def _steps(snapshot_dir):
  return sorted(step for step, _ in checkpoints.list_checkpoints(
      snapshot_dir))


def _train(opts, **kw):
  return trainer.train(opts, trainer.LOSS_SEGSORT, **kw)


def test_non_finite_update_is_never_saved(tiny_dataset, tmp_path):
  """A finite loss whose update overflows the weights: stop, save nothing."""
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=2, save_pred_every=2))
  opts = _opts(tiny_dataset, snap, num_steps=6, save_pred_every=1,
               learning_rate=1e36)
  with pytest.raises(trainer.NonFiniteStateError) as error:
    _train(opts)
  message = str(error.value)
  bad_step = int(message.split()[1])
  assert bad_step > 2 and 'nothing was saved' in message
  assert 'model.ckpt-%d ' % (bad_step - 1) in message
  assert _steps(snap) == list(range(2, bad_step))
  for _, prefix in checkpoints.list_checkpoints(snap):
    assert checkpoints.get_checkpoint_problem(prefix) is None


def test_resume_and_restore_refuse_non_finite_checkpoints(tiny_dataset,
                                                          tmp_path, capsys):
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=2, save_pred_every=2))
  values = _read_checkpoint(os.path.join(snap, 'model.ckpt-2'))
  name = next(n for n in values if n.endswith('moving_variance'))
  values[name] = np.full_like(values[name], np.inf)
  values['global_step'] = np.int64(3)
  bad = os.path.join(snap, 'model.ckpt-3')
  _write_checkpoint(values, bad)
  assert 'NaN or infinite' in checkpoints.get_checkpoint_problem(bad)
  # Inference and prototype extraction restore through get_restorer.
  with tf.Graph().as_default():
    variable = tf.Variable(np.zeros(values[name].shape, np.float32),
                           name=name)
    with pytest.raises(checkpoints.RestoreError, match='NaN or infinite'):
      checkpoints.get_restorer(bad, [variable])
  out = _train(_opts(tiny_dataset, snap, num_steps=4, save_pred_every=2))
  assert out['step'] == 4
  printed = capsys.readouterr()
  assert 'Skipping checkpoint %s' % bad in printed.out + printed.err


def test_divergence_is_reported():
  run_guards.check_divergence(30.0, 2.0, 5, None)
  with pytest.raises(trainer.DivergenceError, match='step 7'):
    run_guards.check_divergence(5e7, 2.0, 7, '/s/model.ckpt-5')


def test_interrupt_mid_accumulation_resumes_exactly(tiny_dataset, tmp_path,
                                                    monkeypatch):
  """SIGINT during the first batch of step 3 of 5 (iter_size 2)."""
  common = dict(num_steps=5, iter_size=2, save_pred_every=100, num_banks=2)
  full = _train(_opts(tiny_dataset, str(tmp_path / 'full'), **common))
  calls = []
  run = trainer._run_micro_batch

  def interrupting_run(sess, fetches):
    calls.append(1)
    if len(calls) == 5:
      os.kill(os.getpid(), signal.SIGINT)
    return run(sess, fetches)

  snap = str(tmp_path / 'resumed')
  monkeypatch.setattr(trainer, '_run_micro_batch', interrupting_run)
  with pytest.raises(KeyboardInterrupt):
    _train(_opts(tiny_dataset, snap, **common))
  monkeypatch.setattr(trainer, '_run_micro_batch', run)
  assert len(calls) == 6 and _steps(snap) == [3]
  resumed = _train(_opts(tiny_dataset, snap, **common))
  a = _read_checkpoint(full['checkpoint'])
  b = _read_checkpoint(resumed['checkpoint'])
  assert any('segsort_memory_bank' in n for n in a)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5,
                               err_msg=name)


def test_sigterm_saves_like_ctrl_c(tiny_dataset, tmp_path):
  snap = str(tmp_path / 'snap')
  handler = signal.getsignal(signal.SIGTERM)

  def terminate(step, loss):
    del loss
    if step == 1:
      os.kill(os.getpid(), signal.SIGTERM)

  with pytest.raises(KeyboardInterrupt):
    _train(_opts(tiny_dataset, snap, num_steps=4, save_pred_every=100),
           step_callback=terminate)
  assert _steps(snap) == [1]
  assert signal.getsignal(signal.SIGTERM) == handler


def test_time_based_saves(tiny_dataset, tmp_path):
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=3, save_pred_every=100,
               save_every_minutes=1e-9))
  assert _steps(snap) == [1, 2, 3]
  args = train_segsort.get_arguments(tiny_data.train_args(tiny_dataset, snap))
  assert args.save_every_minutes == 30.0


def test_moved_and_copied_snapshot_folders_resume_from_their_own_files(
    tiny_dataset, tmp_path, capsys):
  first = str(tmp_path / 'first')
  _train(_opts(tiny_dataset, first, num_steps=2, save_pred_every=2))
  with open(os.path.join(first, 'checkpoint')) as f:
    assert str(tmp_path) not in f.read()
  copy = str(tmp_path / 'copy')
  shutil.copytree(first, copy)
  moved = str(tmp_path / 'moved')
  os.rename(first, moved)
  for folder in (moved, copy):
    capsys.readouterr()
    out = _train(_opts(tiny_dataset, folder, num_steps=4,
                       save_pred_every=2))
    assert out['step'] == 4
    assert ('Resumed from %s' % os.path.join(folder, 'model.ckpt-2')
            in capsys.readouterr().out)
    assert _steps(folder) == [2, 4]
    assert tf.train.latest_checkpoint(folder) == os.path.join(
        folder, 'model.ckpt-4')


def test_one_writer_per_snapshot_folder(tiny_dataset, tmp_path):
  snap = str(tmp_path / 'snap')
  os.makedirs(snap)
  lock = os.path.join(snap, snapshot_folder.LOCK_NAME)
  with open(lock, 'w') as f:
    f.write('%s %d\n' % (socket.gethostname(), os.getpid()))
  with pytest.raises(snapshot_folder.SnapshotFolderError,
                     match='PID %d' % os.getpid()):
    _train(_opts(tiny_dataset, snap, num_steps=1))
  assert _steps(snap) == []
  # A lock left by a process that is gone is taken over.
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  with open(lock, 'w') as f:
    f.write('%s %d\n' % (socket.gethostname(), dead.pid))
  _train(_opts(tiny_dataset, snap, num_steps=1))
  assert _steps(snap) == [1] and not os.path.exists(lock)


def test_torn_latest_checkpoint_falls_back(tiny_dataset, tmp_path, capsys):
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=4, save_pred_every=2))
  data, = glob.glob(os.path.join(snap, 'model.ckpt-4.data-*'))
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)
  capsys.readouterr()
  out = _train(_opts(tiny_dataset, snap, num_steps=6, save_pred_every=2))
  printed = capsys.readouterr()
  # A warning: on stderr (and in train.log).
  assert 'Skipping checkpoint %s' % os.path.join(snap, 'model.ckpt-4') in \
      printed.err
  printed = printed.out
  assert 'Resumed from %s' % os.path.join(snap, 'model.ckpt-2') in printed
  assert out['step'] == 6


def test_resume_with_other_model_flags_names_them(tiny_dataset, tmp_path):
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=2, save_pred_every=2))
  with open(os.path.join(snap, 'config')) as f:
    config = f.read()
  with pytest.raises(snapshot_folder.SnapshotFolderError) as error:
    _train(_opts(tiny_dataset, snap, num_steps=4, embedding_dim=6,
                 width_multiplier=0.125))
  message = str(error.value)
  assert '--embedding_dim: 8 in the folder, 6 now' in message
  assert '--width_multiplier' in message and '--num_classes' not in message
  with open(os.path.join(snap, 'config')) as f:
    assert f.read() == config


def test_snapshot_dir_naming_a_file_is_one_line(tiny_dataset, tmp_path):
  path = str(tmp_path / 'a_file')
  with open(path, 'w') as f:
    f.write('x')
  argv = tiny_data.train_args(tiny_dataset, path, backbone=BACKBONE)
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'pyscripts', 'train',
                                    'train_segsort.py')] + argv,
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert 'Traceback' not in result.stderr and path in result.stderr


def test_unwritable_snapshot_folder_keeps_earlier_checkpoints(
    tiny_dataset, tmp_path, monkeypatch):
  """A full disk (simulated: the writer fails) ends in one named error."""
  snap = str(tmp_path / 'snap')
  _train(_opts(tiny_dataset, snap, num_steps=2, save_pred_every=2))
  before = tiny_data.read_tree(snap)

  def full_disk(*args, **kwargs):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(tf.train.Saver, 'save', full_disk)
  with pytest.raises(snapshot_folder.SnapshotFolderError,
                     match='No space left'):
    _train(_opts(tiny_dataset, snap, num_steps=4, save_pred_every=2))
  after = tiny_data.read_tree(snap)
  for name in before:
    if name.startswith('model.ckpt-2') or name == 'checkpoint':
      assert after[name] == before[name], name
