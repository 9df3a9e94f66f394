"""Training across processes on localhost ports (seg_models/cluster.py).

The chief runs in the test's process (its gRPC server stays up until the
test session ends, so every chief takes a fresh port); every other task is a
real process running the training script, as on another machine.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
import tensorflow.compat.v1 as tf

from pyscripts.train import train as train_softmax
from pyscripts.train import train_segsort_mgpu
from pyscripts.train import train_segsort_unsup
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


def _cluster_args(spec, index):
  # Generous: on a busy 2-core machine a task takes ~30 s to start.
  return ['--cluster_spec', spec, '--task_index', str(index),
          '--cluster_wait_seconds', '120']


def _start_task(data_dir, snapshot_dir, spec, index, log_path, script=SCRIPT,
                cwd=ROOT, **flags):
  """Task `index` of the cluster `spec`: the training script in a process
  of its own (its output in log_path)."""
  argv = tiny_data.train_args(data_dir, snapshot_dir, **dict(SETTING, **flags))
  log = open(log_path, 'w')
  return subprocess.Popen(
      [sys.executable, script] + argv + _cluster_args(spec, index),
      stdout=log, stderr=subprocess.STDOUT, cwd=cwd)


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
    pytest.fail('the task did not exit: %s' % open(log_path).read()[-2000:])


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


# The scripts other than train_segsort.py: the unsupervised one reads the
# oversegmentation masks and takes no k-means flags, the softmax baseline
# no SegSort flags.
OTHER_SCRIPTS = {
    'train_segsort_unsup.py': (train_segsort_unsup.main,
                               dict(kmeans=False)),
    'train.py': (train_softmax.main, dict(segsort=False)),
}
# Summaries at every step and one checkpoint: every step runs the same
# fetches, so TensorFlow optimises the graph once per run, not twice.
ONE_GRAPH_PASS = dict(update_tb_every=1, save_pred_every=2)


def test_unsupervised_and_softmax_scripts_on_two_processes(tiny_dataset,
                                                           tmp_path):
  """Each script as chief and as task 1, two processes == the script in one
  process with 2 towers: same loss at both steps, same variables after;
  task 1 writes nothing, neither in its --snapshot_dir nor where it runs.

  Both clusters start first and train while this process runs the
  references: the graph building and optimising, not the steps, take the
  time, and overlapped they use both cores."""
  jobs = {}
  try:
    _check_other_scripts(tiny_dataset, tmp_path, jobs)
  finally:  # After a failure, no process outlives the test.
    for process in sum(jobs.values(), []):
      if process.poll() is None:
        process.kill()
        process.wait()


def _check_other_scripts(tiny_dataset, tmp_path, jobs):
  for script, (_, flags) in sorted(OTHER_SCRIPTS.items()):
    out = tmp_path / script.replace('.py', '')
    (out / 'worker_cwd').mkdir(parents=True)
    spec = _spec(cluster_lib.free_localhost_ports(2))
    settings = dict(flags, **ONE_GRAPH_PASS)
    path = os.path.join(ROOT, 'pyscripts', 'train', script)
    jobs[script] = [
        _start_task(tiny_dataset, str(out / 'worker_snap'), spec, 1,
                    str(out / 'worker.log'), script=path,
                    cwd=str(out / 'worker_cwd'), **settings),
        _start_task(tiny_dataset, str(out / 'cluster'), spec, 0,
                    str(out / 'chief.log'), script=path, **settings)]
  for script, (main, flags) in sorted(OTHER_SCRIPTS.items()):
    out = tmp_path / script.replace('.py', '')
    reference = main(tiny_data.train_args(
        tiny_dataset, str(out / 'towers'), **dict(
            SETTING, num_gpu=2, loss_device=trainer.LOSS_DEVICE_TOWER,
            **ONE_GRAPH_PASS, **flags)))
    for process, name in zip(jobs[script], ('worker.log', 'chief.log')):
      log = str(out / name)
      assert _finish(process, log, timeout=240) == 0, open(log).read()[-2000:]
    assert 'the chief is done' in open(str(out / 'worker.log')).read()
    losses = tiny_data.read_scalars(str(out / 'cluster'), 'total_loss')
    expected = tiny_data.read_scalars(str(out / 'towers'), 'total_loss')
    assert [step for step, _ in losses] == [0, 1], script
    assert [l for _, l in losses] == pytest.approx(
        [l for _, l in expected], abs=1e-4), script
    assert expected[-1][1] == pytest.approx(reference['loss'], abs=1e-5)
    chief = tf.train.latest_checkpoint(str(out / 'cluster'))
    assert chief.endswith('model.ckpt-2')
    tiny_data.assert_same_variables(
        tiny_data.read_checkpoint(reference['checkpoint']),
        tiny_data.read_checkpoint(chief), atol=1e-4)
    assert os.path.exists(str(out / 'cluster' / 'config'))
    assert not (out / 'worker_snap').exists()
    assert not list((out / 'worker_cwd').iterdir())


MULTINODE = os.path.join(ROOT, 'bashscripts', 'voc12',
                         'train_segsort_multinode.sh')


def _run_multinode(tmp_path, **env):
  environ = {k: v for k, v in os.environ.items()
             if k not in ('TF_CONFIG', 'HOSTS', 'TASK_INDEX') and
             not k.startswith('SLURM_')}
  environ.update(env)
  return subprocess.run(['bash', MULTINODE], capture_output=True, text=True,
                        timeout=900, env=environ, cwd=str(tmp_path))


def test_multinode_recipe_without_a_cluster_says_how_to_give_one(tmp_path):
  result = _run_multinode(tmp_path, PYTHON='/bin/false')
  assert result.returncode == 1
  assert 'no cluster: set TF_CONFIG, or HOSTS and TASK_INDEX' in (
      result.stderr)


# A stand-in for python on the recipe's PYTHON: it appends each call's
# arguments to $CALLS (one JSON list a line) instead of running them;
# `python -c CODE` runs.
RECORDING_PYTHON = """#!/bin/sh
if [ "$1" = -c ]; then exec "%(python)s" "$@"; fi
exec "%(python)s" -c 'import json, os, sys
with open(os.environ["CALLS"], "a") as f:
  f.write(json.dumps(sys.argv[1:]) + "\\n")' "$@"
