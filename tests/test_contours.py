"""Tests for utils/contours.py and pyscripts/tools/make_contours.py.

The writer is tested with a stand-in detector (a known function of the
image), so no HED weights are needed; one test runs the real HED through
the script, in its own process (the test process runs TensorFlow in graph
mode, where HED refuses to run).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from utils import contours

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'pyscripts', 'tools', 'make_contours.py')


class _Detector(object):
  """Edge probability = red channel / 255; records the batch shapes."""

  def __init__(self, fail_on_call=None):
    self.batches = []
    self.fail_on_call = fail_on_call

  def __call__(self, images):
    self.batches.append(images.shape)
    if self.fail_on_call == len(self.batches):
      raise RuntimeError('detector failed')
    return images[..., 0].astype(np.float32) / 255.0


def _write_images(folder, sizes):
  """RGB PNGs img{i}.png of the given (h, w), red = a ramp; returns paths."""
  os.makedirs(folder, exist_ok=True)
  paths = []
  for i, (h, w) in enumerate(sizes):
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = (np.arange(h * w).reshape(h, w) * 7 + i) % 256
    path = os.path.join(folder, 'img%d.png' % i)
    Image.fromarray(image).save(path)
    paths.append(path)
  return paths


def _read(path):
  with Image.open(path) as image:
    assert image.mode == 'L'
    return np.asarray(image)


def test_writes_maps_batched_by_size(tmp_path):
  paths = _write_images(str(tmp_path / 'images'),
                        [(8, 10), (6, 5), (8, 10), (8, 10), (6, 5)])
  tasks = contours.get_contour_tasks(paths, str(tmp_path / 'out'))
  detector = _Detector()
  stats = contours.write_contour_maps(tasks, detector, batch_size=2,
                                      show_progress=False)
  assert stats.written == 5 and stats.skipped == 0
  # Same-sized images share batches: 8x10 x3 -> 2 + 1, 6x5 x2 -> 2.
  assert sorted(detector.batches) == [(1, 8, 10, 3), (2, 6, 5, 3),
                                      (2, 8, 10, 3)]
  for image_path, contour_path in tasks:
    assert os.path.basename(contour_path) == os.path.basename(image_path)
    with Image.open(image_path) as image:
      red = np.asarray(image)[..., 0]
    # round(255 * red / 255) = red.
    np.testing.assert_array_equal(_read(contour_path), red)
  assert sorted(os.listdir(tmp_path / 'out')) == ['img%d.png' % i
                                                  for i in range(5)]


def test_probability_to_uint8_by_hand():
  np.testing.assert_array_equal(
      contours.probability_to_uint8(np.array([-0.1, 0.0, 0.5, 0.998, 1.2])),
      [0, 0, 128, 254, 255])


def test_resume_skips_done_maps(tmp_path):
  paths = _write_images(str(tmp_path / 'images'), [(4, 4)] * 3)
  tasks = contours.get_contour_tasks(paths, str(tmp_path / 'out'))
  done = tasks[1][1]
  os.makedirs(os.path.dirname(done))
  Image.fromarray(np.full((4, 4), 9, np.uint8)).save(done)
  detector = _Detector()
  stats = contours.write_contour_maps(tasks, detector, batch_size=8,
                                      show_progress=False)
  assert (stats.written, stats.skipped) == (2, 1)
  assert detector.batches == [(2, 4, 4, 3)]
  np.testing.assert_array_equal(_read(done), 9)  # Left as it was.
  # A second run has nothing to do; --overwrite recomputes everything.
  detector = _Detector()
  stats = contours.write_contour_maps(tasks, detector, show_progress=False)
  assert (stats.written, stats.skipped, detector.batches) == (0, 3, [])
  stats = contours.write_contour_maps(tasks, detector, overwrite=True,
                                      show_progress=False)
  assert stats.written == 3
  assert not np.all(_read(done) == 9)


def test_failure_leaves_no_partial_file(tmp_path, monkeypatch):
  """A write that fails half way leaves neither the map nor a temporary
  file; a detector failure keeps the maps of the batches before it."""
  paths = _write_images(str(tmp_path / 'images'), [(4, 4)] * 3)
  out = tmp_path / 'out'
  tasks = contours.get_contour_tasks(paths, str(out))
  original_save = Image.Image.save

  def half_save(image, fp, *args, **kwargs):
    fp.write(b'\x89PNG\r\n')  # The start of a PNG, then the crash.
    raise OSError('disk full')

  monkeypatch.setattr(Image.Image, 'save', half_save)
  with pytest.raises(OSError, match='disk full'):
    contours.write_contour_maps(tasks, _Detector(), show_progress=False)
  assert os.listdir(out) == []
  monkeypatch.setattr(Image.Image, 'save', original_save)

  with pytest.raises(RuntimeError, match='detector failed'):
    contours.write_contour_maps(tasks, _Detector(fail_on_call=2),
                                batch_size=1, show_progress=False)
  assert os.listdir(out) == ['img0.png']
  assert _read(str(out / 'img0.png')).shape == (4, 4)


def test_unreadable_or_missing_image_names_the_file(tmp_path):
  paths = _write_images(str(tmp_path / 'images'), [(4, 4)] * 2)
  broken = tmp_path / 'images' / 'broken.jpg'
  broken.write_bytes(b'not an image at all')
  detector = _Detector()
  tasks = contours.get_contour_tasks(paths + [str(broken)],
                                     str(tmp_path / 'out'))
  with pytest.raises(ValueError, match='cannot read image .*broken.jpg'):
    contours.write_contour_maps(tasks, detector, show_progress=False)
  # Found before any work: nothing was run or written.
  assert detector.batches == []
  assert not os.path.exists(tmp_path / 'out')
  tasks = contours.get_contour_tasks([str(tmp_path / 'gone.png')],
                                     str(tmp_path / 'out'))
  with pytest.raises(FileNotFoundError, match='gone.png'):
    contours.write_contour_maps(tasks, detector, show_progress=False)


def test_two_images_with_one_name_are_an_error(tmp_path):
  with pytest.raises(ValueError, match='a/x.jpg and .*b/x.png'):
    contours.get_contour_tasks(['d/a/x.jpg', 'd/b/x.png'], str(tmp_path))
  # The same image twice is one task.
  assert len(contours.get_contour_tasks(['a/x.jpg', 'a/x.jpg'], 'o')) == 1


def test_hed_input_is_bgr_minus_the_mean():
  image = np.array([[[10, 20, 30]]], np.uint8)[None]
  np.testing.assert_allclose(
      contours.get_hed_input(image)[0, 0, 0],
      [30 - 104.00699, 20 - 116.66877, 10 - 122.67892], rtol=1e-6)


def test_hed_refuses_graph_mode():
  """The test process imported `network` (conftest): graph mode."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  assert not tf.executing_eagerly()
  with pytest.raises(RuntimeError, match='eager mode'):
    contours.HedDetector()


