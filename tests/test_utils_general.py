"""Colormaps, label pictures, atomic writes, config snapshot, class names."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from PIL import Image

from utils import general

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_utils_does_not_import_tensorflow():
  code = ('import sys; import utils.general, utils.metrics; '
          'sys.exit(int("tensorflow" in sys.modules))')
  proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr or 'utils imported tensorflow'


def _voc_reference(i):
  """The VOC palette bit by bit, written independently of the module."""
  r = g = b = 0
  for k in range(8):
    r |= ((i >> (3 * k)) & 1) << (7 - k)
    g |= ((i >> (3 * k + 1)) & 1) << (7 - k)
    b |= ((i >> (3 * k + 2)) & 1) << (7 - k)
  return r, g, b


def test_voc_colormap():
  cm = general.get_colormap()
  assert cm.shape == (256, 3) and cm.dtype == np.uint8
  assert tuple(cm[0]) == (0, 0, 0)
  assert tuple(cm[1]) == (128, 0, 0)
  assert tuple(cm[2]) == (0, 128, 0)
  assert tuple(cm[15]) == (192, 128, 128)
  assert tuple(cm[255]) == (224, 224, 192)
  for i in range(256):
    assert tuple(cm[i]) == _voc_reference(i)
  # Distinct colours for all 256 ids (the bit interleaving is a bijection).
  assert len({tuple(c) for c in cm}) == 256


def test_npy_colormap_overrides(tmp_path):
  path = str(tmp_path / 'cm.npy')
  np.save(path, np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
  cm = general.get_colormap(path)
  assert cm.shape == (256, 3) and cm.dtype == np.uint8
  np.testing.assert_array_equal(cm[:2], [[1, 2, 3], [4, 5, 6]])
  np.testing.assert_array_equal(cm[2:], general.VOC_COLORMAP[2:])
  # Floats in [0, 1] are scaled and rounded; floats in [0, 255] kept.
  np.save(path, np.array([[0.0, 128 / 255, 1.0]]))
  np.testing.assert_array_equal(general.get_colormap(path)[0], [0, 128, 255])
  np.save(path, np.array([[10.0, 20.0, 200.0]]))
  np.testing.assert_array_equal(general.get_colormap(path)[0], [10, 20, 200])


def test_mat_colormap_overrides(tmp_path):
  # Like the original's colormap files: MATLAB floats in [0, 1].
  path = str(tmp_path / 'colormapvoc.mat')
  table = np.array([[0.0, 0.0, 0.0], [0.5, 0.25, 1.0], [128 / 255] * 3])
  scipy.io.savemat(path, {'colormapvoc': table, 'other': np.eye(3)})
  cm = general.get_colormap(path)
  np.testing.assert_array_equal(cm[:3], [[0, 0, 0], [128, 64, 255],
                                         [128, 128, 128]])
  np.testing.assert_array_equal(cm[3:], general.VOC_COLORMAP[3:])
  # Key 'colormap' in a differently named file.
  path2 = str(tmp_path / 'mine.mat')
  scipy.io.savemat(path2, {'colormap': table[1:2]})
  np.testing.assert_array_equal(general.get_colormap(path2)[0], [128, 64, 255])


def test_colormap_errors_name_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='nothere.npy'):
    general.get_colormap(str(tmp_path / 'nothere.npy'))
  bad = str(tmp_path / 'bad.npy')
  np.save(bad, np.zeros((4, 2)))
  with pytest.raises(ValueError, match='bad.npy.*shape'):
    general.get_colormap(bad)
  np.save(bad, np.array([[0, 0, 300]]))
  with pytest.raises(ValueError, match='bad.npy.*above 255'):
    general.get_colormap(bad)
  txt = str(tmp_path / 'cm.txt')
  open(txt, 'w').close()
  with pytest.raises(ValueError, match=r'cm\.txt.*unknown file type'):
    general.get_colormap(txt)
  mat = str(tmp_path / 'nomatrix.mat')
  scipy.io.savemat(mat, {'x': np.zeros((2, 2))})
  with pytest.raises(ValueError, match='nomatrix.mat'):
    general.get_colormap(mat)


def test_label_to_color_and_pngs(tmp_path):
  label = np.array([[0, 1], [15, 255]], np.uint8)
  color = general.label_to_color(label)
  assert color.shape == (2, 2, 3) and color.dtype == np.uint8
  np.testing.assert_array_equal(color[1, 0], [192, 128, 128])
  np.testing.assert_array_equal(color[0, 1], [128, 0, 0])
  with pytest.raises(ValueError, match='range'):
    general.label_to_color(np.array([[3]]), np.zeros((2, 3), np.uint8))

  gray_path = str(tmp_path / 'new' / 'gray' / 'x.png')
  color_path = str(tmp_path / 'new' / 'color' / 'x.png')
  general.save_label_png(gray_path, label)
  general.save_color_png(color_path, label)
  with Image.open(gray_path) as im:
    assert im.mode == 'L'
    np.testing.assert_array_equal(np.asarray(im), label)
  with Image.open(color_path) as im:
    assert im.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(im), color)
  np.testing.assert_array_equal(general.read_label_png(gray_path), label)
  assert os.listdir(os.path.dirname(gray_path)) == ['x.png']
  assert os.listdir(os.path.dirname(color_path)) == ['x.png']
  with pytest.raises(ValueError, match='0, 255'):
    general.save_label_png(gray_path, np.array([[256]]))


def test_read_label_png_palette_and_colour(tmp_path):
  # A VOC-style palette PNG: the indices are the class ids.
  path = str(tmp_path / 'p.png')
  im = Image.fromarray(np.array([[0, 15], [255, 1]], np.uint8), mode='P')
  im.putpalette(general.VOC_COLORMAP.ravel().tolist())
  im.save(path)
  np.testing.assert_array_equal(general.read_label_png(path),
                                [[0, 15], [255, 1]])
  rgb = str(tmp_path / 'rgb.png')
  Image.fromarray(general.label_to_color(np.array([[1, 2]]))).save(rgb)
  with pytest.raises(ValueError, match='rgb.png.*colour'):
    general.read_label_png(rgb)


def test_atomic_writes_leave_no_temp_files(tmp_path):
  folder = tmp_path / 'a' / 'b'
  npy = str(folder / 'arr.npy')
  txt = str(folder / 'note.txt')
  general.atomic_save_npy(npy, np.arange(5))
  general.atomic_write_text(txt, 'hello\n')
  np.testing.assert_array_equal(np.load(npy), np.arange(5))
  with open(txt) as f:
    assert f.read() == 'hello\n'
  assert sorted(os.listdir(folder)) == ['arr.npy', 'note.txt']
  # Permissions follow the umask, as for an ordinary open().
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(npy).st_mode & 0o777 == 0o666 & ~umask
  # A failure mid-write keeps the old file and leaves no temporary behind.
  with pytest.raises(RuntimeError):
    with general.atomic_open(txt, 'w') as f:
      f.write('partial')
      raise RuntimeError('boom')
  with open(txt) as f:
    assert f.read() == 'hello\n'
  assert sorted(os.listdir(folder)) == ['arr.npy', 'note.txt']


def test_atomic_files_all_or_none(tmp_path):
  paths = [str(tmp_path / 'x' / 'f.npy'), str(tmp_path / 'x' / 'l.npy'),
           str(tmp_path / 'y' / 'other.txt')]
  with pytest.raises(RuntimeError):
    with general.atomic_files(paths) as tmp:
      np.save(tmp[0], np.ones(3))
      raise RuntimeError('boom')
  assert os.listdir(tmp_path / 'x') == [] and os.listdir(tmp_path / 'y') == []

  with general.atomic_files(paths) as tmp:
    assert [os.path.basename(t) for t in tmp] == ['f.npy', 'l.npy',
                                                  'other.txt']
    np.save(tmp[0], np.ones(3))
    np.save(tmp[1], np.zeros(2))
    with open(tmp[2], 'w') as f:
      f.write('done')
    assert not os.path.exists(paths[0])  # Nothing visible before the end.
  np.testing.assert_array_equal(np.load(paths[0]), np.ones(3))
  np.testing.assert_array_equal(np.load(paths[1]), np.zeros(2))
  assert sorted(os.listdir(tmp_path / 'x')) == ['f.npy', 'l.npy']
  assert os.listdir(tmp_path / 'y') == ['other.txt']

  # A staged file the block forgot to write is an error, and nothing moves.
  new = [str(tmp_path / 'z' / 'a.npy'), str(tmp_path / 'z' / 'b.npy')]
  with pytest.raises(FileNotFoundError, match='b.npy'):
    with general.atomic_files(new) as tmp:
      np.save(tmp[0], np.ones(1))
  assert os.listdir(tmp_path / 'z') == []


def test_save_config(tmp_path):
  args = argparse.Namespace(num_steps=10, batch_size=8, input_size='336,336',
                            random_mirror=True, restore_from=None)
  path = general.save_config(str(tmp_path / 'snap'), args)
  assert path == str(tmp_path / 'snap' / 'config')
  with open(path) as f:
    assert f.read() == ('batch_size: 8\n'
                        'input_size: 336,336\n'
                        'num_steps: 10\n'
                        'random_mirror: True\n'
                        'restore_from: None\n')
  assert os.listdir(tmp_path / 'snap') == ['config']


def test_class_names(tmp_path):
  names = general.get_class_names(21)
  assert names[0] == 'background' and names[15] == 'person'
  assert len(names) == 21 and names == list(general.VOC_CLASSES)
  assert general.get_class_names(3) == ['class_0', 'class_1', 'class_2']
  path = str(tmp_path / 'names.txt')
  with open(path, 'w') as f:
    f.write('sky\n road \n\ncar\n')
  assert general.get_class_names(3, path) == ['sky', 'road', 'car']
  with pytest.raises(ValueError, match='names.txt.*3 names.*4'):
    general.get_class_names(4, path)
  with pytest.raises(FileNotFoundError, match='missing.txt'):
    general.get_class_names(3, str(tmp_path / 'missing.txt'))


def test_save_grid_png(tmp_path):
  red = np.zeros((6, 8, 3), np.uint8)
  red[..., 0] = 255
  blue = np.zeros((4, 5, 3), np.uint8)
  blue[..., 2] = 255
  gray = np.full((6, 8), 100, np.uint8)
  path = str(tmp_path / 'g' / 'grid.png')
  grid = general.save_grid_png(path, [red, blue, gray], ncols=2, padding=2)
  # No titles: 2 columns of 8 px, 2 rows of 6 px, 2 px padding.
  assert grid.shape == (2 + 2 * (6 + 2), 2 + 2 * (8 + 2), 3)
  np.testing.assert_array_equal(grid[2:8, 2:10], red)
  np.testing.assert_array_equal(grid[2:6, 12:17], blue)
  np.testing.assert_array_equal(grid[10:16, 2:10], np.stack([gray] * 3, -1))
  assert np.all(grid[0] == 255)  # Padding is white.
  with Image.open(path) as im:
    np.testing.assert_array_equal(np.asarray(im), grid)

  wide = np.zeros((10, 60, 3), np.uint8)
  titles = ['image', 'a caption far too long for a 60 pixel cell']
  titled = general.save_grid_png(path, [wide, wide], titles=titles)
  caption_rows = titled.shape[0] - (4 + 10 + 4)
  assert caption_rows > 0
  assert titled.shape[1] == 4 + 2 * (60 + 4)
  # Captions are drawn (dark pixels above the pictures), pictures below; the
  # long caption is cut so that it stays inside its own cell.
  assert titled[4:4 + caption_rows, 4:64].min() < 128
  assert np.all(titled[:, 64:68] == 255)
  assert np.all(titled[:, -4:] == 255)
  np.testing.assert_array_equal(
      titled[4 + caption_rows:14 + caption_rows, 4:64], wide)
  with pytest.raises(ValueError, match='titles'):
    general.save_grid_png(path, [red], titles=['a', 'b'])
  with pytest.raises(ValueError, match='uint8'):
    general.save_grid_png(path, [red.astype(np.float32)])
