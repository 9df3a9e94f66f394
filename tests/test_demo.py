"""The demo's report tool, and (slow) the demo's SMOKE mode end to end."""
import json
import os
import platform
import subprocess

import numpy as np
import pytest

from pyscripts.tools import demo_report
from tests import stand_ins

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, 'bashscripts', 'demo', 'run_demo.sh')


def _run_demo(env, timeout=120):
  return subprocess.run(['bash', DEMO], env=env, capture_output=True,
                        text=True, timeout=timeout)


def _dry_run_env(tmp_path, python, **overrides):
  """The environment of a full (not SMOKE) demo run with a stand-in
  python and no install step."""
  env = dict(os.environ, SKIP_INSTALL='1', DEMO_DIR=str(tmp_path / 'demo'),
             PYTHON=str(python), **overrides)
  env.pop('SMOKE', None)
  return env


def _summary(path, methods, differences=None, ratios=None, settings=None):
  """Writes a summarize_seeds.py-shaped JSON: methods {name: [mIoU per
  seed]} with seeds '1', '2', ..."""
  rows = {}
  for name, values in methods.items():
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    rows[name] = {'seeds': [str(i + 1) for i in range(len(values))],
                  'miou': values, 'mean': mean, 'std': std}
  path.write_text(json.dumps({
      'methods': rows, 'differences': differences or {},
      'ratios': ratios or {}, 'settings': settings or {}}))
  return str(path)


def test_demo_report(tmp_path, capsys):
  timings = tmp_path / 'timings.txt'
  timings.write_text('data 2\nsegsort_train 100\nsegsort_eval 20\n'
                     'segsort_eval 5\n')
  settings = {'steps': '1200/600/600'}
  run = _summary(tmp_path / 'run.json', {'segsort': [71.25],
                                         'softmax': [70.0]},
                 {'segsort - softmax': {'mean': 1.25, 'std': None}},
                 {'unsupervised / segsort': 0.5}, settings)
  reference = _summary(
      tmp_path / 'reference.json',
      {'segsort': [70.0, 72.0, 74.0], 'softmax': [69.0, 70.0, 71.0]},
      {'segsort - softmax': {'mean': 2.0, 'std': 1.0}},
      {'unsupervised / segsort': 0.45}, settings)
  picture = tmp_path / 'p.png'
  picture.write_bytes(b'')
  results = demo_report.main([
      '--demo_dir', str(tmp_path), '--timings', str(timings),
      '--seed_summary', run, '--reference', reference,
      '--pictures', str(tmp_path / '*.png')])
  assert results['miou'] == {'segsort': 71.25, 'softmax': 70.0}
  assert results['miou_std'] == {'segsort': None, 'softmax': None}
  assert results['seconds'] == {'data': 2.0, 'segsort_train': 100.0,
                                'segsort_eval': 25.0}
  assert results['pictures'] == [str(picture)]
  ref = results['reference']['methods']['segsort']
  assert (ref['mean'], ref['min'], ref['max']) == (72.0, 70.0, 74.0)
  np.testing.assert_allclose(ref['std'], 2.0)
  assert results['reference']['ratios'] == {'unsupervised / segsort': 0.45}
  with open(tmp_path / 'results.json') as f:
    assert json.load(f) == results
  table = capsys.readouterr().out
  assert '72.00 +- 2.00 (70.00 - 74.00), 3 seeds' in table
  assert '+1.25' in table and '+2.00 +- 1.00' in table
  assert '0.500' in table and '0.450' in table
  assert 'total' in table and '127.0' in table


def test_reference_of_other_settings_is_not_shown(tmp_path, capsys):
  timings = tmp_path / 'timings.txt'
  timings.write_text('data 2\n')
  run = _summary(tmp_path / 'run.json', {'segsort': [71.0, 73.0]},
                 settings={'steps': '600', 'data': 'a'})
  reference = _summary(tmp_path / 'reference.json', {'segsort': [50.0]},
                       settings={'steps': '2000', 'data': 'a'})
  results = demo_report.main([
      '--demo_dir', str(tmp_path), '--timings', str(timings),
      '--seed_summary', run, '--reference', reference])
  assert results['reference'] is None
  assert 'steps 600 here, 2000 there' in results['reference_note']
  np.testing.assert_allclose(results['miou_std']['segsort'],
                             np.std([71.0, 73.0], ddof=1))
  table = capsys.readouterr().out
  assert '50.00' not in table and 'No reference column' in table
  assert '72.00 +- 1.41' in table and 'seeds 1, 2' in table


