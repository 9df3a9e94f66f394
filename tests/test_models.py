"""Heads, checkpoint restoring and synchronised batch norm."""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.common import layers as nn
from network.multigpu import towers
from seg_models import checkpoints
from seg_models import models
from seg_models.models import common

SMALL = 1.0 / 16


@pytest.mark.parametrize('model', sorted(models.MODELS))
def test_heads_any_input_size(model):
  model_fn = models.get_model_fn(model, width_multiplier=SMALL)
  images = tf.placeholder(tf.float32, [2, 97, 131, 3])
  out = model_fn(images, 7, is_training=True, use_global_status=False)
  assert out.shape.as_list() == [2, 13, 17, 7]
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    value = sess.run(out, {images: np.random.RandomState(0).randn(
        2, 97, 131, 3).astype(np.float32)})
  assert np.isfinite(value).all() and value.std() > 0


def test_adaptive_pool_equals_manual_means():
  x = np.random.RandomState(1).rand(1, 7, 5, 2).astype(np.float32)
  pooled = tf.Session().run(nn.adaptive_avg_pool(tf.constant(x), 3))
  # Rows [0, 3), [2, 5), [4, 7); columns [0, 2), [1, 4), [3, 5).
  rows = [(0, 3), (2, 5), (4, 7)]
  cols = [(0, 2), (1, 4), (3, 5)]
  for i, (y0, y1) in enumerate(rows):
    for j, (x0, x1) in enumerate(cols):
      np.testing.assert_allclose(pooled[0, i, j],
                                 x[0, y0:y1, x0:x1].mean(axis=(0, 1)),
                                 rtol=1e-6)


def test_adaptive_pool_is_avg_pool_when_divisible():
  """On the original's inputs (multiples of 48) it is the original's pooling."""
  x = np.random.RandomState(2).rand(2, 12, 12, 3).astype(np.float32)
  t = tf.constant(x)
  for bins in (1, 2, 3, 6):
    k = 12 // bins
    a, b = tf.Session().run([nn.adaptive_avg_pool(t, bins),
                             tf.nn.avg_pool(t, [1, k, k, 1], [1, k, k, 1],
                                            'VALID')])
    np.testing.assert_allclose(a, b, rtol=1e-6)


def _write_checkpoint(path, variables):
  """Writes a checkpoint holding {name: value} in a graph of its own."""
  with tf.Graph().as_default():
    created = [tf.Variable(value, name=name) for name, value in
               variables.items()]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(created))
      tf.train.Saver(created).save(sess, path, write_meta_graph=False)


def _original_names_checkpoint(tmp_path, reference_dir, with_head=True):
  """Random values under the original release's names, small shapes."""
  names = [line.split()[0] for line in open(os.path.join(
      reference_dir, 'segsort_pspnet_variables.txt'))]
  with tf.Graph().as_default():
    images = tf.placeholder(tf.float32, [1, 48, 48, 3])
    models.get_model_fn('pspnet', width_multiplier=SMALL)(
        images, 32, True, False)
    shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
  assert sorted(shapes) == sorted(names)
  rng = np.random.RandomState(3)
  values = {n: rng.rand(*shapes[n]).astype(np.float32) + 0.5 for n in names
            if with_head or not common.is_head_variable(n)}
  prefix = str(tmp_path / 'original' / 'model.ckpt-30000')
  os.makedirs(os.path.dirname(prefix))
  _write_checkpoint(prefix, values)
  return prefix, values


def test_restore_original_release_names(tmp_path, reference_dir):
  prefix, values = _original_names_checkpoint(tmp_path, reference_dir)
  images = tf.placeholder(tf.float32, [1, 48, 48, 3])
  models.get_model_fn('pspnet', width_multiplier=SMALL)(
      images, 32, False, True)
  with tf.Session() as sess:
    # A folder means its latest checkpoint.
    used, restored = checkpoints.restore_variables(
        sess, os.path.dirname(prefix), tf.global_variables())
    assert used == prefix and len(restored) == 547
    for var in tf.global_variables():
      np.testing.assert_array_equal(sess.run(var), values[var.op.name])


