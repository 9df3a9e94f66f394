"""Distributed training on localhost: steps/s and bytes between tasks.

For each number of workers N (--workers, e.g. 1,2,4) the script starts a
cluster of N processes on free localhost ports: N-1 run the training script
as serving tasks, and one chief process (this script again) builds the
trainer's graph with one tower per task (in-graph replication,
seg_models/cluster.py), times --steps training steps after --warmup, and
traces one more step. The batch (--batch_size, a multiple of every N) is
the same for every N, so the work per step is too.

Bytes per step are read from that traced step: every `_Send` node of the
partition graphs (RunMetadata.partition_graphs) whose receiving device is on
another task carries one tensor across the network; its size is the size
of the tensor its sender produced in that step (dtype x shape, from the
step's RunMetadata.step_stats). That is the payload gRPC carries, without
its framing. The model's size (its trainable variables) is given beside it.

    python pyscripts/benchmark/benchmark_distributed.py --workers 1,2,4 \\
      --output_json distributed.json

Without --data_list a small synthetic dataset is written to a temporary
folder first.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

from pyscripts import script_glue  # noqa: E402
from seg_models import cluster as cluster_lib  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import errors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(ROOT, 'pyscripts', 'train', 'train_segsort.py')


def get_arguments(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workers', type=str, default='1,2,4',
                      help='Comma-separated numbers of worker processes.')
  parser.add_argument('--steps', type=int, default=5,
                      help='Timed training steps per cluster.')
  parser.add_argument('--warmup', type=int, default=2,
                      help='Untimed training steps first.')
  parser.add_argument('--batch_size', type=int, default=4,
                      help='The batch of all towers (a multiple of every '
                           'number of workers).')
  parser.add_argument('--input_size', type=str, default='64,64')
  parser.add_argument('--backbone', type=str, default='resnet_v1_50')
  parser.add_argument('--width_multiplier', type=float, default=0.0625)
  parser.add_argument('--data_dir', type=str, default='')
  parser.add_argument('--data_list', type=str, default='')
  parser.add_argument('--output_json', type=str, default='',
                      help='Where to write the results (JSON).')
  # Hidden: the chief of one cluster (run by this script itself).
  parser.add_argument('--chief_cluster_spec', type=str, default='',
                      help=argparse.SUPPRESS)
  parser.add_argument('--chief_result', type=str, default='',
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  try:
    args.workers = [int(v) for v in args.workers.split(',') if v]
  except ValueError:
    parser.error('--workers: expected comma-separated integers, got %r'
                 % args.workers)
  bad = [n for n in args.workers if n < 1 or args.batch_size % n]
  if bad:
    parser.error('--workers %s: each must be >= 1 and divide --batch_size %d'
                 % (bad, args.batch_size))
  return args


def _train_argv(args, snapshot_dir):
  """The training flags every task of a cluster gets."""
  return ['--is_training', '--data_dir', args.data_dir, '--data_list',
          args.data_list, '--input_size', args.input_size, '--batch_size',
          str(args.batch_size), '--num_classes', '4', '--embedding_dim', '8',
          '--backbone', args.backbone, '--width_multiplier',
          str(args.width_multiplier), '--iter_size', '1', '--num_gpu', '1',
          '--num_clusters', '2', '--kmeans_iterations', '3',
          '--snapshot_dir', snapshot_dir, '--num_steps',
          str(args.steps + args.warmup + 1), '--learning_rate', '1e-3']


def cross_task_bytes(run_metadata):
  """Bytes the traced step sent between tasks (see the module docstring).

  Returns:
    (bytes, number of cross-task sends, sends whose size was not found).
  """
  def task(device):
    spec = tf.DeviceSpec.from_string(device)
    return spec.job, spec.task

  sizes = {}
  for dev in run_metadata.step_stats.dev_stats:
    for node in dev.node_stats:
      for out in node.output:
        desc = out.tensor_description
        if not desc.dtype:  # DT_INVALID: no description recorded.
          continue
        dims = [d.size for d in desc.shape.dim]
        size = int(np.prod(dims)) * tf.as_dtype(desc.dtype).size
        sizes[(task(dev.device), node.node_name, out.slot)] = size
  total, sends, missing = 0, 0, 0
  for graph in run_metadata.partition_graphs:
    for node in graph.node:
      if node.op not in ('_Send', '_HostSend'):
        continue
      send = node.attr['send_device'].s.decode()
      recv = node.attr['recv_device'].s.decode()
      if task(send) == task(recv):
        continue
      sends += 1
      name, _, slot = node.input[0].partition(':')
      size = sizes.get((task(send), name, int(slot or 0)))
      if size is None:
        missing += 1
      else:
        total += size
  return total, sends, missing


def run_chief(args):
  """The chief of one cluster: times the steps, traces one, writes JSON."""
  from seg_models import trainer
  from pyscripts.train import train_segsort
  cluster = cluster_lib.parse_cluster_flags(args.chief_cluster_spec, '', 0)
  snapshot_dir = tempfile.mkdtemp(prefix='segsort_dist_bench_')
  opts = script_glue.options_from_args(
      trainer.TrainOptions,
      train_segsort.get_arguments(_train_argv(args, snapshot_dir)),
      show_progress=False)
  server = cluster_lib.start_server(cluster, trainer.server_config(opts))
  try:
    cluster_lib.wait_for_tasks(cluster, 300)
    graph = tf.Graph()
    with graph.as_default(), tf.device(cluster.chief.name):
      g = trainer.build_train_graph(opts, trainer.LOSS_SEGSORT,
                                    cluster=cluster)
      init = [tf.global_variables_initializer(),
              tf.local_variables_initializer()]
      model_bytes = sum(int(np.prod(v.shape.as_list())) *
                        v.dtype.base_dtype.size
                        for v in tf.trainable_variables())
    fetches = {'loss': g.total_loss, 'op': g.step_op}
    with tf.Session(server.target, graph=graph) as sess:
      sess.run(init)
      for _ in range(args.warmup):
        sess.run(fetches)
      start = time.perf_counter()
      for _ in range(args.steps):
        sess.run(fetches)
      seconds = time.perf_counter() - start
      metadata = tf.RunMetadata()
      sess.run(fetches, options=tf.RunOptions(
          trace_level=tf.RunOptions.FULL_TRACE,
          output_partition_graphs=True), run_metadata=metadata)
    sent, sends, missing = cross_task_bytes(metadata)
  finally:
    cluster_lib.release_workers(cluster, server)
  atomic_io.atomic_write_text(args.chief_result, json.dumps({
      'workers': cluster.num_tasks,
      'steps_per_second': args.steps / seconds,
      'bytes_between_tasks_per_step': sent,
      'cross_task_sends_per_step': sends,
      'sends_without_size': missing,
      'model_bytes': model_bytes}))


def run_cluster(args, num_workers, work_dir):
  """Starts num_workers processes; returns the chief's results."""
  spec = ','.join('localhost:%d' % p
                  for p in cluster_lib.free_localhost_ports(num_workers))
  snapshot_dir = os.path.join(work_dir, 'serving_%d' % num_workers)
  workers = [subprocess.Popen(
      [sys.executable, TRAIN_SCRIPT] + _train_argv(args, snapshot_dir) +
      ['--cluster_spec', spec, '--task_index', str(i)],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(1, num_workers)]
  result_path = os.path.join(work_dir, 'chief_%d.json' % num_workers)
  argv = [a for a in sys.argv[1:]]
  try:
    chief = subprocess.run(
        [sys.executable, os.path.abspath(__file__)] + argv + [
            '--data_dir', args.data_dir, '--data_list', args.data_list,
            '--chief_cluster_spec', spec, '--chief_result', result_path],
        capture_output=True, text=True)
    if chief.returncode:
      raise errors.BenchmarkError('the chief of %d workers failed: %s' % (
          num_workers, chief.stderr[-2000:]))
    for worker in workers:
      worker.wait(timeout=120)
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  with open(result_path) as f:
    return json.load(f)


def benchmark(args):
  if args.chief_cluster_spec:
    return run_chief(args)
  with tempfile.TemporaryDirectory(prefix='segsort_dist_bench_') as work:
    if not args.data_list:
      from utils import synthetic_data  # pylint: disable=g-import-not-at-top
      args.data_dir = os.path.join(work, 'data')
      synthetic_data.generate_dataset(args.data_dir, num_train=8, num_val=0,
                                      height=64, width=64, num_classes=4,
                                      seed=0, show_progress=False)
      args.data_list = os.path.join(args.data_dir, 'train.txt')
    rows = []
    for n in args.workers:
      rows.append(run_cluster(args, n, work))
      print(json.dumps(rows[-1]), flush=True)
  report = {'setting': {'backbone': args.backbone,
                        'width_multiplier': args.width_multiplier,
                        'input_size': args.input_size,
                        'batch_size': args.batch_size,
                        'steps': args.steps, 'warmup': args.warmup,
                        'towers_per_worker': 1},
            'bytes_method': 'cross-task _Send tensors of the partition '
                            'graphs, sized from the traced step',
            'clusters': rows}
  if args.output_json:
    atomic_io.atomic_write_text(args.output_json, json.dumps(report, indent=2))
  return report


def main(argv=None):
  return script_glue.run_script(benchmark, get_arguments(argv))


if __name__ == '__main__':
  main()
