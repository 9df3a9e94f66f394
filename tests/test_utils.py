"""utils/: colormaps, label pictures, atomic writes, config, class names."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
from PIL import Image

from utils import atomic_io
from utils import classes
from utils import colormaps
from utils import config_snapshot
from utils import label_images

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_utils_does_not_import_tensorflow():
  modules = sorted(os.path.splitext(name)[0]
                   for name in os.listdir(os.path.join(ROOT, 'utils'))
                   if name.endswith('.py') and name != '__init__.py')
  code = ('import importlib, sys\n'
          'for name in %r: importlib.import_module("utils." + name)\n'
          'sys.exit(int("tensorflow" in sys.modules))' % (modules,))
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
  cm = colormaps.get_colormap()
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
  cm = colormaps.get_colormap(path)
  assert cm.shape == (256, 3) and cm.dtype == np.uint8
  np.testing.assert_array_equal(cm[:2], [[1, 2, 3], [4, 5, 6]])
  np.testing.assert_array_equal(cm[2:], colormaps.VOC_COLORMAP[2:])
  # Floats in [0, 1] are scaled and rounded; floats in [0, 255] kept.
  np.save(path, np.array([[0.0, 128 / 255, 1.0]]))
  np.testing.assert_array_equal(colormaps.get_colormap(path)[0], [0, 128, 255])
  np.save(path, np.array([[10.0, 20.0, 200.0]]))
  np.testing.assert_array_equal(colormaps.get_colormap(path)[0], [10, 20, 200])


def test_mat_colormap_overrides(tmp_path):
  # Like the original's colormap files: MATLAB floats in [0, 1].
  path = str(tmp_path / 'colormapvoc.mat')
  table = np.array([[0.0, 0.0, 0.0], [0.5, 0.25, 1.0], [128 / 255] * 3])
  scipy.io.savemat(path, {'colormapvoc': table, 'other': np.eye(3)})
  cm = colormaps.get_colormap(path)
  np.testing.assert_array_equal(cm[:3], [[0, 0, 0], [128, 64, 255],
                                         [128, 128, 128]])
  np.testing.assert_array_equal(cm[3:], colormaps.VOC_COLORMAP[3:])
  # Key 'colormap' in a differently named file.
  path2 = str(tmp_path / 'mine.mat')
  scipy.io.savemat(path2, {'colormap': table[1:2]})
  np.testing.assert_array_equal(colormaps.get_colormap(path2)[0],
                                [128, 64, 255])


def test_colormap_errors_name_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='nothere.npy'):
    colormaps.get_colormap(str(tmp_path / 'nothere.npy'))
  bad = str(tmp_path / 'bad.npy')
  np.save(bad, np.zeros((4, 2)))
  with pytest.raises(ValueError, match='bad.npy.*shape'):
    colormaps.get_colormap(bad)
  np.save(bad, np.array([[0, 0, 300]]))
  with pytest.raises(ValueError, match='bad.npy.*above 255'):
    colormaps.get_colormap(bad)
  txt = str(tmp_path / 'cm.txt')
  open(txt, 'w').close()
  with pytest.raises(ValueError, match=r'cm\.txt.*unknown file type'):
    colormaps.get_colormap(txt)
  mat = str(tmp_path / 'nomatrix.mat')
  scipy.io.savemat(mat, {'x': np.zeros((2, 2))})
  with pytest.raises(ValueError, match='nomatrix.mat'):
    colormaps.get_colormap(mat)


def test_label_to_color_and_pngs(tmp_path):
  label = np.array([[0, 1], [15, 255]], np.uint8)
  color = label_images.label_to_color(label)
  assert color.shape == (2, 2, 3) and color.dtype == np.uint8
  np.testing.assert_array_equal(color[1, 0], [192, 128, 128])
  np.testing.assert_array_equal(color[0, 1], [128, 0, 0])
  with pytest.raises(ValueError, match='range'):
    label_images.label_to_color(np.array([[3]]), np.zeros((2, 3), np.uint8))

  gray_path = str(tmp_path / 'new' / 'gray' / 'x.png')
  color_path = str(tmp_path / 'new' / 'color' / 'x.png')
  label_images.save_label_png(gray_path, label)
  label_images.save_color_png(color_path, label)
  with Image.open(gray_path) as im:
    assert im.mode == 'L'
    np.testing.assert_array_equal(np.asarray(im), label)
  with Image.open(color_path) as im:
    assert im.mode == 'RGB'
    np.testing.assert_array_equal(np.asarray(im), color)
  np.testing.assert_array_equal(label_images.read_label_png(gray_path), label)
  assert os.listdir(os.path.dirname(gray_path)) == ['x.png']
  assert os.listdir(os.path.dirname(color_path)) == ['x.png']
  with pytest.raises(ValueError, match='0, 255'):
    label_images.save_label_png(gray_path, np.array([[256]]))


def test_read_label_png_palette_and_colour(tmp_path):
  # A VOC-style palette PNG: the indices are the class ids.
  path = str(tmp_path / 'p.png')
  im = Image.fromarray(np.array([[0, 15], [255, 1]], np.uint8), mode='P')
  im.putpalette(colormaps.VOC_COLORMAP.ravel().tolist())
  im.save(path)
  label = label_images.read_label_png(path)
  assert label.dtype == np.int32
  np.testing.assert_array_equal(label, [[0, 15], [255, 1]])
  # A colour PNG is accepted only when its channels are equal (gray).
  gray_rgb = str(tmp_path / 'gray_rgb.png')
  Image.fromarray(np.stack([[[7, 255]]] * 3, axis=-1).astype(np.uint8)).save(
      gray_rgb)
  np.testing.assert_array_equal(label_images.read_label_png(gray_rgb),
                                [[7, 255]])
  rgb = str(tmp_path / 'rgb.png')
  Image.fromarray(label_images.label_to_color(np.array([[1, 2]]))).save(rgb)
  with pytest.raises(ValueError, match=r'rgb\.png.*colour.*mode RGB'):
    label_images.read_label_png(rgb)
  # 16-bit PNGs give their values.
  wide = str(tmp_path / 'wide.png')
  atomic_io.atomic_save_png(wide, np.array([[0, 300, 65535]], np.uint16))
  np.testing.assert_array_equal(label_images.read_label_png(wide),
                                [[0, 300, 65535]])
  # Restricted modes, float pictures, missing and corrupt files.
  with pytest.raises(ValueError, match=r'gray_rgb\.png.*mode RGB.*P or L'):
    label_images.read_label_png(gray_rgb, modes=('P', 'L'))
  floats = str(tmp_path / 'f.tiff')
  Image.fromarray(np.zeros((2, 2), np.float32)).save(floats)
  with pytest.raises(ValueError, match=r'f\.tiff.*mode F'):
    label_images.read_label_png(floats)
  with pytest.raises(FileNotFoundError, match='missing.png'):
    label_images.read_label_png(str(tmp_path / 'missing.png'))
  junk = str(tmp_path / 'junk.png')
  with open(junk, 'wb') as f:
    f.write(b'not a picture')
  with pytest.raises(ValueError, match='junk.png'):
    label_images.read_label_png(junk)


def test_atomic_save_png_modes(tmp_path):
  ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
  levels = np.array([[0, 1, 65535]], np.uint16)
  rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
  for name, array, mode in (('ids.png', ids, 'L'), ('ucm.png', levels,
                                                    'I;16'),
                            ('rgb.png', rgb, 'RGB')):
    atomic_io.atomic_save_png(str(tmp_path / 'out' / name), array)
    with Image.open(tmp_path / 'out' / name) as image:
      assert image.mode == mode
      np.testing.assert_array_equal(np.asarray(image), array)
  assert sorted(os.listdir(tmp_path / 'out')) == ['ids.png', 'rgb.png',
                                                  'ucm.png']
  with pytest.raises(ValueError, match=r'bad\.png.*int32'):
    atomic_io.atomic_save_png(str(tmp_path / 'bad.png'),
                              np.zeros((2, 2), np.int32))
  with pytest.raises(ValueError, match=r'bad\.png.*uint8.*uint16'):
    atomic_io.atomic_save_png(str(tmp_path / 'bad.png'),
                              np.zeros((2, 2), np.float32))
  with pytest.raises(ValueError, match=r'bad\.png.*shape'):
    atomic_io.atomic_save_png(str(tmp_path / 'bad.png'),
                              np.zeros((2, 2, 2), np.uint8))
  assert not os.path.exists(tmp_path / 'bad.png')


def test_atomic_writes_leave_no_temp_files(tmp_path):
  folder = tmp_path / 'a' / 'b'
  npy = str(folder / 'arr.npy')
  txt = str(folder / 'note.txt')
  with atomic_io.atomic_open(npy, 'wb') as f:
    np.save(f, np.arange(5))
  atomic_io.atomic_write_text(txt, 'hello\n')
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
    with atomic_io.atomic_open(txt, 'w') as f:
      f.write('partial')
      raise RuntimeError('boom')
  with open(txt) as f:
    assert f.read() == 'hello\n'
  assert sorted(os.listdir(folder)) == ['arr.npy', 'note.txt']


def test_atomic_write_json(tmp_path):
  path = str(tmp_path / 'new' / 'result.json')
  atomic_io.atomic_write_json(path, {'miou': 0.5, 'seeds': [1, 2]})
  with open(path) as f:
    assert f.read() == '{\n  "miou": 0.5,\n  "seeds": [\n    1,\n    2\n  ]\n}\n'
  assert os.listdir(str(tmp_path / 'new')) == ['result.json']


def test_atomic_files_all_or_none(tmp_path):
  paths = [str(tmp_path / 'x' / 'f.npy'), str(tmp_path / 'x' / 'l.npy'),
           str(tmp_path / 'y' / 'other.txt')]
  with pytest.raises(RuntimeError):
    with atomic_io.atomic_files(paths) as tmp:
      np.save(tmp[0], np.ones(3))
      raise RuntimeError('boom')
  assert os.listdir(tmp_path / 'x') == [] and os.listdir(tmp_path / 'y') == []

  with atomic_io.atomic_files(paths) as tmp:
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
    with atomic_io.atomic_files(new) as tmp:
      np.save(tmp[0], np.ones(1))
  assert os.listdir(tmp_path / 'z') == []


def test_save_config(tmp_path):
  args = argparse.Namespace(num_steps=10, batch_size=8, input_size='336,336',
                            random_mirror=True, restore_from=None)
  path = config_snapshot.save_config(str(tmp_path / 'snap'), args)
  assert path == str(tmp_path / 'snap' / 'config')
  with open(path) as f:
    assert f.read() == ('batch_size: 8\n'
                        'input_size: 336,336\n'
                        'num_steps: 10\n'
                        'random_mirror: True\n'
                        'restore_from: None\n')
  assert os.listdir(tmp_path / 'snap') == ['config']


def test_class_names(tmp_path):
  names = classes.get_class_names(21)
  assert names[0] == 'background' and names[15] == 'person'
  assert len(names) == 21 and names == list(classes.VOC_CLASSES)
  assert classes.get_class_names(3) == ['class_0', 'class_1', 'class_2']
  path = str(tmp_path / 'names.txt')
  with open(path, 'w') as f:
    f.write('sky\n road \n\ncar\n')
  assert classes.get_class_names(3, path) == ['sky', 'road', 'car']
  with pytest.raises(ValueError, match='names.txt.*3 names.*4'):
    classes.get_class_names(4, path)
  with pytest.raises(FileNotFoundError, match='missing.txt'):
    classes.get_class_names(3, str(tmp_path / 'missing.txt'))

