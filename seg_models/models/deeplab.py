"""DeepLab (v2) ASPP head on a ResNet-v1 backbone, producing embeddings.

Atrous spatial pyramid pooling as in DeepLab v2: four parallel biased 3x3
convs with rates 6, 12, 18 and 24 straight to num_classes channels
(`block5/fc1_c0` .. `fc1_c3`), summed.
"""
import tensorflow.compat.v1 as tf

from network.common import layers as nn
from seg_models.models import common

ASPP_RATES = (6, 12, 18, 24)


def deeplab(x,
            name,
            cnn_fn,
            num_classes,
            is_training,
            use_global_status,
            reuse=False,
            width_multiplier=1.0,
            bn_decay=None):
  """Builds the backbone and the ASPP head.

  Args: see seg_models.models.pspnet.pspnet (width_multiplier only affects
    the backbone here: ASPP has no hidden layer).

  Returns:
    Output [N, ceil(H/8), ceil(W/8), num_classes] (or a list, per tower).
  """
  del width_multiplier, bn_decay  # ASPP maps block4 straight to outputs.
  x = cnn_fn(x, name, is_training, use_global_status, reuse)
  xs, was_list = nn._as_towers(x)  # pylint: disable=protected-access
  with tf.variable_scope(name, reuse=reuse):
    with tf.variable_scope(common.HEAD_SCOPE):
      branches = [
          common.classifier(xs, 'fc1_c%d' % i, num_classes, is_training,
                            dilation=rate, kernel_size=3)
          for i, rate in enumerate(ASPP_RATES)]
      outputs = []
      for tower, t in enumerate(xs):
        with tf.device(t.device):
          outputs.append(tf.add_n([b[tower] for b in branches],
                                  name='fc1_sum'))
  return nn._from_towers(outputs, was_list)  # pylint: disable=protected-access