"""


def _executable(path, text):
  path.write_text(text)
  path.chmod(0o755)
  return str(path)


def _launch(tmp_path, name, **env):
  """What the recipe runs for one task under env (its python calls, none
  of them run, the benchmarks off): [(script, parsed flags), ...]."""
  folder = tmp_path / name
  (folder / 'data' / 'VOCdevkit' / 'VOC2012' / 'segcls').mkdir(parents=True)
  (folder / 'lists').mkdir()
  for split in ('train', 'train+', 'val'):
    (folder / 'lists' / (split + '.txt')).write_text('')
  python = tmp_path / 'python'
  if not python.exists():
    _executable(python, RECORDING_PYTHON % {'python': sys.executable})
  calls = folder / 'calls'
  result = _run_multinode(
      tmp_path, PYTHON=str(python), CALLS=str(calls),
      DATAROOT=str(folder / 'data'), LIST_DIR=str(folder / 'lists'),
      SNAPSHOT_ROOT=str(folder / 'snapshots'), IMAGENET_CKPT='',
      IS_BENCHMARK_1='0', IS_BENCHMARK_2='0', **env)
  assert result.returncode == 0, result.stderr[-2000:]
  argvs = [json.loads(line) for line in calls.read_text().splitlines()]
  return [(os.path.basename(argv[0]), argv[1:]) for argv in argvs]


def _training_clusters(calls, tf_config=''):
  """The cluster each training call of the recipe would join."""
  clusters = []
  for script, argv in calls:
    if script == 'train_segsort_mgpu.py':
      args = train_segsort_mgpu.get_arguments(argv)
      clusters.append(cluster_lib.get_cluster(
          args.cluster_spec, args.job_name, args.task_index,
          environ={'TF_CONFIG': tf_config}))
  return clusters


# The chief trains both stages, then alone extracts the prototypes and
# infers (stage 1, single scale; stage 2, multi-scale): 6 calls; the other
# tasks serve the 2 training stages.
CHIEF_CALLS, SERVING_CALLS = 6, 2


def test_multinode_recipe_under_slurm_gives_each_node_its_task(tmp_path):
  """srun --nodes=2 --ntasks-per-node=1: node I of the step's list is task
  I, node 0 the chief; both run --cluster_spec with the same host list."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  # Slurm's `scontrol show hostnames LIST` prints LIST's nodes, one a line.
  _executable(bin_dir / 'scontrol',
              '#!/bin/sh\n[ "$*" = "show hostnames gpu[07-08]" ] || exit 2\n'
              'printf "gpu07\\ngpu08\\n"\n')
  # What srun sets in each task (the job may hold more nodes than the step).
  slurm = dict(PATH='%s:%s' % (bin_dir, os.environ['PATH']),
               SLURM_JOB_NODELIST='gpu[07-10]', SLURM_NTASKS='2',
               SLURM_STEP_NODELIST='gpu[07-08]', SLURM_STEP_NUM_TASKS='2')
  hosts = ['gpu07:2222', 'gpu08:2222']
  for procid in (0, 1):
    calls = _launch(tmp_path, 'task%d' % procid, SLURM_PROCID=str(procid),
                    **slurm)
    clusters = _training_clusters(calls)
    assert len(clusters) == 2  # both stages
    for c in clusters:
      assert c.jobs == {'worker': hosts} and c.source == '--cluster_spec'
      assert c.this_task == cluster_lib.Task('worker', procid, hosts[procid])
      assert c.chief.address == 'gpu07:2222'
      assert c.is_chief == (procid == 0)
    assert len(calls) == (CHIEF_CALLS if procid == 0 else SERVING_CALLS)
    assert all('--cluster_wait_seconds' in argv for _, argv in calls[:2])
  # srun without --ntasks-per-node=1: one line, before anything runs.
  result = _run_multinode(
      tmp_path, PYTHON='/bin/false', SLURM_PROCID='0',
      **dict(slurm, SLURM_STEP_NUM_TASKS='8'))
  assert result.returncode == 1
  assert ('Slurm runs 8 tasks on 2 node(s) (gpu[07-08]); run one task per '
          'node: srun --ntasks-per-node=1') in result.stderr


