"""Where the test-time k-means starts (--kmeans_grid), against NumPy.

The original release clustered, at test time, the whole zero-padded input
the network saw: its inference_segsort.py ran common_utils.kmeans on the
image padded to --input_size (the grid over the 720x720 canvas, locations
(y / H, x / W) from its image reader, which divides by the image's own
height and width), and its inference_segsort_msc.py ran it on every whole
window (the grid over the 480x480 window, locations
generate_location_features([480, 480], 'float')). 'canvas' (the default)
does the same over the pixels inside the image; 'image' (new here) puts
grid and locations over the image only.
"""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.segsort import eval_utils
from pyscripts.inference import inference_segsort
from pyscripts.inference import inference_segsort_msc
from seg_models import benchmarking
from seg_models import image_reader
from seg_models import predictor
from tests import segsort_reference as ref
from tests import tiny_data

BACKBONE = 'resnet_v1_50'  # As conftest's tiny snapshots.


def _start(region, canvas=None, location=None, n=5):
  with tf.Session() as sess:
    return sess.run(eval_utils.get_test_start(n, region, canvas, location))


# (region, canvas, location size, initial clusters). A 500x375 VOC image in
# the 720x720 canvas of the single-scale recipes, and at scales 0.5, 0.75
# and 1 in the 480x480 windows of the multi-scale ones (at scale 1 the
# first of its two windows along x, 480 wide).
VOC_CASES = [
    ((375, 500), (720, 720), None, 12),
    ((187, 250), (480, 480), (480, 480), 6),
    ((281, 375), (480, 480), (480, 480), 12),
    ((375, 480), (480, 480), (480, 480), 20),
]


@pytest.mark.parametrize('region,canvas,location,count', VOC_CASES)
def test_canvas_start_matches_numpy(region, canvas, location, count):
  labels, features = _start(region, canvas, location)
  height, width = region
  np.testing.assert_array_equal(
      labels, ref.grid_labels(5, 5, *canvas)[:height, :width])
  assert len(np.unique(labels)) == count
  location = location or region
  np.testing.assert_allclose(
      features, ref.location_features(*location)[:height, :width],
      atol=1e-7)


@pytest.mark.parametrize('region', [case[0] for case in VOC_CASES])
def test_image_start_matches_numpy(region):
  labels, features = _start(region)
  np.testing.assert_array_equal(labels, ref.grid_labels(5, 5, *region))
  assert len(np.unique(labels)) == 25
  np.testing.assert_allclose(features, ref.location_features(*region),
                             atol=1e-7)


def test_inference_scripts_default_to_the_canvas():
  for script in (inference_segsort, inference_segsort_msc):
    args = script.get_arguments(['--data_list', 'list.txt'])
    assert args.kmeans_grid == predictor.KMEANS_GRID_CANVAS
    args = script.get_arguments(['--data_list', 'list.txt',
                                 '--kmeans_grid', 'image'])
    assert args.kmeans_grid == predictor.KMEANS_GRID_IMAGE


# ---------------------------------------------------------------------------
# The predictor, on a tiny network: its clusters are NumPy k-means from the
# start each mode gives.
# ---------------------------------------------------------------------------

# A 96x120 window holds the 48x64 image with room to spare: with 3 x 3
# clusters over the window, the image starts from 2 x 2.
WINDOW = (96, 120)
N = 3
ITERATIONS = 3


def _options(snapshot, kmeans_grid, batch_size=1):
  return predictor.PredictorOptions(
      input_size=WINDOW, strides=WINDOW, backbone=BACKBONE,
      width_multiplier=tiny_data.WIDTH_MULTIPLIER,
      num_classes=tiny_data.NUM_CLASSES,
      embedding_dim=tiny_data.EMBEDDING_DIM, restore_from=snapshot,
      num_clusters=N, kmeans_iterations=ITERATIONS, k_in_nearest_neighbors=5,
      inference_batch_size=batch_size, kmeans_grid=kmeans_grid)


def _image(tiny_dataset):
  entry = image_reader.read_data_list(
      tiny_dataset, os.path.join(tiny_dataset, 'val.txt'))[0]
  return image_reader.load_image(entry.image)


def _prototypes():
  return benchmarking.get_random_prototypes(200, tiny_data.EMBEDDING_DIM,
                                            tiny_data.NUM_CLASSES, 0)


def _numpy_kmeans(embedding, start, location):
  """ref.kmeans of normalize(concat(normalize(embedding), location))."""
  depth = embedding.shape[-1]
  points = ref.normalize(np.concatenate(
      [ref.normalize(embedding.reshape(-1, depth)),
       location.reshape(-1, 2)], axis=1))
  return ref.kmeans(points, start.ravel(), N * N,
                    ITERATIONS).reshape(start.shape)


def _assert_mostly_equal(got, want):
  """Equal but for pixels float32 and float64 send to another cluster."""
  assert got.shape == want.shape
  assert np.mean(got == want) >= 0.99, np.mean(got == want)


@pytest.mark.parametrize('kmeans_grid', predictor.KMEANS_GRIDS)
def test_single_scale_clusters(tiny_dataset, tiny_segsort_snapshot,
                               kmeans_grid):
  image = _image(tiny_dataset)
  height, width = image.shape[:2]
  canvas = WINDOW if kmeans_grid == predictor.KMEANS_GRID_CANVAS else (
      height, width)
  start = ref.grid_labels(N, N, *canvas)[:height, :width]
  assert len(np.unique(start)) == (
      4 if kmeans_grid == predictor.KMEANS_GRID_CANVAS else 9)
  with predictor.SegSortPredictor(
      _options(tiny_segsort_snapshot, kmeans_grid),
      _prototypes()) as model:
    prediction = model.predict(image, details=True)
  want = _numpy_kmeans(prediction.embedding, start,
                       ref.location_features(height, width))
  _assert_mostly_equal(prediction.cluster_labels, want)
  assert len(np.unique(prediction.cluster_labels)) <= len(np.unique(start))


@pytest.mark.parametrize('kmeans_grid', predictor.KMEANS_GRIDS)
def test_window_clusters(tiny_dataset, tiny_segsort_snapshot, kmeans_grid):
  """Multi-scale: a window's part inside its view, one window at a time."""
  image = _image(tiny_dataset)
  height, width = image.shape[:2]
  window = np.zeros(WINDOW + (3,), np.float32)
  window[:height, :width] = image
  with predictor.SegSortPredictor(
      _options(tiny_segsort_snapshot, kmeans_grid)) as model:
    embedding = model.run_window(window)[:height, :width]
    labels, _ = model.cluster(embedding, in_window=True)
  if kmeans_grid == predictor.KMEANS_GRID_CANVAS:
    start = ref.grid_labels(N, N, *WINDOW)[:height, :width]
    location = ref.location_features(*WINDOW)[:height, :width]
  else:
    start = ref.grid_labels(N, N, height, width)
    location = ref.location_features(height, width)
  _assert_mostly_equal(labels, _numpy_kmeans(embedding, start, location))
