"""The demo's report tool, and (slow) the demo's SMOKE mode end to end."""
import json
import os
import subprocess

import pytest

from pyscripts.tools import demo_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_report(tmp_path):
  timings = tmp_path / 'timings.txt'
  timings.write_text('data 2\nsegsort_train 100\nsegsort_eval 20\n'
                     'segsort_eval 5\n')
  miou = tmp_path / 'miou.json'
  miou.write_text(json.dumps({'miou': 71.25, 'pixel_accuracy': 90.0}))
  picture = tmp_path / 'p.png'
  picture.write_bytes(b'')
  results = demo_report.main([
      '--demo_dir', str(tmp_path), '--timings', str(timings),
      '--miou', 'segsort=%s' % miou, '--pictures', str(tmp_path / '*.png')])
  assert results['miou'] == {'segsort': 71.25}
  assert results['seconds'] == {'data': 2.0, 'segsort_train': 100.0,
                                'segsort_eval': 25.0}
  assert results['pictures'] == [str(picture)]
  with open(tmp_path / 'results.json') as f:
    assert json.load(f) == results


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
  assert 'timings.txt:1' in _error_of(
      ['--demo_dir', str(tmp_path), '--timings', str(timings)], capsys)
  timings.write_text('data 2\n')
  assert 'nope.json does not exist' in _error_of(
      ['--demo_dir', str(tmp_path), '--timings', str(timings),
       '--miou', 'segsort=%s' % (tmp_path / 'nope.json')], capsys)


@pytest.mark.slow
def test_demo_smoke(tmp_path):
  """Every stage of run_demo.sh on tiny images (about 2 minutes)."""
  env = dict(os.environ, SMOKE='1', SKIP_INSTALL='1',
             DEMO_DIR=str(tmp_path / 'demo'))
  result = subprocess.run(
      ['bash', os.path.join(ROOT, 'bashscripts', 'demo', 'run_demo.sh')],
      env=env, capture_output=True, text=True, timeout=900)
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
