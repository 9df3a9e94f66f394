"""Measurements behind pyscripts/benchmark/benchmark_speed.py.

Each measurement runs in a process of its own (run_worker starts the script
again with a hidden worker flag), so that peak memory figures do not mix:
the peak resident set size (RSS) of a process only ever grows.

- benchmark_train_step: the trainer's real graph (build_train_graph, input
  pipeline included), timed per training step; in the same graph and
  session, the network's forward pass alone and the loss alone (for SegSort:
  k-means + prototypes + loss + its gradient w.r.t. the embedding + the
  memory-bank update), both on one cached batch fed in place of the input
  pipeline (and, for the loss, of the network's output).
- benchmark_knn_bank: the chunked kNN search of one image's test prototypes
  in a random bank of unit prototypes, with the memory used by the search
  itself measured apart from the memory of the bank.
- summarize / format_report: the JSON layout and the printed tables.
"""
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from network.common import layers
from network.multigpu import towers
from network.segsort import train_utils
from seg_models import checkpoints
from seg_models import image_reader
from seg_models import predictor
from seg_models import prototype_sets
from seg_models import sliding_window
from seg_models import trainer
from utils import general

# Worker (configuration) names; each runs in its own process.
WORKER_TRAIN_SEGSORT = 'train_segsort'
WORKER_TRAIN_SOFTMAX = 'train_softmax'
WORKER_INFERENCE = 'inference'
WORKER_KNN = 'knn'
TRAIN_WORKERS = {WORKER_TRAIN_SEGSORT: trainer.LOSS_SEGSORT,
                 WORKER_TRAIN_SOFTMAX: trainer.LOSS_SOFTMAX}

# Name scopes of build_train_graph (see find_model_output).
_LOSS_SCOPE = 'loss/'
_INPUT_SCOPE = 'create_inputs/'

# The goals of the issue: SegSort's step within 10% of softmax's, votes
# under 10% of multi-scale inference.
MAX_STEP_RATIO = 1.10
MAX_VOTES_SHARE = 0.10

_MB = float(2 ** 20)
INFERENCE_COLUMNS = predictor.STAGES + ('other', 'total')
# Rows of the inference timings: --inference_batch_size's path (single,
# msc) and multi-scale with each path.
INFERENCE_MODES = ('single', 'msc', 'msc_plain', 'msc_batched')


class BenchmarkError(ValueError):
  """Flags or worker failures (reported without a stack trace)."""


# ---------------------------------------------------------------------------
# Memory and time.
# ---------------------------------------------------------------------------


