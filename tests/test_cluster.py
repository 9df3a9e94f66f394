"""The cluster of a distributed training job: TF_CONFIG and the TF1 flags."""
import json
import socket

import pytest

from pyscripts.train import train_segsort
from seg_models import cluster as cluster_lib
from tests import tiny_data

ClusterError = cluster_lib.ClusterError

TWO_WORKERS = {'worker': ['host0:2222', 'host1:2223']}


def _tf_config(cluster, task_type='worker', index=0):
  return json.dumps({'cluster': cluster,
                     'task': {'type': task_type, 'index': index}})


def test_tf_config_two_workers():
  c = cluster_lib.parse_tf_config(_tf_config(TWO_WORKERS, index=1))
  assert c.jobs == TWO_WORKERS and c.source == 'TF_CONFIG'
  assert [t.name for t in c.tasks] == ['/job:worker/task:0',
                                       '/job:worker/task:1']
  assert c.this_task.address == 'host1:2223' and not c.is_chief
  assert c.chief == cluster_lib.Task('worker', 0, 'host0:2222')
  assert cluster_lib.parse_tf_config(_tf_config(TWO_WORKERS)).is_chief


def test_tf_config_chief_job_comes_first():
  jobs = {'worker': ['w0:1', 'w1:1'], 'chief': ['c:1']}
  c = cluster_lib.parse_tf_config(_tf_config(jobs, 'chief', 0))
  assert c.is_chief and c.num_tasks == 3
  assert cluster_lib.tower_devices(c, 2, gpu=True) == [
      '/job:chief/task:0/device:GPU:0', '/job:chief/task:0/device:GPU:1',
      '/job:worker/task:0/device:GPU:0', '/job:worker/task:0/device:GPU:1',
      '/job:worker/task:1/device:GPU:0', '/job:worker/task:1/device:GPU:1']
  worker0 = cluster_lib.parse_tf_config(_tf_config(jobs, 'worker', 0))
  assert not worker0.is_chief


@pytest.mark.parametrize('text', ['', '  ', '{}', '{"task": {}}'])
def test_empty_tf_config_is_no_cluster(text):
  assert cluster_lib.parse_tf_config(text) is None


@pytest.mark.parametrize('text,words', [
    ('{"cluster": ', ['TF_CONFIG', 'not valid JSON']),
    ('[1, 2]', ['TF_CONFIG', 'JSON object']),
    ('{"task": {"type": "worker", "index": 0}}', ['TF_CONFIG', 'no "cluster"']),
    (_tf_config({'worker': ['a:1'], 'ps': ['b:1']}), ['ps', 'parameter']),
    (_tf_config({'worker': []}), ["'worker'", 'non-empty']),
    (_tf_config({'worker': ['nohost']}), ['host:port', "'nohost'"]),
    (_tf_config({'worker': ['a:99999']}), ['1..65535', 'a:99999']),
    (_tf_config({'worker': ['a:1', 'a:1']}), ['a:1', 'more than once']),
    (_tf_config({'worker': ['a:1'], 'chief': ['b:1', 'c:1']}),
     ['"chief"', 'one']),
    (_tf_config(TWO_WORKERS, index=2), ['TF_CONFIG["task"]', '0..1']),
    (_tf_config(TWO_WORKERS, 'chief'), ['TF_CONFIG["task"]', "'chief'"]),
    (json.dumps({'cluster': TWO_WORKERS, 'task': {'type': 'worker'}}),
     ['TF_CONFIG', '"index"']),
    # Kubeflow's TFJob with a Master replica, or with enableDynamicWorker
    # (its "sparseCluster" instead of "cluster"; README, TFJob).
    (_tf_config({'master': ['m:1'], 'worker': ['w:1']}, 'master'),
     ['master', 'not supported']),
    (json.dumps({'sparseCluster': {'worker': {'0': 'w:1'}},
                 'task': {'type': 'worker', 'index': 0}}),
     ['TF_CONFIG', 'no "cluster"']),
])
def test_malformed_tf_config_names_the_variable(text, words):
  with pytest.raises(ClusterError) as e:
    cluster_lib.parse_tf_config(text)
  for word in words:
    assert word in str(e.value)


