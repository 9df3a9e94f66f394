"""Training across processes on localhost ports (seg_models/cluster.py).

The chief runs in the test's process (its gRPC server stays up until the
test session ends, so every chief takes a fresh port); every other task is a
real process running the training script, as on another machine.
"""
import os
import subprocess
import sys
import time

import pytest

from seg_models import cluster as cluster_lib
from seg_models import trainer
from tests import tiny_data
from tests.test_training import _opts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'pyscripts', 'train', 'train_segsort.py')
# A tiny network at 32x32: the test is about placement, not the model.
SETTING = dict(backbone='resnet_v1_50', input_size='32,32', batch_size=2,
               num_steps=2, save_pred_every=1, update_tb_every=100)


def _spec(ports):
  return ','.join('localhost:%d' % p for p in ports)


def _start_task(data_dir, snapshot_dir, spec, index, log_path, **flags):
  argv = tiny_data.train_args(data_dir, snapshot_dir, **dict(SETTING, **flags))
  log = open(log_path, 'w')
  return subprocess.Popen(
      [sys.executable, SCRIPT] + argv + ['--cluster_spec', spec,
                                         '--task_index', str(index),
                                         '--cluster_wait_seconds', '60'],
      stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _chief_opts(data_dir, snapshot_dir, **kw):
  settings = dict(SETTING, input_size=(32, 32))
  settings.update(kw)
  return _opts(data_dir, snapshot_dir, cluster_wait_seconds=60,
               run_timeout_seconds=60, **settings)


def _finish(process, log_path, timeout=60):
  try:
    return process.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
    pytest.fail('the worker did not exit: %s' % open(log_path).read()[-2000:])


def test_two_worker_processes_equal_two_towers_and_resume_after_a_death(
    tiny_dataset, tmp_path):
  """2 processes x 1 tower == 1 process x 2 towers (the tower test makes
  that == 1 tower with the whole batch); a worker killed after step 1 ends
  the chief with its name and address; a restarted job resumes from step
  1's checkpoint and ends where the uninterrupted run does."""
  reference, losses = {}, []
  out = trainer.train(
      _chief_opts(tiny_dataset, str(tmp_path / 'towers'), num_gpu=2,
                  loss_device=trainer.LOSS_DEVICE_TOWER),
      trainer.LOSS_SEGSORT, step_callback=lambda s, l: losses.append(l))
  reference = tiny_data.read_checkpoint(out['checkpoint'])

  snap = str(tmp_path / 'cluster')
  ports = cluster_lib.free_localhost_ports(2)
  log1 = str(tmp_path / 'worker1.log')
  worker = _start_task(tiny_dataset, snap, _spec(ports), 1, log1)
  cluster = cluster_lib.parse_cluster_flags(_spec(ports), '', 0)
  got, killed = [], []

  def kill_after_step_one(step, loss):
    got.append(loss)
    if step == 1:
      worker.kill()
      worker.wait()
      killed.append(time.time())

  with pytest.raises(cluster_lib.ClusterError) as e:
    trainer.train(_chief_opts(tiny_dataset, snap), trainer.LOSS_SEGSORT,
                  step_callback=kill_after_step_one, cluster=cluster)
  # gRPC's own retries take ~30 s on a loaded machine; no hang.
  assert time.time() - killed[0] < 90
  message = str(e.value)
  assert '/job:worker/task:1 (localhost:%d)' % ports[1] in message
  assert 'model.ckpt-1' in message
  assert got[0] == pytest.approx(losses[0], abs=1e-4)

  # The job again, on fresh ports (this process's first server keeps its).
  ports = cluster_lib.free_localhost_ports(2)
  worker = _start_task(tiny_dataset, snap, _spec(ports), 1, log1)
  resumed = []
  out = trainer.train(_chief_opts(tiny_dataset, snap), trainer.LOSS_SEGSORT,
                      step_callback=lambda s, l: resumed.append((s, l)),
                      cluster=cluster_lib.parse_cluster_flags(
                          _spec(ports), '', 0))
  assert _finish(worker, log1) == 0, open(log1).read()[-2000:]
  assert 'the chief is done' in open(log1).read()
  assert [s for s, _ in resumed] == [2]
  assert resumed[0][1] == pytest.approx(losses[1], abs=1e-4)
  tiny_data.assert_same_variables(
      reference, tiny_data.read_checkpoint(out['checkpoint']), atol=1e-4,
      slot_rtol=None)


def test_missing_worker_ends_the_chief_naming_it(tiny_dataset, tmp_path):
  """The chief script stops in bounded time, in one line, when a worker
  never comes up."""
  ports = cluster_lib.free_localhost_ports(2)
  argv = tiny_data.train_args(tiny_dataset, str(tmp_path / 'snap'),
                              **SETTING)
  start = time.time()
  result = subprocess.run(
      [sys.executable, SCRIPT] + argv + [
          '--cluster_spec', _spec(ports), '--task_index', '0',
          '--cluster_wait_seconds', '2'],
      capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert result.returncode == 1, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  assert ('error: No answer from /job:worker/task:1 (localhost:%d) within '
          '2 s' % ports[1]) in result.stderr
  assert time.time() - start < 90


MULTINODE = os.path.join(ROOT, 'bashscripts', 'voc12',
                         'train_segsort_multinode.sh')


def _run_multinode(tmp_path, **env):
  environ = {k: v for k, v in os.environ.items()
             if k not in ('TF_CONFIG', 'HOSTS', 'TASK_INDEX',
                          'SLURM_JOB_NODELIST', 'SLURM_PROCID')}
  environ.update(env)
  return subprocess.run(['bash', MULTINODE], capture_output=True, text=True,
                        timeout=900, env=environ, cwd=str(tmp_path))


def test_multinode_recipe_without_a_cluster_says_how_to_give_one(tmp_path):
  result = _run_multinode(tmp_path, PYTHON='/bin/false')
  assert result.returncode == 1
  assert 'no cluster: set TF_CONFIG, or HOSTS and TASK_INDEX' in (
      result.stderr)


@pytest.mark.slow
def test_multinode_recipe_smoke_trains_both_stages(tmp_path):
  """SMOKE=1: both stages on 2 worker processes, then the chief's steps."""
  smoke = tmp_path / 'smoke'
  result = _run_multinode(tmp_path, SMOKE='1', SMOKE_DIR=str(smoke),
                          PYTHON=sys.executable)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.count('the chief is done') == 2
  stages = list((smoke / 'snapshots').glob('voc12/segsort/*/stage*'))
  assert sorted(p.name for p in stages) == ['stage1', 'stage2']
  for stage in stages:
    assert (stage / 'model.ckpt-2.index').exists()
    assert 'cluster_spec: localhost:' in (stage / 'config').read_text()
  assert list((smoke / 'snapshots').glob(
      'voc12/segsort/*/stage2/results/val_msc/gray/*.png'))