def test_checkpoint_without_head(tmp_path, reference_dir):
  prefix, values = _original_names_checkpoint(tmp_path, reference_dir,
                                              with_head=False)
  images = tf.placeholder(tf.float32, [1, 48, 48, 3])
  models.get_model_fn('pspnet', width_multiplier=SMALL)(
      images, 32, False, True)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    with pytest.raises(checkpoints.RestoreError) as err:
      checkpoints.restore_variables(sess, prefix, tf.global_variables())
    message = str(err.value)
    assert '--not_restore_classifier' in message
    assert 'resnet_v1_101/block5/fc1_voc12/weights' in message
    assert '27 variable(s) missing' in message
    _, restored = checkpoints.restore_variables(
        sess, prefix, tf.global_variables(), skip_head=True)
    assert len(restored) == 520
    conv1 = [v for v in restored if v.op.name == 'resnet_v1_101/conv1/weights']
    np.testing.assert_array_equal(sess.run(conv1[0]),
                                  values['resnet_v1_101/conv1/weights'])


def test_shape_mismatch_and_missing_checkpoint(tmp_path):
  prefix = str(tmp_path / 'model.ckpt-1')
  _write_checkpoint(prefix, {'net/w': np.zeros([3, 4], np.float32)})
  var = tf.get_variable('net/w', [3, 5])
  with tf.Session() as sess:
    with pytest.raises(checkpoints.RestoreError, match=r'net/w: checkpoint '
                       r'\[3, 4\], model \[3, 5\]'):
      checkpoints.restore_variables(sess, prefix, [var])
    with pytest.raises(checkpoints.RestoreError, match='does not exist'):
      checkpoints.restore_variables(sess, str(tmp_path / 'nope.ckpt'), [var])
    with pytest.raises(checkpoints.RestoreError, match='No checkpoint found'):
      os.makedirs(str(tmp_path / 'empty'))
      checkpoints.restore_variables(sess, str(tmp_path / 'empty'), [var])


def test_sync_batch_norm_two_towers_equals_one():
  """BN over 2 towers (2 CPU devices) == BN over the concatenated batch."""
  rng = np.random.RandomState(4)
  data = (rng.randn(4, 5, 6, 3) * 3 + 1).astype(np.float32)
  results = {}
  for num_towers in (1, 2):
    with tf.Graph().as_default():
      devices = ['/cpu:%d' % i for i in range(num_towers)]
      x = tf.constant(data)
      parts = towers.split_batch({'x': x}, devices)
      xs = [p['x'] for p in parts]
      with tf.variable_scope('layer'):
        ys = nn.batch_norm(xs, 'BatchNorm', decay=0.9, is_training=True,
                           use_global_status=False)
      for y, i in zip(ys, range(num_towers)):
        assert y.device.upper().endswith('CPU:%d' % i)
      updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
      assert len(updates) == 2  # Once, however many towers.
      moving_vars = [v for v in tf.global_variables()
                     if v.op.name.endswith(('moving_mean', 'moving_variance'))]
      with tf.Session(config=towers.session_config(num_towers)) as sess:
        sess.run(tf.global_variables_initializer())
        out = np.concatenate(sess.run(ys), axis=0)
        sess.run(updates)
        moving = sess.run(moving_vars)
    results[num_towers] = (out, moving)
  mean, var = data.mean(axis=(0, 1, 2)), data.var(axis=(0, 1, 2))
  np.testing.assert_allclose(results[1][0], (data - mean) / np.sqrt(var + 1e-3),
                             atol=1e-5)
  np.testing.assert_allclose(results[2][0], results[1][0], atol=1e-5)
  np.testing.assert_allclose(results[2][1][0], 0.1 * mean, atol=1e-5)
  np.testing.assert_allclose(results[2][1][1], 0.9 + 0.1 * var, atol=1e-5)
  np.testing.assert_allclose(results[2][1], results[1][1], atol=1e-6)


def test_towers_model_places_ops_per_device():
  model_fn = models.get_model_fn('pspnet', width_multiplier=SMALL)
  devices = ['/cpu:0', '/cpu:1']
  images = tf.constant(np.random.RandomState(5).randn(
      4, 40, 40, 3).astype(np.float32))
  parts = towers.split_batch({'image': images}, devices)
  outs = model_fn([p['image'] for p in parts], 8, True, False)
  assert len(outs) == 2
  assert 'CPU:1' in outs[1].device.upper()
  # Variables are shared: same count as one tower.
  assert len(tf.global_variables()) == 547
  with tf.Session(config=towers.session_config(2)) as sess:
    sess.run(tf.global_variables_initializer())
    a, b = sess.run(outs)
  assert a.shape == b.shape == (2, 5, 5, 8)


