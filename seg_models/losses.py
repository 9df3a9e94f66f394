"""The training losses, in one table.

LOSSES maps a loss name to a Loss entry that declares everything the trainer
needs to know about it:

    name            channels (besides IMAGE)            output
    segsort         LABEL, CLUSTER_LABEL, LOCATION      embedding_dim
    segsort_unsup   OVERSEG                             embedding_dim
    softmax         LABEL                               num_classes

- channels: the sample keys of seg_models/image_reader.py the loss reads;
  the input pipeline produces exactly these, and the trainer hands them to
  the loss resized (nearest neighbour) to the network's output size;
- output: what the network outputs for it, EMBEDDING (options.embedding_dim
  channels) or LOGITS (options.num_classes channels);
- build: fn(output, inputs, options) -> scalar loss, where inputs maps each
  declared channel to its [B, h, w, C] tensor and options is the trainer's
  TrainOptions.

The weight decay added to every loss (get_weight_decay_loss) lives here too.
"""
import dataclasses
from typing import Callable, Tuple

import tensorflow.compat.v1 as tf

from network.segsort import train_utils
from seg_models import image_reader

SEGSORT = 'segsort'
UNSUPERVISED = 'segsort_unsup'
SOFTMAX = 'softmax'

# What the network outputs: unit embeddings to sort, or class logits.
EMBEDDING = 'embedding'
LOGITS = 'logits'
# The option that gives the output's depth, per kind of output.
OUTPUT_DEPTH_OPTIONS = {EMBEDDING: 'embedding_dim', LOGITS: 'num_classes'}


@dataclasses.dataclass(frozen=True)
class Loss:
  """One entry of LOSSES (see the module docstring)."""
  name: str
  channels: Tuple[str, ...]
  output: str
  build: Callable

  def get_output_depth(self, options):
    """The network's output depth for this loss under options."""
    return getattr(options, OUTPUT_DEPTH_OPTIONS[self.output])


def add_softmax_loss(logits, labels, num_classes, ignore_label):
  """Pixel-wise softmax cross-entropy over the pixels with a valid class.

  loss = mean over pixels i with 0 <= y_i < num_classes and y_i !=
  ignore_label of -log softmax(logits_i)[y_i]; 0 when no pixel is valid.

  Args:
    logits: A float tensor [B, h, w, num_classes].
    labels: An integer tensor [B, h, w, 1] or [B, h, w] of classes.
    num_classes: C.
    ignore_label: The class id to leave out.

  Returns:
    A float32 scalar tensor.
  """
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  logits = tf.reshape(logits, [-1, num_classes])
  valid = tf.logical_and(tf.logical_and(labels >= 0, labels < num_classes),
                         tf.not_equal(labels, ignore_label))
  indices = tf.squeeze(tf.where(valid), 1)
  losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.gather(labels, indices), logits=tf.gather(logits, indices))
  count = tf.cast(tf.size(indices), tf.float32)
  return tf.reduce_sum(losses) / tf.maximum(count, 1.0)


def get_weight_decay_loss(weight_decay, variables):
  """L2 weight decay of the conv weights.

  loss = weight_decay * sum over variables named '.../weights' of
  ||w||^2 / 2 (biases and batch-norm parameters are not decayed).

  Args:
    weight_decay: The decay factor (0 gives a constant 0).
    variables: The variables to choose the weights from.

  Returns:
    A float32 scalar tensor.
  """
  weights = [v for v in variables if v.op.name.endswith('/weights')]
  if not weights or weight_decay == 0:
    return tf.constant(0.0)
  return weight_decay * tf.add_n([tf.nn.l2_loss(w) for w in weights])


def _build_segsort(output, inputs, options):
  """Supervised SegSort: k-means from the grid, prototypes, memory banks."""
  return train_utils.add_segsort_loss(
      output, inputs[image_reader.LABEL], options.embedding_dim,
      options.ignore_label, options.concentration,
      inputs[image_reader.CLUSTER_LABEL], options.num_clusters,
      options.kmeans_iterations, options.num_banks,
      inputs[image_reader.LOCATION])


def _build_unsupervised(output, inputs, options):
  """Unsupervised SegSort: the oversegmentation regions are the segments."""
  return train_utils.add_unsupervised_segsort_loss(
      output, options.concentration, inputs[image_reader.OVERSEG])


def _build_softmax(output, inputs, options):
  """Pixel-wise softmax cross-entropy (the baseline)."""
  return add_softmax_loss(output, inputs[image_reader.LABEL],
                          options.num_classes, options.ignore_label)


LOSSES = {loss.name: loss for loss in (
    Loss(SEGSORT, (image_reader.LABEL, image_reader.CLUSTER_LABEL,
                   image_reader.LOCATION), EMBEDDING, _build_segsort),
    Loss(UNSUPERVISED, (image_reader.OVERSEG,), EMBEDDING,
         _build_unsupervised),
    Loss(SOFTMAX, (image_reader.LABEL,), LOGITS, _build_softmax),
)}
