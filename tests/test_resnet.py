"""The backbone against TF-Slim's own variable list and outputs."""
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.common import layers
from network.common import resnet_v1
from seg_models.models import pspnet


def _read_reference_variables(path):
  variables = {}
  with open(path) as f:
    for line in f:
      name, shape = line.split()
      variables[name] = [int(v) for v in shape.split(',')]
  return variables


def _graph_variables():
  return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def test_resnet_v1_101_matches_slim_variables(reference_dir):
  expected = _read_reference_variables(
      os.path.join(reference_dir, 'resnet_v1_101_variables.txt'))
  images = tf.placeholder(tf.float32, [1, 64, 64, 3])
  resnet_v1.resnet_v1_101(images, 'resnet_v1_101', is_training=True,
                          use_global_status=False)
  got = _graph_variables()
  assert len(expected) == 520
  assert got == expected


def test_pspnet_matches_original_release_variables(reference_dir):
  expected = _read_reference_variables(
      os.path.join(reference_dir, 'segsort_pspnet_variables.txt'))
  images = tf.placeholder(tf.float32, [1, 64, 64, 3])
  outputs = pspnet.pspnet_resnet101(images, 32, is_training=True,
                                    use_global_status=False)
  assert isinstance(outputs, list) and len(outputs) == 1
  got = _graph_variables()
  assert len(expected) == 547
  assert got == expected


@pytest.mark.parametrize('variant,prefix', [('original', 'block4_original_'),
                                            ('slim', 'block4_')])
@pytest.mark.parametrize('key', ['96x96', '101x77'])
@pytest.mark.parametrize('atrous', ['native', 'portable'])
def test_tiny_backbone_reproduces_reference(reference_dir, variant, prefix,
                                            key, atrous, monkeypatch):
  # Both ways of computing the dilated convs of blocks 3 and 4 (see
  # layers.atrous_path); the native forward kernel exists on every CPU.
  monkeypatch.setenv(layers.ATROUS_PATH_ENV, atrous)
  ref_dir = os.path.join(reference_dir, 'slim_resnet_v1_tiny')
  with open(os.path.join(ref_dir, 'README.json')) as f:
    meta = json.load(f)
  inputs = np.load(os.path.join(ref_dir, 'input_%s.npy' % key))
  expected = np.load(os.path.join(ref_dir, prefix + key + '.npy'))
  images = tf.placeholder(tf.float32, inputs.shape)
  features = resnet_v1.resnet_v1(
      images, 'resnet_v1_101', filters=meta['blocks']['filters'],
      num_blocks=meta['blocks']['num_units'], is_training=False,
      use_global_status=True, variant=variant,
      root_filters=meta['blocks']['conv1_filters'])
  with tf.Session() as sess:
    tf.train.Saver().restore(sess, os.path.join(ref_dir, 'model.ckpt'))
    out = sess.run(features, {images: inputs})
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3)
  # The two numerics differ by more than the tolerance, so matching one is
  # not an accident of the other.
  other = np.load(os.path.join(
      ref_dir, ('block4_' if variant == 'original' else 'block4_original_')
      + key + '.npy'))
  assert np.abs(out - other).max() > 1e-2


def test_width_multiplier_keeps_names_and_scales_widths():
  images = tf.placeholder(tf.float32, [1, 33, 47, 3])
  feats = resnet_v1.resnet_v1_101(images, is_training=True,
                                  use_global_status=False,
                                  width_multiplier=0.125)
  assert feats.shape.as_list() == [1, 5, 6, 256]
  names = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
  assert names['resnet_v1_101/conv1/weights'] == [7, 7, 3, 8]
  assert names['resnet_v1_101/block4/unit_3/bottleneck_v1/conv3/weights'] == [
      1, 1, 64, 256]
  assert len(names) == 520


def test_resnet_v1_50_unit_counts():
  images = tf.placeholder(tf.float32, [1, 32, 32, 3])
  resnet_v1.resnet_v1_50(images, is_training=False, use_global_status=True,
                         width_multiplier=0.0625)
  names = [v.op.name for v in tf.global_variables()]
  assert all(n.startswith('resnet_v1_50/') for n in names)
  assert any('block3/unit_6/' in n for n in names)
  assert not any('block3/unit_7/' in n for n in names)


def test_unknown_variant_is_a_clear_error():
  images = tf.placeholder(tf.float32, [1, 32, 32, 3])
  with pytest.raises(ValueError, match='variant'):
    resnet_v1.resnet_v1_101(images, variant='caffe')