def _model_variables(model, use_global_status=False):
  images = tf.placeholder(tf.float32, [1, 40, 40, 3])
  output = models.get_model_fn(model, width_multiplier=SMALL)(
      images, 5, True, use_global_status)
  return images, output


def test_deeplab_aspp_has_the_original_variable_names():
  # The original DeepLab built its ASPP as resnet_v1_101/fc1_c{0..3}
  # (weights and biases), next to the backbone's blocks.
  _model_variables('deeplab')
  names = [v.op.name for v in tf.global_variables()]
  aspp = sorted(n for n in names if '/fc1_c' in n)
  assert aspp == ['resnet_v1_101/fc1_c%d/%s' % (i, kind)
                  for i in range(4) for kind in ('biases', 'weights')]
  assert not [n for n in names if '/block5/' in n]
  scopes = models.get_extra_layer_scopes('deeplab')
  assert scopes == ['fc1_c0', 'fc1_c1', 'fc1_c2', 'fc1_c3']
  head = [n for n in names if common.is_head_variable(n, scopes)]
  assert sorted(head) == aspp


def test_head_scopes_per_model():
  assert models.get_extra_layer_scopes('pspnet') == ['block5']
  assert models.get_extra_layer_scopes() == [
      'block5', 'fc1_c0', 'fc1_c1', 'fc1_c2', 'fc1_c3']
  assert common.is_head_variable('resnet_v1_50/block5/conv2/weights',
                                 ['block5'])
  # Whole name components only: block5 is not a prefix match.
  assert not common.is_head_variable('resnet_v1_101/block50/w', ['block5'])
  assert not common.is_head_variable('resnet_v1_101/block4/unit_1/w',
                                     ['fc1_c0'])
  with pytest.raises(ValueError, match='Unknown model'):
    models.get_extra_layer_scopes('fcn')


def test_deeplab_skip_head_restores_the_backbone_only(tmp_path):
  _model_variables('deeplab')
  scopes = models.get_extra_layer_scopes('deeplab')
  backbone = {v.op.name: np.full(v.shape.as_list(), 0.5, np.float32)
              for v in tf.global_variables()
              if not common.is_head_variable(v, scopes)}
  prefix = str(tmp_path / 'model.ckpt-1')
  _write_checkpoint(prefix, backbone)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    with pytest.raises(checkpoints.RestoreError,
                       match='fc1_c0, fc1_c1, fc1_c2, fc1_c3'):
      checkpoints.restore_variables(sess, prefix, tf.global_variables(),
                                    head_scopes=scopes)
    _, restored = checkpoints.restore_variables(
        sess, prefix, tf.global_variables(), skip_head=True,
        head_scopes=scopes)
  assert len(restored) == len(backbone) == len(tf.global_variables()) - 8


@pytest.mark.parametrize('model', sorted(models.MODELS))
def test_head_gets_ten_times_the_learning_rate(model):
  # One SGD step from zero momentum moves a variable by lr * gradient, the
  # head's by 10 * lr * gradient.
  from seg_models import trainer  # pylint: disable=g-import-not-at-top
  images, output = _model_variables(model, use_global_status=True)
  loss = tf.reduce_sum(output)
  step = tf.train.get_or_create_global_step()
  opts = trainer.TrainOptions(model=model, iter_size=1)
  add_train_ops = trainer._add_train_ops  # pylint: disable=protected-access
  step_op = add_train_ops(opts, loss, 0.01, step)[0]
  variables = tf.trainable_variables()
  grads = tf.gradients(loss, variables)
  scopes = models.get_extra_layer_scopes(model)
  feed = {images: np.random.RandomState(0).randn(1, 40, 40, 3)}
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    before, gradient = sess.run([variables, grads], feed)
    sess.run(step_op, feed)
    after = sess.run(variables)
  heads = 0
  for var, b, g, a in zip(variables, before, gradient, after):
    rate = 0.1 if common.is_head_variable(var, scopes) else 0.01
    heads += common.is_head_variable(var, scopes)
    np.testing.assert_allclose(b - a, rate * g, rtol=1e-3, atol=1e-6,
                               err_msg=var.op.name)
  # Under use_global_status batch norm is frozen: PSPNet's trainable head
  # is 5 conv weights and the classifier's weights and biases.
  assert heads == (8 if model == 'deeplab' else 7)
