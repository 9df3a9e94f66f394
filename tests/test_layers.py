"""Dilated convolutions: the same numbers by either path, on every CPU.

The plain CPU kernels of TensorFlow (oneDNN off: CPUs without AVX-512-class
features, or TF_ENABLE_ONEDNN_OPTS=0) have no gradient for a dilated
tf.nn.conv2d; layers.conv then builds the portable space-to-batch path.
The reference used here exists on every machine: a dilated conv with a
k x k kernel at rate r IS an ordinary conv with the kernel spread out to
k_eff = k + (k - 1)(r - 1) taps, zeros in between; so are its gradients.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.common import layers
from network.common import resnet_v1


def _spread_kernel(kernel, rate):
  """[k, k, ci, co] -> [k_eff, k_eff, ci, co] with rate - 1 zeros between."""
  k = kernel.shape[0]
  k_eff = k + (k - 1) * (rate - 1)
  out = np.zeros((k_eff, k_eff) + kernel.shape[2:], kernel.dtype)
  out[::rate, ::rate] = kernel
  return out


def _dilated_conv_and_grads(path, monkeypatch, x_value, k_value, rate,
                            padding):
  """Output and (d/dx, d/dk) of sum(w * conv) through layers.conv."""
  monkeypatch.setenv(layers.ATROUS_PATH_ENV, path)
  graph = tf.Graph()
  with graph.as_default():
    x = tf.constant(x_value)
    with tf.variable_scope('layer'):
      y = layers.conv(x, 'c', k_value.shape[-1], k_value.shape[0],
                      padding=padding, relu=False, bn=False, dilation=rate)
    kernel = [v for v in tf.global_variables()
              if v.op.name == 'layer/c/weights'][0]
    weights = tf.constant(np.random.RandomState(3).randn(
        *y.get_shape().as_list()).astype(np.float32))
    gx, gk = tf.gradients(tf.reduce_sum(weights * y), [x, kernel])
    with tf.Session(graph=graph) as sess:
      sess.run(kernel.assign(k_value))
      return sess.run([y, gx, gk])


def _reference_conv_and_grads(x_value, k_value, rate, padding, shape):
  """The same with an ordinary conv and the spread-out kernel."""
  graph = tf.Graph()
  with graph.as_default():
    x = tf.constant(x_value)
    spread = tf.constant(_spread_kernel(k_value, rate))
    y = tf.nn.conv2d(x, spread, [1, 1, 1, 1], padding)
    weights = tf.constant(np.random.RandomState(3).randn(*shape).astype(
        np.float32))
    gx, gspread = tf.gradients(tf.reduce_sum(weights * y), [x, spread])
    with tf.Session(graph=graph) as sess:
      out, grad_x, grad_spread = sess.run([y, gx, gspread])
  return out, grad_x, grad_spread[::rate, ::rate]


@pytest.mark.parametrize('rate,padding,size', [(2, 'SAME', (9, 11)),
                                               (4, 'SAME', (13, 7)),
                                               (3, 'VALID', (14, 12))])
def test_portable_dilated_conv_equals_spread_kernel_conv(monkeypatch, rate,
                                                         padding, size):
  rng = np.random.RandomState(0)
  x_value = rng.randn(2, size[0], size[1], 3).astype(np.float32)
  k_value = rng.randn(3, 3, 3, 5).astype(np.float32)
  y, gx, gk = _dilated_conv_and_grads('portable', monkeypatch, x_value,
                                      k_value, rate, padding)
  ref_y, ref_gx, ref_gk = _reference_conv_and_grads(x_value, k_value, rate,
                                                    padding, y.shape)
  np.testing.assert_allclose(y, ref_y, rtol=0, atol=1e-4)
  np.testing.assert_allclose(gx, ref_gx, rtol=0, atol=1e-4)
  np.testing.assert_allclose(gk, ref_gk, rtol=0, atol=1e-3)
  assert np.abs(gk).max() > 1.0  # a gradient, not zeros


def test_native_dilated_conv_equals_portable_where_it_trains(monkeypatch):
  """Where the native gradient exists (oneDNN, cuDNN), the paths agree."""
  if not layers.native_dilated_conv_trains('CPU'):
    pytest.skip('this CPU has no native dilated-conv gradient (oneDNN off); '
                'the portable path is checked against the spread kernel')
  rng = np.random.RandomState(1)
  x_value = rng.randn(2, 10, 12, 4).astype(np.float32)
  k_value = rng.randn(3, 3, 4, 6).astype(np.float32)
  native = _dilated_conv_and_grads('native', monkeypatch, x_value, k_value,
                                   2, 'SAME')
  portable = _dilated_conv_and_grads('portable', monkeypatch, x_value,
                                     k_value, 2, 'SAME')
  for a, b in zip(native, portable):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


def test_native_forward_equals_portable_on_every_cpu(monkeypatch):
  """The native forward kernel exists everywhere, so compare it too."""
  rng = np.random.RandomState(2)
  x = rng.randn(1, 15, 9, 2).astype(np.float32)
  k = rng.randn(3, 3, 2, 3).astype(np.float32)
  outs = []
  for path in ('native', 'portable'):
    monkeypatch.setenv(layers.ATROUS_PATH_ENV, path)
    graph = tf.Graph()
    with graph.as_default():
      with tf.variable_scope('layer'):
        y = layers.conv(tf.constant(x), 'c', 3, 3, relu=False, bn=False,
                        dilation=4)
      kernel = tf.global_variables()[0]
      with tf.Session(graph=graph) as sess:
        sess.run(kernel.assign(k))
        outs.append(sess.run(y))
  np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-4)


def test_auto_path_follows_the_capability(monkeypatch):
  monkeypatch.delenv(layers.ATROUS_PATH_ENV, raising=False)
  trains = layers.native_dilated_conv_trains('CPU')
  assert layers.atrous_path('/device:CPU:0') == (
      'native' if trains else 'portable')
  assert layers.atrous_path('/device:GPU:0') == 'native'
  if layers.onednn_enabled() is False:
    # The failure this path exists for: no oneDNN, no native gradient.
    assert not trains
  monkeypatch.setenv(layers.ATROUS_PATH_ENV, 'portable')
  assert layers.atrous_path('/device:GPU:0') == 'portable'
  paths = layers.describe_conv_paths()
  assert paths['atrous_conv'] == 'portable'
  assert paths['atrous_conv_env'] == 'portable'


def test_bad_path_setting_is_a_clear_error(monkeypatch):
  monkeypatch.setenv(layers.ATROUS_PATH_ENV, 'fast')
  with pytest.raises(ValueError, match='SEGSORT_ATROUS_CONV'):
    layers.atrous_path()


def test_strided_and_dilated_is_refused():
  with pytest.raises(ValueError, match='strided'):
    layers.conv(tf.zeros([1, 8, 8, 2]), 'c', 2, 3, strides=2, dilation=2)


def test_dilated_backbone_trains_by_the_portable_path(monkeypatch):
  """The failure of a CPU without oneDNN, provoked on every CPU.

  The portable path is forced, and every variable of a tiny dilated ResNet
  gets a finite, non-zero gradient; the graph holds no dilated Conv2D.
  """
  monkeypatch.setenv(layers.ATROUS_PATH_ENV, 'portable')
  images = tf.constant(np.random.RandomState(0).randn(2, 33, 31, 3).astype(
      np.float32))
  features = resnet_v1.resnet_v1(images, 'resnet_v1_50',
                                 filters=[4, 4, 4, 4], num_blocks=[1, 1, 2, 1],
                                 is_training=True, use_global_status=False,
                                 root_filters=8)
  variables = tf.trainable_variables()
  grads = tf.gradients(tf.reduce_mean(tf.square(features)), variables)
  dilated = [op.name for op in tf.get_default_graph().get_operations()
             if op.type == 'Conv2D' and op.get_attr('dilations') != [1] * 4]
  assert not dilated
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    values = sess.run(grads)
  for var, g in zip(variables, values):
    assert np.all(np.isfinite(g)), var.op.name
  block4 = [g for var, g in zip(variables, values)
            if 'block4' in var.op.name and 'weights' in var.op.name]
  assert block4 and all(np.abs(g).max() > 0 for g in block4)


def _conv_paths_in_a_new_process(onednn):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn,
             TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=root)
  env.pop(layers.ATROUS_PATH_ENV, None)
  code = ('import json; import network; from network.common import layers; '
          'print(json.dumps(layers.describe_conv_paths()))')
  out = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                       capture_output=True, text=True, cwd=root).stdout
  return json.loads(out.strip().splitlines()[-1])


def test_each_onednn_setting_in_a_real_process():
  """TF_ENABLE_ONEDNN_OPTS=0 is what AVX2-only CPUs get: portable path."""
  off = _conv_paths_in_a_new_process('0')
  assert off['onednn'] is False
  assert off['native_dilated_conv_trains'] is False
  assert off['atrous_conv'] == 'portable'
  on = _conv_paths_in_a_new_process('1')
  assert on['atrous_conv'] == ('native' if on['native_dilated_conv_trains']
                               else 'portable')


@pytest.mark.parametrize('use_global_status', [False, True])
def test_global_status_freezes_gamma_and_beta(use_global_status):
  # The original's batch norm created gamma and beta with
  # trainable=not use_global_status; its conv weights stayed trainable.
  x = tf.constant(np.random.RandomState(0).randn(2, 5, 5, 3), tf.float32)
  layers.conv(x, 'c', 4, 3, is_training=True,
              use_global_status=use_global_status)
  trainable = sorted(v.op.name for v in tf.trainable_variables())
  if use_global_status:
    assert trainable == ['c/weights']
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  else:
    assert trainable == ['c/BatchNorm/beta', 'c/BatchNorm/gamma',
                         'c/weights']
  names = sorted(v.op.name for v in tf.global_variables())
  assert names == ['c/BatchNorm/beta', 'c/BatchNorm/gamma',
                   'c/BatchNorm/moving_mean', 'c/BatchNorm/moving_variance',
                   'c/weights']


def test_new_weights_and_biases_start_glorot_uniform():
  # The original created both with tf.get_variable and no initializer:
  # Glorot-uniform, limit sqrt(6 / (fan_in + fan_out)); a 1-D bias of n
  # has fan_in = fan_out = n. Weights: 3 * 3 * 16 in, 3 * 3 * 64 out.
  x = tf.zeros([1, 4, 4, 16])
  layers.conv(x, 'c', 64, 3, relu=False, biased=True, bn=False)
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    weights, biases = sess.run(tf.global_variables())
  for values, limit in ((weights, np.sqrt(6.0 / (144 + 576))),
                        (biases, np.sqrt(6.0 / (64 + 64)))):
    assert np.abs(values).max() <= limit
    assert np.abs(values).max() > 0.8 * limit
    # Uniform on [-limit, limit]: variance limit**2 / 3.
    assert np.var(values) == pytest.approx(limit**2 / 3, rel=0.3)
  assert np.abs(biases).max() > 0  # Not the zeros of before.
