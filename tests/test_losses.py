"""seg_models/losses.py: the loss table, the softmax loss, weight decay."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from seg_models import image_reader
from seg_models import losses
from seg_models import trainer
from tests import segsort_reference as ref

# 70 pixels, not a multiple of NUM_CLASSES (see the depth test).
BATCH, HEIGHT, WIDTH = 2, 5, 7
NUM_CLASSES, EMBEDDING_DIM, NUM_CLUSTERS = 3, 5, 2
# Channels a loss may read; IMAGE goes to the network, not to the loss.
LOSS_CHANNELS = {image_reader.LABEL, image_reader.CLUSTER_LABEL,
                 image_reader.LOCATION, image_reader.OVERSEG}


class _RecordingDict(dict):
  """A dict that remembers which keys were read."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.read = set()

  def __getitem__(self, key):
    self.read.add(key)
    return super().__getitem__(key)


def _options():
  return trainer.TrainOptions(
      embedding_dim=EMBEDDING_DIM, num_classes=NUM_CLASSES,
      num_clusters=NUM_CLUSTERS, kmeans_iterations=2, num_banks=1)


def _channel_values(rng):
  """Every loss channel of a [BATCH, HEIGHT, WIDTH] output-size batch."""
  labels = rng.randint(0, NUM_CLASSES, [BATCH, HEIGHT, WIDTH, 1])
  labels[:, 0, 0] = 255
  grid = ref.grid_labels(NUM_CLUSTERS, NUM_CLUSTERS, HEIGHT, WIDTH)
  location = ref.location_features(HEIGHT, WIDTH)
  return {
      image_reader.LABEL: labels.astype(np.int32),
      image_reader.CLUSTER_LABEL: np.tile(
          grid[None, :, :, None], [BATCH, 1, 1, 1]).astype(np.int32),
      image_reader.LOCATION: np.tile(
          location[None], [BATCH, 1, 1, 1]).astype(np.float32),
      image_reader.OVERSEG: rng.randint(
          0, 4, [BATCH, HEIGHT, WIDTH, 1]).astype(np.int32),
  }


def test_table_keys_and_declarations():
  assert list(losses.LOSSES) == [losses.SEGSORT, losses.UNSUPERVISED,
                                 losses.SOFTMAX]
  assert trainer.LOSS_TYPES == tuple(losses.LOSSES)
  for name, loss in losses.LOSSES.items():
    assert loss.name == name
    assert loss.channels and set(loss.channels) <= LOSS_CHANNELS, name
    assert len(set(loss.channels)) == len(loss.channels), name
    assert loss.output in losses.OUTPUT_DEPTH_OPTIONS, name
  opts = _options()
  depths = {name: loss.get_output_depth(opts)
            for name, loss in losses.LOSSES.items()}
  assert depths == {losses.SEGSORT: EMBEDDING_DIM,
                    losses.UNSUPERVISED: EMBEDDING_DIM,
                    losses.SOFTMAX: NUM_CLASSES}


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_builder_reads_exactly_the_declared_channels(name):
  """Given only its declared channels and an output of its declared depth,
  a builder reads all of them and gives a finite scalar with a gradient."""
  loss = losses.LOSSES[name]
  opts = _options()
  rng = np.random.RandomState(0)
  values = _channel_values(rng)
  inputs = _RecordingDict({key: tf.constant(values[key])
                           for key in loss.channels})
  output = tf.constant(rng.randn(BATCH, HEIGHT, WIDTH,
                                 loss.get_output_depth(opts)).astype(
                                     np.float32))
  value = loss.build(output, inputs, opts)
  assert inputs.read == set(loss.channels)
  assert value.get_shape().ndims == 0
  grad = tf.gradients(value, output)[0]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    value, grad = sess.run([value, grad])
  assert np.isfinite(value) and value > 0
  assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


@pytest.mark.parametrize('name', [losses.SEGSORT, losses.SOFTMAX])
def test_builder_rejects_another_output_depth(name):
  """The depth the table declares is the one the builder needs."""
  loss = losses.LOSSES[name]
  opts = _options()
  values = _channel_values(np.random.RandomState(0))
  inputs = {key: tf.constant(values[key]) for key in loss.channels}
  # 70 pixels x 7 channels do not reshape into rows of NUM_CLASSES logits.
  output = tf.zeros([BATCH, HEIGHT, WIDTH, 7])
  with pytest.raises(ValueError):
    loss.build(output, inputs, opts)


