"""Tiny datasets and models written by the tests themselves.

The images come from the project's synthetic generator
(utils/synthetic_data.py) at 48x64 pixels; the oversegmentation masks are
the connected regions of the labels split into quadrants, so that
unsupervised training has segments without running the oversegmentation
tool.
"""
import os

import numpy as np
import tensorflow.compat.v1 as tf
from PIL import Image

from utils import synthetic_data

NUM_CLASSES = 4
HEIGHT, WIDTH = 48, 64
# Small enough for CPU tests, same graph and variable names as the full one.
WIDTH_MULTIPLIER = 1.0 / 16
EMBEDDING_DIM = 8


def write_dataset(root, num_train=8, num_val=4, seed=0):
  """Writes a VOC-layout dataset with hed/ masks; returns the data_dir."""
  synthetic_data.generate_dataset(
      root, num_train=num_train, num_val=num_val, height=HEIGHT,
      width=WIDTH, num_classes=NUM_CLASSES, seed=seed, show_progress=False)
  os.makedirs(os.path.join(root, 'hed'), exist_ok=True)
  for name in sorted(os.listdir(os.path.join(root, 'segcls'))):
    label = np.array(Image.open(os.path.join(root, 'segcls', name)))
    quadrant = ((np.arange(HEIGHT)[:, None] >= HEIGHT // 2) * 2 +
                (np.arange(WIDTH)[None, :] >= WIDTH // 2))
    regions = np.where(label == 255, 0, label.astype(np.int64) + 1)
    mask = (regions * 4 + quadrant)
    _, mask = np.unique(mask, return_inverse=True)
    Image.fromarray(mask.reshape(HEIGHT, WIDTH).astype(np.uint8)).save(
        os.path.join(root, 'hed', name))
  return root


def read_tree(folder):
  """All files under folder as {relative path: bytes}."""
  files = {}
  for dirpath, _, filenames in os.walk(folder):
    for filename in filenames:
      path = os.path.join(dirpath, filename)
      with open(path, 'rb') as f:
        files[os.path.relpath(path, folder)] = f.read()
  return files


SEGSORT_FLAGS = ('embedding_dim', 'num_clusters', 'kmeans_iterations',
                 'num_banks', 'concentration')
# The SegSort flags train_segsort_unsup.py does not have.
KMEANS_FLAGS = ('num_clusters', 'kmeans_iterations', 'num_banks')


def train_args(data_dir, snapshot_dir, segsort=True, kmeans=True,
               **overrides):
  """Flags of a short CPU training run on a tiny dataset.

  With segsort=False the SegSort flags are left out (train.py has none),
  with kmeans=False those of k-means and memory banks
  (train_segsort_unsup.py has none).
  """
  args = dict(data_dir=data_dir,
              data_list=os.path.join(data_dir, 'train.txt'),
              input_size='%d,%d' % (HEIGHT, WIDTH), batch_size=2,
              num_classes=NUM_CLASSES, embedding_dim=EMBEDDING_DIM,
              width_multiplier=WIDTH_MULTIPLIER, num_steps=4, iter_size=1,
              learning_rate=1e-2, save_pred_every=2, update_tb_every=2,
              snapshot_dir=snapshot_dir, num_clusters=2,
              kmeans_iterations=3)
  args.update(overrides)
  if not segsort:
    args = {k: v for k, v in args.items() if k not in SEGSORT_FLAGS}
  if not kmeans:
    args = {k: v for k, v in args.items() if k not in KMEANS_FLAGS}
  argv = ['--is_training']
  for key, value in args.items():
    if value is True:
      argv.append('--' + key)
    elif value is not False and value is not None:
      argv.extend(['--' + key, str(value)])
  return argv


def read_checkpoint(prefix):
  """{variable name: value} of a checkpoint."""
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


def assert_same_variables(a, b, atol, rtol=1e-4, slot_rtol=2e-2):
  """Same names; values equal within atol + rtol * max |value| of each
  variable.

  The momentum slots hold the raw gradients of the step; those of the first
  layers sum float rounding over the whole backward pass (summing over two
  towers in another order moves conv1's by up to 0.3%), so they are compared
  at slot_rtol (None: not compared). The updated weights (lr * gradient
  away) stay within rtol.
  """
  assert sorted(a) == sorted(b)
  for name in a:
    scale = float(np.abs(a[name]).max()) if a[name].size else 0.0
    tol = slot_rtol if name.endswith('/Momentum') else rtol
    if tol is None:
      continue
    np.testing.assert_allclose(a[name], b[name], rtol=0,
                               atol=atol + tol * scale, err_msg=name)


def read_scalars(snapshot_dir, tag):
  """[(step, value), ...] of a scalar summary in a folder's event files."""
  found = []
  for name in sorted(os.listdir(snapshot_dir)):
    if name.startswith('events.out.tfevents'):
      for event in tf.train.summary_iterator(os.path.join(snapshot_dir,
                                                          name)):
        found += [(event.step, v.simple_value) for v in event.summary.value
                  if v.tag == tag]
  return found
