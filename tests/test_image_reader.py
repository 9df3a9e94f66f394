"""Tests of seg_models/image_reader.py on tiny images written by the tests.

Labels encode the pixel position (label = (y * W + x + i) % 250 for image i),
so every output pixel's label, grid label, location and oversegmentation
value can be checked against the original pixel its location points to.
"""
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow.compat.v1 as tf

from seg_models import image_reader as ir

H, W = 20, 30
NUM_IMAGES = 4


def _write(path, array, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array, mode).save(path)


def _label_of(i):
  y, x = np.mgrid[:H, :W]
  return ((y * W + x + i) % 250).astype(np.uint8)


def _overseg_of(i):
  y, x = np.mgrid[:H, :W]
  return ((x * H + y + 3 * i) % 240).astype(np.uint8)


def _image_of(i):
  return np.random.RandomState(i).randint(0, 256, (H, W, 3)).astype(np.uint8)


def _grid_reference(n_y, n_x, height, width):
  """NumPy grid initialisation: y // step_y + (max_y + 1) * (x // step_x)."""
  step_y = -(-height // n_y)
  step_x = -(-width // n_x)
  y, x = np.mgrid[:height, :width]
  return y // step_y + ((height - 1) // step_y + 1) * (x // step_x)


@pytest.fixture
def voc(tmp_path):
  """A VOC-like folder: VOC2012/{JPEGImages,segcls,hed} and a 2-column list."""
  root = str(tmp_path)
  lines = []
  for i in range(NUM_IMAGES):
    _write(os.path.join(root, 'VOC2012/JPEGImages/im%d.png' % i),
           _image_of(i))
    _write(os.path.join(root, 'VOC2012/segcls/im%d.png' % i), _label_of(i))
    _write(os.path.join(root, 'VOC2012/hed/im%d.png' % i), _overseg_of(i))
    lines.append('VOC2012/JPEGImages/im%d.png VOC2012/segcls/im%d.png\n'
                 % (i, i))
  data_list = os.path.join(root, 'train.txt')
  with open(data_list, 'w') as f:
    f.writelines(lines)
  return root, data_list


def _get_batch(*args, **kwargs):
  """The next-batch tensors of get_train_dataset, drawn as the trainer does."""
  dataset = ir.get_train_dataset(*args, **kwargs)
  return tf.data.make_one_shot_iterator(dataset).get_next()


def _run(batch, num_batches):
  with tf.Session() as sess:
    return [sess.run(batch) for _ in range(num_batches)]


def _examples(outputs):
  """Splits batched outputs into per-example dicts."""
  examples = []
  for out in outputs:
    for b in range(len(out[ir.NAME])):
      examples.append({k: v[b] for k, v in out.items()})
  return examples


def _index(example):
  return int(example[ir.NAME].decode()[2:])


def _check_example(ex, num_clusters, with_overseg=True):
  """Checks one augmented example against its original image.

  Returns:
    (valid, y, x): valid pixels and the original integer coordinates.
  """
  i = _index(ex)
  label = ex[ir.LABEL][..., 0]
  valid = label != 255
  pad = ~valid
  # Padding: every label channel invalid, image 0 (mean-subtracted black).
  np.testing.assert_array_equal(ex[ir.CLUSTER_LABEL][..., 0][pad], 255)
  np.testing.assert_array_equal(ex[ir.LOCATION][pad], -1.0)
  if with_overseg:
    np.testing.assert_array_equal(ex[ir.OVERSEG][..., 0][pad], 255)
  np.testing.assert_array_equal(ex[ir.IMAGE][pad], 0.0)
  location = ex[ir.LOCATION][valid]
  assert np.all(location >= 0.0) and np.all(location < 1.0)
  y = np.round(ex[ir.LOCATION][..., 0] * H).astype(int)
  x = np.round(ex[ir.LOCATION][..., 1] * W).astype(int)
  yv, xv = y[valid], x[valid]
  # Locations are exact multiples of 1/H, 1/W.
  np.testing.assert_allclose(location, np.stack([yv / H, xv / W], 1),
                             atol=1e-6)
  np.testing.assert_array_equal(label[valid], _label_of(i)[yv, xv])
  grid = _grid_reference(num_clusters, num_clusters, H, W)
  np.testing.assert_array_equal(ex[ir.CLUSTER_LABEL][..., 0][valid],
                                grid[yv, xv])
  if with_overseg:
    np.testing.assert_array_equal(ex[ir.OVERSEG][..., 0][valid],
                                  _overseg_of(i)[yv, xv])
  return valid, y, x


# ---------------------------------------------------------------- list files


def test_check_files_reports_every_missing_file_at_once(voc, tmp_path):
  root, data_list = voc
  os.remove(os.path.join(root, 'VOC2012/JPEGImages/im1.png'))
  os.remove(os.path.join(root, 'VOC2012/segcls/im2.png'))
  os.remove(os.path.join(root, 'VOC2012/hed/im3.png'))
  entries = ir.read_data_list(root, data_list)
  with pytest.raises(ir.DataListError) as error:
    ir.check_files(entries, need_label=True, need_overseg=True,
                   data_list=data_list)
  message = str(error.value)
  assert data_list in message
  assert '3 problem(s)' in message
  assert os.path.join(root, 'VOC2012/JPEGImages/im1.png') in message
  assert os.path.join(root, 'VOC2012/segcls/im2.png') in message
  assert os.path.join(root, 'VOC2012/hed/im3.png') in message
  assert '(line 2)' in message and '(line 3)' in message
  # Without the overseg masks the missing hed file is not a problem.
  with pytest.raises(ir.DataListError, match=r'^2 problem\(s\)'):
    ir.check_files(entries, need_label=True, need_overseg=False,
                   data_list=data_list)
  # Many problems: listed up to the cap, then counted.
  many = [ir.DataEntry(str(tmp_path / ('gone%d.jpg' % k)), None, None,
                       'gone%d' % k, k + 1) for k in range(25)]
  with pytest.raises(ir.DataListError) as error:
    ir.check_files(many, need_label=False, data_list='many.txt')
  message = str(error.value)
  assert '25 problem(s)' in message and '... and 5 more' in message
  assert 'gone19.jpg' in message and 'gone20.jpg' not in message


def test_check_files_rejects_bad_masks_and_missing_columns(voc, tmp_path):
  root, data_list = voc
  # A palette PNG: TensorFlow would decode its colours, not the class ids.
  palette = Image.fromarray(_label_of(0), 'P')
  palette.putpalette(list(np.arange(768) % 256))
  palette.save(os.path.join(root, 'VOC2012/segcls/im0.png'))
  _write(os.path.join(root, 'VOC2012/segcls/im1.png'),
         np.zeros((H + 1, W), np.uint8))
  with open(os.path.join(root, 'VOC2012/JPEGImages/im2.png'), 'wb') as f:
    f.write(b'not an image')
  entries = ir.read_data_list(root, data_list)
  with pytest.raises(ir.DataListError) as error:
    ir.check_files(entries, data_list=data_list)
  message = str(error.value)
  assert '3 problem(s)' in message
  assert 'segcls/im0.png: label has PIL mode P' in message
  assert 'segcls/im1.png: label is 30x21 (WxH) but image' in message
  assert 'JPEGImages/im2.png: unreadable image' in message
  # Needed columns are checked even before any file is opened.
  no_labels = [e._replace(label=None, overseg=None) for e in entries]
  with pytest.raises(ir.DataListError, match='no LABEL column'):
    ir.check_files(no_labels, need_label=True)
  with pytest.raises(ir.DataListError, match='no OVERSEG column'):
    ir.check_files(no_labels, need_label=False, need_overseg=True)


# ------------------------------------------------------------------ pipeline


def test_static_shapes_and_dtypes(voc):
  root, data_list = voc
  batch = _get_batch(root, data_list, (12, 16), 3, True, True, True,
                     num_clusters=5, with_overseg=True, seed=0)
  expected = {ir.IMAGE: ([3, 12, 16, 3], tf.float32),
              ir.LABEL: ([3, 12, 16, 1], tf.int32),
              ir.CLUSTER_LABEL: ([3, 12, 16, 1], tf.int32),
              ir.LOCATION: ([3, 12, 16, 2], tf.float32),
              ir.OVERSEG: ([3, 12, 16, 1], tf.int32),
              ir.NAME: ([3], tf.string)}
  assert set(batch) == set(expected)
  for key, (shape, dtype) in expected.items():
    assert batch[key].shape.as_list() == shape, key
    assert batch[key].dtype == dtype, key
  out, = _run(batch, 1)
  for key, (shape, _) in expected.items():
    assert list(out[key].shape) == shape, key


def test_no_augmentation_gives_exact_values_in_list_order(voc):
  root, data_list = voc
  batch = _get_batch(root, data_list, (H, W), 2, num_clusters=5,
                     shuffle=False, seed=0)
  assert ir.OVERSEG not in batch
  examples = _examples(_run(batch, 4))
  # Two epochs in list order.
  assert [ex[ir.NAME] for ex in examples] == [b'im0', b'im1', b'im2',
                                              b'im3'] * 2
  y, x = np.mgrid[:H, :W]
  for ex in examples:
    i = _index(ex)
    np.testing.assert_array_equal(
        ex[ir.IMAGE], _image_of(i).astype(np.float32) - ir.IMG_MEAN)
    np.testing.assert_array_equal(ex[ir.LABEL][..., 0], _label_of(i))
    np.testing.assert_array_equal(ex[ir.CLUSTER_LABEL][..., 0],
                                  _grid_reference(5, 5, H, W))
    np.testing.assert_allclose(ex[ir.LOCATION],
                               np.stack([y / H, x / W], axis=2), atol=1e-7)


def test_mean_subtraction_known_pixels(tmp_path):
  image = np.zeros((4, 6, 3), np.uint8)
  image[:, :3] = (200, 100, 50)
  image[:, 3:] = (0, 255, 128)
  _write(str(tmp_path / 'a.png'), image)
  data_list = str(tmp_path / 'list.txt')
  with open(data_list, 'w') as f:
    f.write('a.png\n')
  batch = _get_batch(str(tmp_path), data_list, (4, 6), 1,
                     with_label=False, seed=0)
  assert set(batch) == {ir.IMAGE, ir.NAME}
  out, = _run(batch, 1)
  np.testing.assert_allclose(out[ir.IMAGE][0, 0, 0],
                             [200 - 122.675, 100 - 116.669, 50 - 104.008],
                             atol=1e-5)
  np.testing.assert_allclose(out[ir.IMAGE][0, 3, 5],
                             [-122.675, 255 - 116.669, 128 - 104.008],
                             atol=1e-5)


def test_centre_crop_and_padding(voc):
  root, data_list = voc
  # Smaller crop: centred, offset ((20 - 16) // 2, (30 - 22) // 2) = (2, 4).
  batch = _get_batch(root, data_list, (16, 22), 1, num_clusters=2,
                     with_overseg=True, shuffle=False, seed=0)
  ex, = _examples(_run(batch, 1))
  np.testing.assert_array_equal(ex[ir.LABEL][..., 0], _label_of(0)[2:18, 4:26])
  np.testing.assert_array_equal(ex[ir.OVERSEG][..., 0],
                                _overseg_of(0)[2:18, 4:26])
  np.testing.assert_allclose(ex[ir.LOCATION][0, 0], [2 / H, 4 / W])
  tf.reset_default_graph()
  # Larger crop: the image sits top-left, padding below and to the right.
  batch = _get_batch(root, data_list, (25, 33), 1, num_clusters=2,
                     with_overseg=True, shuffle=False, seed=0)
  ex, = _examples(_run(batch, 1))
  valid, _, _ = _check_example(ex, 2)
  expected_valid = np.zeros((25, 33), bool)
  expected_valid[:H, :W] = True
  np.testing.assert_array_equal(valid, expected_valid)
  np.testing.assert_array_equal(ex[ir.LABEL][..., 0][:H, :W], _label_of(0))


def test_mirror_and_random_crop_keep_image_and_labels_aligned(voc):
  root, data_list = voc
  batch = _get_batch(root, data_list, (14, 20), 2,
                     random_mirror=True, random_crop=True,
                     num_clusters=3, with_overseg=True, seed=5)
  flips, offsets = [], set()
  for ex in _examples(_run(batch, 8)):
    valid, y, x = _check_example(ex, 3)
    assert valid.all()  # the crop is smaller than the image
    # Without scaling the image is copied exactly from where it came from.
    np.testing.assert_array_equal(
        ex[ir.IMAGE], _image_of(_index(ex))[y, x].astype(np.float32)
        - ir.IMG_MEAN)
    # A crop of a (possibly mirrored) image: rows and columns are shifts.
    np.testing.assert_array_equal(y - y[0, 0], np.mgrid[:14, :20][0])
    step = x[0, 1] - x[0, 0]
    assert step in (1, -1)
    np.testing.assert_array_equal(x - x[0, 0], step * np.mgrid[:14, :20][1])
    flips.append(step == -1)
    offsets.add((y[0, 0], min(x[0, 0], x[0, -1])))
  assert any(flips) and not all(flips)
  assert len(offsets) > 3  # the crop moves


def test_scale_mirror_crop_keep_every_channel_aligned(voc):
  root, data_list = voc
  # Scale factor in [0.5, 2): the scaled image is from 10x15 to 39x59, so
  # the 16x24 crop is padded for some factors and not for others.
  batch = _get_batch(root, data_list, (16, 24), 2, True, True, True,
                     num_clusters=4, with_overseg=True, seed=11)
  flips, padded, spans = [], [], set()
  for ex in _examples(_run(batch, 10)):
    valid, y, x = _check_example(ex, 4)
    padded.append(not valid.all())
    # Padding is only at the bottom and right of the image.
    rows, cols = np.nonzero(valid)
    assert valid[:rows.max() + 1, :cols.max() + 1].all()
    # Along a row the source column moves monotonically, backwards if the
    # image was mirrored; down a column the source row never decreases.
    dx = np.diff(x[valid[:, 0]][:, :cols.max() + 1], axis=1)
    assert (dx >= 0).all() or (dx <= 0).all()
    flips.append((dx < 0).any())
    assert (np.diff(y[:rows.max() + 1, 0]) >= 0).all()
    spans.add(len(np.unique(x[valid])))
  assert any(flips) and not all(flips)
  assert any(padded) and not all(padded)
  assert len(spans) > 3  # different scales


def test_same_seed_same_batches_and_skip_resumes(voc):
  root, data_list = voc

  def run(seed, skip_batches=0, num_batches=5):
    with tf.Graph().as_default():
      batch = _get_batch(root, data_list, (16, 24), 2, True, True,
                         True, num_clusters=5, with_overseg=True,
                         seed=seed, skip_batches=skip_batches)
      return _run(batch, num_batches)

  first, again, other = run(3), run(3), run(4)
  resumed = run(3, skip_batches=2, num_batches=3)
  for a, b in zip(first, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  assert any(not np.array_equal(a[ir.IMAGE], b[ir.IMAGE])
             for a, b in zip(first, other))
  for a, b in zip(first[2:], resumed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_seeded_shuffle_is_reproducible_and_reshuffles_each_epoch(voc):
  root, data_list = voc

  def names(seed):
    with tf.Graph().as_default():
      batch = _get_batch(root, data_list, (H, W), 1, seed=seed)
      return [out[ir.NAME][0] for out in _run(batch, 4 * NUM_IMAGES)]

  order = names(7)
  assert order == names(7)
  epochs = [order[k:k + NUM_IMAGES] for k in range(0, len(order), NUM_IMAGES)]
  for epoch in epochs:
    assert sorted(epoch) == [b'im0', b'im1', b'im2', b'im3']
  assert len({tuple(e) for e in epochs}) > 1


def test_unsupervised_examples_carry_overseg(voc):
  root, _ = voc
  data_list = os.path.join(root, 'unsup.txt')
  with open(data_list, 'w') as f:
    # Third column: an explicit mask (here the hed file of another image).
    f.write('VOC2012/JPEGImages/im0.png VOC2012/segcls/im0.png '
            'VOC2012/hed/im2.png\n')
  batch = _get_batch(root, data_list, (24, 32), 1, with_label=False,
                     with_overseg=True, seed=0, repeat=False)
  assert set(batch) == {ir.IMAGE, ir.OVERSEG, ir.NAME}
  ex, = _examples(_run(batch, 1))
  overseg = ex[ir.OVERSEG][..., 0]
  np.testing.assert_array_equal(overseg[:H, :W], _overseg_of(2))
  assert (overseg[H:] == 255).all() and (overseg[:, W:] == 255).all()
  np.testing.assert_array_equal(ex[ir.IMAGE][H:], 0.0)


def test_jpeg_images_decode_like_pil(tmp_path):
  image = np.zeros((16, 16, 3), np.uint8)
  image[:] = (30, 160, 220)
  Image.fromarray(image).save(str(tmp_path / 'a.jpg'), quality=95)
  data_list = str(tmp_path / 'list.txt')
  with open(data_list, 'w') as f:
    f.write('a.jpg\n')
  batch = _get_batch(str(tmp_path), data_list, (16, 16), 1,
                     with_label=False, seed=0)
  out, = _run(batch, 1)
  from_pil = ir.load_image(str(tmp_path / 'a.jpg'))
  np.testing.assert_allclose(out[ir.IMAGE][0], from_pil, atol=2.0)
  np.testing.assert_allclose(from_pil, image - ir.IMG_MEAN, atol=2.0)


def test_size_mismatch_without_check_names_the_files(voc):
  root, data_list = voc
  _write(os.path.join(root, 'VOC2012/segcls/im0.png'),
         np.zeros((H, W + 2), np.uint8))
  batch = _get_batch(root, data_list, (H, W), 1, shuffle=False,
                     seed=0, check=False)
  with pytest.raises(tf.errors.InvalidArgumentError, match='segcls/im0.png'):
    _run(batch, 1)


def test_bad_arguments(voc):
  root, data_list = voc
  with pytest.raises(ValueError, match='input_size'):
    ir.get_train_dataset(root, data_list, (0, 10), 1)
  with pytest.raises(ValueError, match='batch_size'):
    ir.get_train_dataset(root, data_list, (10, 10), 0)
  with pytest.raises(ValueError, match='num_clusters'):
    ir.get_train_dataset(root, data_list, (10, 10), 1, num_clusters=0)
  with pytest.raises(ValueError, match='fewer than batch_size'):
    ir.get_train_dataset(root, data_list, (10, 10), 5, repeat=False)


# ------------------------------------------------------------- numpy loaders


def test_load_image(tmp_path):
  image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
  _write(str(tmp_path / 'im.png'), image)
  loaded = ir.load_image(str(tmp_path / 'im.png'))
  assert loaded.dtype == np.float32 and loaded.shape == (2, 3, 3)
  np.testing.assert_allclose(loaded, image - ir.IMG_MEAN, atol=1e-5)

  with pytest.raises(FileNotFoundError, match='missing.png'):
    ir.load_image(str(tmp_path / 'missing.png'))
  with open(str(tmp_path / 'junk.jpg'), 'wb') as f:
    f.write(b'\x00' * 10)
  with pytest.raises(ValueError, match='junk.jpg'):
    ir.load_image(str(tmp_path / 'junk.jpg'))


def _legacy_resize_reference(array, size, nearest):
  """NumPy TF 1.x resize (align_corners=False, no half-pixel centres)."""
  height, width = array.shape[:2]
  ys = np.arange(size[0]) * (height / size[0])
  xs = np.arange(size[1]) * (width / size[1])
  if nearest:
    return array[np.floor(ys).astype(int)][:, np.floor(xs).astype(int)]
  y0 = np.floor(ys).astype(int)
  x0 = np.floor(xs).astype(int)
  y1 = np.minimum(y0 + 1, height - 1)
  x1 = np.minimum(x0 + 1, width - 1)
  wy = (ys - y0)[:, None, None]
  wx = (xs - x0)[None, :, None]
  top = array[y0][:, x0] * (1 - wx) + array[y0][:, x1] * wx
  bottom = array[y1][:, x0] * (1 - wx) + array[y1][:, x1] * wx
  return top * (1 - wy) + bottom * wy


@pytest.mark.parametrize('size', [(7, 11), (12, 9), (3, 4)])
def test_random_scale_resamples_as_tf1_resize(size):
  # The original resized with TF 1.x tf.image.resize_images (bilinear) and
  # tf.image.resize_nearest_neighbor, both align_corners=False: output
  # pixel i samples the input at i * in / out (not (i + 0.5) * in / out).
  rng = np.random.RandomState(0)
  image = rng.uniform(-100, 100, (5, 6, 3)).astype(np.float32)
  masks = rng.randint(0, 255, (5, 6, 4)).astype(np.int32)
  with tf.Graph().as_default(), tf.Session() as sess:
    out_image, out_masks = sess.run(ir.resize_image_and_masks(
        tf.constant(image), tf.constant(masks), tf.constant(size)))
  np.testing.assert_allclose(
      out_image, _legacy_resize_reference(image, size, False), atol=1e-3)
  np.testing.assert_array_equal(
      out_masks, _legacy_resize_reference(masks, size, True))
  # Half-pixel centres would sample elsewhere on this upscaling.
  if size == (12, 9):
    half = np.floor((np.arange(12) + 0.5) * 5 / 12).astype(int)
    assert not np.array_equal(half, np.floor(np.arange(12) * 5 / 12))
