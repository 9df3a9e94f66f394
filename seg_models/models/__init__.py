"""Segmentation models: a head (by name) on a backbone (by name).

MODELS maps a head name to its builder
fn(x, name, cnn_fn, num_classes, is_training, use_global_status, reuse,
width_multiplier); get_model_fn binds a head, a backbone and its numerics
into the function every script calls. get_extra_layer_scopes names each
head's variable scopes (x10 learning rate, --not_restore_classifier).
"""
from network.common import resnet_v1
from seg_models.models import common
from seg_models.models import deeplab
from seg_models.models import pspnet

MODELS = {
    'pspnet': pspnet.pspnet,
    'deeplab': deeplab.deeplab,
}
# Scopes of each head's variables, inside the backbone scope.
HEAD_SCOPES = {
    'pspnet': pspnet.HEAD_SCOPES,
    'deeplab': deeplab.HEAD_SCOPES,
}
# The backbone names and numerics get_model_fn accepts (the scripts' choices).
BACKBONES = sorted(resnet_v1.NUM_BLOCKS)
VARIANTS = sorted(resnet_v1.VARIANTS)


def get_extra_layer_scopes(model=None):
  """The variable scopes of a model's head (all models' for None).

  Args:
    model: a key of MODELS, or None.

  Returns:
    A list of scope names relative to the backbone scope, e.g. ['block5'];
    see seg_models.models.common.is_head_variable.
  """
  if model is None:
    return sorted({s for scopes in HEAD_SCOPES.values() for s in scopes})
  if model not in HEAD_SCOPES:
    raise ValueError('Unknown model %r; choose one of %s.'
                     % (model, sorted(MODELS)))
  return list(HEAD_SCOPES[model])


def get_model_fn(model='pspnet', backbone='resnet_v1_101',
                 width_multiplier=1.0, variant=resnet_v1.DEFAULT_VARIANT,
                 bn_decay=None):
  """Returns model_fn(x, num_outputs, is_training, use_global_status, reuse).

  model_fn maps images [N, H, W, 3] (or a list of them, one per tower) to
  outputs [N, ceil(H/8), ceil(W/8), num_outputs] (or a list, per tower).
  Its variables live under the backbone's scope (e.g. 'resnet_v1_101').
  bn_decay overrides the batch-norm moving-average decay of backbone and
  head (None: the original's 0.9997 and 0.99).
  """
  if model not in MODELS:
    raise ValueError('Unknown model %r; choose one of %s.'
                     % (model, sorted(MODELS)))
  if width_multiplier <= 0:
    raise ValueError('width_multiplier must be positive, got %r.'
                     % (width_multiplier,))
  if bn_decay is not None and not 0.0 <= bn_decay < 1.0:
    raise ValueError('bn_decay must be in [0, 1), got %r.' % (bn_decay,))
  cnn_fn = common.backbone_fn(backbone, variant, width_multiplier, bn_decay)
  head_fn = MODELS[model]

  def model_fn(x, num_outputs, is_training, use_global_status, reuse=False):
    return head_fn(x, backbone, cnn_fn, num_outputs, is_training,
                   use_global_status, reuse, width_multiplier, bn_decay)
  return model_fn
