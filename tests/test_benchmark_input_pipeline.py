"""benchmark_input_pipeline.py at a tiny setting: figures positive and
consistent with each other, in the JSON and in the printed report.

Not a timed test: nothing here asserts how fast anything is, only that the
rates are what the recorded times say they are.
"""
import json
import re

import numpy as np
import pytest

from pyscripts.benchmark import benchmark_input_pipeline
from seg_models import benchmarking
from seg_models import image_reader
from seg_models import trainer
from tests import tiny_data

BATCH_SIZE = 2
TINY_FLAGS = ['--backbone', 'resnet_v1_50', '--width_multiplier', '0.0625',
              '--input_size', '48,48', '--batch_size', str(BATCH_SIZE),
              '--embedding_dim', '8', '--num_classes', '4',
              '--num_clusters', '2', '--kmeans_iterations', '2',
              '--steps', '2', '--warmup', '1', '--pipeline_batches', '3',
              '--synthetic_size', '60,80', '--synthetic_images', '4']


def _printed_rates(text):
  """{'pipeline alone': (examples/s, batches/s), 'training': (examples/s,
  steps/s)} and the ratio, read back from the printed report."""
  rates = {}
  for name in ('pipeline alone', 'training'):
    match = re.search(r'^%s +([0-9.]+) examples/s +\( *([0-9.]+) '
                      r'(?:batches|steps)/s' % name, text, re.MULTILINE)
    assert match, (name, text)
    rates[name] = (float(match.group(1)), float(match.group(2)))
  ratio = re.search(r'ratio pipeline / training examples/s: ([0-9.]+) '
                    r'\(goal > 1: (met|NOT met)\)', text)
  assert ratio, text
  return rates, float(ratio.group(1)), ratio.group(2) == 'met'


def test_end_to_end_tiny_synthetic(tmp_path, capsys):
  output = tmp_path / 'pipeline.json'
  results = benchmark_input_pipeline.main(TINY_FLAGS +
                                          ['--output_json', str(output)])
  saved = json.loads(output.read_text())
  assert saved == json.loads(json.dumps(results))

  settings = saved['settings']
  assert settings['input_size'] == [48, 48]
  assert settings['batch_size'] == BATCH_SIZE
  assert settings['backbone'] == 'resnet_v1_50'
  assert settings['data'] == 'synthetic 4 images 60x80 (JPEG)'
  assert settings['augmentation'] == ['random_scale', 'random_mirror',
                                      'random_crop']
  assert settings['machine']['cpu_count'] >= 1

  pipeline = saved['pipeline']
  assert pipeline['batches'] == 3 and len(pipeline['batch_seconds']) == 3
  assert all(t > 0 for t in pipeline['batch_seconds'])
  assert pipeline['total_seconds'] == pytest.approx(
      sum(pipeline['batch_seconds']))
  assert pipeline['batches_per_s'] == pytest.approx(
      3 / sum(pipeline['batch_seconds']))
  assert pipeline['examples_per_s'] == pytest.approx(
      BATCH_SIZE * pipeline['batches_per_s'])
  # The SegSort sample: grid cluster labels and locations at the crop size.
  shapes = pipeline['batch_shapes']
  assert shapes[image_reader.IMAGE] == [BATCH_SIZE, 48, 48, 3]
  assert shapes[image_reader.LABEL] == [BATCH_SIZE, 48, 48, 1]
  assert shapes[image_reader.CLUSTER_LABEL] == [BATCH_SIZE, 48, 48, 1]
  assert shapes[image_reader.LOCATION] == [BATCH_SIZE, 48, 48, 2]

  training = saved['training']
  assert training['steps'] == 2 and len(training['step_seconds']) == 2
  assert all(t > 0 for t in training['step_seconds'])
  assert training['steps_per_s'] == pytest.approx(
      2 / sum(training['step_seconds']))
  assert training['examples_per_s'] == pytest.approx(
      BATCH_SIZE * training['steps_per_s'])
  assert training['step_median_seconds'] == pytest.approx(
      np.median(training['step_seconds']))
  assert training['step_min_seconds'] == min(training['step_seconds'])
  assert np.isfinite(training['final_loss'])

  ratio = saved['ratio_pipeline_over_training']
  assert ratio > 0
  assert ratio == pytest.approx(pipeline['examples_per_s'] /
                                training['examples_per_s'])
  assert saved['input_cpu_share'] == pytest.approx(1 / ratio)
  assert saved['goals'] == {'pipeline_faster_than_training': ratio > 1}

  # The printed figures are the JSON's (to the printed precision).
  out = capsys.readouterr().out
  rates, printed_ratio, met = _printed_rates(out)
  assert rates['pipeline alone'][0] == pytest.approx(
      pipeline['examples_per_s'], abs=0.006)
  assert rates['pipeline alone'][1] == pytest.approx(
      pipeline['batches_per_s'], abs=0.0006)
  assert rates['training'][0] == pytest.approx(training['examples_per_s'],
                                               abs=0.006)
  assert rates['training'][1] == pytest.approx(training['steps_per_s'],
                                               abs=0.0006)
  assert printed_ratio == pytest.approx(ratio, abs=0.006)
  assert met == (ratio > 1)
  assert 'Wrote %s' % output in out


