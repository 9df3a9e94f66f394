"""Measurements behind the speed benchmarks in pyscripts/benchmark/.

Each measurement runs in a process of its own (run_worker starts the script
again with a hidden worker flag), so that peak memory figures do not mix:
the peak resident set size (RSS) of a process only ever grows.

- benchmark_train_step: the trainer's real graph (build_train_graph, input
  pipeline included), timed per training step; in the same graph and
  session, the network's forward pass alone and the loss alone (for SegSort:
  k-means + prototypes + loss + its gradient w.r.t. the embedding + the
  memory-bank update), both on one cached batch fed in place of the input
  pipeline (and, for the loss, of the network's output).
- train_round_order, combine_train_rounds: the training pair measured in
  several rounds (new processes each, alternating which loss runs first)
  and combined into medians of the rounds' figures and paired ratios.
- benchmark_train_pair: both training steps in one process, in turn.
- benchmark_knn_bank: the chunked kNN search of one image's test prototypes
  in a random bank of unit prototypes, with the memory used by the search
  itself measured apart from the memory of the bank.
- benchmark_input_pipeline: the trainer's input pipeline alone.
- time_image: the predictor's stages on one image.

The timers and memory figures come from utils/profiling.py; the JSON
layouts and printed reports belong to the scripts.
"""
import json
import os
import platform
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
from seg_models import predictor
from seg_models import prototype_sets
from seg_models import trainer
from utils import atomic_io
from utils import errors
from utils import profiling

# Worker (configuration) names; each runs in its own process.
WORKER_TRAIN_SEGSORT = 'train_segsort'
WORKER_TRAIN_SOFTMAX = 'train_softmax'
WORKER_TRAIN_PAIR = 'train_pair'
WORKER_INFERENCE = 'inference'
WORKER_KNN = 'knn'
TRAIN_WORKERS = {WORKER_TRAIN_SEGSORT: trainer.LOSS_SEGSORT,
                 WORKER_TRAIN_SOFTMAX: trainer.LOSS_SOFTMAX}

# Columns of time_image: the predictor's stages, then the rest and the sum.
INFERENCE_COLUMNS = predictor.STAGES + ('other', 'total')
# Rows of the inference timings: --inference_batch_size's path (single,
# msc) and multi-scale with each path.
INFERENCE_MODES = ('single', 'msc', 'msc_plain', 'msc_batched')


BenchmarkError = errors.BenchmarkError


# ---------------------------------------------------------------------------
# Training step.
# ---------------------------------------------------------------------------


def train_round_order(rounds):
  """The training workers of `rounds` rounds, in the order they run.

  SegSort first in even rounds, softmax first in odd ones (A B, B A, A B,
  ...), so that a drift of the machine's speed during the run favours
  neither.

  Returns:
    A list of (round, worker name) pairs.
  """
  pair = (WORKER_TRAIN_SEGSORT, WORKER_TRAIN_SOFTMAX)
  return [(r, name) for r in range(rounds)
          for name in (pair if r % 2 == 0 else pair[::-1])]


def combine_train_rounds(rounds):
  """One benchmark_train_step result per loss from several rounds.

  Two processes of the same graph on the same machine can differ by ~10%
  in step time, so one process per loss is an anecdote; each round runs
  both losses in new processes, one right after the other.

  Args:
    rounds: a list of {loss: benchmark_train_step result} (with
      'conv_paths' for SegSort), one per round.

  Returns:
    (train, ratios, shares): train[loss] has the medians over rounds of
    step_median_seconds, forward_median_seconds, loss_median_seconds and
    build_seconds, the largest peak_rss_mb and build_peak_rss_mb, every
    step in step_seconds, the last round's final_loss and the first
    round's conv_paths; ratios[r] is round r's SegSort / softmax median
    step, shares[r] its SegSort loss / SegSort step.
  """
  if not rounds:
    raise BenchmarkError('no training round to combine')
  seg, soft = trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX
  train = {}
  for loss in (seg, soft):
    results = [r[loss] for r in rounds]
    combined = {key: profiling.median([r[key] for r in results])
                for key in ('step_median_seconds', 'forward_median_seconds',
                            'loss_median_seconds', 'build_seconds')}
    combined.update(
        peak_rss_mb=max(r['peak_rss_mb'] for r in results),
        build_peak_rss_mb=max(r['build_peak_rss_mb'] for r in results),
        step_seconds=[t for r in results for t in r['step_seconds']],
        final_loss=results[-1]['final_loss'])
    if 'conv_paths' in results[0]:
      combined['conv_paths'] = results[0]['conv_paths']
    train[loss] = combined
  ratios = [r[seg]['step_median_seconds'] / r[soft]['step_median_seconds']
            for r in rounds]
  shares = [r[seg]['loss_median_seconds'] / r[seg]['step_median_seconds']
            for r in rounds]
  return train, ratios, shares