def test_trainer_dataset_carries_the_declared_channels(tiny_dataset):
  opts = trainer.TrainOptions(
      data_dir=tiny_dataset, data_list=tiny_dataset + '/train.txt',
      input_size=(16, 16), batch_size=2, num_clusters=2)
  for name, loss in losses.LOSSES.items():
    dataset = trainer.get_train_dataset(opts, name)
    assert sorted(dataset.element_spec) == sorted(
        (image_reader.IMAGE, image_reader.NAME) + loss.channels), name
  with pytest.raises(trainer.TrainingError, match='Unknown loss'):
    trainer.get_train_dataset(opts, 'hinge')


def _softmax_reference(logits, labels, num_classes, ignore_label):
  """Mean over valid pixels of -log softmax(logits)[label], in float64."""
  flat = logits.reshape(-1, num_classes).astype(np.float64)
  y = labels.reshape(-1)
  total, count = 0.0, 0
  for row, label in zip(flat, y):
    if label == ignore_label or not 0 <= label < num_classes:
      continue
    shifted = row - row.max()
    total -= shifted[label] - np.log(np.exp(shifted).sum())
    count += 1
  return total / max(count, 1)


def test_softmax_loss_against_numpy():
  rng = np.random.RandomState(1)
  logits = (3 * rng.randn(2, 3, 4, NUM_CLASSES)).astype(np.float32)
  labels = rng.randint(0, NUM_CLASSES, [2, 3, 4, 1]).astype(np.int32)
  # Ignored, negative and out-of-range classes are all left out.
  labels[0, 0, :3, 0] = (255, -1, NUM_CLASSES)
  loss = losses.add_softmax_loss(tf.constant(logits), tf.constant(labels),
                                 NUM_CLASSES, 255)
  three_dim = losses.add_softmax_loss(tf.constant(logits),
                                      tf.constant(labels[..., 0]),
                                      NUM_CLASSES, 255)
  with tf.Session() as sess:
    value, value_3d = sess.run([loss, three_dim])
  expected = _softmax_reference(logits, labels, NUM_CLASSES, 255)
  assert value == pytest.approx(expected, rel=1e-5)
  assert value_3d == pytest.approx(expected, rel=1e-5)


def test_softmax_loss_by_hand_and_without_valid_pixels():
  """Two pixels: logits (0, 0) with class 1 -> log 2; logits (log 3, 0)
  with class 0 -> log(4 / 3); the mean is (log 2 + log 4/3) / 2."""
  logits = np.array([[[[0.0, 0.0], [np.log(3.0), 0.0], [5.0, -5.0]]]],
                    np.float32)
  labels = np.array([[[1, 0, 255]]], np.int32)
  logits_tensor = tf.constant(logits)
  loss = losses.add_softmax_loss(logits_tensor, tf.constant(labels), 2, 255)
  empty = losses.add_softmax_loss(logits_tensor,
                                  tf.fill([1, 1, 3], 255), 2, 255)
  grad = tf.gradients(empty, logits_tensor)[0]
  with tf.Session() as sess:
    value, empty_value, empty_grad = sess.run([loss, empty, grad])
  assert value == pytest.approx((np.log(2.0) + np.log(4.0 / 3.0)) / 2,
                                rel=1e-6)
  assert empty_value == 0.0
  assert not np.any(empty_grad)


def test_weight_decay_against_numpy():
  """0.1 * sum of w^2 / 2 over '.../weights' only."""
  rng = np.random.RandomState(2)
  values = {'a/weights': rng.randn(3, 3, 2, 4),
            'a/biases': rng.randn(4),
            'a/BatchNorm/gamma': rng.randn(4),
            'a/BatchNorm/beta': rng.randn(4),
            'block5/logits/weights': rng.randn(1, 1, 4, 3),
            'not_weights': rng.randn(5)}
  variables = [tf.get_variable(name, initializer=value.astype(np.float32))
               for name, value in values.items()]
  decay = losses.get_weight_decay_loss(0.1, variables)
  no_decay = losses.get_weight_decay_loss(0.0, variables)
  no_weights = losses.get_weight_decay_loss(0.1, variables[1:4])
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    got = sess.run([decay, no_decay, no_weights])
  expected = 0.1 * sum(np.sum(values[n] ** 2) / 2
                       for n in ('a/weights', 'block5/logits/weights'))
  assert got[0] == pytest.approx(expected, rel=1e-5)
  assert got[1] == 0.0 and got[2] == 0.0


def test_weight_decay_by_hand():
  """A 2x2 matrix of ones: 0.1 * 4 / 2 = 0.2; the bias is not decayed."""
  w = tf.get_variable('a/weights', initializer=np.ones([2, 2], np.float32))
  b = tf.get_variable('a/biases', initializer=np.ones([2], np.float32))
  decay = losses.get_weight_decay_loss(0.1, [w, b])
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    assert sess.run(decay) == pytest.approx(0.2)