def test_cluster_spec_flag_host_list_and_json():
  c = cluster_lib.parse_cluster_flags('host0:2222, host1:2223', '', 1)
  assert c.jobs == TWO_WORKERS and c.job_name == 'worker'
  assert c.source == '--cluster_spec'
  assert c.this_task.address == 'host1:2223'
  c = cluster_lib.parse_cluster_flags(json.dumps(TWO_WORKERS), 'worker', 0)
  assert c.jobs == TWO_WORKERS and c.is_chief


@pytest.mark.parametrize('spec,job,index,words', [
    ('', 'worker', 0, ['--job_name', 'need --cluster_spec']),
    ('', '', 1, ['--task_index', 'need --cluster_spec']),
    ('a:1,b:2', '', None, ['--task_index is required']),
    ('a:1,b:2', '', 2, ['--job_name/--task_index', '0..1']),
    ('a:1,b:2', 'ps', 0, ['--job_name/--task_index', "'ps'"]),
    ('a:1,b', '', 0, ['--cluster_spec', "'b'"]),
    ('{"worker": ["a:1"', '', 0, ['--cluster_spec', 'not valid JSON']),
    ('{"evaluator": ["a:1"]}', '', 0, ['--cluster_spec', 'evaluator']),
])
def test_malformed_cluster_flags_name_the_flag(spec, job, index, words):
  with pytest.raises(ClusterError) as e:
    cluster_lib.parse_cluster_flags(spec, job, index)
  for word in words:
    assert word in str(e.value)


def test_flags_win_over_tf_config_and_none_without_either():
  environ = {'TF_CONFIG': _tf_config({'worker': ['x:1']})}
  assert cluster_lib.get_cluster(environ=environ).jobs == {'worker': ['x:1']}
  assert cluster_lib.get_cluster('a:1,b:2', '', 1,
                                 environ=environ).jobs == {
                                     'worker': ['a:1', 'b:2']}
  assert cluster_lib.get_cluster(environ={}) is None


def test_training_scripts_take_the_cluster_flags(tmp_path):
  args = train_segsort.get_arguments(tiny_data.train_args(
      str(tmp_path), str(tmp_path / 'snap')) + [
          '--cluster_spec', 'a:1,b:2', '--task_index', '1',
          '--cluster_wait_seconds', '5'])
  c = cluster_lib.from_args(args)
  assert c.this_task == cluster_lib.Task('worker', 1, 'b:2')
  assert args.cluster_wait_seconds == 5.0


def test_wait_for_tasks_names_the_missing_task():
  # A port nothing listens on: bind it, then close it.
  s = socket.socket()
  s.bind(('localhost', 0))
  port = s.getsockname()[1]
  s.close()
  c = cluster_lib.parse_cluster_flags('localhost:1,localhost:%d' % port, '',
                                      0)
  with pytest.raises(ClusterError) as e:
    cluster_lib.wait_for_tasks(c, 0.5, log=lambda _: None)
  assert ('/job:worker/task:1 (localhost:%d)' % port) in str(e.value)
  assert '--cluster_wait_seconds' in str(e.value)


@pytest.mark.parametrize('num_gpu,loss_device,towers,loss_on', [
    (1, 'separate', ['0/device:CPU:0', '1/device:CPU:0'], '0/device:CPU:0'),
    (2, 'separate', ['0/device:CPU:0', '1/device:CPU:0'], '0/device:CPU:1'),
    (2, 'tower', ['0/device:CPU:0', '0/device:CPU:1', '1/device:CPU:0',
                  '1/device:CPU:1'], '0/device:CPU:0')])
def test_num_gpu_on_a_cluster_counts_each_tasks_devices(num_gpu, loss_device,
                                                        towers, loss_on):
  """--num_gpu N on every task as on one machine: N - 1 towers per task and
  the loss on the chief's N-th device, or N towers per task (tower)."""
  from seg_models import trainer  # pylint: disable=import-outside-toplevel
  c = cluster_lib.parse_tf_config(_tf_config(TWO_WORKERS))
  opts = trainer.TrainOptions(num_gpu=num_gpu, loss_device=loss_device)
  got_towers, got_loss = trainer.get_devices(opts, c)
  assert got_towers == ['/job:worker/task:' + d for d in towers]
  assert got_loss == '/job:worker/task:' + loss_on