def get_peak_rss_mb():
  """Peak resident set size of this process so far, in MiB (getrusage)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  # Linux reports KiB, macOS bytes.
  return peak / (_MB if sys.platform == 'darwin' else 1024.0)


def _read_status_kb(field):
  """A 'kB' field of /proc/self/status (Linux), or None."""
  try:
    with open('/proc/self/status', encoding='ascii') as f:
      for line in f:
        if line.startswith(field + ':'):
          return float(line.split()[1])
  except OSError:
    pass
  return None


def get_current_rss_mb():
  """Resident set size now, in MiB (the peak where /proc is missing)."""
  kb = _read_status_kb('VmRSS')
  return kb / 1024.0 if kb is not None else get_peak_rss_mb()


def reset_peak_rss():
  """Resets the kernel's RSS high-water mark (Linux >= 4.0).

  Writing 5 to /proc/self/clear_refs sets VmHWM to the current RSS, so that
  get_rss_high_water_mark_mb() afterwards measures the peak of what follows
  only. Read get_peak_rss_mb() BEFORE calling this: getrusage's peak may be
  reset with it.

  Returns:
    Whether the reset worked.
  """
  try:
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
      f.write('5')
  except OSError:
    return False
  return _read_status_kb('VmHWM') is not None


def get_rss_high_water_mark_mb():
  """VmHWM in MiB: the peak RSS since the last reset_peak_rss()."""
  kb = _read_status_kb('VmHWM')
  return kb / 1024.0 if kb is not None else get_peak_rss_mb()


def time_calls(fn, count, warmup=0, desc=None, show_progress=False):
  """Calls fn() warmup times untimed, then count times timed.

  Returns:
    The list of count wall times in seconds.
  """
  for _ in range(warmup):
    fn()
  seconds = []
  for _ in tqdm(range(count), desc=desc, disable=not show_progress,
                leave=False, dynamic_ncols=True):
    start = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - start)
  return seconds


def median(values):
  return float(np.median(np.asarray(values, dtype=np.float64)))


# ---------------------------------------------------------------------------
# Training step.
# ---------------------------------------------------------------------------


def find_model_output(graph, num_outputs):
  """The network's output in a graph of trainer.build_train_graph.

  It is the only float [B, h, w, num_outputs] tensor that the loss scope
  reads from outside itself and from outside the input pipeline.

  Raises:
    BenchmarkError if there is not exactly one (the trainer changed).
  """
  found = {}
  for op in graph.get_operations():
    if not op.name.startswith(_LOSS_SCOPE):
      continue
    for tensor in op.inputs:
      name = tensor.op.name
      shape = tensor.get_shape()
      if (name.startswith(_LOSS_SCOPE) or name.startswith(_INPUT_SCOPE) or
          not tensor.dtype.is_floating or shape.ndims != 4 or
          tf.dimension_value(shape[3]) != num_outputs):
        continue
      found[tensor.name] = tensor
  if len(found) != 1:
    raise BenchmarkError('expected one network output read by the %r scope '
                         'of the training graph, found %s'
                         % (_LOSS_SCOPE, sorted(found) or 'none'))
  return next(iter(found.values()))


def find_input_batch(graph):
  """The tensors of the input pipeline's batch (IteratorGetNext outputs)."""
  ops = [op for op in graph.get_operations() if op.type == 'IteratorGetNext']
  if len(ops) != 1:
    raise BenchmarkError('expected one input iterator in the training graph, '
                         'found %d' % len(ops))
  return list(ops[0].outputs)