def _start_train_session(opts, loss_type):
  """The trainer's graph for loss_type in a new graph and session.

  Variables initialised (the backbone restored with opts.restore_from).

  Returns:
    (session, TrainGraph).
  """
  if opts.iter_size != 1:
    raise BenchmarkError('the benchmark times single-batch steps (iter_size '
                         '1), got iter_size %d' % opts.iter_size)
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
  except BaseException:
    sess.close()
    raise
  return sess, g


def _step_fn(sess, g, loss_type):
  """One training step as the trainer's loop runs it; raises on a
  non-finite loss."""
  fetches = {'loss': g.total_loss, 'op': g.step_op}

  def step():
    loss = sess.run(fetches)['loss']
    if not np.isfinite(loss):
      raise BenchmarkError('the %s loss became %s' % (loss_type, loss))
    return loss

  return step


def benchmark_train_pair(opts, steps, warmup, show_progress=True):
  """SegSort and softmax training steps, interleaved in one process.

  Both graphs are built (each in its own graph and session), warmed up,
  then stepped in turn, `steps` times each: SegSort then softmax in even
  pairs, softmax then SegSort in odd ones. Two steps run seconds apart, so
  what the machine's speed does over minutes, and what differs between two
  processes of the same graph, weighs on both alike; each pair gives one
  ratio.

  Returns:
    {'step_seconds': {loss: [steps]}, 'pair_ratios': [SegSort step /
    softmax step of each pair], 'ratio_median'}.
  """
  seg, soft = trainer.LOSS_SEGSORT, trainer.LOSS_SOFTMAX
  sessions = {}
  try:
    for loss in (seg, soft):
      sessions[loss] = _start_train_session(opts, loss)
    steppers = {loss: _step_fn(sess, g, loss)
                for loss, (sess, g) in sessions.items()}
    for loss in (seg, soft):
      for _ in range(warmup):
        steppers[loss]()
    seconds = {seg: [], soft: []}
    for i in tqdm(range(steps), desc='interleaved steps',
                  disable=not show_progress, leave=False):
      for loss in ((seg, soft) if i % 2 == 0 else (soft, seg)):
        start = time.perf_counter()
        steppers[loss]()
        seconds[loss].append(time.perf_counter() - start)
  finally:
    for sess, _ in sessions.values():
      sess.close()
  ratios = [a / b for a, b in zip(seconds[seg], seconds[soft])]
  return {'step_seconds': seconds, 'pair_ratios': ratios,
          'ratio_median': profiling.median(ratios)}


