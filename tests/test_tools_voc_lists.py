"""Tests for pyscripts/tools/make_voc_lists.py on a tiny VOCdevkit + SBD."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from PIL import Image

from pyscripts.tools import make_voc_lists as voc
from tests import tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VOC_TRAIN = ['2007_000032', '2007_000039', '2008_000002']
VOC_VAL = ['2007_000033', '2009_000001']
VOC_TEST = ['2008_000006']
# SBD repeats some VOC images (train and val), lists one image twice and
# holds one image of VOC val, which train+ must leave out.
SBD_TRAIN = ['2007_000039', '2008_000100', '2008_000101', '2007_000033']
SBD_VAL = ['2008_000102', '2008_000002', '2008_000100']
TRAIN_AUG = ['2007_000032', '2007_000039', '2008_000002', '2008_000100',
             '2008_000101', '2008_000102']


def _voc_palette():
  """The VOC colour map: bits of the class id spread over R, G and B."""
  palette = np.zeros((256, 3), dtype=np.uint8)
  for index in range(256):
    c, r, g, b = index, 0, 0, 0
    for shift in range(7, -1, -1):
      r |= (c & 1) << shift
      g |= ((c >> 1) & 1) << shift
      b |= ((c >> 2) & 1) << shift
      c >>= 3
    palette[index] = (r, g, b)
  return palette


def _random_mask(rng, shape, with_border):
  mask = rng.integers(0, 21, size=shape).astype(np.uint8)
  if with_border:
    mask[0, :] = 255  # VOC's void border
  return mask


def _write_lines(path, ids):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(''.join(i + '\n' for i in ids))


def _write_jpeg(path, rng, shape):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pixels = rng.integers(0, 256, size=shape + (3,)).astype(np.uint8)
  Image.fromarray(pixels).save(path, quality=90)


def _write_sbd_mat(path, mask):
  """Writes an SBD cls/*.mat: struct GTcls as in the SBD release."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  boundaries = np.empty((20, 1), dtype=object)
  for k in range(20):
    boundaries[k, 0] = scipy.sparse.csc_matrix(mask == k + 1, dtype=float)
  present = np.unique(mask[(mask > 0) & (mask < 255)]).astype(np.uint8)
  scipy.io.savemat(path, {'GTcls': {
      'Boundaries': boundaries, 'Segmentation': mask,
      'CategoriesPresent': present.reshape(-1, 1)}})


@pytest.fixture
def fake_data(tmp_path):
  """Writes the miniature downloads; returns (devkit, sbd root, expected)."""
  rng = np.random.default_rng(0)
  devkit = tmp_path / 'VOCdevkit'
  voc_root = devkit / 'VOC2012'
  sbd = tmp_path / 'sbd' / 'benchmark_RELEASE' / 'dataset'
  sets = voc_root / 'ImageSets' / 'Segmentation'
  _write_lines(str(sets / 'train.txt'), VOC_TRAIN)
  _write_lines(str(sets / 'val.txt'), VOC_VAL)
  _write_lines(str(sets / 'trainval.txt'), sorted(VOC_TRAIN + VOC_VAL))
  _write_lines(str(sets / 'test.txt'), VOC_TEST)
  _write_lines(str(sbd / 'train.txt'), SBD_TRAIN)
  _write_lines(str(sbd / 'val.txt'), SBD_VAL)

  expected = {}  # id -> class-id mask that segcls must hold
  shapes = {}
  palette = _voc_palette()
  for k, image_id in enumerate(sorted(set(VOC_TRAIN + VOC_VAL + VOC_TEST +
                                          SBD_TRAIN + SBD_VAL))):
    shapes[image_id] = (5 + k % 3, 7 + k % 2)  # varied H x W
  for image_id in VOC_TRAIN + VOC_VAL + VOC_TEST + ['2008_000100']:
    _write_jpeg(str(voc_root / 'JPEGImages' / (image_id + '.jpg')), rng,
                shapes[image_id])
  for image_id in VOC_TRAIN + VOC_VAL:
    mask = _random_mask(rng, shapes[image_id], with_border=True)
    png = Image.fromarray(mask, mode='P')
    png.putpalette(palette.ravel().tolist())
    path = voc_root / 'SegmentationClass' / (image_id + '.png')
    os.makedirs(path.parent, exist_ok=True)
    png.save(path)
    expected[image_id] = mask
  for image_id in set(SBD_TRAIN + SBD_VAL):
    mask = _random_mask(rng, shapes[image_id], with_border=False)
    _write_sbd_mat(str(sbd / 'cls' / (image_id + '.mat')), mask)
    _write_jpeg(str(sbd / 'img' / (image_id + '.jpg')), rng,
                shapes[image_id])
    expected.setdefault(image_id, mask)  # VOC's annotation wins
  return devkit, tmp_path / 'sbd', expected


def _read_lines(path):
  with open(path) as f:
    return f.read().splitlines()


def test_get_split_ids_set_algebra():
  splits = voc.get_split_ids(VOC_TRAIN, VOC_VAL, None, SBD_TRAIN, SBD_VAL)
  assert splits['train+'] == TRAIN_AUG
  reference = sorted((set(VOC_TRAIN) | set(SBD_TRAIN) | set(SBD_VAL))
                     - set(VOC_VAL))
  assert splits['train+'] == reference
  assert splits['train'] == sorted(VOC_TRAIN)
  assert splits['val'] == sorted(VOC_VAL)
  assert splits['trainval'] == sorted(VOC_TRAIN + VOC_VAL)
  assert not set(splits['train+']) & set(splits['val'])


def test_lists_and_converted_labels(fake_data, tmp_path):
  devkit, sbd, expected = fake_data
  out = tmp_path / 'lists'
  voc_root = devkit / 'VOC2012'
  voc_copy = (voc_root / 'JPEGImages' / '2008_000100.jpg').read_bytes()
  splits = voc.make_voc_lists(str(devkit), str(sbd), str(out),
                              show_progress=False)
  assert sorted(splits) == ['test', 'train', 'train+', 'trainval', 'val']
  assert splits['train+'] == TRAIN_AUG

  def line(i):
    return 'VOC2012/JPEGImages/%s.jpg VOC2012/segcls/%s.png' % (i, i)

  assert _read_lines(out / 'train+.txt') == [line(i) for i in TRAIN_AUG]
  assert _read_lines(out / 'train.txt') == [line(i) for i in sorted(VOC_TRAIN)]
  assert _read_lines(out / 'val.txt') == [line(i) for i in sorted(VOC_VAL)]
  assert _read_lines(out / 'trainval.txt') == [
      line(i) for i in sorted(VOC_TRAIN + VOC_VAL)]
  assert _read_lines(out / 'test.txt') == [
      'VOC2012/JPEGImages/%s.jpg' % i for i in VOC_TEST]

  # Every listed file exists relative to data_dir; labels equal the source
  # ids (VOC palette indices, 255 border kept; SBD GTcls.Segmentation).
  for split in ('train+', 'trainval'):
    for entry in _read_lines(out / (split + '.txt')):
      image_rel, label_rel = entry.split()
      image = Image.open(devkit / image_rel)
      label = Image.open(devkit / label_rel)
      assert label.mode == 'L'
      assert label.size == image.size
      image_id = os.path.basename(label_rel)[:-4]
      np.testing.assert_array_equal(np.asarray(label), expected[image_id])
  source = Image.open(voc_root / 'SegmentationClass' / '2007_000032.png')
  assert source.mode == 'P'  # the test really starts from palette PNGs
  assert (np.asarray(Image.open(voc_root / 'segcls' / '2007_000032.png'))
          == 255).any()
  # SBD-only images are copied byte for byte; images VOC has are untouched.
  for image_id in ('2008_000101', '2008_000102'):
    assert ((voc_root / 'JPEGImages' / (image_id + '.jpg')).read_bytes() ==
            (sbd / 'benchmark_RELEASE' / 'dataset' / 'img' /
             (image_id + '.jpg')).read_bytes())
  assert (voc_root / 'JPEGImages' / '2008_000100.jpg').read_bytes() == voc_copy
  assert not list(voc_root.rglob('*.tmp'))


def test_rerun_is_idempotent_and_overwrite_reconverts(fake_data, tmp_path):
  devkit, sbd, expected = fake_data
  out = str(tmp_path / 'lists')
  voc.make_voc_lists(str(devkit), str(sbd), out, show_progress=False)
  first = tiny_data.read_tree(devkit), tiny_data.read_tree(out)
  voc.make_voc_lists(str(devkit), str(sbd), out, show_progress=False)
  assert (tiny_data.read_tree(devkit), tiny_data.read_tree(out)) == first

  # Labels in place are kept (e.g. the authors' segcls download) ...
  label_path = devkit / 'VOC2012' / 'segcls' / '2008_000101.png'
  Image.fromarray(np.zeros_like(expected['2008_000101'])).save(label_path)
  voc.make_voc_lists(str(devkit), str(sbd), out, show_progress=False)
  assert not np.asarray(Image.open(label_path)).any()
  # ... unless --overwrite.
  voc.make_voc_lists(str(devkit), str(sbd), out, overwrite=True,
                     show_progress=False)
  np.testing.assert_array_equal(np.asarray(Image.open(label_path)),
                                expected['2008_000101'])


def test_sbd_dir_may_be_benchmark_release_itself(fake_data, tmp_path):
  devkit, sbd, _ = fake_data
  for sbd_dir in (sbd / 'benchmark_RELEASE',
                  sbd / 'benchmark_RELEASE' / 'dataset'):
    splits = voc.make_voc_lists(str(devkit), str(sbd_dir),
                                str(tmp_path / 'lists'), show_progress=False)
    assert splits['train+'] == TRAIN_AUG


def test_without_sbd_only_voc_splits(fake_data, tmp_path):
  devkit, _, _ = fake_data
  out = tmp_path / 'lists'
  splits = voc.make_voc_lists(str(devkit), None, str(out),
                              show_progress=False)
  assert sorted(splits) == ['test', 'train', 'trainval', 'val']
  assert not (out / 'train+.txt').exists()
  assert sorted(os.listdir(devkit / 'VOC2012' / 'segcls')) == sorted(
      i + '.png' for i in VOC_TRAIN + VOC_VAL)


def test_sbd_mat_reader_matches_source(tmp_path):
  mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
  path = str(tmp_path / 'x.mat')
  _write_sbd_mat(path, mask)
  loaded = voc.load_sbd_class_mask(path)
  assert loaded.dtype == np.uint8
  np.testing.assert_array_equal(loaded, mask)
  scipy.io.savemat(path, {'other': mask})
  with pytest.raises(voc.DatasetError, match='GTcls'):
    voc.load_sbd_class_mask(path)


def test_voc_png_reader_rejects_colour_pngs(tmp_path):
  path = str(tmp_path / 'rgb.png')
  Image.fromarray(np.zeros((2, 3, 3), dtype=np.uint8)).save(path)
  with pytest.raises(voc.DatasetError, match='mode RGB'):
    voc.load_voc_class_mask(path)


def test_errors_name_the_missing_folder_or_file(fake_data, tmp_path,
                                                capsys):
  devkit, sbd, _ = fake_data
  out = str(tmp_path / 'lists')
  with pytest.raises(voc.DatasetError, match='VOC2012 folder not found'):
    voc.make_voc_lists(str(tmp_path / 'nowhere'), str(sbd), out)
  with pytest.raises(voc.DatasetError, match='SBD not found'):
    voc.make_voc_lists(str(devkit), str(tmp_path / 'nowhere'), out)

  missing_mat = (sbd / 'benchmark_RELEASE' / 'dataset' / 'cls' /
                 '2008_000102.mat')
  os.remove(missing_mat)
  with pytest.raises(voc.DatasetError) as error:
    voc.make_voc_lists(str(devkit), str(sbd), out, show_progress=False)
  assert str(missing_mat) in str(error.value)
  # Nothing is written when an input is missing.
  assert not (devkit / 'VOC2012' / 'segcls').exists()
  with pytest.raises(SystemExit) as exit_info:
    voc.main(['--data_dir', str(devkit), '--sbd_dir', str(sbd),
              '--output_dir', out])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ') and '2008_000102.mat' in err


def test_size_mismatch_names_both_files(fake_data, tmp_path):
  devkit, sbd, _ = fake_data
  image = devkit / 'VOC2012' / 'JPEGImages' / '2007_000033.jpg'
  Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(image)
  with pytest.raises(voc.DatasetError, match='2007_000033') as error:
    voc.make_voc_lists(str(devkit), str(sbd), str(tmp_path / 'lists'),
                       show_progress=False)
  assert 'SegmentationClass' in str(error.value)
  assert str(image) in str(error.value)


def test_command_line_from_repo_root(fake_data, tmp_path):
  devkit, sbd, _ = fake_data
  out = tmp_path / 'lists'
  result = subprocess.run(
      [sys.executable, 'pyscripts/tools/make_voc_lists.py',
       '--data_dir', str(devkit), '--sbd_dir', str(sbd),
       '--output_dir', str(out)],
      cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr
  assert 'train+' in result.stdout
  assert len(_read_lines(out / 'train+.txt')) == len(TRAIN_AUG)
