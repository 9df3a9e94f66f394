"""Training across machines on TensorFlow's distributed runtime.

In-graph replication: every process of the job runs a TensorFlow gRPC server
(tf.distribute.Server); the chief alone builds the graph, with the trainer's
towers placed on the devices of every task (/job:worker/task:I/device:CPU:J
or GPU:J), the cross-tower batch norm over all of them and one update, and
runs it in a session on its own server. The other tasks only serve: they
wait until the chief tells them it is done (a shared-name queue on their own
task, which the chief fills at the end), or until the chief is gone.

The cluster comes from the TF_CONFIG environment variable (the JSON that
Kubernetes' TFJob and the cloud trainers set):

    {"cluster": {"worker": ["host0:2222", "host1:2222"]},
     "task": {"type": "worker", "index": 0}}

or from the TF1 flags --cluster_spec (that JSON's "cluster" object, or a
comma-separated host:port list of the worker job), --job_name and
--task_index, which win over TF_CONFIG. A "chief" job of one task may come
with the "worker" job (TFJob's Chief replica); the chief is then
/job:chief/task:0, else /job:worker/task:0. Parameter servers are not used
(the variables live on the chief), so a "ps" job is refused.
"""
import dataclasses
import json
import os
import socket
import time

import tensorflow.compat.v1 as tf
import tensorflow as tf2

from utils import errors

ClusterError = errors.ClusterError

TF_CONFIG_ENV = 'TF_CONFIG'
CHIEF_JOB = 'chief'
WORKER_JOB = 'worker'
JOBS = (CHIEF_JOB, WORKER_JOB)
# The queue a serving task waits on; the chief puts one value in it when the
# training is over.
DONE_QUEUE_NAME = 'segsort_training_done'
# How often a serving task checks that the chief is still there (seconds).
POLL_SECONDS = 5.0
# TCP connect timeout of one reachability probe (seconds).
PROBE_SECONDS = 2.0
# The errors of a session whose remote task died or did not answer.
TASK_FAILURES = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                 tf.errors.AbortedError, tf.errors.CancelledError)


@dataclasses.dataclass(frozen=True)
class Task:
  """One process of the cluster."""
  job: str
  index: int
  address: str

  @property
  def name(self):
    return '/job:%s/task:%d' % (self.job, self.index)

  def __str__(self):
    return '%s (%s)' % (self.name, self.address)


@dataclasses.dataclass(frozen=True)
class Cluster:
  """The jobs of a training cluster and the task of this process.

  Attributes:
    jobs: {job name: [host:port, ...]}, the jobs in JOBS only.
    job_name: This process's job.
    task_index: This process's index in its job.
    source: Where the cluster came from ('TF_CONFIG' or '--cluster_spec'),
      for messages.
  """
  jobs: dict
  job_name: str
  task_index: int
  source: str

  @property
  def tasks(self):
    """Every task, the chief first (the order of the towers)."""
    return [Task(job, i, address) for job in JOBS
            for i, address in enumerate(self.jobs.get(job, ()))]

  @property
  def chief(self):
    return self.tasks[0]

  @property
  def this_task(self):
    return Task(self.job_name, self.task_index,
                self.jobs[self.job_name][self.task_index])

  @property
  def is_chief(self):
    return self.this_task == self.chief

  @property
  def num_tasks(self):
    return len(self.tasks)

  def cluster_spec(self):
    return tf.train.ClusterSpec({job: list(addresses) for job, addresses
                                 in self.jobs.items()})


def _address(text, where):
  """Checks one 'host:port' entry."""
  if not isinstance(text, str) or text.count(':') < 1:
    raise ClusterError('%s: expected "host:port", got %r.' % (where, text))
  host, port = text.rsplit(':', 1)
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ClusterError('%s: expected "host:port" with a port in 1..65535, '
                       'got %r.' % (where, text))
  return text


def _parse_jobs(jobs, where):
  """Checks a {"worker": [...], "chief": [...]} cluster object."""
  if not isinstance(jobs, dict) or not jobs:
    raise ClusterError('%s: the cluster must be a JSON object such as '
                       '{"worker": ["host0:2222", "host1:2222"]}, got %r.'
                       % (where, jobs))
  unknown = sorted(set(jobs) - set(JOBS))
  if unknown:
    raise ClusterError(
        '%s: job(s) %s are not supported; in-graph replication uses the '
        '"worker" job (and an optional one-task "chief" job), no parameter '
        'servers or evaluators.' % (where, ', '.join(unknown)))
  parsed = {}
  for job, addresses in jobs.items():
    if isinstance(addresses, dict):  # {"0": "host:port", ...}
      try:
        addresses = [addresses[k] for k in sorted(addresses, key=int)]
      except ValueError:
        raise ClusterError('%s: the tasks of job %r must be a list of '
                           '"host:port".' % (where, job))
    if not isinstance(addresses, list) or not addresses:
      raise ClusterError('%s: job %r needs a non-empty list of "host:port", '
                         'got %r.' % (where, job, addresses))
    parsed[job] = [_address(a, '%s, job %r' % (where, job))
                   for a in addresses]
  if len(parsed.get(CHIEF_JOB, ())) > 1:
    raise ClusterError('%s: the "chief" job has %d tasks; it must have one.'
                       % (where, len(parsed[CHIEF_JOB])))
  every = [a for job in JOBS for a in parsed.get(job, ())]
  repeated = sorted({a for a in every if every.count(a) > 1})
  if repeated:
    raise ClusterError('%s: address(es) %s appear more than once.'
                       % (where, ', '.join(repeated)))
  return parsed


