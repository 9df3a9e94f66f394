"""PSPNet head on a ResNet-v1 backbone, producing pixel embeddings.

Pyramid pooling (Zhao et al., CVPR 2017) on the block4 features: for bins
1, 2, 3 and 6, average-pool into bins x bins cells, 1x1 conv + BN + ReLU,
bilinear upsampling back; concatenate [pool1, pool2, pool3, pool6, block4]
(the original's order, which its checkpoints depend on), 3x3 conv + BN +
ReLU, and a biased 1x1 conv to num_classes (the embedding dimension for
SegSort). Variables match the original release's names, see
../shared/reference/segsort_pspnet_variables.txt.
"""
import tensorflow.compat.v1 as tf

from network.common import layers as nn
from network.common import resnet_v1
from seg_models.models import common

PYRAMID_BINS = (1, 2, 3, 6)
# Scopes (inside the backbone's) of the head's variables.
HEAD_SCOPES = (common.HEAD_SCOPE,)


def pspnet(x,
           name,
           cnn_fn,
           num_classes,
           is_training,
           use_global_status,
           reuse=False,
           width_multiplier=1.0,
           bn_decay=None):
  """Builds the backbone and the PSPNet head.

  Args:
    x: images [N, H, W, 3] (mean subtracted), or a list of them (towers).
    name: the backbone's scope, e.g. 'resnet_v1_101'.
    cnn_fn: backbone builder fn(x, name, is_training, use_global_status,
      reuse) -> block4 features at output stride 8.
    num_classes: output channels (embedding dimension, or classes).
    is_training, use_global_status: see network.common.layers.batch_norm.
    reuse: reuse the variables of an earlier call.
    width_multiplier: scales the head's 512-channel convs.
    bn_decay: the head's batch-norm decay (None: HEAD_BN_DECAY).

  Returns:
    Output [N, ceil(H/8), ceil(W/8), num_classes] (or a list, per tower).
  """
  x = cnn_fn(x, name, is_training, use_global_status, reuse)
  width = common.scaled_width(common.HEAD_FILTERS, width_multiplier)
  bn_args = dict(decay=common.HEAD_BN_DECAY if bn_decay is None else bn_decay,
                 is_training=is_training,
                 use_global_status=use_global_status)
  xs, was_list = nn._as_towers(x)  # pylint: disable=protected-access
  size = xs[0].get_shape().as_list()[1:3]
  with tf.variable_scope(name, reuse=reuse):
    with tf.variable_scope(common.HEAD_SCOPE):
      branches = []
      for bins in PYRAMID_BINS:
        with tf.variable_scope('pool%d' % bins):
          pooled = nn.map_towers(
              lambda t, b=bins: nn.adaptive_avg_pool(t, b), xs)
          pooled = nn.conv(pooled, 'conv1', width, 1, 1, **bn_args)
          branches.append(common.resize_bilinear(pooled, size))
      fused = []
      for tower, t in enumerate(xs):
        with tf.device(t.device):
          fused.append(tf.concat([b[tower] for b in branches] + [t], axis=3,
                                 name='concat'))
      y = nn.conv(fused, 'conv2', width, 3, 1, **bn_args)
      y = common.classifier(y, 'fc1_voc12', num_classes, is_training)
  return nn._from_towers(y, was_list)  # pylint: disable=protected-access


def pspnet_resnet101(x, num_classes, is_training, use_global_status,
                     reuse=False, width_multiplier=1.0,
                     variant=resnet_v1.DEFAULT_VARIANT):
  """PSPNet on ResNet-v1-101; returns [output]."""
  cnn_fn = common.backbone_fn('resnet_v1_101', variant, width_multiplier)
  return [pspnet(x, 'resnet_v1_101', cnn_fn, num_classes, is_training,
                 use_global_status, reuse, width_multiplier)]
