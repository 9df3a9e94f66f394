"""benchmark_speed.py at a tiny setting: the JSON layout and sane values.

The end-to-end test runs the script on a tiny network (the kNN measurement
in its own process, the others in the test's, to save TensorFlow start-ups);
the helpers are checked against hand-computed numbers.
"""
import json
import math

import numpy as np
import pytest

from pyscripts.benchmark import benchmark_speed
from seg_models import benchmarking
from seg_models import predictor

TINY_FLAGS = ['--backbone', 'resnet_v1_50', '--width_multiplier', '0.0625',
              '--input_size', '48,48', '--batch_size', '2',
              '--embedding_dim', '8', '--num_classes', '4',
              '--num_clusters', '2', '--kmeans_iterations', '2',
              '--steps', '2', '--warmup', '1', '--max_images', '1',
              '--scales', '0.5,1', '--num_random_prototypes', '500',
              '--k_in_nearest_neighbors', '5', '--knn_chunk_size', '1000',
              '--knn_bank_sizes', '3000']
STAGES = predictor.STAGES + ('other', 'total')


def test_end_to_end_tiny(tmp_path, monkeypatch):
  # The training and inference workers run in this process (each TensorFlow
  # import in a new process costs seconds); the kNN worker runs as a real
  # process, as every worker does outside tests.
  # oneDNN cannot be switched inside one process: the --compare_onednn
  # workers run here too, with the environment they were given recorded
  # (test_layers checks in real processes what each setting runs).
  run_in_process = benchmarking.run_worker
  envs = []

  def run_worker(script, argv, name, worker_args=(), env=None):
    if name == benchmarking.WORKER_KNN:
      return run_in_process(script, argv, name, worker_args, env=env)
    envs.append((name, env))
    path = str(tmp_path / (name + '.json'))
    benchmark_speed.main(list(argv) + ['--_worker', name,
                                       '--_worker_output', path] +
                         [str(a) for a in worker_args])
    with open(path) as f:
      return json.load(f)

  monkeypatch.setattr(benchmarking, 'run_worker', run_worker)
  output = str(tmp_path / 'speed.json')
  results = benchmark_speed.main(TINY_FLAGS + ['--output_json', output,
                                               '--compare_onednn',
                                               '--rounds', '2',
                                               '--interleaved'])
  with open(output) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(results))

  settings = saved['settings']
  assert settings['input_size'] == [48, 48]
  assert settings['batch_size'] == 2
  assert settings['backbone'] == 'resnet_v1_50'
  assert settings['data'] == 'synthetic'
  assert settings['scales'] == [0.5, 1.0] and settings['flip_aug']
  assert settings['inference_image_sizes'] == [[48, 48]]
  assert settings['machine']['cpu_count'] >= 1

  losses = ('segsort', 'softmax')
  for key in ('train_step_seconds', 'build_seconds', 'peak_rss_mb',
              'loss_seconds', 'forward_seconds'):
    assert sorted(saved[key]) == sorted(losses), key
    for loss in losses:
      assert saved[key][loss] > 0, (key, loss)
  step = saved['train_step_seconds']
  # Two rounds of 2 steps per loss, in alternating order.
  assert settings['rounds'] == 2
  assert [name for name, _ in envs[:4]] == [
      benchmarking.WORKER_TRAIN_SEGSORT, benchmarking.WORKER_TRAIN_SOFTMAX,
      benchmarking.WORKER_TRAIN_SOFTMAX, benchmarking.WORKER_TRAIN_SEGSORT]
  for loss in losses:
    assert len(saved['train_step_all_seconds'][loss]) == 4
    # Each round's median of 2 steps is their mean; the median of the 2
    # rounds' medians is then the mean of all 4 steps.
    assert step[loss] == pytest.approx(
        np.mean(saved['train_step_all_seconds'][loss]))
    assert saved['train_step_min_seconds'][loss] == pytest.approx(
        min(saved['train_step_all_seconds'][loss]))
    # A TF runtime alone is more than 100 MB; nothing near 100 GB here.
    assert 100 < saved['peak_rss_mb'][loss] < 100000
  ratios = saved['train_step_ratio_rounds']
  assert len(ratios) == 2 and min(ratios) > 0
  assert saved['train_step_ratio_segsort_over_softmax'] == pytest.approx(
      np.median(ratios))
  assert len(saved['kmeans_loss_share_rounds']) == 2
  assert saved['kmeans_loss_share'] == pytest.approx(
      np.median(saved['kmeans_loss_share_rounds']))
  assert 0 < saved['kmeans_loss_share']
  # Interleaved in one process: 2 steps of each, one ratio per pair.
  assert envs[4] == (benchmarking.WORKER_TRAIN_PAIR, None)
  pair = saved['train_step_interleaved']
  for loss in losses:
    assert len(pair['step_seconds'][loss]) == 2
    assert pair['step_median_seconds'][loss] == pytest.approx(
        np.median(pair['step_seconds'][loss]))
  assert pair['pair_ratios'] == [
      pytest.approx(a / b) for a, b in zip(pair['step_seconds']['segsort'],
                                           pair['step_seconds']['softmax'])]
  assert pair['ratio_median'] == pytest.approx(np.median(pair['pair_ratios']))

  inference = saved['inference_seconds']
  assert sorted(inference) == ['msc', 'msc_batched', 'msc_plain', 'single']
  for mode, timings in inference.items():
    assert sorted(timings) == sorted(STAGES)
    assert timings['total'] == pytest.approx(
        sum(timings[s] for s in predictor.STAGES) + timings['other'],
        rel=1e-6)
  # One window at a time, the stages are timed apart; batched (the default
  # --inference_batch_size 4), network, k-means and kNN are one call.
  for stage in ('network', 'kmeans', 'knn', 'votes'):
    assert inference['msc_plain'][stage] > 0, stage
  assert inference['msc_plain']['fused'] == 0
  assert inference['msc_batched']['fused'] > 0
  assert inference['msc_batched']['kmeans'] == 0
  assert inference['msc'] == inference['msc_batched']
  assert settings['inference_paths'] == {
      'xla': False, 'single': 4, 'msc': 4, 'msc_plain': 1, 'msc_batched': 4}
  assert saved['msc_speedup_plain_over_batched'] == pytest.approx(
      inference['msc_plain']['total'] / inference['msc_batched']['total'])
  assert saved['votes_share_msc'] == pytest.approx(
      inference['msc']['votes'] / inference['msc']['total'])

  # Which kernels ran is recorded; the oneDNN comparison ran both losses
  # once with each setting, and its ratios are its own figures'.
  assert settings['conv_paths']['atrous_conv'] in ('native', 'portable')
  assert envs[-4:] == [
      (benchmarking.WORKER_TRAIN_SEGSORT, {'TF_ENABLE_ONEDNN_OPTS': '0'}),
      (benchmarking.WORKER_TRAIN_SOFTMAX, {'TF_ENABLE_ONEDNN_OPTS': '0'}),
      (benchmarking.WORKER_TRAIN_SEGSORT, {'TF_ENABLE_ONEDNN_OPTS': '1'}),
      (benchmarking.WORKER_TRAIN_SOFTMAX, {'TF_ENABLE_ONEDNN_OPTS': '1'})]
  comparison = saved['onednn_comparison']
  for loss in losses:
    assert comparison['off'][loss] > 0 and comparison['on'][loss] > 0
    assert comparison['on_over_off'][loss] == pytest.approx(
        comparison['on'][loss] / comparison['off'][loss])
  assert comparison['on']['conv_paths']['atrous_conv'] in ('native',
                                                           'portable')

  bank = saved['knn_bank']
  assert list(bank) == ['3000']
  row = bank['3000']
  assert row['seconds'] > 0 and len(row['seconds_all']) == 2
  assert row['chunk_size'] == 1000 and row['num_queries'] == 4
  assert row['bank_mb'] == pytest.approx(3000 * 8 * 4 / 2.0 ** 20)
  assert row['peak_rss_mb'] >= row['rss_before_search_mb'] > 100
  assert sorted(saved['goals']) == ['train_step_ratio_at_most_1.10',
                                    'votes_share_msc_below_0.10']


