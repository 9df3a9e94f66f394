"""The exported SavedModel: the sliding window in the graph, export, serving.

- the window positions and the window sum computed in the graph equal the
  NumPy ones (seg_models/sliding_window.py) bitwise;
- end to end: a tiny trained model and its extracted prototypes exported
  with export_model.py, the SavedModel loaded by segment_folder.py in a
  fresh process, gives the labels of inference_segsort.py with the same
  flags, pixel for pixel, and the same embedding; its encoded-image
  signature gives them too for PNG bytes;
- the scripts' errors, the folder listing and the atomic replacement.

Exactness: both graphs run the same ops on the same numbers in the same
order (windows in the same batches, sums in the same order, the same
segment_image), so the labels are equal with no tolerance, with oneDNN on
or off (conftest runs this module both ways).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference_segsort
from pyscripts.inference import segment_folder
from pyscripts.tools import export_model
from seg_models import image_reader
from seg_models import predictor
from seg_models import prototype_sets
from seg_models import serving
from seg_models import sliding_window
from tests import tiny_data
from utils import colormaps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = tiny_data.NUM_CLASSES
DEPTH = tiny_data.EMBEDDING_DIM
# A window smaller than the 48x64 images (2 x 2 windows) in batches of 3:
# two network calls per image, and overlapping windows summed.
WINDOW_FLAGS = ['--input_size', '32,40', '--strides', '16,24',
                '--inference_batch_size', '3']
MODEL_FLAGS = ['--backbone', 'resnet_v1_50',  # As conftest's tiny snapshots.
               '--width_multiplier', str(tiny_data.WIDTH_MULTIPLIER),
               '--num_classes', str(NUM_CLASSES), '--embedding_dim',
               str(DEPTH), '--num_clusters', '3', '--kmeans_iterations', '3']
# k = 1: every segment takes the class of its nearest prototype.
KNN_FLAGS = ['--k_in_nearest_neighbors', '1']


# ---------------------------------------------------------------------------
# The sliding window in the graph, against NumPy.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('window, strides', [
    ((32, 40), (16, 24)), ((48, 48), (32, 32)), ((30, 7), (50, 3)),
    ((1, 1), (1, 1)), ((5, 16), (3, 6))])
def test_window_positions_equal_numpy(window, strides):
  sizes = [(h, w) for h in (1, 5, 30, 31, 49, 100, 97, 160)
           for w in (1, 7, 40, 41, 64, 161)]
  image_size = tf.placeholder(tf.int32, [2])
  graph_positions = serving.get_window_positions(image_size, window, strides)
  with tf.Session() as sess:
    for size in sizes:
      padded, starts = sess.run(graph_positions, {image_size: size})
      want_padded, want_starts = sliding_window.get_window_positions(
          size, window, strides)
      assert tuple(padded) == want_padded, size
      assert [tuple(s) for s in starts] == want_starts, size


def test_window_starts_where_linspace_rounds():
  # numpy.linspace(0, 14, 7) gives 6 * (14 / 6) = 14.000000000000002 and
  # floors of values like 3 * (7 / 3) that fall just below or above an
  # integer: the graph must floor the same floats.
  for delta in range(1, 200):
    for stride in (1, 2, 3, 5, 7, 9, 11):
      size, window = delta + 10, 10
      _, want = sliding_window.get_window_positions((size, 1), (window, 1),
                                                    (stride, 1))
      count = len(want)
      values = np.floor(np.linspace(0, delta, count)).astype(int)
      assert [y for y, _ in want] == values.tolist()
  size = tf.placeholder(tf.int32, [2])
  positions = serving.get_window_positions(size, (10, 1), (3, 1))
  with tf.Session() as sess:
    for delta in range(1, 200):
      _, starts = sess.run(positions, {size: (delta + 10, 1)})
      _, want = sliding_window.get_window_positions((delta + 10, 1),
                                                    (10, 1), (3, 1))
      assert [tuple(s) for s in starts] == want


def _np_network(windows):
  """A position-dependent stand-in for the network, in NumPy."""
  _, height, width, _ = windows.shape
  weight = (1.0 + np.arange(height)[:, None] / 7.0 +
            np.arange(width) / 3.0).astype(np.float32)
  return np.concatenate([windows * weight[None, :, :, None],
                         np.sqrt(np.abs(windows[..., :1])) + 0.1], axis=3)


def _tf_network(windows):
  """The same function in TensorFlow (the same float32 operations)."""
  height, width = windows.get_shape().as_list()[1:3]
  weight = (1.0 + np.arange(height)[:, None] / 7.0 +
            np.arange(width) / 3.0).astype(np.float32)
  return tf.concat([windows * weight[None, :, :, None],
                    tf.sqrt(tf.abs(windows[..., :1])) + 0.1], axis=3)


@pytest.mark.parametrize('batch_size', [1, 2, 5])
def test_window_sum_equals_numpy_bitwise(batch_size):
  rng = np.random.RandomState(0)
  window, strides = (32, 40), (16, 24)
  image = tf.placeholder(tf.float32, [None, None, 3])
  total = serving.embed_sliding_window(image, _tf_network, window, strides,
                                       batch_size, depth=4)
  with tf.Session() as sess:
    for size in [(48, 64), (20, 25), (70, 45), (33, 41)]:
      values = (100 * rng.randn(size[0], size[1], 3)).astype(np.float32)
      want = sliding_window.embed_sliding_windows(
          [values], _np_network, window, strides, 'none', batch_size,
          deduplicate=False)[0]
      got = sess.run(total, {image: values})
      np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# End to end: export, a fresh process, the labels of inference_segsort.py.
# ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def bank_dir(tiny_dataset, tiny_segsort_snapshot, tmp_path_factory):
  """extract_prototypes.py's bank, its labels spread over the classes.

  A model trained 2 steps gives background to nearly every prototype, and
  then every label map is 0: the labels are dealt round-robin instead, so
  that the kNN vote (k = 1) gives several classes and the comparison of
  label maps means something.
  """
  save_dir = str(tmp_path_factory.mktemp('export_train_results'))
  extract_prototypes.main(
      ['--data_dir', tiny_dataset,
       '--data_list', os.path.join(tiny_dataset, 'train.txt'),
       '--restore_from', tiny_segsort_snapshot, '--save_dir', save_dir] +
      MODEL_FLAGS + WINDOW_FLAGS)
  extracted = prototype_sets.load_prototypes(
      os.path.join(save_dir, 'prototypes'), need_index=True)
  labels = (np.arange(len(extracted)) % NUM_CLASSES).astype(np.int32)
  bank = os.path.join(save_dir, 'dealt')
  prototype_sets.save_prototypes(bank, extracted.features, labels)
  return bank


def _read_png(path):
  with Image.open(path) as image:
    return np.asarray(image)


def test_saved_model_in_a_fresh_process_equals_inference(
    tiny_dataset, tiny_segsort_snapshot, bank_dir, tmp_path):
  restore = ['--restore_from', tiny_segsort_snapshot,
             '--prototype_dir', bank_dir]
  export_dir = str(tmp_path / 'export')
  metadata = export_model.main(restore + MODEL_FLAGS + KNN_FLAGS +
                               WINDOW_FLAGS + ['--export_dir', export_dir,
                                               '--with_embedding'])
  assert sorted(os.listdir(tmp_path)) == ['export']  # No temporary left.
  assert metadata['settings']['input_size'] == [32, 40]
  assert metadata['num_prototypes'] == len(
      prototype_sets.load_prototypes(bank_dir))

  # inference_segsort.py with the same flags.
  reference = str(tmp_path / 'reference')
  names = inference_segsort.main(
      ['--data_dir', tiny_dataset,
       '--data_list', os.path.join(tiny_dataset, 'val.txt'),
       '--save_dir', reference] + restore + MODEL_FLAGS + KNN_FLAGS +
      WINDOW_FLAGS)

  # The SavedModel, loaded by segment_folder.py in a new Python process.
  images = tmp_path / 'images'
  images.mkdir()
  entries = image_reader.read_data_list(
      tiny_dataset, os.path.join(tiny_dataset, 'val.txt'))
  for entry in entries:
    shutil.copy(entry.image, str(images))
  save_dir = str(tmp_path / 'segmented')
  result = subprocess.run(
      [sys.executable,
       os.path.join(ROOT, 'pyscripts', 'inference', 'segment_folder.py'),
       '--export_dir', export_dir, '--input_dir', str(images),
       '--save_dir', save_dir, '--save_embedding'],
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]

  colormap = colormaps.get_colormap()
  all_labels = []
  for name in names:
    want = _read_png(os.path.join(reference, 'gray', name + '.png'))
    got = _read_png(os.path.join(save_dir, 'gray', name + '.png'))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        _read_png(os.path.join(save_dir, 'color', name + '.png')),
        colormap[got])
    all_labels.append(got)
  # Several classes: the kNN vote is compared, not only a constant map.
  assert len(np.unique(all_labels)) > 1

  # The embedding: the predictor's, to the float16 the script saves.
  options = predictor.PredictorOptions(
      input_size=(32, 40), strides=(16, 24), backbone='resnet_v1_50',
      width_multiplier=tiny_data.WIDTH_MULTIPLIER, num_classes=NUM_CLASSES,
      embedding_dim=DEPTH, restore_from=tiny_segsort_snapshot,
      num_clusters=3, kmeans_iterations=3, k_in_nearest_neighbors=1,
      inference_batch_size=3)
  bank = prototype_sets.load_prototypes(bank_dir)
  with predictor.SegSortPredictor(options, bank) as model:
    prediction = model.predict(image_reader.load_image(entries[0].image),
                               details=True)
  saved = np.load(os.path.join(save_dir, 'embedding', names[0] + '.npy'))
  np.testing.assert_array_equal(saved,
                                prediction.embedding.astype(np.float16))

  # The encoded-image signature on PNG bytes (lossless: the same pixels).
  with open(entries[1].image, 'rb') as f:
    rgb = np.asarray(Image.open(f).convert('RGB'))
  png = tmp_path / 'image.png'
  Image.fromarray(rgb).save(str(png))
  with serving.ExportedSegmenter(export_dir) as exported:
    assert exported.outputs == ['embedding', 'labels']
    out = exported.segment_encoded(png.read_bytes())
    np.testing.assert_array_equal(
        out['labels'],
        _read_png(os.path.join(reference, 'gray', names[1] + '.png')))
    with pytest.raises(serving.ExportError, match='uint8'):
      exported.segment(rgb.astype(np.float32))


# ---------------------------------------------------------------------------
# Errors, listing, replacement.
# ---------------------------------------------------------------------------


def _error_of(main, argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(argv)
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ') and err.count('\n') == 1, err
  return err


def test_export_errors(tmp_path, capsys):
  prototypes = tmp_path / 'prototypes'
  prototype_sets.save_prototypes(
      str(prototypes), np.eye(DEPTH, dtype=np.float32)[:3],
      np.arange(3, dtype=np.int32))
  checkpoint = tmp_path / 'snapshot'
  checkpoint.mkdir()
  base = MODEL_FLAGS + ['--export_dir', str(tmp_path / 'export')]

  err = _error_of(export_model.main, base + [
      '--restore_from', str(checkpoint), '--prototype_dir',
      str(tmp_path / 'nowhere')], capsys)
  assert '--prototype_dir' in err and 'nowhere' in err

  err = _error_of(export_model.main, base + [
      '--restore_from', str(checkpoint), '--prototype_dir',
      str(prototypes)], capsys)
  assert 'No checkpoint found in folder' in err and str(checkpoint) in err

  err = _error_of(export_model.main, base + [
      '--restore_from', str(checkpoint / 'model.ckpt-7'), '--prototype_dir',
      str(prototypes)], capsys)
  assert 'model.ckpt-7' in err

  err = _error_of(export_model.main, MODEL_FLAGS + [
      '--restore_from', str(checkpoint), '--prototype_dir',
      str(prototypes)], capsys)
  assert '--export_dir' in err

  (tmp_path / 'export').mkdir()
  err = _error_of(export_model.main, base + [
      '--restore_from', str(checkpoint), '--prototype_dir',
      str(prototypes)], capsys)
  assert 'already exists' in err and '--overwrite' in err

  err = _error_of(export_model.main, base + [
      '--restore_from', str(checkpoint), '--prototype_dir', str(prototypes),
      '--embedding_dim', '4', '--overwrite'], capsys)
  assert '--embedding_dim' in err


def test_segment_folder_errors(tmp_path, capsys):
  images = tmp_path / 'images'
  images.mkdir()
  Image.new('RGB', (5, 4)).save(str(images / 'a.png'))
  base = ['--input_dir', str(images), '--save_dir', str(tmp_path / 'out')]

  err = _error_of(segment_folder.main,
                  base + ['--export_dir', str(tmp_path)], capsys)
  assert 'is not a SavedModel' in err and 'export_model.py' in err
  err = _error_of(segment_folder.main,
                  ['--export_dir', str(tmp_path), '--input_dir',
                   str(tmp_path / 'none'), '--save_dir', 'x'], capsys)
  assert 'none' in err
  assert not (tmp_path / 'out').exists()


def test_list_images(tmp_path):
  for name in ('b.jpg', 'a.PNG', 'notes.txt', 'sub/c.png', 'sub/deeper/d.bmp'):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'')
  assert segment_folder.list_images(str(tmp_path)) == [
      ('a', str(tmp_path / 'a.PNG')), ('b', str(tmp_path / 'b.jpg'))]
  assert [n for n, _ in segment_folder.list_images(str(tmp_path), True)] == [
      'a', 'b', 'sub/c', 'sub/deeper/d']
  (tmp_path / 'a.jpg').write_bytes(b'')
  with pytest.raises(serving.ExportError, match='several images named a'):
    segment_folder.list_images(str(tmp_path))
  empty = tmp_path / 'empty'
  empty.mkdir()
  with pytest.raises(serving.ExportError, match='no image'):
    segment_folder.list_images(str(empty))


def test_replace_dir_swaps_whole_folders(tmp_path, monkeypatch):
  target = tmp_path / 'export'

  def folder(name, text):
    path = tmp_path / name
    path.mkdir()
    (path / 'saved_model.pb').write_text(text)
    return str(path)

  serving.replace_dir(folder('first', '1'), str(target))
  assert (target / 'saved_model.pb').read_text() == '1'
  serving.replace_dir(folder('second', '2'), str(target))
  assert (target / 'saved_model.pb').read_text() == '2'
  assert sorted(os.listdir(tmp_path)) == ['export']

  # The new folder cannot take the name: the old one is put back.
  real_rename = os.rename

  def rename(source, destination):
    if source.endswith('third'):
      raise OSError('disk full')
    real_rename(source, destination)

  monkeypatch.setattr(os, 'rename', rename)
  with pytest.raises(OSError, match='disk full'):
    serving.replace_dir(folder('third', '3'), str(target))
  assert (target / 'saved_model.pb').read_text() == '2'
  assert sorted(os.listdir(tmp_path)) == ['export', 'third']


def test_export_takes_and_checks_the_checkpoint_settings(
    tmp_path, capsys, tiny_segsort_snapshot):
  """The model flags come from the snapshot's model.json: a contradicting
  one is named before anything is built."""
  prototypes = tmp_path / 'prototypes'
  prototype_sets.save_prototypes(
      str(prototypes), np.eye(DEPTH, dtype=np.float32)[:3],
      np.arange(3, dtype=np.int32))
  err = _error_of(export_model.main, [
      '--restore_from', tiny_segsort_snapshot, '--prototype_dir',
      str(prototypes), '--export_dir', str(tmp_path / 'export'),
      '--backbone', 'resnet_v1_101'], capsys)
  assert '--backbone' in err and 'resnet_v1_50' in err, err
  assert not (tmp_path / 'export').exists()
