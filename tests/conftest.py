"""Shared pytest setup: repository root on sys.path, graph mode, paths."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

import network  # noqa: E402,F401  (switches TensorFlow to graph mode)

# ../shared next to the repository (CI puts a copy of shared/ beside the clone).
SHARED_DIR = os.environ.get(
    'SEGSORT_SHARED_DIR', os.path.join(os.path.dirname(ROOT), 'shared'))
REFERENCE_DIR = os.path.join(SHARED_DIR, 'reference')


@pytest.fixture(autouse=True)
def _fresh_graph():
  """Every test starts with an empty default graph."""
  import tensorflow.compat.v1 as tf
  tf.reset_default_graph()
  yield
  tf.reset_default_graph()


@pytest.fixture
def reference_dir():
  if not os.path.isdir(REFERENCE_DIR):
    pytest.fail('reference outputs not found at %s (set SEGSORT_SHARED_DIR)'
                % REFERENCE_DIR)
  return REFERENCE_DIR


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory):
  """A 48x64 synthetic dataset (8 train, 4 val) with segcls/ and hed/."""
  from tests import tiny_data
  return tiny_data.write_dataset(str(tmp_path_factory.mktemp('tiny_data')))


# Briefly trained tiny models for the inference tests. ResNet-50 has the
# same variable names as ResNet-101 and builds its graph twice as fast.
TINY_INFERENCE_BACKBONE = 'resnet_v1_50'


@pytest.fixture(scope='session')
def tiny_segsort_snapshot(tiny_dataset, tmp_path_factory):
  """Folder of a SegSort model trained 2 steps on tiny_dataset."""
  from tests import tiny_data
  from pyscripts.train import train_segsort
  snapshot_dir = str(tmp_path_factory.mktemp('segsort_snapshot'))
  train_segsort.main(tiny_data.train_args(
      tiny_dataset, snapshot_dir, backbone=TINY_INFERENCE_BACKBONE,
      num_steps=2))
  return snapshot_dir


@pytest.fixture(scope='session')
def tiny_softmax_snapshot(tiny_dataset, tmp_path_factory):
  """Folder of a softmax-baseline model trained 2 steps on tiny_dataset."""
  from tests import tiny_data
  from pyscripts.train import train
  snapshot_dir = str(tmp_path_factory.mktemp('softmax_snapshot'))
  train.main(tiny_data.train_args(
      tiny_dataset, snapshot_dir, backbone=TINY_INFERENCE_BACKBONE,
      num_steps=2, embedding_dim=None, num_clusters=None,
      kmeans_iterations=None))
  return snapshot_dir


# Modules whose tests train networks (gradients of dilated convolutions, the
# trainer, the recipes): marker `trains`.
TRAINING_TEST_MODULES = (
    'test_layers', 'test_training', 'test_failures', 'test_inference', 'test_segsort_losses',
    'test_bashscripts_voc12', 'test_bashscripts_camvid', 'test_demo',
    'test_benchmark_speed', 'test_benchmark_input_pipeline',
    'test_fast_paths', 'test_distributed', 'test_export')

# Modules whose code paths or numerics depend on TensorFlow's CPU kernels
# (oneDNN on or off): the dilated-conv path choice and its gradients, the
# backbone against TF-Slim's outputs, training through the towers, the
# SegSort losses and k-means, the batched paths whose exactness depends on
# the kernels' batch invariance. Marker `onednn`: CI runs the whole suite
# with oneDNN off and these once more with it on (.ci/run); the rest is
# kernel-independent glue (files, flags, recipes, guards) that the first
# pass covers. Before a release, run the whole suite both ways.
ONEDNN_TEST_MODULES = (
    'test_layers', 'test_resnet', 'test_segsort_losses', 'test_fast_paths',
    # Of test_training, the numerics (dilated-conv gradients through the
    # towers); its script, resume and accumulation tests are orchestration.
    'test_training::test_segsort_loss_goes_down_on_a_fixed_batch',
    'test_training::test_two_towers_equal_one_tower',
    'test_training::test_train_graph_exposes_batch_and_output')


def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    module = item.module.__name__.rsplit('.', 1)[-1]
    if module in TRAINING_TEST_MODULES:
      item.add_marker(pytest.mark.trains)
    name = '%s::%s' % (module, getattr(item, 'originalname', item.name))
    if module in ONEDNN_TEST_MODULES or name in ONEDNN_TEST_MODULES:
      item.add_marker(pytest.mark.onednn)
