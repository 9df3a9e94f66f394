"""DeepLab (v2) ASPP head on a ResNet-v1 backbone, producing embeddings.

Atrous spatial pyramid pooling as in DeepLab v2: four parallel biased 3x3
convs with rates 6, 12, 18 and 24 straight to num_classes channels, summed.
Their variables are `fc1_c0` .. `fc1_c3` directly under the backbone scope
(e.g. `resnet_v1_101/fc1_c0/weights`), the names of the original release's
DeepLab checkpoints; HEAD_SCOPES lists them.
"""
import tensorflow.compat.v1 as tf

from network.common import layers as nn
from seg_models.models import common

ASPP_RATES = (6, 12, 18, 24)
# Scopes (inside the backbone's) of the head's variables.
HEAD_SCOPES = tuple('fc1_c%d' % i for i in range(len(ASPP_RATES)))


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
    branches = [
        common.classifier(xs, scope, num_classes, is_training,
                          dilation=rate, kernel_size=3)
        for scope, rate in zip(HEAD_SCOPES, ASPP_RATES)]
    outputs = []
    for tower, t in enumerate(xs):
      with tf.device(t.device):
        outputs.append(tf.add_n([b[tower] for b in branches],
                                name='fc1_sum'))
  return nn._from_towers(outputs, was_list)  # pylint: disable=protected-access

