"""pyscripts/benchmark/summarize_seeds.py against NumPy."""
import json

import numpy as np
import pytest

from pyscripts.benchmark import summarize_seeds

CLASSES = ('sky', 'road', 'car')


def _write_run(folder, name, miou, per_class, accuracy=90.0):
  path = folder / name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({
      'miou': miou, 'pixel_accuracy': accuracy, 'num_images': 3,
      'per_class_iou': dict(zip(CLASSES, per_class))}))
  return name


def _runs_file(tmp_path, rows):
  lines = []
  for method, seed, miou, per_class in rows:
    name = _write_run(tmp_path, '%s-%s/miou.json' % (method, seed), miou,
                      per_class)
    lines.append('%s %s %s' % (method, seed, name))
  path = tmp_path / 'runs.txt'
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def test_means_spreads_and_paired_differences(tmp_path, capsys):
  segsort = [46.5, 42.4, 44.0]
  softmax = [42.4, 43.7, 41.0]
  unsup = [28.0, 30.5]
  rows = ([('segsort', s, m, [m + 1, m - 1, None if s == 2 else m])
           for s, m in zip((1, 2, 3), segsort)] +
          [('softmax', s, m, [m, m, m]) for s, m in zip((1, 2, 3), softmax)] +
          [('unsup', s, m, [m, m, m]) for s, m in zip((1, 3), unsup)])
  output = tmp_path / 'out' / 'summary.json'
  summary = summarize_seeds.main([
      '--runs', _runs_file(tmp_path, rows), '--compare', 'segsort-softmax',
      '--compare', 'unsup-softmax', '--ratio', 'unsup-segsort',
      '--output_json', str(output)])
  assert json.loads(output.read_text()) == summary
  seg = summary['methods']['segsort']
  assert seg['seeds'] == ['1', '2', '3']
  np.testing.assert_allclose(seg['mean'], np.mean(segsort))
  np.testing.assert_allclose(seg['std'], np.std(segsort, ddof=1))
  # Class means skip the seed where the class was absent.
  np.testing.assert_allclose(seg['per_class_iou_mean']['sky'],
                             np.mean(segsort) + 1)
  np.testing.assert_allclose(seg['per_class_iou_mean']['car'],
                             np.mean([segsort[0], segsort[2]]))
  diff = summary['differences']['segsort - softmax']
  values = np.subtract(segsort, softmax)
  np.testing.assert_allclose(diff['values'], values)
  np.testing.assert_allclose(diff['mean'], values.mean())
  np.testing.assert_allclose(diff['std'], values.std(ddof=1))
  # Paired over the seeds both ran (1 and 3).
  paired = summary['differences']['unsup - softmax']
  assert paired['seeds'] == ['1', '3']
  np.testing.assert_allclose(paired['values'],
                             [unsup[0] - softmax[0], unsup[1] - softmax[2]])
  np.testing.assert_allclose(summary['ratios']['unsup / segsort'],
                             np.mean(unsup) / np.mean(segsort))
  table = capsys.readouterr().out
  assert 'segsort' in table and '%.2f +- %.2f' % (
      np.mean(segsort), np.std(segsort, ddof=1)) in table
  assert 'pedestrian' not in table and 'road' in table


def test_single_seed_has_no_spread(tmp_path):
  summary = summarize_seeds.main(
      ['--runs', _runs_file(tmp_path, [('segsort', 1, 40.0, [1, 2, 3])])])
  assert summary['methods']['segsort']['std'] is None
  assert summarize_seeds.format_table(summary).count('+-') == 0


@pytest.mark.parametrize('content, message', [
    ('segsort 1\n', 'line 1: expected METHOD SEED MIOU_JSON'),
    ('segsort 1 missing.json\n', 'missing.json not found'),
    ('', 'lists no run'),
])
def test_bad_runs_files_name_the_line(tmp_path, capsys, content, message):
  path = tmp_path / 'runs.txt'
  path.write_text(content)
  with pytest.raises(SystemExit):
    summarize_seeds.main(['--runs', str(path)])
  assert message in capsys.readouterr().err


def test_compare_names_unknown_methods(tmp_path, capsys):
  runs = _runs_file(tmp_path, [('segsort', 1, 40.0, [1, 2, 3])])
  with pytest.raises(SystemExit):
    summarize_seeds.main(['--runs', runs, '--compare', 'segsort-softmax'])
  assert "no run of method 'softmax'" in capsys.readouterr().err


def test_long_method_names_keep_their_columns(tmp_path):
  """Names longer than the old fixed width (segsort_gridimage) are neither
  cut nor run together: each row's cells sit under their headers."""
  rows = [('segsort', 1, 45.25, [1.5, 2.5, 3.5]),
          ('segsort_gridimage', 1, 45.0, [10.0, 20.0, 30.0])]
  table = summarize_seeds.format_table(
      summarize_seeds.main(['--runs', _runs_file(tmp_path, rows)]))
  lines = table.splitlines()
  assert lines[1].split() == ['segsort', '1', '45.25', '1:', '45.25']
  assert lines[2].split() == ['segsort_gridimage', '1', '45.00', '1:',
                              '45.00']
  assert lines[1].index('45.25') == lines[2].index('45.00')
  header = lines[lines.index('per-class IoU, mean over seeds (%)') + 1]
  assert header.split() == ['class', 'segsort', 'segsort_gridimage']
  car = [line for line in lines if line.startswith('car')][0]
  assert car.split() == ['car', '3.50', '30.00']
  # Right-aligned under its header.
  assert car.index('30.00') + len('30.00') == len(header)


def test_settings_are_kept_as_given(tmp_path, capsys):
  runs = _runs_file(tmp_path, [('segsort', 1, 40.0, [1, 2, 3])])
  summary = summarize_seeds.main(
      ['--runs', runs, '--setting', 'segsort_steps=1200',
       '--setting', 'input_size=128,128'])
  assert summary['settings'] == {'segsort_steps': '1200',
                                 'input_size': '128,128'}
  assert 'settings: segsort_steps=1200, input_size=128,128' in (
      capsys.readouterr().out)
  assert summarize_seeds.main(['--runs', runs])['settings'] == {}


@pytest.mark.parametrize('pairs, message', [
    (['steps'], "--setting expects KEY=VALUE, got 'steps'"),
    (['=3'], "--setting expects KEY=VALUE, got '=3'"),
    (['steps=1', 'steps=2'], "--setting steps is given twice"),
])
def test_bad_settings_are_named(tmp_path, capsys, pairs, message):
  runs = _runs_file(tmp_path, [('segsort', 1, 40.0, [1, 2, 3])])
  argv = ['--runs', runs]
  for pair in pairs:
    argv += ['--setting', pair]
  with pytest.raises(SystemExit):
    summarize_seeds.main(argv)
  assert message in capsys.readouterr().err