def benchmark_train_step(opts, loss_type, steps, warmup, show_progress=True):
  """Times the trainer's real training step and its parts.

  In one graph (trainer.build_train_graph, iter_size 1, input pipeline
  included) and one session:
    build     graph + session + variable initialisation (+ restore);
    step      sess.run of {total_loss, step_op}, as the trainer's loop;
    forward   the network's output alone, on a cached batch;
    loss      seg_loss and d(seg_loss)/d(output) (+ memory-bank update),
              with the cached batch and the cached network output fed: for
              SegSort this is k-means + prototypes + loss, forward and
              backward, without the network.

  Args:
    opts: trainer.TrainOptions (iter_size must be 1).
    loss_type: trainer.LOSS_SEGSORT or trainer.LOSS_SOFTMAX.
    steps: timed repetitions of each measurement.
    warmup: untimed training steps first (one untimed call before the
      forward and loss timings).
    show_progress: tqdm bars.

  Returns:
    A dict: build_seconds, step_seconds (list), step_median_seconds,
    forward_median_seconds, loss_median_seconds, peak_rss_mb (after the
    timed steps), build_peak_rss_mb, final_loss.
  """
  if opts.iter_size != 1:
    raise BenchmarkError('the benchmark times single-batch steps (iter_size '
                         '1), got iter_size %d' % opts.iter_size)
  num_outputs = (opts.num_classes if loss_type == trainer.LOSS_SOFTMAX
                 else opts.embedding_dim)
  start = time.perf_counter()
  graph = tf.Graph()
  with graph.as_default():
    g = trainer.build_train_graph(opts, loss_type)
    init_ops = [tf.global_variables_initializer(),
                tf.local_variables_initializer()]
    restorer = None
    if opts.restore_from:
      # The backbone only: the two losses' heads differ (embedding_dim vs
      # num_classes outputs), and timings do not depend on the weights.
      restorer = checkpoints.get_restorer(opts.restore_from,
                                          g.model_variables, skip_head=True)
  sess = tf.Session(graph=graph,
                    config=towers.session_config(1, xla=opts.xla))
  try:
    sess.run(init_ops)
    if restorer is not None:
      restorer[2](sess)
    build_seconds = time.perf_counter() - start
    build_peak = get_peak_rss_mb()

    fetches = {'loss': g.total_loss, 'op': g.step_op}
    last = {}

    def step():
      last['loss'] = sess.run(fetches)['loss']

    step_seconds = time_calls(step, steps, warmup, desc=loss_type + ' steps',
                              show_progress=show_progress)
    if not np.isfinite(last['loss']):
      raise BenchmarkError('the %s loss became %s' % (loss_type,
                                                      last['loss']))
    peak = get_peak_rss_mb()

    # Added after the timed steps, so that they do not change the graph the
    # steps ran; a TF1 session picks up the new ops.
    with graph.as_default():
      output = find_model_output(graph, num_outputs)
      batch = find_input_batch(graph)
      grad = tf.gradients(g.seg_loss, output)[0]
      loss_fetches = [g.seg_loss, grad] + list(
          train_utils.get_memory_bank_update_ops(graph))
    cached = sess.run(batch + [output])
    batch_feed = dict(zip(batch, cached[:-1]))
    loss_feed = dict(batch_feed)
    loss_feed[output] = cached[-1]
    forward_seconds = time_calls(lambda: sess.run(output, batch_feed), steps,
                                 1, desc=loss_type + ' forward',
                                 show_progress=show_progress)
    loss_seconds = time_calls(lambda: sess.run(loss_fetches, loss_feed),
                              steps, 1, desc=loss_type + ' loss',
                              show_progress=show_progress)
  finally:
    sess.close()
  return {
      'build_seconds': build_seconds,
      'step_seconds': step_seconds,
      'step_median_seconds': median(step_seconds),
      'forward_median_seconds': median(forward_seconds),
      'loss_median_seconds': median(loss_seconds),
      'peak_rss_mb': peak,
      'build_peak_rss_mb': build_peak,
      'final_loss': float(last['loss']),
  }


# ---------------------------------------------------------------------------
# kNN against prototype banks.
# ---------------------------------------------------------------------------


def get_random_unit_vectors(rng, num, dim):
  """float32 [num, dim] unit rows, with no float64 or [num, dim] temporary
  (a 1M-prototype bank must not cost more than its own 128 MB here)."""
  vectors = rng.standard_normal((num, dim), dtype=np.float32)
  norms = np.sqrt(np.einsum('ij,ij->i', vectors, vectors))
  vectors /= np.maximum(norms, 1e-6)[:, np.newaxis]
  return vectors