def test_pipeline_alone_on_a_data_list(tiny_dataset):
  """Through --data_dir/--data_list's path: the trainer's dataset, timed."""
  opts = trainer.TrainOptions(
      data_dir=tiny_dataset, data_list=tiny_dataset + '/train.txt',
      input_size=(32, 40), batch_size=4, num_clusters=3, random_scale=True,
      random_mirror=True, random_crop=True, snapshot_dir='unused')
  result = benchmarking.benchmark_input_pipeline(opts, batches=3, warmup=2,
                                                 show_progress=False)
  assert result['batch_shapes'][image_reader.CLUSTER_LABEL] == [4, 32, 40, 1]
  assert result['batch_shapes'][image_reader.LOCATION] == [4, 32, 40, 2]
  assert result['batches'] == 3 and len(result['batch_seconds']) == 3
  assert result['examples_per_s'] == pytest.approx(
      4 * 3 / sum(result['batch_seconds']))
  assert result['build_seconds'] > 0

  softmax = benchmarking.benchmark_input_pipeline(
      opts, batches=1, warmup=0, loss_type=trainer.LOSS_SOFTMAX,
      show_progress=False)
  # The softmax trainer's samples carry no SegSort channels.
  assert sorted(softmax['batch_shapes']) == sorted(
      [image_reader.IMAGE, image_reader.LABEL, image_reader.NAME])


def test_summary_numbers():
  """Rates from hand-picked times: 4 batches of 8 in 0.5 s = 64 ex/s; 2
  steps in 4 s = 0.5 steps/s = 4 ex/s; ratio 16."""
  pipeline = {'examples_per_s': 64.0, 'batches_per_s': 8.0, 'batches': 4,
              'total_seconds': 0.5, 'batch_seconds': [0.2, 0.1, 0.1, 0.1],
              'build_seconds': 1.0, 'batch_shapes': {}}
  train = {'step_seconds': [1.5, 2.5], 'step_median_seconds': 2.0,
           'forward_median_seconds': 0.7, 'build_seconds': 3.0,
           'final_loss': 1.25}
  results = benchmark_input_pipeline.summarize_input_pipeline(
      {'batch_size': 8}, pipeline, train)
  assert results['training']['steps_per_s'] == pytest.approx(0.5)
  assert results['training']['examples_per_s'] == pytest.approx(4.0)
  assert results['training']['step_min_seconds'] == 1.5
  assert results['ratio_pipeline_over_training'] == pytest.approx(16.0)
  assert results['input_cpu_share'] == pytest.approx(1 / 16.0)
  assert results['goals'] == {'pipeline_faster_than_training': True}

  slow = dict(pipeline, examples_per_s=2.0)
  assert not benchmark_input_pipeline.summarize_input_pipeline(
      {'batch_size': 8}, slow, train)['goals'][
          'pipeline_faster_than_training']
  with pytest.raises(benchmarking.BenchmarkError, match='training steps'):
    benchmarking.get_rate(0, [], 'training steps')


@pytest.mark.parametrize('flag, value', [('--steps', '0'),
                                         ('--warmup', '-1'),
                                         ('--pipeline_batches', 'x'),
                                         ('--synthetic_size', '8,500'),
                                         ('--input_size', '336')])
def test_bad_flags_name_the_flag(flag, value, capsys):
  with pytest.raises(SystemExit):
    benchmark_input_pipeline.get_arguments([flag, value])
  assert flag in capsys.readouterr().err


def test_missing_data_list_fails_before_any_timing(tmp_path, capsys):
  output = tmp_path / 'out.json'
  with pytest.raises(SystemExit) as exit_info:
    benchmark_input_pipeline.main(['--data_list', str(tmp_path / 'no.txt'),
                                   '--output_json', str(output)])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert 'no.txt' in err and err.startswith('error: ')
  assert not output.exists()

  with pytest.raises(SystemExit):
    benchmark_input_pipeline.main(['--data_dir', str(tmp_path)])
  assert '--data_dir' in capsys.readouterr().err
