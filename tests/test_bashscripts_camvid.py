"""The CamVid recipe: fail-fast without data, and (slow) its SMOKE mode."""
import json
import os
import subprocess

import pytest

from tests import conftest
from tests import stand_ins
from utils import data_lists

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'bashscripts', 'camvid', 'train_camvid.sh')
CAMVID = os.path.join(conftest.SHARED_DIR, 'data', 'camvid')


def test_missing_data_fails_fast(tmp_path):
  env = dict(os.environ, DATAROOT=str(tmp_path / 'nowhere'),
             WORK_DIR=str(tmp_path / 'work'))
  result = subprocess.run(['bash', SCRIPT], env=env, capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 1
  assert 'nowhere/train.txt not found' in result.stderr
  assert not os.path.exists(tmp_path / 'work')


@pytest.mark.slow
def test_smoke_on_camvid(tmp_path):
  """All stages on 4 CamVid images, 2 steps each (a few minutes)."""
  if not os.path.isdir(CAMVID):
    pytest.skip('CamVid not found at %s' % CAMVID)
  work = tmp_path / 'work'
  env = dict(os.environ, SMOKE='1', DATAROOT=CAMVID, WORK_DIR=str(work))
  result = subprocess.run(['bash', SCRIPT], env=env, capture_output=True,
                          text=True, timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  found = []
  for root, _, files in os.walk(work):
    if 'miou.json' in files:
      with open(os.path.join(root, 'miou.json')) as f:
        found.append(json.load(f)['miou'])
  assert len(found) == 3 and all(0 <= m <= 100 for m in found)
  assert len(os.listdir(work / 'hed')) == 4


@pytest.mark.parametrize('masks', ['hed-owt-ucm', 'gradient-ucm'])
def test_oversegmentation_stage_commands(tmp_path, masks):
  """HED maps then HED-owt-ucm masks by default; MASKS=gradient-ucm runs the
  built-in detector alone. Python is a stand-in that logs its arguments."""
  dataroot = tmp_path / 'camvid'
  dataroot.mkdir()
  (dataroot / 'train.txt').write_text(
      'CamVid/JPEGImages/a.jpg CamVid/segcls/a.png\n')
  (dataroot / 'val.txt').write_text(
      'CamVid/JPEGImages/b.jpg CamVid/segcls/b.png\n')
  log = tmp_path / 'calls.txt'
  recorder = tmp_path / 'python'
  stand_ins.write_stand_in_python(recorder, log)
  work = tmp_path / 'work'
  env = dict(os.environ, DATAROOT=str(dataroot), WORK_DIR=str(work),
             PYTHON=str(recorder), MASKS=masks, IS_SEGSORT='0', IS_UNSUP='0',
             IS_SOFTMAX='0')
  result = _run_recipe(env)
  assert result.returncode == 0, result.stderr
  calls = stand_ins.read_calls(log)
  train_list = str(work / ('train_overseg_%s.txt' % masks))
  folder = 'hed_owt_ucm' if masks == 'hed-owt-ucm' else 'hed'
  # The mask column, read as the scripts read it (relative to DATAROOT),
  # is the file in WORK_DIR: an absolute path would be DATAROOT + path.
  column = open(train_list).read().split()[2]
  assert not column.startswith('/')
  assert os.path.realpath(data_lists.resolve_path(
      str(dataroot), column)) == os.path.realpath(str(work / folder / 'a.png'))
  if masks == 'hed-owt-ucm':
    assert [os.path.basename(c[0]) for c in calls] == [
        'make_contours.py', 'make_oversegmentation.py']
    contour_dir = str(work / 'hed_contours')
    assert calls[0][1:] == ['--data_dir', str(dataroot), '--data_list',
                            train_list, '--contour_dir', contour_dir]
    assert calls[1][1:] == ['--data_dir', str(dataroot), '--data_list',
                            train_list, '--contour_dir', contour_dir,
                            '--watershed', 'oriented', '--threshold', '0.2']
  else:
    assert [os.path.basename(c[0]) for c in calls] == [
        'make_oversegmentation.py']
    assert '--contour_dir' not in calls[0]


def _run_recipe(env):
  """Runs the recipe with env (SMOKE dropped: these are full dry runs)."""
  env = dict(env)
  env.pop('SMOKE', None)
  return subprocess.run(['bash', SCRIPT], env=env, capture_output=True,
                        text=True, timeout=120)


def _stand_in_python(tmp_path):
  """A two-image CamVid layout and a stand-in Python that logs its
  arguments and writes an mIoU for each benchmark (38.5 for softmax, 41 for
  the knob knn5, 20 for unsupervised SegSort on the colour-gradient masks,
  40 otherwise), except for the summary script, which runs.
  Returns (dataroot, the log of calls, the stand-in)."""
  dataroot = tmp_path / 'camvid'
  dataroot.mkdir()
  (dataroot / 'train.txt').write_text(
      'CamVid/JPEGImages/a.jpg CamVid/segcls/a.png\n')
  (dataroot / 'val.txt').write_text(
      'CamVid/JPEGImages/b.jpg CamVid/segcls/b.png\n')
  log = tmp_path / 'calls.txt'
  recorder = tmp_path / 'python'
  stand_ins.write_stand_in_python(
      recorder, log, run=('summarize_seeds.py',),
      mious=(('softmax', 38.5), ('val_knn5', 41.0), ('gradient-ucm', 20.0)))
  return dataroot, log, recorder


def test_seeds_train_every_method_per_seed_and_summarize(tmp_path):
  """SEEDS="1 2": each method trains per seed into its own -seedN folder;
  the seed table is made from every finished run. Python is a stand-in
  that logs its arguments (_stand_in_python)."""
  dataroot, log, recorder = _stand_in_python(tmp_path)
  work = tmp_path / 'work'
  env = dict(os.environ, DATAROOT=str(dataroot), WORK_DIR=str(work),
             PYTHON=str(recorder), SEEDS='1 2', IS_OVERSEG='0', IS_UNSUP='0')
  result = _run_recipe(env)
  assert result.returncode == 0, result.stderr
  calls = stand_ins.read_calls(log)
  trains = [c for c in calls if os.path.basename(c[0]) in (
      'train_segsort.py', 'train.py')]
  seeds = [(os.path.basename(c[0]), c[c.index('--random_seed') + 1],
            c[c.index('--snapshot_dir') + 1].rsplit('-', 1)[1])
           for c in trains]
  # The README's seed table's schedule: 2000 steps each by default.
  for c in trains:
    assert c[c.index('--num_steps') + 1] == '2000'
    assert '-2000it_camvid-224x224-seed' in c[c.index('--snapshot_dir') + 1]
  assert seeds == [('train_segsort.py', '1', 'seed1'), ('train.py', '1', 'seed1'),
                   ('train_segsort.py', '2', 'seed2'), ('train.py', '2', 'seed2')]
  benchmarks = [c for c in calls
                if os.path.basename(c[0]) == 'benchmark_by_mIoU.py']
  assert len(benchmarks) == 4
  for c in benchmarks:
    names = c[c.index('--class_names') + 1]
    assert open(os.path.join(ROOT, names)).read().split()[3] == 'road'
  summary = json.loads((work / 'seed_summary.json').read_text())
  assert summary['methods']['segsort']['miou'] == [40.0, 40.0]
  assert summary['differences']['segsort - softmax']['values'] == [1.5, 1.5]
  assert 'segsort - softmax: 1.50 +- 0.00' in result.stdout


def test_test_time_knobs_on_each_seeds_segsort_run(tmp_path):
  """IS_TEST_KNOBS=1: on each seed's SegSort run, inference once per knob
  with its flag given last (argparse keeps the last value), its own
  results folder, and rows segsort_KNOB of the seed table paired with
  segsort; without the SegSort run, a clear error."""
  dataroot, log, recorder = _stand_in_python(tmp_path)
  work = tmp_path / 'work'
  env = dict(os.environ, DATAROOT=str(dataroot), WORK_DIR=str(work),
             PYTHON=str(recorder), SEEDS='1 2', IS_OVERSEG='0',
             IS_UNSUP='0', IS_SOFTMAX='0', IS_TEST_KNOBS='1')
  result = _run_recipe(env)
  assert result.returncode == 0, result.stderr
  calls = stand_ins.read_calls(log)
  inference = [c for c in calls
               if os.path.basename(c[0]) == 'inference_segsort.py']
  # Per seed: the recipe's inference, then knn5 and knn30.
  assert len(inference) == 6
  knobs = [(c[-1].rsplit('-', 1)[1].split('/')[0],
            os.path.basename(c[c.index('--save_dir') + 1]))
           for c in inference]
  assert [k[1] for k in knobs] == ['val', 'val_knn5', 'val_knn30'] * 2
  assert [k[0] for k in knobs] == ['seed1'] * 3 + ['seed2'] * 3
  flags_of = {os.path.basename(c[c.index('--save_dir') + 1]): c
              for c in inference}
  k5 = flags_of['val_knn5']
  assert k5.index('--k_in_nearest_neighbors=5') > k5.index(
      '--k_in_nearest_neighbors')
  assert '--k_in_nearest_neighbors=30' in flags_of['val_knn30']
  assert not any('=' in flag for flag in flags_of['val'])
  summary = json.loads((work / 'seed_summary.json').read_text())
  assert summary['methods']['segsort_knn5']['miou'] == [41.0, 41.0]
  assert summary['methods']['segsort_knn30']['seeds'] == ['1', '2']
  assert summary['differences']['segsort_knn5 - segsort']['values'] == [
      1.0, 1.0]
  # Knobs without the SegSort run to evaluate.
  env.update(WORK_DIR=str(tmp_path / 'empty'), IS_SEGSORT='0')
  result = _run_recipe(env)
  assert result.returncode == 1
  assert 'IS_TEST_KNOBS=1 needs the SegSort run of seed 1' in result.stderr
  assert 'seed1/results/train/prototypes not found' in result.stderr


def test_seed_table_has_the_unsupervised_runs_of_both_masks(tmp_path):
  """Unsupervised runs on HED-owt-ucm masks and, in a later call, on the
  colour-gradient masks: the table of the later call has both (rows
  unsup_hed and unsup_gradient), each with its ratio to SegSort."""
  dataroot, log, recorder = _stand_in_python(tmp_path)
  work = tmp_path / 'work'
  env = dict(os.environ, DATAROOT=str(dataroot), WORK_DIR=str(work),
             PYTHON=str(recorder), SEEDS='1', IS_OVERSEG='0',
             IS_SOFTMAX='0')
  for masks, segsort in (('hed-owt-ucm', '1'), ('gradient-ucm', '0')):
    env.update(MASKS=masks, IS_SEGSORT=segsort)
    result = _run_recipe(env)
    assert result.returncode == 0, result.stderr
  trains = [c for c in stand_ins.read_calls(log)
            if c[0].endswith('train_segsort_unsup.py')]
  assert [os.path.basename(c[c.index('--snapshot_dir') + 1]).split('_pspnet')[0]
          for c in trains] == ['unsup_segsort_hed-owt-ucm',
                               'unsup_segsort_gradient-ucm']
  summary = json.loads((work / 'seed_summary.json').read_text())
  assert sorted(summary['methods']) == ['segsort', 'unsup_gradient',
                                        'unsup_hed']
  assert summary['methods']['unsup_gradient']['miou'] == [20.0]
  assert summary['ratios'] == {'unsup_hed / segsort': 1.0,
                               'unsup_gradient / segsort': 0.5}


def test_training_knobs_train_segsort_with_their_flags_changed(tmp_path):
  """IS_TRAIN_KNOBS=1: per knob and seed, SegSort trains with the knob's
  flag(s) given after the recipe's value, into segsort_NAME_pspnet_...; a
  network flag goes to the evaluation too, a training flag does not; rows
  segsort_NAME are paired with segsort in the seed table."""
  dataroot, log, recorder = _stand_in_python(tmp_path)
  stand_ins.write_stand_in_python(
      recorder, log, run=('summarize_seeds.py',),
      mious=(('segsort_banks0', 42.0), ('segsort_width4', 37.0),
             ('segsort_both', 44.0)))
  work = tmp_path / 'work'
  env = dict(os.environ, DATAROOT=str(dataroot), WORK_DIR=str(work),
             PYTHON=str(recorder), SEEDS='1 2', IS_OVERSEG='0',
             IS_UNSUP='0', IS_SOFTMAX='0', IS_TRAIN_KNOBS='1',
             TRAIN_KNOBS='banks0:--num_banks=0 width4:--width_multiplier=0.25 '
                         'both:--num_banks=0,--embedding_dim=64')
  result = _run_recipe(env)
  assert result.returncode == 0, result.stderr
  calls = stand_ins.read_calls(log)
  trains = [c for c in calls if c[0].endswith('train_segsort.py')]
  folders = [os.path.basename(c[c.index('--snapshot_dir') + 1]) for c in trains]
  assert [f.split('_pspnet')[0] + '/' + f.rsplit('-', 1)[1]
          for f in folders] == [
              'segsort/seed1', 'segsort_banks0/seed1', 'segsort_width4/seed1',
              'segsort_both/seed1',
              'segsort/seed2', 'segsort_banks0/seed2', 'segsort_width4/seed2',
              'segsort_both/seed2']
  banks0 = trains[1]
  assert banks0.index('--num_banks=0') > banks0.index('--num_banks')
  assert '--num_banks=0' not in trains[0] and '--num_banks=0' not in trains[2]
  evals = [c for c in calls if os.path.basename(c[0]) in (
      'extract_prototypes.py', 'inference_segsort.py')]
  by_run = {}
  for c in evals:
    run = os.path.basename(c[c.index('--restore_from') + 1]).split('_pspnet')[0]
    by_run.setdefault(run, []).append(c)
  assert all(len(v) == 4 for v in by_run.values())
  for c in by_run['segsort_width4']:
    assert c.index('--width_multiplier=0.25') > c.index('--width_multiplier')
  assert not any('=' in a for c in by_run['segsort_banks0'] for a in c)
  # A knob of several flags: all of them in training, after the recipe's;
  # the network one (embedding_dim) in the evaluation too, the other not.
  both = trains[3]
  assert both.index('--num_banks=0') > both.index('--num_banks')
  assert both.index('--embedding_dim=64') > both.index('--embedding_dim')
  for c in by_run['segsort_both']:
    assert c.index('--embedding_dim=64') > c.index('--embedding_dim')
    assert '--num_banks=0' not in c
  summary = json.loads((work / 'seed_summary.json').read_text())
  assert summary['methods']['segsort_banks0']['miou'] == [42.0, 42.0]
  assert summary['differences']['segsort_banks0 - segsort']['values'] == [
      2.0, 2.0]
  assert summary['differences']['segsort_width4 - segsort']['mean'] == -3.0
  assert summary['differences']['segsort_both - segsort']['mean'] == 4.0
