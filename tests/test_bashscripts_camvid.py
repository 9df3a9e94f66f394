"""The CamVid recipe: fail-fast without data, and (slow) its SMOKE mode."""
import json
import os
import subprocess

import pytest

from tests import conftest

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