def _check_task(jobs, job_name, task_index, where):
  if job_name not in jobs:
    raise ClusterError('%s: this task\'s job %r is not in the cluster (%s).'
                       % (where, job_name, ', '.join(sorted(jobs))))
  if (not isinstance(task_index, int) or isinstance(task_index, bool) or
      not 0 <= task_index < len(jobs[job_name])):
    raise ClusterError('%s: task index %r is not in 0..%d of job %r.'
                       % (where, task_index, len(jobs[job_name]) - 1,
                          job_name))


def parse_tf_config(text):
  """The Cluster of a TF_CONFIG value, or None for an empty one.

  Raises:
    ClusterError: naming TF_CONFIG and what is wrong with it.
  """
  if not text or not text.strip():
    return None
  try:
    config = json.loads(text)
  except ValueError as e:
    raise ClusterError('%s is not valid JSON (%s).' % (TF_CONFIG_ENV, e))
  if not isinstance(config, dict):
    raise ClusterError('%s must be a JSON object with "cluster" and "task".'
                       % TF_CONFIG_ENV)
  if 'cluster' not in config:
    if not config.get('task'):
      return None  # A TF_CONFIG with neither describes no cluster.
    raise ClusterError('%s has a "task" but no "cluster".' % TF_CONFIG_ENV)
  jobs = _parse_jobs(config['cluster'], '%s["cluster"]' % TF_CONFIG_ENV)
  task = config.get('task')
  if not isinstance(task, dict) or 'type' not in task or 'index' not in task:
    raise ClusterError('%s needs "task": {"type": ..., "index": ...}, got %r.'
                       % (TF_CONFIG_ENV, task))
  _check_task(jobs, task['type'], task['index'], '%s["task"]' % TF_CONFIG_ENV)
  return Cluster(jobs, task['type'], task['index'], TF_CONFIG_ENV)


def parse_cluster_flags(cluster_spec, job_name='', task_index=None):
  """The Cluster of --cluster_spec / --job_name / --task_index, or None.

  Args:
    cluster_spec: '' (no cluster), a JSON object {"worker": [...], ...}, or
      a comma-separated host:port list (the worker job).
    job_name: '' (worker) or a job of the cluster.
    task_index: this process's index in its job (required with a cluster).

  Raises:
    ClusterError: naming the flag that is wrong.
  """
  if not cluster_spec:
    if job_name or task_index is not None:
      raise ClusterError('--job_name and --task_index need --cluster_spec.')
    return None
  text = cluster_spec.strip()
  if text.startswith('{'):
    try:
      jobs = json.loads(text)
    except ValueError as e:
      raise ClusterError('--cluster_spec is not valid JSON (%s).' % e)
  else:
    jobs = {WORKER_JOB: [a.strip() for a in text.split(',') if a.strip()]}
  jobs = _parse_jobs(jobs, '--cluster_spec')
  if task_index is None:
    raise ClusterError('--task_index is required with --cluster_spec.')
  job_name = job_name or WORKER_JOB
  _check_task(jobs, job_name, task_index, '--job_name/--task_index')
  return Cluster(jobs, job_name, task_index, '--cluster_spec')


def get_cluster(cluster_spec='', job_name='', task_index=None, environ=None):
  """The cluster of the flags, else of TF_CONFIG, else None (one process)."""
  if cluster_spec or job_name or task_index is not None:
    return parse_cluster_flags(cluster_spec, job_name, task_index)
  environ = os.environ if environ is None else environ
  return parse_tf_config(environ.get(TF_CONFIG_ENV, ''))


def from_args(args):
  """get_cluster from parsed flags (absent flags count as unset)."""
  return get_cluster(getattr(args, 'cluster_spec', '') or '',
                     getattr(args, 'job_name', '') or '',
                     getattr(args, 'task_index', None))


def use_gpus(towers_per_task):
  """Whether the towers are GPUs: when this machine has enough (the tasks
  are assumed alike)."""
  return len(tf2.config.list_physical_devices('GPU')) >= towers_per_task


def tower_devices(cluster, towers_per_task, gpu=None):
  """The tower devices of every task, the chief's first.

  Args:
    cluster: a Cluster.
    towers_per_task: towers on each task (--num_gpu).
    gpu: whether the towers are GPUs (None: use_gpus()).

  Returns:
    ['/job:worker/task:0/device:CPU:0', ...], task-major.
  """
  gpu = use_gpus(towers_per_task) if gpu is None else gpu
  kind = 'GPU' if gpu else 'CPU'
  return ['%s/device:%s:%d' % (task.name, kind, j) for task in cluster.tasks
          for j in range(towers_per_task)]