def benchmark_knn_bank(num_prototypes, embedding_dim, num_classes,
                       num_queries, k, chunk_size, repeats, warmup, seed,
                       show_progress=True):
  """Times the kNN votes of one image's clusters against a random bank.

  The bank (random unit prototypes with random classes) is searched by
  SegSortPredictor's own predictor.PrototypeBankSearch. Memory:
    rss_before_search_mb   RSS with the bank loaded (TF runtime + bank);
    search_peak_rss_mb     the peak during the searches (the high-water
                           mark is reset just before them);
    search_extra_mb        the difference: what the search itself needs,
                           O(Q * (k + chunk)) floats, independent of the
                           bank size when chunked;
    peak_rss_mb            the process's peak over everything (loading the
                           bank goes through a NumPy copy and a feed).

  Args:
    num_prototypes: P, the bank size.
    embedding_dim: D.
    num_classes: C (random labels in [0, C)).
    num_queries: Q, clusters per image (num_clusters**2).
    k: neighbours.
    chunk_size: training prototypes per chunk (0 or >= P: one matmul).
    repeats: timed searches.
    warmup: untimed searches first.
    seed: random seed.
    show_progress: tqdm bar.

  Returns:
    A dict with seconds (median per image), seconds_all, the memory figures
    above, bank_mb, unchunked_similarities_mb (Q * P floats, what one
    matmul over the whole bank would hold), chunk_size (None = unchunked).
  """
  if num_prototypes < 1:
    raise BenchmarkError('--knn_bank_sizes: sizes must be >= 1, got %d'
                         % num_prototypes)
  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  graph = tf.Graph()
  with graph.as_default():
    bank = predictor.PrototypeBankSearch(num_prototypes, embedding_dim, k,
                                         num_classes, chunk_size)
    init_op = tf.global_variables_initializer()
  graph.finalize()
  with tf.Session(graph=graph) as sess:
    features = get_random_unit_vectors(rng, num_prototypes, embedding_dim)
    labels = rng.integers(0, num_classes, num_prototypes, dtype=np.int32)
    sess.run(init_op, bank.get_init_feed_dict(features, labels))
    # The session holds its own copy now.
    del features, labels
    load_seconds = time.perf_counter() - start
    test_prototypes = get_random_unit_vectors(rng, num_queries,
                                              embedding_dim)

    def search():
      return bank.search(sess, test_prototypes)

    for _ in range(warmup):
      search()
    peak_before = get_peak_rss_mb()
    rss_before = get_current_rss_mb()
    reset = reset_peak_rss()
    seconds = time_calls(search, repeats, desc='kNN %d' % num_prototypes,
                         show_progress=show_progress)
    search_peak = get_rss_high_water_mark_mb() if reset else None
    result_votes = search()['votes']
  if not np.all(result_votes.sum(axis=1) == min(k, num_prototypes)):
    raise AssertionError('every query must receive min(k, P) votes')
  peak = max(peak_before, get_peak_rss_mb(), search_peak or 0.0)
  return {
      'seconds': median(seconds),
      'seconds_all': seconds,
      'load_seconds': load_seconds,
      'peak_rss_mb': peak,
      'rss_before_search_mb': rss_before,
      'search_peak_rss_mb': search_peak,
      'search_extra_mb': (None if search_peak is None
                          else max(0.0, search_peak - rss_before)),
      'bank_mb': num_prototypes * embedding_dim * 4 / _MB,
      'unchunked_similarities_mb': num_queries * num_prototypes * 4 / _MB,
      'chunk_size': bank.chunk_size,
      'num_queries': num_queries,
  }


# ---------------------------------------------------------------------------
# Workers: one process per configuration.
# ---------------------------------------------------------------------------


def run_worker(script, argv, name, worker_args=(), env=None):
  """Runs `python script argv --_worker name ...` and returns its result.

  The worker writes its result as JSON to a temporary file
  (write_worker_result); its stdout and stderr go to ours, so that its
  progress bars and errors are seen. `env` (a dict) adds or replaces
  environment variables of the worker, e.g. TF_ENABLE_ONEDNN_OPTS.

  Raises:
    BenchmarkError if the worker fails.
  """
  handle, path = tempfile.mkstemp(prefix='benchmark_%s_' % name,
                                  suffix='.json')
  os.close(handle)
  try:
    command = ([sys.executable, script] + list(argv) +
               ['--_worker', name, '--_worker_output', path] +
               [str(a) for a in worker_args])
    worker_env = dict(os.environ)
    worker_env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    worker_env.update(env or {})
    code = subprocess.call(command, env=worker_env)
    if code != 0:
      raise BenchmarkError('the %s measurement failed (exit code %d; its '
                           'messages are above)' % (name, code))
    with open(path, encoding='utf-8') as f:
      text = f.read()
    if not text:
      raise BenchmarkError('the %s measurement wrote no result' % name)
    return json.loads(text)
  finally:
    os.remove(path)


def write_worker_result(path, result):
  general.atomic_write_text(path, json.dumps(result) + '\n')


# ---------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------


