"""ResNet-v1 backbones with TF-Slim's variable names, at output stride 8.

The graph is TF-Slim's resnet_v1 (models/research/slim/nets/resnet_v1.py)
run with output_stride=8, so that TF-Slim's public ImageNet checkpoint
`resnet_v1_101.ckpt` restores with no renaming:

  conv1     7x7/2 conv (symmetric "same" padding) + BN + ReLU
  pool1     3x3/2 max pool
  block1-4  bottleneck units 1x1 -> 3x3 -> 1x1 (x4 channels); a block's
            stride sits in the 3x3 conv of its LAST unit; the shortcut is a
            1x1 conv + BN when the depth changes, otherwise a 1x1/stride max
            pool (stride 2) or the identity.

With output stride 8, block2's stride is dropped and every later unit uses
atrous convolution instead (block3 rate 2, block4 rate 4), the bookkeeping
of slim's stack_blocks_dense.

Two numerics of this graph exist (see VARIANTS): the original SegSort
release pads pool1 by one zero pixel on each side and pools VALID, with
batch-norm epsilon 1e-3 (its released checkpoints were trained so); TF-Slim
pools SAME (extra pixel after) with epsilon 1e-5 (the ImageNet checkpoint
was trained so). tests/test_resnet.py checks both against outputs of TF-Slim
and of the original release on a checkpoint written by TF-Slim.
"""
import collections

import tensorflow.compat.v1 as tf

from network.common import layers as nn

# Backbone numerics: pool1 padding scheme and batch-norm epsilon.
Variant = collections.namedtuple('Variant', ['pool1_padding', 'bn_epsilon'])
VARIANTS = {
    # One zero pixel each side, then a VALID 3x3/2 max pool (inputs of the
    # pool are post-ReLU, so zero padding never wins the max wrongly).
    'original': Variant(pool1_padding='pad_valid', bn_epsilon=1e-3),
    'slim': Variant(pool1_padding='SAME', bn_epsilon=1e-5),
}
DEFAULT_VARIANT = 'original'

# Moving-average decay of the backbone's batch norm (the original release).
BACKBONE_BN_DECAY = 0.9997

# Unit counts of the standard depths.
NUM_BLOCKS = {
    'resnet_v1_50': [3, 4, 6, 3],
    'resnet_v1_101': [3, 4, 23, 3],
}
DEFAULT_FILTERS = [64, 128, 256, 512]
ROOT_FILTERS = 64


def get_variant(variant):
  """Returns the Variant named `variant`, with a clear error otherwise."""
  if variant not in VARIANTS:
    raise ValueError('Unknown backbone variant %r; choose one of %s.'
                     % (variant, sorted(VARIANTS)))
  return VARIANTS[variant]


def bottleneck(x,
               name,
               depth,
               depth_bottleneck,
               stride,
               dilation=1,
               is_training=True,
               use_global_status=False,
               epsilon=nn.BN_EPSILON,
               decay=BACKBONE_BN_DECAY):
  """One ResNet-v1 bottleneck unit (scope NAME/bottleneck_v1).

  Args:
    x: a tensor [N, H, W, C] or a list of them (towers).
    name: the unit's scope, e.g. 'unit_1'.
    depth: output channels (4 x depth_bottleneck).
    depth_bottleneck: channels of the 1x1 and 3x3 convs.
    stride: stride of the 3x3 conv (and of the shortcut).
    dilation: atrous rate of the 3x3 conv.
    is_training, use_global_status, epsilon, decay: see layers.batch_norm.

  Returns:
    relu(shortcut + residual), like x.
  """
  common = dict(decay=decay, is_training=is_training,
                use_global_status=use_global_status, epsilon=epsilon)
  xs, was_list = nn._as_towers(x)  # pylint: disable=protected-access
  depth_in = xs[0].get_shape().as_list()[-1]
  with tf.variable_scope(name):
    with tf.variable_scope('bottleneck_v1'):
      if depth == depth_in:
        if stride == 1:
          shortcut = xs
        else:
          shortcut = nn.max_pool(xs, 'shortcut', 1, stride, 'SAME')
      else:
        shortcut = nn.conv(xs, 'shortcut', depth, 1, stride, relu=False,
                           **common)
      residual = nn.conv(xs, 'conv1', depth_bottleneck, 1, 1, **common)
      residual = nn.conv(residual, 'conv2', depth_bottleneck, 3, stride,
                         dilation=dilation, **common)
      residual = nn.conv(residual, 'conv3', depth, 1, 1, relu=False, **common)
      outputs = []
      for s, r in zip(shortcut, residual):
        with tf.device(r.device):
          outputs.append(tf.nn.relu(s + r))
  return nn._from_towers(outputs, was_list)  # pylint: disable=protected-access


def _pool1(x, padding):
  if padding == 'pad_valid':
    def _pad(t):
      return tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return nn.max_pool(nn.map_towers(_pad, x), 'pool1', 3, 2, 'VALID')
  return nn.max_pool(x, 'pool1', 3, 2, padding)