def test_script_runs_the_real_hed(tmp_path):
  """HED through make_contours.py on two 48x64 images (about 10-15 s):
  a bright square's border is an edge, its inside and the background not.
  """
  for folder in ('JPEGImages', 'segcls'):
    (tmp_path / 'V' / folder).mkdir(parents=True)
  image = np.full((48, 64, 3), 40, np.uint8)
  image[12:36, 16:48] = (230, 200, 60)
  lines = []
  for name in ('a', 'b'):
    Image.fromarray(image).save(str(tmp_path / 'V' / 'JPEGImages'
                                    / (name + '.png')))
    lines.append('V/JPEGImages/%s.png V/segcls/%s.png\n' % (name, name))
  data_list = tmp_path / 'list.txt'
  data_list.write_text(''.join(lines))
  out = tmp_path / 'contours'
  command = [sys.executable, SCRIPT, '--data_dir', str(tmp_path),
             '--data_list', str(data_list), '--contour_dir', str(out),
             '--batch_size', '2']
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'HED' in result.stdout and 's per image' in result.stdout
  edges = _read(str(out / 'a.png'))
  assert edges.shape == (48, 64)
  border = np.zeros((48, 64), bool)
  border[11:13, 16:48] = border[35:37, 16:48] = True
  border[12:36, 15:17] = border[12:36, 47:49] = True
  assert edges[border].mean() > 128
  assert edges[18:30, 24:40].mean() < 40 and edges[:4, :8].mean() < 40
  # Resumed: both maps exist, HED is not even loaded.
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0 and '0 to do, 2 already done' in result.stdout


def test_parsing_flags_leaves_tensorflow_eager():
  """make_contours.py parses pyscripts.flags and then runs HED eagerly:
  importing the flags (and parsing --xla-free flags) must not import
  `network`, whose import switches TensorFlow to graph mode."""
  code = ('import sys; sys.path.insert(0, %r); from pyscripts import flags; '
          'import tensorflow as tf; '
          'print("network" in sys.modules, tf.executing_eagerly())' % ROOT)
  result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ['False', 'True']