def get_machine():
  """What the numbers were measured on."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
      for line in f:
        if line.startswith('model name'):
          cpu = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  return {'cpu': cpu, 'cpu_count': os.cpu_count(),
          'conv_paths': layers.describe_conv_paths(),
          'platform': platform.platform(),
          'python': platform.python_version(),
          'tensorflow': tf.__version__, 'numpy': np.__version__}


def summarize(settings, train, inference, knn):
  """The results dict (the JSON layout).

  Args:
    settings: dict of the settings used.
    train: {'segsort': benchmark_train_step result, 'softmax': ...}.
    inference: {'single': {stage: seconds, ..., 'total'}, 'msc': {...},
      'build_seconds', 'peak_rss_mb'}.
    knn: {bank size (int): benchmark_knn_bank result}.

  Returns:
    A JSON-able dict (see the script's docstring).
  """
  names = (trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX)
  step = {n: train[n]['step_median_seconds'] for n in names}
  ratio = step[trainer.LOSS_SEGSORT] / step[trainer.LOSS_SOFTMAX]
  share = (train[trainer.LOSS_SEGSORT]['loss_median_seconds'] /
           step[trainer.LOSS_SEGSORT])
  msc = inference['msc']
  votes_share = msc['votes'] / msc['total'] if msc['total'] else 0.0
  extra = {}
  if 'msc_plain' in inference and 'msc_batched' in inference:
    extra['msc_speedup_plain_over_batched'] = (
        inference['msc_plain']['total'] / inference['msc_batched']['total'])
  return dict(extra, **{
      'settings': settings,
      'train_step_seconds': step,
      'train_step_ratio_segsort_over_softmax': ratio,
      'kmeans_loss_share': share,
      'loss_seconds': {n: train[n]['loss_median_seconds'] for n in names},
      'forward_seconds': {n: train[n]['forward_median_seconds']
                          for n in names},
      'build_seconds': {n: train[n]['build_seconds'] for n in names},
      'peak_rss_mb': {n: train[n]['peak_rss_mb'] for n in names},
      'train_step_min_seconds': {n: float(min(train[n]['step_seconds']))
                                 for n in names},
      'train_step_all_seconds': {n: train[n]['step_seconds'] for n in names},
      'inference_seconds': {mode: {c: inference[mode][c]
                                   for c in INFERENCE_COLUMNS}
                            for mode in INFERENCE_MODES if mode in inference},
      'inference_build_seconds': inference['build_seconds'],
      'inference_peak_rss_mb': inference['peak_rss_mb'],
      'votes_share_msc': votes_share,
      'knn_bank': {str(size): knn[size] for size in sorted(knn)},
      'goals': {
          'train_step_ratio_at_most_%.2f' % MAX_STEP_RATIO:
              bool(ratio <= MAX_STEP_RATIO),
          'votes_share_msc_below_%.2f' % MAX_VOTES_SHARE:
              bool(votes_share < MAX_VOTES_SHARE),
      },
  })


def _met(ok):
  return 'met' if ok else 'NOT met'


def _mb(value):
  return '%9s' % ('n/a' if value is None else '%.1f' % value)


def format_report(results):
  """The printed tables of a summarize() dict."""
  s = results['settings']
  seg, soft = trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX
  lines = ['Training step: %s %s x%g, %dx%d, batch %d; median of %d steps '
           'after %d warm-up' % (s['model'], s['backbone'],
                                 s['width_multiplier'], s['input_size'][0],
                                 s['input_size'][1], s['batch_size'],
                                 s['steps'], s['warmup']),
           '%-10s %10s %10s %10s %10s %10s %12s' % (
               'loss', 'step s', 'min step s', 'forward s', 'loss s',
               'build s', 'peak RSS MB')]
  for name in (seg, soft):
    lines.append('%-10s %10.4f %10.4f %10.4f %10.4f %10.2f %12.1f' % (
        name, results['train_step_seconds'][name],
        results['train_step_min_seconds'][name],
        results['forward_seconds'][name], results['loss_seconds'][name],
        results['build_seconds'][name], results['peak_rss_mb'][name]))
  ratio = results['train_step_ratio_segsort_over_softmax']
  lines.append('step ratio segsort / softmax: %.3f (goal <= %.2f: %s)'
               % (ratio, MAX_STEP_RATIO, _met(ratio <= MAX_STEP_RATIO)))
  lines.append('k-means + loss share of the SegSort step: %.1f%%'
               % (100.0 * results['kmeans_loss_share']))
  lines.append('')
  sizes = s['inference_image_sizes']
  lines.append('Inference per image: mean of %d image(s) of %s, window %dx%d,'
               ' strides %d,%d; msc scales %s%s; %d prototypes; k %d'
               % ((len(sizes), ', '.join('%dx%d' % tuple(v) for v in
                                         sizes[:3]) +
                   (', ...' if len(sizes) > 3 else '')) +
                  tuple(s['input_size']) + tuple(s['strides']) + (
                      ','.join('%g' % v for v in s['scales']),
                      ' + flips' if s['flip_aug'] else '',
                      s['inference_num_prototypes'],
                      s['k_in_nearest_neighbors'])))
  lines.append('%-11s %s %7s' % ('mode', ' '.join(
      '%9s' % c for c in INFERENCE_COLUMNS), 'votes%'))
  for mode, row in results['inference_seconds'].items():
    lines.append('%-11s %s %6.1f%%' % (
        mode, ' '.join('%9.4f' % row[c] for c in INFERENCE_COLUMNS),
        100.0 * row['votes'] / row['total'] if row['total'] else 0.0))
  if 'msc_speedup_plain_over_batched' in results:
    paths = s.get('inference_paths', {})
    lines.append('multi-scale, one window at a time / batched (%s windows '
                 'per call, XLA %s): %.2fx' % (
                     paths.get('msc_batched'),
                     'on' if paths.get('xla') else 'off',
                     results['msc_speedup_plain_over_batched']))
  share = results['votes_share_msc']
  lines.append('votes share of multi-scale inference: %.1f%% (goal < %.0f%%:'
               ' %s); build %.2f s, peak RSS %.1f MB'
               % (100.0 * share, 100.0 * MAX_VOTES_SHARE,
                  _met(share < MAX_VOTES_SHARE),
                  results['inference_build_seconds'],
                  results['inference_peak_rss_mb']))
  lines.append('')
  lines.append('kNN per image: %d cluster prototypes, dim %d, k %d, chunks '
               'of %s' % (s['num_clusters'] ** 2, s['embedding_dim'],
                          s['k_in_nearest_neighbors'],
                          s['knn_chunk_size'] or 'the whole bank'))
  lines.append('%11s %9s %10s %9s %9s %9s %9s' % (
      'prototypes', 'bank MB', 's/image', 'peak RSS', 'loaded', 'search+',
      'Q x P MB'))
  for size, row in results['knn_bank'].items():
    lines.append('%11s %s %10.5f %s %s %s %s' % (
        size, _mb(row['bank_mb']), row['seconds'], _mb(row['peak_rss_mb']),
        _mb(row['rss_before_search_mb']), _mb(row['search_extra_mb']),
        _mb(row['unchunked_similarities_mb'])))
  lines.append('(loaded: RSS with the bank in memory; search+: what the '
               'search adds, bounded by the chunk size; Q x P: one '
               'similarity matrix over the whole bank)')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Input pipeline against training (pyscripts/benchmark/
# benchmark_input_pipeline.py).
# ---------------------------------------------------------------------------

# The goal of the issue: the pipeline delivers examples faster than a
# training step consumes them, i.e. training never waits for its input.
MIN_PIPELINE_RATIO = 1.0


def get_rate(count, seconds, what):
  """count / sum(seconds): a throughput over consecutive timed calls.

  A rate over the total time (not 1 / median) is what a training run
  sees: count items went through in sum(seconds).

  Raises:
    BenchmarkError if nothing was timed.
  """
  total = float(np.sum(np.asarray(seconds, dtype=np.float64)))
  if count < 1 or total <= 0:
    raise BenchmarkError('no %s were timed (count %d, %.3g s)'
                         % (what, count, total))
  return count / total


def benchmark_input_pipeline(opts, batches, warmup,
                             loss_type=trainer.LOSS_SEGSORT,
                             show_progress=True):
  """Times the training input pipeline alone, without the network.

  The dataset is the one trainer.build_train_graph builds for loss_type
  (image_reader.get_train_dataset with the same list, crop size, batch,
  augmentation switches, seed and, for SegSort, the grid cluster labels and
  locations), drawn through a one-shot iterator in a session of its own.
  Each timed call runs the iterator's get_next through a no-op that depends
  on it, so the batch is produced but not copied out to NumPy (training
  reads it inside the graph too). In a tight loop the prefetch buffer stays
  empty, so the calls measure what the pipeline produces, not what it had
  stored ahead.

  Args:
    opts: trainer.TrainOptions.
    batches: timed batches.
    warmup: untimed batches first (at least one is drawn, fetched as arrays
      to record the batch's shapes; later ones let tf.data's autotuning
      settle).
    loss_type: one of trainer.LOSS_TYPES (which channels a sample has).
    show_progress: tqdm bar.

  Returns:
    A dict: build_seconds (graph + session + first batch), batch_seconds
    (list), total_seconds, batches, batches_per_s, examples_per_s
    (= batch_size * batches_per_s), batch_shapes {key: shape}.
  """
  if batches < 1:
    raise BenchmarkError('time at least one batch, got %d' % batches)
  segsort = loss_type == trainer.LOSS_SEGSORT
  unsupervised = loss_type == trainer.LOSS_UNSUPERVISED
  start = time.perf_counter()
  graph = tf.Graph()
  with graph.as_default():
    dataset = image_reader.get_train_dataset(
        opts.data_dir, opts.data_list, opts.input_size, opts.batch_size,
        random_scale=opts.random_scale, random_mirror=opts.random_mirror,
        random_crop=opts.random_crop, ignore_label=opts.ignore_label,
        num_clusters=opts.num_clusters if segsort else None,
        with_label=not unsupervised, with_overseg=unsupervised,
        shuffle=True, seed=opts.random_seed)
    batch = tf.data.make_one_shot_iterator(dataset).get_next()
    consume = tf.group(*tf.nest.flatten(batch))
  graph.finalize()
  with tf.Session(graph=graph, config=towers.session_config(1)) as sess:
    first = sess.run(batch)
    build_seconds = time.perf_counter() - start
    shapes = {key: list(np.shape(value)) for key, value in first.items()}
    batch_seconds = time_calls(lambda: sess.run(consume), batches,
                               max(warmup - 1, 0), desc='input pipeline',
                               show_progress=show_progress)
  batches_per_s = get_rate(batches, batch_seconds, 'input batches')
  return {
      'build_seconds': build_seconds,
      'batch_seconds': batch_seconds,
      'total_seconds': float(np.sum(batch_seconds)),
      'batches': batches,
      'batches_per_s': batches_per_s,
      'examples_per_s': opts.batch_size * batches_per_s,
      'batch_shapes': shapes,
  }


def summarize_input_pipeline(settings, pipeline, train):
  """The results dict of benchmark_input_pipeline.py (its JSON layout).

  Args:
    settings: dict of the settings used (with batch_size).
    pipeline: a benchmark_input_pipeline result.
    train: a benchmark_train_step result.

  Returns:
    A JSON-able dict:
      settings;
      pipeline {examples_per_s, batches_per_s, batches, total_seconds,
                batch_seconds, build_seconds, batch_shapes};
      training {steps_per_s, examples_per_s (= batch_size * steps_per_s),
                steps, step_seconds, step_median_seconds,
                step_min_seconds, forward_median_seconds, build_seconds,
                final_loss};
      ratio_pipeline_over_training  pipeline / training examples per second;
      input_cpu_share  its inverse: the share of the pipeline's capacity a
                       training run uses;
      goals {pipeline_faster_than_training}.
  """
  batch_size = settings['batch_size']
  steps = len(train['step_seconds'])
  steps_per_s = get_rate(steps, train['step_seconds'], 'training steps')
  training = {
      'steps_per_s': steps_per_s,
      'examples_per_s': batch_size * steps_per_s,
      'steps': steps,
      'step_seconds': list(train['step_seconds']),
      'step_median_seconds': train['step_median_seconds'],
      'step_min_seconds': float(min(train['step_seconds'])),
      'forward_median_seconds': train['forward_median_seconds'],
      'build_seconds': train['build_seconds'],
      'final_loss': train['final_loss'],
  }
  keys = ('examples_per_s', 'batches_per_s', 'batches', 'total_seconds',
          'batch_seconds', 'build_seconds', 'batch_shapes')
  ratio = pipeline['examples_per_s'] / training['examples_per_s']
  return {
      'settings': settings,
      'pipeline': {key: pipeline[key] for key in keys},
      'training': training,
      'ratio_pipeline_over_training': ratio,
      'input_cpu_share': 1.0 / ratio,
      'goals': {'pipeline_faster_than_training':
                    bool(ratio > MIN_PIPELINE_RATIO)},
  }


def format_input_pipeline_report(results):
  """The printed summary of a summarize_input_pipeline() dict."""
  s = results['settings']
  pipeline, training = results['pipeline'], results['training']
  ratio = results['ratio_pipeline_over_training']
  data = s['data']
  if isinstance(data, dict):
    data = data['data_list']
  load = s.get('load_average') or {}
  lines = [
      'Input pipeline vs training: %s %s x%g, %dx%d crops, batch %d, '
      'augmentation %s; data: %s' % (
          s['model'], s['backbone'], s['width_multiplier'],
          s['input_size'][0], s['input_size'][1], s['batch_size'],
          ', '.join(s['augmentation']) or 'none', data),
      '%-15s %12.2f examples/s  (%8.3f batches/s; %d batches after %d '
      'warm-up in %.2f s)' % (
          'pipeline alone', pipeline['examples_per_s'],
          pipeline['batches_per_s'], pipeline['batches'],
          max(s['warmup'], 1),
          pipeline['total_seconds']),
      '%-15s %12.2f examples/s  (%8.3f steps/s; %d steps after %d warm-up,'
      ' median step %.3f s, fastest %.3f s)' % (
          'training', training['examples_per_s'], training['steps_per_s'],
          training['steps'], s['warmup'], training['step_median_seconds'],
          training['step_min_seconds']),
      'ratio pipeline / training examples/s: %.2f (goal > %g: %s); the '
      'pipeline needs %.1f%% of its own capacity to feed training' % (
          ratio, MIN_PIPELINE_RATIO,
          _met(ratio > MIN_PIPELINE_RATIO),
          100.0 * results['input_cpu_share']),
  ]
  if load:
    lines.append('load average (1 min) before / after: %s / %s on %s CPUs'
                 % (load.get('before', ['n/a'])[0],
                    load.get('after', ['n/a'])[0],
                    s['machine']['cpu_count']))
  return '\n'.join(lines)


def get_random_prototypes(num, embedding_dim, num_classes, seed):
  """A bank of random unit vectors with random classes."""
  rng = np.random.RandomState(seed)
  features = sliding_window.normalize_rows(
      rng.randn(num, embedding_dim).astype(np.float32))
  labels = rng.randint(0, num_classes, size=num).astype(np.int32)
  return prototype_sets.PrototypeSet(features, labels)


def time_image(model, image, mode, scales, flip):
  """Seconds per stage of one prediction, plus 'other' and 'total'."""
  timings = {stage: 0.0 for stage in predictor.STAGES}
  start = time.perf_counter()
  if mode == 'single':
    model.predict(image, timings)
  else:
    model.predict_multiscale(image, scales, flip, timings)
  timings['total'] = time.perf_counter() - start
  timings['other'] = max(0.0, timings['total'] -
                         sum(timings[s] for s in predictor.STAGES))
  return timings