def resnet_v1(x,
              name,
              filters=None,
              num_blocks=None,
              strides=None,
              dilations=None,
              is_training=True,
              use_global_status=True,
              reuse=False,
              variant=DEFAULT_VARIANT,
              root_filters=ROOT_FILTERS,
              bn_decay=BACKBONE_BN_DECAY):
  """Generic ResNet-v1 at output stride 8.

  Args:
    x: images [N, H, W, 3] (mean subtracted), or a list of them (towers).
    name: the top scope, e.g. 'resnet_v1_101'.
    filters: bottleneck widths of block1..4 (outputs are 4x); default
      [64, 128, 256, 512].
    num_blocks: units per block; default [3, 4, 23, 3].
    strides: per block, the stride of the block's last unit before the
      output-stride-8 bookkeeping; default [2, 1, 1, 1] (slim's blocks 2 and
      3 strides are expressed by the dilations at output stride 8).
    dilations: per block, the atrous rate of its units (None = 1); default
      [None, None, 2, 4].
    is_training, use_global_status: see layers.batch_norm.
    reuse: reuse the variables of an earlier call.
    variant: 'original' or 'slim' numerics, see VARIANTS.
    root_filters: channels of conv1 (64 in every public ResNet).
    bn_decay: moving-average decay of batch norm (the original's 0.9997).

  Returns:
    block4 features [N, ceil(H/8), ceil(W/8), 4 * filters[-1]] (or a list).
  """
  filters = list(DEFAULT_FILTERS if filters is None else filters)
  num_blocks = list(NUM_BLOCKS['resnet_v1_101']
                    if num_blocks is None else num_blocks)
  strides = list([2, 1, 1, 1] if strides is None else strides)
  dilations = list([None, None, 2, 4] if dilations is None else dilations)
  if not (len(filters) == len(num_blocks) == len(strides) == len(dilations)):
    raise ValueError('filters, num_blocks, strides and dilations must have '
                     'one entry per block; got %s, %s, %s, %s'
                     % (filters, num_blocks, strides, dilations))
  numerics = get_variant(variant)
  common = dict(is_training=is_training, use_global_status=use_global_status,
                epsilon=numerics.bn_epsilon, decay=bn_decay)
  with tf.variable_scope(name, reuse=reuse):
    x = nn.conv(x, 'conv1', root_filters, 7, 2, **common)
    x = _pool1(x, numerics.pool1_padding)
    for b, (width, units, stride, dilation) in enumerate(
        zip(filters, num_blocks, strides, dilations)):
      with tf.variable_scope('block%d' % (b + 1)):
        for u in range(units):
          last = u == units - 1
          x = bottleneck(x, 'unit_%d' % (u + 1), width * 4, width,
                         stride if last else 1, dilation=dilation or 1,
                         **common)
  return x


def _scaled(widths, multiplier):
  return [max(1, int(round(w * multiplier))) for w in widths]


def resnet_v1_by_depth(x, depth, name, is_training, use_global_status,
                       reuse=False, variant=DEFAULT_VARIANT,
                       width_multiplier=1.0, bn_decay=None):
  """ResNet-v1 of a standard depth with widths scaled by width_multiplier.

  Args:
    x: images [N, H, W, 3] or a list of them (towers).
    depth: 'resnet_v1_50' or 'resnet_v1_101' (unit counts, NUM_BLOCKS).
    name: the top scope (the depth's name in the public checkpoints).
    width_multiplier: scales conv1 and every bottleneck width; variable
      names are unchanged, so a small model is the same graph with thinner
      tensors.
    bn_decay: batch-norm moving-average decay; None = BACKBONE_BN_DECAY.
    Others: see resnet_v1.

  Returns:
    block4 features, see resnet_v1.
  """
  if depth not in NUM_BLOCKS:
    raise ValueError('Unknown backbone %r; choose one of %s.'
                     % (depth, sorted(NUM_BLOCKS)))
  return resnet_v1(x, name,
                   filters=_scaled(DEFAULT_FILTERS, width_multiplier),
                   num_blocks=NUM_BLOCKS[depth],
                   is_training=is_training,
                   use_global_status=use_global_status,
                   reuse=reuse, variant=variant,
                   root_filters=_scaled([ROOT_FILTERS], width_multiplier)[0],
                   bn_decay=BACKBONE_BN_DECAY if bn_decay is None
                   else bn_decay)


def resnet_v1_101(x, name='resnet_v1_101', is_training=True,
                  use_global_status=True, reuse=False,
                  variant=DEFAULT_VARIANT, width_multiplier=1.0):
  """ResNet-v1-101 (units 3/4/23/3) at output stride 8."""
  return resnet_v1_by_depth(x, 'resnet_v1_101', name, is_training,
                            use_global_status, reuse, variant,
                            width_multiplier)


def resnet_v1_50(x, name='resnet_v1_50', is_training=True,
                 use_global_status=True, reuse=False,
                 variant=DEFAULT_VARIANT, width_multiplier=1.0):
  """ResNet-v1-50 (units 3/4/6/3) at output stride 8."""
  return resnet_v1_by_depth(x, 'resnet_v1_50', name, is_training,
                            use_global_status, reuse, variant,
                            width_multiplier)


BACKBONES = {
    'resnet_v1_101': resnet_v1_101,
    'resnet_v1_50': resnet_v1_50,
}
