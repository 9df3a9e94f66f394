"""What a training run tells: one TensorBoard events file, speed, train.log."""
import glob
import logging
import os
import re

import pytest
import tensorflow.compat.v1 as tf

from network.multigpu import towers
from pyscripts import script_glue
from pyscripts.train import train_segsort
from seg_models import train_log
from seg_models import trainer
from tests import tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _opts(data_dir, snapshot_dir, **kw):
  args = train_segsort.get_arguments(
      tiny_data.train_args(data_dir, snapshot_dir))
  kw.setdefault('show_progress', False)
  return script_glue.options_from_args(trainer.TrainOptions, args, **kw)


def _events(path):
  return list(tf.train.summary_iterator(path))


def _events_files(folder):
  return sorted(glob.glob(os.path.join(folder, 'events.out.tfevents.*')))


def test_resumed_runs_append_to_one_events_file(tiny_dataset, tmp_path,
                                                capsys):
  snap = str(tmp_path / 'snap')
  trainer.train(_opts(tiny_dataset, snap, num_steps=2, update_tb_every=1,
                      log_every=1), trainer.LOSS_SEGSORT)
  path, = _events_files(snap)
  size_after_first = os.path.getsize(path)
  # A resume that does nothing (already at num_steps) and one that trains.
  trainer.train(_opts(tiny_dataset, snap, num_steps=2), trainer.LOSS_SEGSORT)
  trainer.train(_opts(tiny_dataset, snap, num_steps=4, update_tb_every=1,
                      log_every=1), trainer.LOSS_SEGSORT)
  assert _events_files(snap) == [path]
  events = _events(path)
  graphs = [e for e in events if e.graph_def]
  assert len(graphs) == 1
  assert not any(e.meta_graph_def for e in events)
  # The graph is most of the file: the resumes added far less than it.
  assert os.path.getsize(path) - size_after_first < len(graphs[0].graph_def)
  starts = [e.step for e in events
            if e.session_log.status == tf.SessionLog.START]
  assert starts == [2, 2]
  scalars = {}
  for event in events:
    for value in event.summary.value:
      if value.HasField('simple_value'):
        scalars.setdefault(value.tag, []).append(event.step)
  assert scalars['total_loss'] == [0, 1, 2, 3]
  # Speed between summaries: from step 1 on (step 0 has no interval).
  assert scalars[train_log.STEPS_PER_SEC] == [1, 2, 3, 4]
  assert scalars[train_log.IMAGES_PER_SEC] == [1, 2, 3, 4]
  for event in events:
    for value in event.summary.value:
      if value.tag == train_log.IMAGES_PER_SEC:
        assert value.simple_value > 0

  log = open(os.path.join(snap, train_log.LOG_NAME)).read()
  assert log.count('Training segsort') == 3
  assert 'config: num_steps = 4' in log and 'config: backbone = ' in log
  assert re.search(r'INFO step 3 loss [0-9.]+ lr [0-9.e-]+ '
                   r'images_per_sec [0-9.e+]+ steps_per_sec [0-9.e+]+', log)
  assert 'Saved checkpoint %s' % os.path.join(snap, 'model.ckpt-4') in log
  assert 'Resumed from %s' % os.path.join(snap, 'model.ckpt-2') in log
  assert 'Finished at step 4' in log
  # The step lines go to the file only (the console has the progress bar).
  assert 'step 3 loss' not in capsys.readouterr().out


def test_warnings_reach_the_user_whatever_tensorflow_log_level(
    tiny_dataset, tmp_path, capsys):
  snap = str(tmp_path / 'snap')
  trainer.train(_opts(tiny_dataset, snap, num_steps=2, save_pred_every=1),
                trainer.LOSS_SEGSORT)
  data, = glob.glob(os.path.join(snap, 'model.ckpt-2.data-*'))
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)
  tf_logger = tf.get_logger()
  level = tf_logger.level
  tf_logger.setLevel(logging.FATAL)
  try:
    capsys.readouterr()
    # The run ends in an error, which train.log records too.
    with pytest.raises(trainer.DivergenceError):
      trainer.train(_opts(tiny_dataset, snap, num_steps=3),
                    trainer.LOSS_SEGSORT,
                    step_callback=lambda step, loss: (_ for _ in ()).throw(
                        trainer.DivergenceError('diverged at %d' % step)))
  finally:
    tf_logger.setLevel(level)
  err = capsys.readouterr().err
  skipped = 'Skipping checkpoint %s' % os.path.join(snap, 'model.ckpt-2')
  assert 'warning: ' + skipped in err
  log = open(os.path.join(snap, train_log.LOG_NAME)).read()
  assert 'WARNING ' + skipped in log
  assert 'ERROR diverged at 2' in log


def _write_events(logdir, steps, suffix=''):
  writer = tf.summary.FileWriter(logdir, filename_suffix=suffix)
  for step in steps:
    writer.add_summary(tf.Summary(value=[
        tf.Summary.Value(tag='x', simple_value=float(step))]), step)
  writer.close()
  return writer


def test_a_killed_resume_is_appended_at_the_next_start(tmp_path):
  logdir = str(tmp_path)
  with tf.Graph().as_default() as graph:
    tf.constant(1.0, name='c')
  log = train_log.EventLog(logdir, graph, 0)
  log.add_scalars({'x': 0.0}, 0)
  log.close()
  main, = _events_files(logdir)
  # A resumed run killed before it closed its file, its last record torn.
  _write_events(logdir, [5, 6], suffix=train_log.RESUMED_SUFFIX)
  leftover, = [p for p in _events_files(logdir) if p != main]
  with open(leftover, 'r+b') as f:
    f.truncate(os.path.getsize(leftover) - 3)
  log = train_log.EventLog(logdir, graph, 5)
  log.add_scalars({'x': 7.0}, 7)
  log.close()
  assert _events_files(logdir) == [main]
  steps = [(e.step, v.simple_value) for e in _events(main)
           for v in e.summary.value]
  assert steps == [(0, 0.0), (5, 5.0), (7, 7.0)]


def test_speed_meter():
  now = [10.0]
  meter = train_log.SpeedMeter(4, 6, lambda: now[0])
  assert meter.measure(4) == {}
  now[0] = 12.0
  assert meter.measure(8) == {train_log.STEPS_PER_SEC: 2.0,
                              train_log.IMAGES_PER_SEC: 12.0}
  now[0] = 20.0
  meter.restart(8)
  now[0] = 21.0
  assert meter.measure(9)[train_log.STEPS_PER_SEC] == 1.0


def test_cpu_towers_are_explained():
  message = towers.describe_cpu_towers(4, num_gpus=1)
  assert '--num_gpu 4' in message and 'only 1 GPU(s)' in message
  assert 'virtual CPU devices' in message and '--num_gpu 1' in message
  assert 'no GPU is visible' in towers.describe_cpu_towers(2, num_gpus=0)


def test_tensorboard_is_required_at_the_tensorflow_version():
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    pins = dict(line.strip().split('==') for line in f
                if '==' in line and not line.startswith('#'))
  assert pins['tensorboard'] == pins['tensorflow']
