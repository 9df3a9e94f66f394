"""misc/colormapvoc.mat, the file the VOC recipes pass as --colormap.

It must hold the VOC palette exactly as pyscripts/tools/make_voc_colormap.py
writes it, be read back as that palette by the inference scripts, and also
give the palette to a reader that multiplies by 255 and truncates to uint8.
"""
import os
import subprocess
import sys

import numpy as np
import scipy.io

from pyscripts.tools import make_voc_colormap
from utils import colormaps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, 'misc', 'colormapvoc.mat')


def _hand_palette():
  """VOC colours from the bit rule: bit 3k+c of i -> bit 7-k of channel c."""
  palette = np.zeros((256, 3), dtype=np.int64)
  for i in range(256):
    for k in range(8):
      for c in range(3):
        palette[i, c] |= ((i >> (3 * k + c)) & 1) << (7 - k)
  return palette


def _variables(path):
  return {k: v for k, v in scipy.io.loadmat(path).items()
          if not k.startswith('__')}


def test_shipped_file_is_the_voc_palette():
  variables = _variables(SHIPPED)
  assert list(variables) == ['colormapvoc']
  table = variables['colormapvoc']
  assert table.shape == (256, 3) and table.dtype == np.float64
  np.testing.assert_array_equal(table * 255.0, _hand_palette())
  # Spot values of the VOC devkit palette.
  np.testing.assert_array_equal(table[[0, 1, 15, 255]] * 255,
                                [[0, 0, 0], [128, 0, 0], [192, 128, 128],
                                 [224, 224, 192]])
  # Multiplying by 255 and truncating to uint8 loses nothing.
  np.testing.assert_array_equal((table * 255).astype(np.uint8),
                                _hand_palette())


def test_shipped_file_equals_a_fresh_generation(tmp_path):
  output = str(tmp_path / 'colormapvoc.mat')
  subprocess.run([sys.executable,
                  os.path.join(ROOT, 'pyscripts', 'tools',
                               'make_voc_colormap.py'), '--output', output],
                 check=True, capture_output=True)
  fresh, shipped = _variables(output), _variables(SHIPPED)
  assert list(fresh) == list(shipped)
  np.testing.assert_array_equal(fresh['colormapvoc'], shipped['colormapvoc'])
  np.testing.assert_array_equal(make_voc_colormap.get_matlab_colormap(),
                                shipped['colormapvoc'])


def test_colormap_flag_reads_it_as_the_default_colours(monkeypatch):
  np.testing.assert_array_equal(colormaps.get_colormap(SHIPPED),
                                colormaps.get_colormap(None))
  # The recipes pass the path relative to the repository root.
  monkeypatch.chdir(ROOT)
  np.testing.assert_array_equal(colormaps.get_colormap('misc/colormapvoc.mat'),
                                _hand_palette())