def _error_of(argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    demo_report.main(argv)
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ') and err.count('\n') == 1
  return err


def test_demo_report_errors_name_the_file(tmp_path, capsys):
  timings = tmp_path / 'timings.txt'
  timings.write_text('data two three\n')
  run = _summary(tmp_path / 'run.json', {'segsort': [71.0]})
  assert 'timings.txt:1' in _error_of(
      ['--demo_dir', str(tmp_path), '--timings', str(timings),
       '--seed_summary', run], capsys)
  timings.write_text('data 2\n')
  assert 'nope.json does not exist' in _error_of(
      ['--demo_dir', str(tmp_path), '--timings', str(timings),
       '--seed_summary', str(tmp_path / 'nope.json')], capsys)
  (tmp_path / 'bad.json').write_text('{"miou": 3}')
  assert '--reference: %s is not a summarize_seeds.py summary' % (
      tmp_path / 'bad.json') in _error_of(
          ['--demo_dir', str(tmp_path), '--timings', str(timings),
           '--seed_summary', run, '--reference', str(tmp_path / 'bad.json')],
          capsys)


@pytest.mark.slow
def test_demo_smoke(tmp_path):
  """Every stage of run_demo.sh on tiny images (about 2 minutes)."""
  env = dict(os.environ, SMOKE='1', SKIP_INSTALL='1',
             DEMO_DIR=str(tmp_path / 'demo'))
  result = _run_demo(env, timeout=900)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  with open(tmp_path / 'demo' / 'results.json') as f:
    results = json.load(f)
  assert set(results['miou']) == {'segsort', 'segsort_msc', 'unsupervised',
                                  'softmax'}
  assert all(0 <= v <= 100 for v in results['miou'].values())
  assert {'segsort_train', 'unsup_train', 'softmax_train'} <= set(
      results['seconds'])
  assert any(p.endswith('.png') and os.path.exists(p)
             for p in results['pictures'])


def test_seeds_run_every_method_per_seed_and_compare_with_the_reference(
    tmp_path):
  """SEEDS="1 2": every method trains once per seed into DEMO_DIR/seedN
  with --random_seed N; the report has each method's mean and spread over
  the seeds and, since the defaults are the ones it was measured with, the
  kept reference (bashscripts/demo/reference_seeds.json). Python is a
  stand-in (tests/stand_ins.py); the summary and the report run for real."""
  log = tmp_path / 'calls.txt'
  python = tmp_path / 'python'
  stand_ins.write_stand_in_python(
      python, log, run=('summarize_seeds.py', 'demo_report.py'),
      mious=(('softmax', 90.0), ('unsup', 30.0), ('val_msc', 78.0)))
  demo = tmp_path / 'demo'
  result = _run_demo(_dry_run_env(tmp_path, python, SEEDS='1 2'))
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  calls = stand_ins.read_calls(log)
  trains = [(os.path.basename(c[0]), c[c.index('--random_seed') + 1],
             os.path.relpath(c[c.index('--snapshot_dir') + 1], demo))
            for c in calls if '--is_training' in c]
  assert trains == [
      ('train_segsort.py', '1', 'seed1/segsort'),
      ('train_segsort_unsup.py', '1', 'seed1/unsup'),
      ('train.py', '1', 'seed1/softmax'),
      ('train_segsort.py', '2', 'seed2/segsort'),
      ('train_segsort_unsup.py', '2', 'seed2/unsup'),
      ('train.py', '2', 'seed2/softmax')]
  # One data set for every seed.
  assert [os.path.basename(c[0]) for c in calls].count(
      'make_synthetic_dataset.py') == 1
  with open(demo / 'results.json') as f:
    results = json.load(f)
  assert results['miou'] == {'segsort': 40.0, 'segsort_msc': 78.0,
                             'unsupervised': 30.0, 'softmax': 90.0}
  assert results['seeds']['softmax'] == ['1', '2']
  assert results['differences']['segsort - softmax'] == {'mean': -50.0,
                                                         'std': 0.0}
  assert results['ratios'] == {'unsupervised / segsort': 0.75}
  # Stages run once per seed add up.
  assert set(results['seconds']) >= {'segsort_train', 'unsup_train',
                                     'softmax_train', 'pictures'}
  # The kept reference was measured with the script's defaults.
  assert results['reference'] is not None, results['reference_note']
  reference = results['reference']['methods']
  assert set(reference) == set(results['miou'])
  assert all(len(row['seeds']) >= 3 for row in reference.values())
  assert 'Reference: bashscripts/demo/reference_seeds.json' in result.stdout


@pytest.mark.skipif(platform.machine() != 'x86_64',
                    reason='the demo asks for oneDNN on x86_64 only')
@pytest.mark.parametrize('given, seen', [(None, '1'), ('0', '0'), ('1', '1')])
def test_demo_asks_for_onednn_unless_the_caller_chose(tmp_path, given, seen):
  """On x86_64 every step sees TF_ENABLE_ONEDNN_OPTS=1 unless the caller
  set it; a caller's value is kept."""
  log = tmp_path / 'calls.txt'
  python = tmp_path / 'python'
  stand_ins.write_stand_in_python(
      python, log, run=('summarize_seeds.py', 'demo_report.py'),
      env_names=('TF_ENABLE_ONEDNN_OPTS',))
  env = _dry_run_env(tmp_path, python, IS_UNSUP='0', IS_SOFTMAX='0',
                     IS_PICTURES='0')
  env.pop('TF_ENABLE_ONEDNN_OPTS', None)
  if given is not None:
    env['TF_ENABLE_ONEDNN_OPTS'] = given
  result = _run_demo(env)
  assert result.returncode == 0, result.stderr[-2000:]
  with open(str(log) + '.env') as f:
    values = [json.loads(line)['TF_ENABLE_ONEDNN_OPTS'] for line in f]
  assert len(values) >= 5 and set(values) == {seen}