def benchmark_train_step(opts, loss_type, steps, warmup, show_progress=True):
  """Times the trainer's real training step and its parts.

  In one graph (trainer.build_train_graph, iter_size 1, input pipeline
  included) and one session:
    build     graph + session + variable initialisation (+ restore);
    step      sess.run of {total_loss, step_op}, as the trainer's loop;
    forward   the network's output alone (TrainGraph.output), on a cached
              batch (TrainGraph.batch) fed in place of the pipeline;
    loss      seg_loss and d(seg_loss)/d(output) (+ memory-bank update),
              with the cached batch and the cached network output fed: for
              SegSort this is k-means + prototypes + loss, forward and
              backward, without the network.

  Args:
    opts: trainer.TrainOptions (iter_size must be 1).
    loss_type: one of trainer.LOSS_TYPES.
    steps: timed repetitions of each measurement.
    warmup: untimed training steps first (one untimed call before the
      forward and loss timings).
    show_progress: tqdm bars.

  Returns:
    A dict: build_seconds, step_seconds (list), step_median_seconds,
    forward_median_seconds, loss_median_seconds, peak_rss_mb (after the
    timed steps), build_peak_rss_mb, final_loss.
  """
  start = time.perf_counter()
  sess, g = _start_train_session(opts, loss_type)
  graph = sess.graph
  try:
    build_seconds = time.perf_counter() - start
    build_peak = profiling.get_peak_rss_mb()

    step = _step_fn(sess, g, loss_type)
    last = {}

    def timed_step():
      last['loss'] = step()

    step_seconds = profiling.time_calls(timed_step, steps, warmup,
                                        desc=loss_type + ' steps',
                                        show_progress=show_progress)
    peak = profiling.get_peak_rss_mb()

    # Added after the timed steps, so that they do not change the graph the
    # steps ran; a TF1 session picks up the new ops.
    with graph.as_default():
      grad = tf.gradients(g.seg_loss, g.output)[0]
      loss_fetches = [g.seg_loss, grad] + list(
          train_utils.get_memory_bank_update_ops(graph))
    batch = list(g.batch.values())
    cached = sess.run(batch + [g.output])
    batch_feed = dict(zip(batch, cached[:-1]))
    loss_feed = dict(batch_feed)
    loss_feed[g.output] = cached[-1]
    forward_seconds = profiling.time_calls(
        lambda: sess.run(g.output, batch_feed), steps, 1,
        desc=loss_type + ' forward', show_progress=show_progress)
    loss_seconds = profiling.time_calls(
        lambda: sess.run(loss_fetches, loss_feed), steps, 1,
        desc=loss_type + ' loss', show_progress=show_progress)
  finally:
    sess.close()
  return {
      'build_seconds': build_seconds,
      'step_seconds': step_seconds,
      'step_median_seconds': profiling.median(step_seconds),
      'forward_median_seconds': profiling.median(forward_seconds),
      'loss_median_seconds': profiling.median(loss_seconds),
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
    raise BenchmarkError('a prototype bank holds at least one prototype, '
                         'got %d' % num_prototypes)
  rng = np.random.default_rng(seed)
  start = time.perf_counter()
  graph = tf.Graph()
  with graph.as_default():
    bank = predictor.PrototypeBankSearch(num_prototypes, embedding_dim, k,
                                         num_classes, chunk_size)
    init_op = tf.global_variables_initializer()
  graph.finalize()
  with tf.Session(graph=graph) as sess:
    random_bank = get_random_prototypes(num_prototypes, embedding_dim,
                                        num_classes, rng)
    sess.run(init_op, bank.get_init_feed_dict(random_bank.features,
                                              random_bank.labels))
    # The session holds its own copy now.
    del random_bank
    load_seconds = time.perf_counter() - start
    test_prototypes = get_random_unit_vectors(rng, num_queries,
                                              embedding_dim)

    def search():
      return bank.search(sess, test_prototypes)

    for _ in range(warmup):
      search()
    peak_before = profiling.get_peak_rss_mb()
    rss_before = profiling.get_current_rss_mb()
    reset = profiling.reset_peak_rss()
    seconds = profiling.time_calls(search, repeats,
                                   desc='kNN %d' % num_prototypes,
                                   show_progress=show_progress)
    search_peak = profiling.get_rss_high_water_mark_mb() if reset else None
    result_votes = search()['votes']
  if not np.all(result_votes.sum(axis=1) == min(k, num_prototypes)):
    raise AssertionError('every query must receive min(k, P) votes')
  peak = max(peak_before, profiling.get_peak_rss_mb(), search_peak or 0.0)
  return {
      'seconds': profiling.median(seconds),
      'seconds_all': seconds,
      'load_seconds': load_seconds,
      'peak_rss_mb': peak,
      'rss_before_search_mb': rss_before,
      'search_peak_rss_mb': search_peak,
      'search_extra_mb': (None if search_peak is None
                          else max(0.0, search_peak - rss_before)),
      'bank_mb': num_prototypes * embedding_dim * 4 / profiling.MB,
      'unchunked_similarities_mb': (num_queries * num_prototypes * 4 /
                                    profiling.MB),
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
  atomic_io.atomic_write_text(path, json.dumps(result) + '\n')


# ---------------------------------------------------------------------------
# Machine.
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


# ---------------------------------------------------------------------------
# Input pipeline.
# ---------------------------------------------------------------------------


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

  The dataset is the one trainer.build_train_graph reads for loss_type
  (trainer.get_train_dataset: the same list, crop size, batch, augmentation
  switches, seed and the channels the loss declares), drawn through a
  one-shot iterator in a session of its own.
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
  start = time.perf_counter()
  graph = tf.Graph()
  with graph.as_default():
    dataset = trainer.get_train_dataset(opts, loss_type)
    batch = tf.data.make_one_shot_iterator(dataset).get_next()
    consume = tf.group(*tf.nest.flatten(batch))
  graph.finalize()
  with tf.Session(graph=graph, config=towers.session_config(1)) as sess:
    first = sess.run(batch)
    build_seconds = time.perf_counter() - start
    shapes = {key: list(np.shape(value)) for key, value in first.items()}
    batch_seconds = profiling.time_calls(
        lambda: sess.run(consume), batches, max(warmup - 1, 0),
        desc='input pipeline', show_progress=show_progress)
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


# ---------------------------------------------------------------------------
# Inference.
# ---------------------------------------------------------------------------


def get_random_prototypes(num, embedding_dim, num_classes, seed):
  """A PrototypeSet of num random unit vectors with random classes.

  Args:
    num: P.
    embedding_dim: D.
    num_classes: C (labels uniform in [0, C)).
    seed: an int, or a np.random.Generator to draw from.
  """
  rng = np.random.default_rng(seed)
  features = get_random_unit_vectors(rng, num, embedding_dim)
  labels = rng.integers(0, num_classes, num, dtype=np.int32)
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