def _readme_tfjob():
  """(name, {replica type: replicas}) of README's TFJob example."""
  text = open(os.path.join(ROOT, 'README.md')).read()
  manifest = text[text.index('kind: TFJob'):]
  manifest = manifest[:manifest.index('\n\n')]
  name = re.search(r'metadata: \{name: ([\w.-]+)\}', manifest).group(1)
  replicas = dict(re.findall(r'\n +(\w+):\n +replicas: (\d+)', manifest))
  return name, {t: int(n) for t, n in replicas.items()}


def _operator_tf_config(name, replicas, task_type, index):
  """The TF_CONFIG Kubeflow's training operator sets in a TFJob's pod
  (kubeflow/training-operator, pkg/controller.v1/tensorflow/tensorflow.go,
  genTFConfigJSONStr and genClusterSpec): per replica type, lower-cased,
  the pods' headless services "<name>-<type>-<i>.<namespace>.svc:<port>"
  (port 2222 when the container "tensorflow" names no "tfjob-port";
  evaluators are left out), this pod's type and index, and "environment":
  "cloud"."""
  cluster = {t.lower(): ['%s-%s-%d.default.svc:2222' % (name, t.lower(), i)
                         for i in range(n)]
             for t, n in replicas.items() if t != 'Evaluator'}
  return json.dumps({'cluster': cluster,
                     'task': {'type': task_type.lower(), 'index': index},
                     'environment': 'cloud'})


@pytest.mark.parametrize('replicas', [None, {'Chief': 1, 'Worker': 1}])
def test_multinode_recipe_in_a_tfjob_follows_the_operators_tf_config(
    tmp_path, replicas):
  """Every pod of README's TFJob (and of one with a Chief replica) joins
  the cluster of its TF_CONFIG, as seg_models/cluster.py reads it; the
  chief the recipe picks is cluster.py's."""
  name, readme_replicas = _readme_tfjob()
  if replicas is None:
    assert readme_replicas == {'Worker': 2}
    replicas = readme_replicas
  chiefs = 0
  for task_type, count in sorted(replicas.items()):
    for index in range(count):
      tf_config = _operator_tf_config(name, replicas, task_type, index)
      calls = _launch(tmp_path, '%s%d' % (task_type, index),
                      TF_CONFIG=tf_config)
      clusters = _training_clusters(calls, tf_config)
      assert len(clusters) == 2
      for c in clusters:
        assert c.source == 'TF_CONFIG' and c.num_tasks == sum(
            replicas.values())
        assert c.this_task.name == '/job:%s/task:%d' % (task_type.lower(),
                                                        index)
        assert c.this_task.address == '%s-%s-%d.default.svc:2222' % (
            name, task_type.lower(), index)
      chiefs += clusters[0].is_chief
      assert len(calls) == (CHIEF_CALLS if clusters[0].is_chief else
                            SERVING_CALLS)
  assert chiefs == 1


@pytest.mark.slow
def test_multinode_recipe_smoke_trains_both_stages(tmp_path):
  """SMOKE=1: both stages on 2 worker processes, then the chief's steps
  (stage 2's only)."""
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
  assert list((smoke / 'snapshots').glob(
      'voc12/segsort/*/stage2/results/val_msc/miou.json'))
  assert not list((smoke / 'snapshots').glob('voc12/segsort/*/stage1/results'))
