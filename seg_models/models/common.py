"""Names and layers shared by the segmentation heads.

A head's variables live under one or more scopes inside the backbone's
scope: PSPNet's under HEAD_SCOPE ('block5'), e.g.
`resnet_v1_101/block5/conv2/weights`; DeepLab's ASPP under `fc1_c0` ..
`fc1_c3`. Each model module lists its own as HEAD_SCOPES, and
seg_models.models.get_extra_layer_scopes returns them by model name for the
trainer's x10 learning rate and the restore exclusion
(--not_restore_classifier).
"""
import tensorflow.compat.v1 as tf

from network.common import layers as nn
from network.common import resnet_v1

HEAD_SCOPE = 'block5'
# Moving-average decay of the head's batch norm (the original release).
HEAD_BN_DECAY = 0.99
# Width of the head's hidden convolutions at width multiplier 1.
HEAD_FILTERS = 512


def is_head_variable(var_or_name, head_scopes=(HEAD_SCOPE,)):
  """Whether a variable (or name) lies under one of head_scopes.

  Args:
    var_or_name: a variable or a variable name, e.g.
      'resnet_v1_101/block5/conv2/weights'.
    head_scopes: scope names relative to the backbone scope; a scope
      matches whole name components anywhere in the name.
  """
  name = var_or_name if isinstance(var_or_name, str) else var_or_name.op.name
  name = '/%s/' % name
  return any(('/%s/' % scope) in name for scope in head_scopes)


def scaled_width(width, width_multiplier):
  return max(1, int(round(width * width_multiplier)))


def classifier(x, name, num_outputs, is_training, dilation=1, kernel_size=1):
  """The head's last layer: a biased conv without BN or ReLU."""
  return nn.conv(x, name, num_outputs, kernel_size, 1, relu=False,
                 biased=True, bn=False, dilation=dilation,
                 is_training=is_training)


def resize_bilinear(x, size):
  """Bilinear resize with TF 1.x's corner convention (tensor or towers)."""
  return nn.map_towers(
      lambda t: tf.image.resize_bilinear(t, size, align_corners=False), x)


def backbone_fn(backbone='resnet_v1_101', variant=resnet_v1.DEFAULT_VARIANT,
                width_multiplier=1.0, bn_decay=None):
  """A cnn_fn(x, name, is_training, use_global_status, reuse) for a head.

  Args:
    backbone: 'resnet_v1_101' or 'resnet_v1_50'.
    variant: backbone numerics, see network.common.resnet_v1.VARIANTS.
    width_multiplier: scales conv1 and the bottleneck widths.
    bn_decay: batch-norm moving-average decay (None: the original's).
  """
  resnet_v1.get_variant(variant)  # Fails early on an unknown name.
  if backbone not in resnet_v1.NUM_BLOCKS:
    raise ValueError('Unknown backbone %r; choose one of %s.'
                     % (backbone, sorted(resnet_v1.NUM_BLOCKS)))

  def cnn_fn(x, name, is_training, use_global_status, reuse=False):
    return resnet_v1.resnet_v1_by_depth(
        x, backbone, name, is_training, use_global_status, reuse,
        variant=variant, width_multiplier=width_multiplier,
        bn_decay=bn_decay)
  return cnn_fn