def test_random_unit_vectors():
  rng = np.random.default_rng(0)
  vectors = benchmarking.get_random_unit_vectors(rng, 1000, 32)
  assert vectors.dtype == np.float32 and vectors.shape == (1000, 32)
  np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_knn_chunk_size_follows_the_predictor():
  assert predictor.get_knn_chunk_size(65536, 10000) is None
  assert predictor.get_knn_chunk_size(65536, 1000000) == 65536
  assert predictor.get_knn_chunk_size(0, 1000000) is None


def test_knn_bank_votes_and_memory_figures():
  result = benchmarking.benchmark_knn_bank(
      num_prototypes=5000, embedding_dim=8, num_classes=3, num_queries=4,
      k=7, chunk_size=1024, repeats=2, warmup=1, seed=0,
      show_progress=False)
  assert result['chunk_size'] == 1024
  assert result['bank_mb'] == pytest.approx(5000 * 8 * 4 / 2.0 ** 20)
  assert result['unchunked_similarities_mb'] == pytest.approx(
      4 * 5000 * 4 / 2.0 ** 20)
  assert result['seconds'] == pytest.approx(np.median(result['seconds_all']))
  if result['search_peak_rss_mb'] is not None:
    assert result['search_extra_mb'] == pytest.approx(max(
        0.0, result['search_peak_rss_mb'] - result['rss_before_search_mb']))
    assert result['peak_rss_mb'] >= result['search_peak_rss_mb']