def start_server(cluster, config):
  """This process's gRPC server (it serves until the process ends).

  Raises:
    ClusterError: the port is taken or the address is not this machine's.
  """
  task = cluster.this_task
  try:
    return tf.distribute.Server(cluster.cluster_spec(), job_name=task.job,
                                task_index=task.index, config=config,
                                start=True)
  except (tf.errors.OpError, RuntimeError, ValueError) as e:
    raise ClusterError('Cannot start the server of %s: %s' % (
        task, getattr(e, 'message', None) or e))


def free_localhost_ports(num):
  """num TCP ports free on localhost now (for tests, benchmarks, smoke
  runs on one machine)."""
  sockets = [socket.socket() for _ in range(num)]
  try:
    for s in sockets:
      s.bind(('localhost', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def is_reachable(address, timeout=PROBE_SECONDS):
  """Whether something accepts TCP connections at host:port."""
  host, port = address.rsplit(':', 1)
  try:
    with socket.create_connection((host.strip('[]'), int(port)),
                                  timeout=timeout):
      return True
  except OSError:
    return False


def wait_for_tasks(cluster, timeout, log=print):
  """Waits until every other task's server accepts connections.

  Raises:
    ClusterError: naming the tasks (and addresses) still not answering
      after timeout seconds.
  """
  others = [t for t in cluster.tasks if t != cluster.this_task]
  deadline = time.time() + timeout
  waiting = list(others)
  logged = False
  while waiting:
    waiting = [t for t in waiting if not is_reachable(t.address)]
    if not waiting:
      break
    if time.time() >= deadline:
      raise ClusterError(
          'No answer from %s within %g s (--cluster_wait_seconds): start '
          'that process, or check its address and firewall.'
          % (', '.join(str(t) for t in waiting), timeout))
    if not logged:
      log('Waiting for %s.' % ', '.join(str(t) for t in waiting))
      logged = True
    time.sleep(0.5)


def describe_failure(cluster, error, snapshot_dir):
  """A ClusterError for a session error caused by a task that went away."""
  gone = [t for t in cluster.tasks
          if t != cluster.this_task and not is_reachable(t.address)]
  who = (', '.join(str(t) for t in gone) + ' is unreachable' if gone else
         'a task did not answer (%s)' % type(error).__name__)
  last = tf.train.latest_checkpoint(snapshot_dir)
  lines = [line.strip() for line in
           (getattr(error, 'message', None) or str(error)).splitlines()]
  detail = [line for line in lines if line and not line.endswith(':')]
  return ClusterError(
      'Training stopped: %s. The last checkpoint is %s; start the job again '
      'to resume from it. (%s)' % (
          who, last or 'none (training starts over)',
          detail[0] if detail else type(error).__name__))


def run_config(timeout_seconds, tasks=None):
  """A ConfigProto for a session on the cluster.

  Args:
    timeout_seconds: every sess.run fails after this long (0: never).
    tasks: only these tasks are contacted (None: all).
  """
  config = tf.ConfigProto(allow_soft_placement=True)
  if timeout_seconds:
    config.operation_timeout_in_ms = int(1000 * timeout_seconds)
  if tasks is not None:
    config.device_filters.extend(t.name for t in tasks)
  return config


def _done_queue(task):
  with tf.device(task.name + '/device:CPU:0'):
    return tf.FIFOQueue(1, tf.int32, shared_name=DONE_QUEUE_NAME,
                        name=DONE_QUEUE_NAME)


def release_workers(cluster, server, timeout=10.0):
  """Tells every serving task that training is over (best effort: a task
  that is gone is skipped)."""
  for task in cluster.tasks:
    # A task that is gone would make the session wait for it.
    if task == cluster.this_task or not is_reachable(task.address):
      continue
    graph = tf.Graph()
    with graph.as_default():
      enqueue = _done_queue(task).enqueue(0)
    try:
      with tf.Session(server.target, graph=graph,
                      config=run_config(timeout, [cluster.this_task, task])
                      ) as sess:
        sess.run(enqueue)
    except tf.errors.OpError:
      pass


def serve(cluster, server, wait_seconds, log=print):
  """What a task other than the chief does: serve the chief's graph.

  Returns when the chief says training is over.

  Raises:
    ClusterError: the chief did not come up within wait_seconds, or was
      unreachable for wait_seconds after it had come.
  """
  task = cluster.this_task
  graph = tf.Graph()
  with graph.as_default():
    dequeue = _done_queue(task).dequeue()
  log('%s serving; the chief is %s.' % (task, cluster.chief))
  seen = False
  since = time.time()
  with tf.Session(server.target, graph=graph,
                  config=run_config(POLL_SECONDS, [task])) as sess:
    while True:
      try:
        sess.run(dequeue)
        log('%s: the chief is done.' % task)
        return
      except tf.errors.DeadlineExceededError:
        pass
      if is_reachable(cluster.chief.address):
        seen, since = True, time.time()
      elif time.time() - since > wait_seconds:
        raise ClusterError('%s: the chief %s %s for %g s '
                           '(--cluster_wait_seconds).' % (
                               task, cluster.chief,
                               'has been unreachable' if seen else
                               'did not come up', wait_seconds))
