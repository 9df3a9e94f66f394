"""Tests of utils/synthetic_data.py and its script (tiny datasets)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pyscripts.tools import make_synthetic_dataset
from tests import tiny_data
from utils import synthetic_data as synth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 5
HEIGHT, WIDTH = 48, 64  # Not square, to catch swapped axes.


def _generate(out_dir, seed=0, num_train=12, num_val=4, **kwargs):
  return synth.generate_dataset(
      str(out_dir), num_train=num_train, num_val=num_val, height=HEIGHT,
      width=WIDTH, num_classes=NUM_CLASSES, seed=seed, show_progress=False,
      **kwargs)


def _read_list(path):
  with open(path) as f:
    return [line.split() for line in f.read().splitlines()]


def test_same_seed_gives_identical_bytes(tmp_path):
  _generate(tmp_path / 'a', seed=3)
  _generate(tmp_path / 'b', seed=3)
  a, b = (tiny_data.read_tree(tmp_path / d) for d in 'ab')
  assert sorted(a) == sorted(b)
  assert len(a) == 2 * (12 + 4) + 3  # images, labels, 2 lists, classes.txt
  for name in a:
    assert a[name] == b[name], name


def test_different_seeds_differ(tmp_path):
  _generate(tmp_path / 'a', seed=0)
  _generate(tmp_path / 'b', seed=1)
  a, b = (tiny_data.read_tree(tmp_path / d) for d in 'ab')
  images = [n for n in a if n.startswith('JPEGImages')]
  labels = [n for n in a if n.startswith('segcls')]
  assert all(a[n] != b[n] for n in images)
  assert sum(a[n] != b[n] for n in labels) >= len(labels) - 1


def test_val_images_do_not_depend_on_num_train(tmp_path):
  _generate(tmp_path / 'a', num_train=3, num_val=2)
  _generate(tmp_path / 'b', num_train=5, num_val=2)
  a, b = (tiny_data.read_tree(tmp_path / d) for d in 'ab')
  for name in ('JPEGImages/val_000001.jpg', 'segcls/val_000001.png',
               'JPEGImages/train_000002.jpg'):
    assert a[name] == b[name]


def test_formats_lists_and_values(tmp_path):
  names = _generate(tmp_path)
  assert [len(names['train']), len(names['val'])] == [12, 4]
  with open(tmp_path / 'classes.txt') as f:
    assert f.read().splitlines() == synth.get_class_names(NUM_CLASSES)
  listed = set()
  for split in ('train', 'val'):
    lines = _read_list(tmp_path / (split + '.txt'))
    assert lines == [['JPEGImages/%s.jpg' % n, 'segcls/%s.png' % n]
                     for n in names[split]]
    for image_path, label_path in lines:
      listed.update([image_path, label_path])
      image = Image.open(tmp_path / image_path)
      label = Image.open(tmp_path / label_path)
      assert image.format == 'JPEG' and image.mode == 'RGB'
      assert label.format == 'PNG' and label.mode == 'L'
      assert image.size == label.size == (WIDTH, HEIGHT)
      values = set(np.unique(np.asarray(label)).tolist())
      assert values <= set(range(NUM_CLASSES)) | {255}
  on_disk = {os.path.relpath(os.path.join(d, f), tmp_path)
             for sub in ('JPEGImages', 'segcls')
             for d, _, fs in os.walk(tmp_path / sub) for f in fs}
  assert listed == on_disk


def test_all_classes_present_and_ignore_band(tmp_path):
  names = _generate(tmp_path, num_train=NUM_CLASSES - 1, num_val=0)
  labels = [np.asarray(Image.open(tmp_path / 'segcls' / (n + '.png')))
            for n in names['train']]
  # Each image's first object cycles through the object classes.
  present = set(np.unique(np.stack(labels)).tolist())
  assert present == set(range(NUM_CLASSES)) | {255}
  for label in labels:
    # The ignore band is thin: a few percent of the pixels, not whole objects.
    assert 0 < np.mean(label == 255) < 0.2


def test_colour_alone_does_not_tell_the_class(tmp_path):
  """Per-class mean colours are close and a colour classifier is near chance."""
  names = _generate(tmp_path, num_train=80, num_val=0)
  colours, classes = [], []
  for n in names['train']:
    image = np.asarray(Image.open(tmp_path / 'JPEGImages' / (n + '.jpg')))
    label = np.asarray(Image.open(tmp_path / 'segcls' / (n + '.png')))
    objects = (label > 0) & (label < 255)
    colours.append(image[objects].astype(np.float64))
    classes.append(label[objects])
  colours, classes = np.concatenate(colours), np.concatenate(classes)
  object_classes = np.arange(1, NUM_CLASSES)
  means = np.stack([colours[classes == c].mean(0) for c in object_classes])
  # Colours are uniform over the RGB cube whatever the class: every class
  # mean is near grey and the means are close to one another.
  spread = np.abs(means[:, None] - means[None]).max()
  assert spread < 40.0, means
  # Nearest class mean in RGB, per pixel, balanced over classes: chance is
  # 1 / (NUM_CLASSES - 1) = 0.25.
  distances = ((colours[:, None, :] - means[None]) ** 2).sum(-1)
  predicted = object_classes[np.argmin(distances, 1)]
  recalls = [np.mean(predicted[classes == c] == c) for c in object_classes]
  assert np.mean(recalls) < 0.4, recalls


def _band_reference(label, radius):
  """Loop reference: 255 wherever another label lies within `radius` (L-inf)."""
  out = label.copy()
  height, width = label.shape
  for y in range(height):
    for x in range(width):
      window = label[max(0, y - radius):y + radius + 1,
                     max(0, x - radius):x + radius + 1]
      if (window != label[y, x]).any():
        out[y, x] = 255
  return out


def test_ignore_boundaries_matches_reference():
  label = np.zeros((5, 6), dtype=np.uint8)
  label[1:3, 2:4] = 1
  band = synth._ignore_boundaries(label, 1)
  # Hand-checked: the band covers the block and its 8-neighbourhood ring.
  expected = np.zeros((5, 6), dtype=np.uint8)
  expected[0:4, 1:5] = 255
  np.testing.assert_array_equal(band, expected)
  np.testing.assert_array_equal(synth._ignore_boundaries(label, 0), label)

  label = np.zeros((9, 11), dtype=np.uint8)
  label[2:6, 1:5] = 1
  label[4:8, 4:9] = 3  # touches class 1 and the background
  for radius in (1, 2):
    np.testing.assert_array_equal(synth._ignore_boundaries(label, radius),
                                  _band_reference(label, radius))


def test_render_scene_shapes_and_classes():
  rng = np.random.default_rng(0)
  image, label = synth.render_scene(rng, 40, 56, num_classes=8, first_class=7,
                                    max_objects=1, border_width=0)
  assert image.shape == (40, 56, 3) and image.dtype == np.uint8
  assert label.shape == (40, 56) and label.dtype == np.uint8
  assert set(np.unique(label).tolist()) == {0, 7}
  with pytest.raises(ValueError, match='first_class'):
    synth.render_scene(rng, 40, 56, num_classes=5, first_class=5)


def test_bad_arguments_are_named(tmp_path, capsys):
  with pytest.raises(ValueError, match=r'num_classes must be in \[2, 8\]'):
    synth.generate_dataset(str(tmp_path),
                           num_classes=synth.MAX_NUM_CLASSES + 1,
                           show_progress=False)
  with pytest.raises(SystemExit) as exit_info:
    make_synthetic_dataset.main(['--output_dir', str(tmp_path),
                                 '--num_train', '-1'])
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == (
      'error: num_train must be >= 0, got -1\n')


def test_command_line_from_repo_root(tmp_path):
  out = tmp_path / 'synth'
  result = subprocess.run(
      [sys.executable, 'pyscripts/tools/make_synthetic_dataset.py',
       '--output_dir', str(out), '--num_train', '2', '--num_val', '1',
       '--height', '32', '--width', '40', '--num_classes', '3', '--seed', '5'],
      cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert len(_read_list(out / 'train.txt')) == 2
  assert len(_read_list(out / 'val.txt')) == 1
  assert Image.open(out / 'JPEGImages' / 'val_000000.jpg').size == (40, 32)
