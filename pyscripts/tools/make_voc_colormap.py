"""Writes misc/colormapvoc.mat, the PASCAL VOC palette as a MATLAB file.

The file holds one variable named like the file, 'colormapvoc': a 256 x 3
matrix of doubles in [0, 1] (MATLAB's colormap convention), entry i being
the colour of label i. The inference scripts read it with
`--colormap misc/colormapvoc.mat`; without --colormap they use the same
colours.

Usage (from the repository root):

    python pyscripts/tools/make_voc_colormap.py [--output misc/colormapvoc.mat]
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402

from utils import colormaps  # noqa: E402

DEFAULT_OUTPUT = os.path.join(ROOT, 'misc', 'colormapvoc.mat')


def get_matlab_colormap():
  """The VOC palette as MATLAB colours: float64 [256, 3] in [0, 1]."""
  return colormaps.get_voc_colormap().astype(np.float64) / 255.0


def write_colormap(path):
  """Writes the VOC palette to the .mat file path (variable named by it)."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  name = os.path.splitext(os.path.basename(path))[0]
  scipy.io.savemat(path, {name: get_matlab_colormap()})


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', type=str, default=DEFAULT_OUTPUT,
                      help='The .mat file to write.')
  args = parser.parse_args(argv)
  write_colormap(args.output)
  print('wrote %s' % args.output)


if __name__ == '__main__':
  main()