def test_summarize_numbers():
  def train(step, loss):
    return {'step_median_seconds': step, 'loss_median_seconds': loss,
            'forward_median_seconds': step / 3, 'build_seconds': 2.0,
            'peak_rss_mb': 900.0, 'build_peak_rss_mb': 800.0,
            'step_seconds': [step], 'final_loss': 1.0}
  stage = {'network': 0.5, 'kmeans': 0.2, 'knn': 0.1, 'votes': 0.05,
           'fused': 0.0, 'other': 0.15, 'total': 1.0}
  results = benchmark_speed.summarize(
      {'steps': 1},
      [{'segsort': train(1.05, 0.21), 'softmax': train(1.0, 0.01)}],
      {'single': stage, 'msc': dict(stage, votes=0.2, total=1.15),
       'build_seconds': 1.0, 'peak_rss_mb': 700.0},
      {100000: {'seconds': 0.01}, 10000: {'seconds': 0.001}})
  assert results['train_step_ratio_segsort_over_softmax'] == pytest.approx(
      1.05)
  assert results['train_step_ratio_rounds'] == [pytest.approx(1.05)]
  assert results['kmeans_loss_share'] == pytest.approx(0.2)
  assert results['votes_share_msc'] == pytest.approx(0.2 / 1.15)
  assert list(results['knn_bank']) == ['10000', '100000']
  assert results['goals'] == {'train_step_ratio_at_most_1.10': True,
                              'votes_share_msc_below_0.10': False}
  assert math.isclose(results['forward_seconds']['softmax'], 1.0 / 3)


def _train_result(step, loss, peak, steps, final=1.0):
  return {'step_median_seconds': step, 'loss_median_seconds': loss,
          'forward_median_seconds': step / 2, 'build_seconds': step * 10,
          'peak_rss_mb': peak, 'build_peak_rss_mb': peak - 100,
          'step_seconds': steps, 'final_loss': final}


def test_rounds_alternate_which_loss_runs_first():
  seg, soft = (benchmarking.WORKER_TRAIN_SEGSORT,
               benchmarking.WORKER_TRAIN_SOFTMAX)
  assert benchmarking.train_round_order(1) == [(0, seg), (0, soft)]
  assert benchmarking.train_round_order(3) == [
      (0, seg), (0, soft), (1, soft), (1, seg), (2, seg), (2, soft)]


def test_rounds_combine_into_medians_of_paired_ratios():
  # The third round ran on a slower machine state: both its steps are
  # longer. The rounds' ratios are 1.10, 1.00 and 1.20 (median 1.10); the
  # ratio of the medians of the steps (1.2 / 1.2) would say 1.00.
  rounds = [
      {'segsort': dict(_train_result(1.1, 0.11, 900.0, [1.0, 1.2]),
                       conv_paths={'onednn': True}),
       'softmax': _train_result(1.0, 0.01, 800.0, [1.0, 1.0])},
      {'segsort': _train_result(1.2, 0.06, 950.0, [1.2, 1.2], final=2.0),
       'softmax': _train_result(1.2, 0.01, 700.0, [1.1, 1.3])},
      {'segsort': _train_result(3.0, 0.30, 920.0, [3.0, 3.0], final=3.0),
       'softmax': _train_result(2.5, 0.02, 810.0, [2.5, 2.5])}]
  train, ratios, shares = benchmarking.combine_train_rounds(rounds)
  assert ratios == [pytest.approx(1.1), pytest.approx(1.0),
                    pytest.approx(1.2)]
  assert shares == [pytest.approx(0.1), pytest.approx(0.05),
                    pytest.approx(0.1)]
  seg = train['segsort']
  assert seg['step_median_seconds'] == pytest.approx(1.2)
  assert seg['loss_median_seconds'] == pytest.approx(0.11)
  assert seg['forward_median_seconds'] == pytest.approx(0.6)
  assert seg['build_seconds'] == pytest.approx(12.0)
  assert seg['peak_rss_mb'] == 950.0 and seg['build_peak_rss_mb'] == 850.0
  assert seg['step_seconds'] == [1.0, 1.2, 1.2, 1.2, 3.0, 3.0]
  assert seg['final_loss'] == 3.0 and seg['conv_paths'] == {'onednn': True}
  assert train['softmax']['step_median_seconds'] == pytest.approx(1.2)
  assert train['softmax']['peak_rss_mb'] == 810.0
  assert 'conv_paths' not in train['softmax']

  results = benchmark_speed.summarize(
      {'steps': 2}, rounds,
      {'single': dict.fromkeys(STAGES, 1.0),
       'msc': dict.fromkeys(STAGES, 1.0), 'build_seconds': 1.0,
       'peak_rss_mb': 700.0}, {})
  assert results['train_step_ratio_segsort_over_softmax'] == pytest.approx(
      1.1)
  assert results['kmeans_loss_share'] == pytest.approx(0.1)
  assert results['train_step_seconds'] == {'segsort': pytest.approx(1.2),
                                           'softmax': pytest.approx(1.2)}
  assert results['train_step_min_seconds']['softmax'] == 1.0
  with pytest.raises(benchmarking.BenchmarkError, match='no training round'):
    benchmarking.combine_train_rounds([])


@pytest.mark.parametrize('flag, value', [('--knn_bank_sizes', '0,10'),
                                         ('--knn_bank_sizes', 'x'),
                                         ('--steps', '0'),
                                         ('--warmup', '-1')])
def test_bad_flags_name_the_flag(flag, value, capsys):
  with pytest.raises(SystemExit):
    benchmark_speed.get_arguments([flag, value])
  assert flag in capsys.readouterr().err


def test_old_flag_spellings_are_hidden_aliases(capsys):
  args = benchmark_speed.get_arguments(['--output', 'a.json',
                                        '--inference_images', '3'])
  assert (args.output_json, args.max_images) == ('a.json', 3)
  args = benchmark_speed.get_arguments([])
  assert (args.output_json, args.max_images) == (
      benchmark_speed.DEFAULT_OUTPUT, 2)
  with pytest.raises(SystemExit):
    benchmark_speed.get_arguments(['--help'])
  usage = capsys.readouterr().out
  assert '--output_json' in usage and '--max_images' in usage
  assert '--output ' not in usage and '--inference_images' not in usage


def test_run_worker_protocol(tmp_path):
  """A worker gets the flags plus its name and writes its result as JSON;
  a failing worker is reported by name."""
  script = tmp_path / 'worker.py'
  script.write_text(
      'import json, sys\n'
      'argv = sys.argv[1:]\n'
      'if "fail" in argv:\n'
      '  sys.exit(3)\n'
      'path = argv[argv.index("--_worker_output") + 1]\n'
      'with open(path, "w") as f:\n'
      '  json.dump({"argv": argv}, f)\n')
  result = benchmarking.run_worker(str(script), ['--steps', '2'], 'knn',
                                   ['--_knn_bank_size', 7])
  assert result['argv'][:2] == ['--steps', '2']
  assert result['argv'][2:4] == ['--_worker', 'knn']
  assert result['argv'][-2:] == ['--_knn_bank_size', '7']
  with pytest.raises(benchmarking.BenchmarkError, match='inference.*exit '
                     'code 3'):
    benchmarking.run_worker(str(script), ['fail'], 'inference')


def test_missing_data_list_fails_before_any_worker(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    benchmark_speed.main(['--data_list', str(tmp_path / 'none.txt'),
                          '--output_json', str(tmp_path / 'out.json')])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert '--data_list' in err and err.count('\n') == 1
  assert not (tmp_path / 'out.json').exists()


def test_interleaved_pairs_alternate_and_close_both_sessions(monkeypatch):
  # Fake sessions and a fake clock: every SegSort step takes 2 then 3 s,
  # every softmax step 1 then 2 s (warm-up steps take no time).
  order, closed, clock = [], [], [0.0]
  durations = {'segsort': iter([0.0, 2.0, 3.0]),
               'softmax': iter([0.0, 1.0, 2.0])}

  class Session(object):

    def __init__(self, loss):
      self.loss = loss

    def close(self):
      closed.append(self.loss)

  def step_fn(sess, graph, loss):
    def step():
      order.append(loss)
      clock[0] += next(durations[loss])
    return step

  monkeypatch.setattr(benchmarking, '_start_train_session',
                      lambda opts, loss: (Session(loss), None))
  monkeypatch.setattr(benchmarking, '_step_fn', step_fn)
  monkeypatch.setattr(benchmarking.time, 'perf_counter', lambda: clock[0])
  result = benchmarking.benchmark_train_pair(None, 2, 1,
                                             show_progress=False)
  # Warm-up of each, then SegSort first in even pairs, softmax in odd ones.
  assert order == ['segsort', 'softmax', 'segsort', 'softmax', 'softmax',
                   'segsort']
  assert sorted(closed) == ['segsort', 'softmax']
  assert result['step_seconds'] == {'segsort': [2.0, 3.0],
                                    'softmax': [1.0, 2.0]}
  assert result['pair_ratios'] == [2.0, 1.5]
  assert result['ratio_median'] == pytest.approx(1.75)
