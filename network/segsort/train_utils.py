"""SegSort training losses: supervised (with memory banks) and unsupervised.

Function names and signatures follow the original release
(network/segsort/train_utils.py). Unlike the original, which unrolled a
Python loop over the images of the batch, the whole batch is handled by
masked, batched tensor ops ([batch, pixels, dim] for k-means, the batch's
valid pixels against all prototypes for the loss), so the graph has the same
size for every batch size.

Memory banks
------------
With num_banks > 0, add_segsort_loss keeps the prototypes of the last
`num_banks` batches in non-trainable variables under the variable scope
MEMORY_BANK_SCOPE (in GLOBAL_VARIABLES, so they are checkpointed and
training resumes with them):

  MEMORY_BANK_SCOPE/prototypes  float32 [num_banks, capacity, D]
  MEMORY_BANK_SCOPE/classes     int32   [num_banks, capacity]
  MEMORY_BANK_SCOPE/valid       bool    [num_banks, capacity]

Bank 0 is the oldest, bank num_banks - 1 the newest. A slot counts as a
prototype only where `valid` is True, so the initial empty banks (the
original filled them with random vectors labelled background) and the unused
tail of a bank never take part in the loss. After the loss value is computed
the update op drops bank 0, shifts the others down and stores this batch's
prototypes, shuffled, in the newest bank: truncated to `capacity` when the
batch has more segments, padded with invalid slots when it has fewer.

The update op is added to tf.GraphKeys.UPDATE_OPS, which the trainer groups
with its train op (as for batch-norm moving averages), and to the collection
MEMORY_BANK_UPDATE_OPS; get_memory_bank_update_ops() returns it. Evaluating
the loss alone (e.g. for a summary) does not touch the banks. (In the
original the update ops were created but nothing depended on them, so the
banks never changed.)
"""
import warnings

import tensorflow.compat.v1 as tf

from network.segsort import common_utils

# Variable scope of the memory bank variables (relative to the variable scope
# where the loss is built; the trainers build it at the top level).
MEMORY_BANK_SCOPE = 'segsort_memory_bank'
# Graph collection holding the memory bank update op(s).
MEMORY_BANK_UPDATE_OPS = 'segsort_memory_bank_update_ops'

# Segment keys are (image * K + cluster) * _CLASS_KEY_RANGE + class, in int64,
# so that every class id below 2**31 gives a distinct segment.
_CLASS_KEY_RANGE = 2**31
# Unsupervised segment keys: image * _OVERSEG_KEY_RANGE + region id.
_OVERSEG_KEY_RANGE = 256
# Logit standing in for "no term" before the masked max; never exponentiated.
_MASKED_LOGIT = -1e30
# Largest kappa summed in linear space: exp(-2 kappa) stays a normal float32
# (above 1.2e-38), so no similarity underflows.
_CLASS_SUM_MAX_KAPPA = 40.0


def get_memory_bank_update_ops(graph=None):
  """The memory bank update ops added by add_segsort_loss to `graph`."""
  graph = graph or tf.get_default_graph()
  return graph.get_collection(MEMORY_BANK_UPDATE_OPS)


def default_bank_capacity(batch_size, num_clusters):
  """Slots per memory bank: batch_size * num_clusters**2.

  One slot per k-means cluster of the batch. Clusters that straddle a class
  boundary give more segments than that; the excess is dropped at random
  (the bank holds a shuffled batch). Pass a larger bank_capacity to
  add_segsort_loss to keep them.
  """
  return batch_size * common_utils.cluster_grid(num_clusters).count


def _check_rank(tensor, rank, name):
  ndims = tensor.get_shape().ndims
  if ndims is not None and ndims != rank:
    raise ValueError('%s must have rank %d, got shape %s'
                     % (name, rank, tensor.get_shape()))


def _masked_logsumexp(logits, mask):
  """log sum_j exp(logits_ij) over the j where mask_ij, per row.

  Stable for any logit magnitude (the row max is subtracted, and masked-out
  entries are never exponentiated away from 0), with finite values and
  gradients for rows where the mask is empty.

  Args:
    logits: A float tensor [M, Q].
    mask: A bool tensor [M, Q].

  Returns:
    lse: A float tensor [M]; 0 where a row's mask is empty.
    non_empty: A bool tensor [M], whether the row has any masked-in entry.
  """
  non_empty = tf.reduce_any(mask, axis=1)
  row_max = tf.reduce_max(tf.where_v2(mask, logits, _MASKED_LOGIT), axis=1)
  row_max = tf.stop_gradient(tf.where_v2(non_empty, row_max, 0.0))
  shifted = tf.where_v2(mask, logits - row_max[:, tf.newaxis], 0.0)
  sums = tf.reduce_sum(tf.where_v2(mask, tf.exp(shifted), 0.0), axis=1)
  lse = tf.log(tf.where_v2(non_empty, sums, 1.0)) + row_max
  return lse, non_empty


def _calculate_similarity_logits(embedding, prototypes, concentration):
  """kappa * <e_i, p_j>: [M, D] x [Q, D] -> [M, Q]."""
  return concentration * tf.matmul(embedding, prototypes, transpose_b=True)


def _log_space_pixel_losses(logits, pixel_classes, pixel_segments,
                            prototype_classes, prototype_valid):
  """calculate_supervised_pixel_losses with masked log-sum-exps [M, Q].

  Exact for any concentration: every sum is shifted by its own maximum.
  """
  num_prototypes = tf.shape(logits)[1]
  same_class = tf.equal(pixel_classes[:, tf.newaxis],
                        prototype_classes[tf.newaxis, :])
  valid = prototype_valid[tf.newaxis, :]
  own = tf.equal(pixel_segments[:, tf.newaxis],
                 tf.range(num_prototypes)[tf.newaxis, :])
  positives = tf.logical_and(tf.logical_and(same_class, valid),
                             tf.logical_not(own))
  negatives = tf.logical_and(tf.logical_not(same_class), valid)

  own_logit = tf.reduce_sum(tf.where_v2(own, logits, 0.0), axis=1)
  log_positives, has_positives = _masked_logsumexp(logits, positives)
  log_negatives, has_negatives = _masked_logsumexp(logits, negatives)
  # P > 0 exactly when another valid same-class prototype exists.
  log_numerator = tf.where_v2(has_positives, log_positives, own_logit)
  return tf.where_v2(has_negatives,
                     tf.nn.softplus(log_negatives - log_numerator), 0.0)


def _class_sum_pixel_losses(embedding, pixel_classes, pixel_segments,
                            prototypes, prototype_classes, prototype_valid,
                            concentration, memory_prototypes=None,
                            memory_classes=None):
  """calculate_supervised_pixel_losses through per-class sums [M, C].

  With unit (or zero) embeddings and prototypes, every logit lies in
  [-kappa, kappa], so a = exp(kappa * <e_i, p_j> - kappa) lies in
  [exp(-2 kappa), 1]: a normal float32 for kappa <= _CLASS_SUM_MAX_KAPPA,
  never overflowing nor vanishing. The pixel's own entry is set to 0 (not
  subtracted later, which would cancel), and one matmul with the one-hot
  classes of the valid prototypes [Q, C] gives every class's sum:
    S_ic = sum_{j valid, class_j = c, j != s_i} a_ij,
    P_i = S_{i, c_i} e^kappa,  N_i = sum_{c != c_i} S_ic e^kappa.
  Only a few [M, Q] tensors are made (logits, a, a without own, and their
  gradients), instead of a dozen masks and selects. Memory prototypes have
  their own matmuls, so that no gradient is computed for them.
  """
  num_pixels = tf.shape(embedding)[0]
  num_prototypes = tf.shape(prototypes)[0]
  if memory_prototypes is None:
    memory_prototypes = tf.zeros([0, tf.shape(prototypes)[1]],
                                 embedding.dtype)
    memory_classes = tf.zeros([0], tf.int32)
  num_memory = tf.shape(memory_classes)[0]
  # Compact class ids shared by prototypes, memory and pixels.
  classes, class_ids = tf.unique(
      tf.concat([prototype_classes, memory_classes, pixel_classes], 0),
      out_idx=tf.int32)
  num_class_ids = tf.size(classes)
  valid = tf.cast(prototype_valid, embedding.dtype)
  class_members = tf.one_hot(class_ids[:num_prototypes], num_class_ids,
                             dtype=embedding.dtype) * valid[:, tf.newaxis]
  memory_members = tf.one_hot(
      class_ids[num_prototypes:num_prototypes + num_memory], num_class_ids,
      dtype=embedding.dtype)
  pixel_class_ids = class_ids[num_prototypes + num_memory:]
  class_counts = (tf.reduce_sum(class_members, axis=0) +
                  tf.reduce_sum(memory_members, axis=0))

  scaled = embedding * concentration
  shifted = tf.exp(tf.matmul(scaled, prototypes, transpose_b=True) -
                   concentration)
  own_index = tf.stack([tf.range(num_pixels), pixel_segments], axis=1)
  others = tf.tensor_scatter_nd_update(
      shifted, own_index, tf.zeros([num_pixels], embedding.dtype))
  memory_shifted = tf.exp(tf.matmul(
      scaled, tf.stop_gradient(memory_prototypes), transpose_b=True) -
                          concentration)
  class_sums = (tf.matmul(others, class_members) +
                tf.matmul(memory_shifted, memory_members))
  pixel_class = tf.one_hot(pixel_class_ids, num_class_ids, on_value=True,
                           off_value=False)
  positives = tf.reduce_sum(tf.where_v2(pixel_class, class_sums, 0.0), 1)
  negatives = tf.reduce_sum(tf.where_v2(pixel_class, 0.0, class_sums), 1)

  own_valid = tf.gather(valid, pixel_segments)
  own_class_count = tf.gather(class_counts, pixel_class_ids)
  has_positives = own_class_count - own_valid > 0.5
  has_negatives = tf.reduce_sum(class_counts) - own_class_count > 0.5
  # The shift cancels in log N - log numerator.
  own_logit = concentration * (tf.reduce_sum(
      embedding * tf.gather(prototypes, pixel_segments), axis=1) - 1.0)
  log_numerator = tf.where_v2(
      has_positives, tf.log(tf.where_v2(has_positives, positives, 1.0)),
      own_logit)
  log_negatives = tf.log(tf.where_v2(has_negatives, negatives, 1.0))
  return tf.where_v2(has_negatives,
                     tf.nn.softplus(log_negatives - log_numerator), 0.0)


def calculate_supervised_pixel_losses(embedding,
                                      pixel_classes,
                                      pixel_segments,
                                      prototypes,
                                      prototype_classes,
                                      prototype_valid,
                                      concentration,
                                      memory_prototypes=None,
                                      memory_classes=None):
  """Per-pixel supervised SegSort loss.

  With sim_j = exp(kappa * <e_i, p_j>) over the valid prototypes j, pixel i
  of class c in segment s:
    P = sum_{j: class_j = c} sim_j - sim_s,
    numerator = P if P > 0 else sim_s,
    N = sum_{j: class_j != c} sim_j,
    loss_i = -log(numerator / (numerator + N)).
  Computed as loss_i = softplus(log N - log numerator), so that large kappa
  never overflows; loss_i = 0 when N is empty. P sums the other same-class
  prototypes directly (no cancellation in "sum - sim_s"). For
  kappa <= _CLASS_SUM_MAX_KAPPA (a python number) the sums are taken per
  class with one matmul (_class_sum_pixel_losses), otherwise with masked
  log-sum-exps over [M, Q] (_log_space_pixel_losses); both compute the same
  value.

  Args:
    embedding: A float tensor [M, D] of normalised pixel embeddings.
    pixel_classes: An int32 tensor [M].
    pixel_segments: An int32 tensor [M], the index in `prototypes` of the
      pixel's own segment.
    prototypes: A float tensor [Q, D] of normalised (or zero) prototypes.
    prototype_classes: An int32 tensor [Q].
    prototype_valid: A bool tensor [Q]; invalid prototypes are ignored.
    concentration: kappa, a float.
    memory_prototypes: Optional float tensor [Qm, D] of further (valid)
      prototypes, e.g. the memory banks': no pixel's own segment, and no
      gradient flows into them.
    memory_classes: An int32 tensor [Qm], with memory_prototypes.

  Returns:
    A float tensor [M] of losses.
  """
  if (memory_prototypes is None) != (memory_classes is None):
    raise ValueError('memory_prototypes and memory_classes go together')
  if (isinstance(concentration, (int, float)) and
      0 < concentration <= _CLASS_SUM_MAX_KAPPA):
    return _class_sum_pixel_losses(
        embedding, pixel_classes, pixel_segments, prototypes,
        prototype_classes, prototype_valid, float(concentration),
        memory_prototypes, memory_classes)
  if memory_prototypes is not None:
    prototypes = tf.concat([prototypes,
                            tf.stop_gradient(memory_prototypes)], 0)
    prototype_classes = tf.concat([prototype_classes, memory_classes], 0)
    prototype_valid = tf.concat(
        [prototype_valid, tf.ones_like(memory_classes, dtype=tf.bool)], 0)
  logits = _calculate_similarity_logits(embedding, prototypes, concentration)
  return _log_space_pixel_losses(logits, pixel_classes, pixel_segments,
                                 prototype_classes, prototype_valid)


def _get_memory_banks(num_banks, capacity, embedding_dim):
  """Creates (or reuses) the memory bank variables; see the module doc."""
  with tf.variable_scope(MEMORY_BANK_SCOPE, reuse=tf.AUTO_REUSE):
    kwargs = dict(trainable=False, use_resource=True,
                  collections=[tf.GraphKeys.GLOBAL_VARIABLES])
    prototypes = tf.get_variable(
        'prototypes', shape=[num_banks, capacity, embedding_dim],
        dtype=tf.float32, initializer=tf.zeros_initializer(), **kwargs)
    classes = tf.get_variable(
        'classes', shape=[num_banks, capacity], dtype=tf.int32,
        initializer=tf.zeros_initializer(), **kwargs)
    valid = tf.get_variable(
        'valid', shape=[num_banks, capacity], dtype=tf.bool,
        initializer=tf.constant_initializer(False), **kwargs)
  return prototypes, classes, valid


def _shuffled_range(n):
  """A random permutation of [0, n).

  When the graph has a global step, the permutation is a stateless function
  of (graph seed, step), so a training run resumed from a checkpoint at step
  s shuffles its banks exactly as an uninterrupted run does at step s; a
  stateful shuffle would restart its random sequence on every resume.
  """
  step = tf.train.get_global_step()
  if step is None:
    return tf.random.shuffle(tf.range(n))
  graph_seed = tf.get_default_graph().seed or 0
  seed = tf.stack([tf.constant(graph_seed % (2**31 - 1), tf.int64),
                   tf.cast(step, tf.int64)])
  return tf.argsort(tf.random.stateless_uniform([n], seed=seed))


def _update_memory_banks(banks, prototypes, prototype_classes, after):
  """FIFO push of this batch's prototypes, run after `after` is computed.

  Args:
    banks: (prototypes, classes, valid) variables from _get_memory_banks.
    prototypes: A float tensor [P, D], this batch's prototypes.
    prototype_classes: An int32 tensor [P].
    after: A tensor (the loss) that must be computed before the banks change.

  Returns:
    The grouped update op.
  """
  bank_prototypes, bank_classes, bank_valid = banks
  num_banks, capacity, embedding_dim = (
      bank_prototypes.get_shape().as_list())
  with tf.control_dependencies([after]):
    num_prototypes = tf.shape(prototypes)[0]
    num_kept = tf.minimum(num_prototypes, capacity)
    # A random subset when the batch has more segments than the bank holds.
    order = _shuffled_range(num_prototypes)[:num_kept]
    pad = capacity - num_kept
    new_prototypes = tf.reshape(
        tf.pad(tf.gather(tf.stop_gradient(prototypes), order),
               [[0, pad], [0, 0]]), [1, capacity, embedding_dim])
    new_classes = tf.reshape(
        tf.pad(tf.gather(prototype_classes, order), [[0, pad]]),
        [1, capacity])
    new_valid = tf.reshape(tf.range(capacity) < num_kept, [1, capacity])

    def push(variable, newest):
      # Reading the variable here (inside the control dependency) sees the
      # values the loss used; bank 0 (oldest) is dropped.
      return variable.assign(
          tf.concat([variable.value()[1:], newest], axis=0), read_value=False)

    return tf.group(push(bank_prototypes, new_prototypes),
                    push(bank_classes, new_classes),
                    push(bank_valid, new_valid),
                    name='update_memory_banks')


def add_segsort_loss(embedding,
                     labels,
                     embedding_dim,
                     ignore_label,
                     concentration,
                     cluster_labels,
                     num_clusters,
                     kmeans_iterations,
                     num_banks,
                     loc_features,
                     loss_scope=None,
                     bank_capacity=None):
  """Adds the supervised SegSort loss.

  Per image (all images at once): pixels labelled ignore_label (or negative)
  are dropped; vMF k-means with K = num_clusters**2 clusters runs on
  normalize(concat(embedding, location)) from `cluster_labels`; a segment is
  an (image, cluster, class) triple, unique across the batch; its prototype
  is the normalised sum of its pixels' embeddings WITHOUT location. The loss
  is the mean over valid pixels of calculate_supervised_pixel_losses, over
  this batch's prototypes and (without gradient) the valid memory bank
  slots. A batch with no valid pixel gives loss 0 with zero gradients.

  Args:
    embedding: A float tensor [B, h, w, embedding_dim] (not yet normalised).
    labels: An integer tensor [B, h, w] or [B, h, w, 1] of classes.
    embedding_dim: D, a python int.
    ignore_label: The class id of pixels to leave out (e.g. 255).
    concentration: kappa (float).
    cluster_labels: An integer tensor [B, h, w] or [B, h, w, 1], the
      initial k-means labels in [0, K) (the reader's grid labels).
    num_clusters: n, clusters per axis (K = n * n), or a pair [n_y, n_x].
    kmeans_iterations: Number of k-means iterations.
    num_banks: Number of memory banks (0 for none); see the module doc.
    loc_features: A float tensor [B, h, w, 2] of (y, x) locations in [0, 1).
    loss_scope: Optional name scope.
    bank_capacity: Slots per memory bank; default
      default_bank_capacity(B, num_clusters), which needs a static B.

  Returns:
    A float32 scalar tensor. With num_banks > 0 the bank update op is in
    tf.GraphKeys.UPDATE_OPS and get_memory_bank_update_ops().

  Raises:
    ValueError: on inconsistent ranks or embedding_dim, negative num_banks,
      or memory banks with neither a static batch size nor bank_capacity.
  """
  if num_banks < 0:
    raise ValueError('num_banks must be >= 0, got %d' % num_banks)
  num_total_clusters = common_utils.cluster_grid(num_clusters).count
  with tf.name_scope(loss_scope, 'segsort_loss',
                     [embedding, labels, cluster_labels, loc_features]):
    embedding = tf.convert_to_tensor(embedding)
    loc_features = tf.convert_to_tensor(loc_features)
    _check_rank(embedding, 4, 'add_segsort_loss: embedding')
    _check_rank(loc_features, 4, 'add_segsort_loss: loc_features')
    static_dim = embedding.get_shape()[-1]
    if static_dim is not None and static_dim != embedding_dim:
      raise ValueError('add_segsort_loss: embedding has %d channels but '
                       'embedding_dim is %d' % (static_dim, embedding_dim))
    static_batch = tf.dimension_value(embedding.get_shape()[0])
    batch = tf.shape(embedding)[0]

    embedding = common_utils.normalize_embedding(embedding)
    embedding = tf.reshape(embedding, [batch, -1, embedding_dim])
    labels = tf.reshape(tf.cast(labels, tf.int32), [batch, -1])
    cluster_labels = tf.reshape(tf.cast(cluster_labels, tf.int32),
                                [batch, -1])
    loc_features = tf.reshape(tf.cast(loc_features, embedding.dtype),
                              [batch, -1, 2])
    valid = tf.logical_and(tf.not_equal(labels, ignore_label), labels >= 0)

    # Clustering sees location too, so that segments are spatially compact.
    embedding_with_loc = common_utils.normalize_embedding(
        tf.concat([embedding, loc_features], axis=2))
    cluster_labels = common_utils.batch_kmeans_with_initial_labels(
        embedding_with_loc, cluster_labels, num_total_clusters,
        kmeans_iterations, valid)

    # Unique (image, cluster, class) segments over the valid pixels.
    image_index = tf.tile(tf.range(batch)[:, tf.newaxis],
                          [1, tf.shape(labels)[1]])
    keys = (tf.cast(image_index * num_total_clusters + cluster_labels,
                    tf.int64) * _CLASS_KEY_RANGE + tf.cast(labels, tf.int64))
    pixel_embedding = tf.boolean_mask(embedding, valid)
    pixel_classes = tf.boolean_mask(labels, valid)
    unique_keys, pixel_segments = tf.unique(tf.boolean_mask(keys, valid),
                                            out_idx=tf.int32)
    prototype_classes = tf.cast(
        tf.math.floormod(unique_keys, _CLASS_KEY_RANGE), tf.int32)
    num_prototypes = tf.size(unique_keys)
    prototypes = common_utils.calculate_prototypes_from_labels(
        pixel_embedding, pixel_segments, num_prototypes)

    memory_prototypes = memory_classes = None
    banks = None
    if num_banks > 0:
      if bank_capacity is None:
        if static_batch is None:
          raise ValueError('add_segsort_loss: memory banks (num_banks=%d) '
                           'need a static batch size or bank_capacity'
                           % num_banks)
        bank_capacity = default_bank_capacity(static_batch, num_clusters)
      if bank_capacity < 1:
        raise ValueError('bank_capacity must be >= 1, got %d' % bank_capacity)
      banks = _get_memory_banks(num_banks, bank_capacity, embedding_dim)
      bank_prototypes, bank_classes, bank_valid = banks
      # Only the filled slots: the empty ones would widen every [M, Q]
      # tensor of the loss for nothing.
      filled = tf.reshape(bank_valid.value(), [-1])
      memory_prototypes = tf.boolean_mask(
          tf.reshape(bank_prototypes.value(), [-1, embedding_dim]), filled)
      memory_classes = tf.boolean_mask(
          tf.reshape(bank_classes.value(), [-1]), filled)

    pixel_losses = calculate_supervised_pixel_losses(
        pixel_embedding, pixel_classes, pixel_segments, prototypes,
        prototype_classes, tf.ones([num_prototypes], dtype=tf.bool),
        concentration, memory_prototypes, memory_classes)
    num_pixels = tf.cast(tf.size(pixel_classes), pixel_losses.dtype)
    loss = tf.reduce_sum(pixel_losses) / tf.maximum(num_pixels, 1.0)

    if banks is not None:
      update_op = _update_memory_banks(banks, prototypes, prototype_classes,
                                       loss)
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update_op)
      tf.add_to_collection(MEMORY_BANK_UPDATE_OPS, update_op)
    return loss


def add_unsupervised_segsort_loss(embedding,
                                  concentration,
                                  cluster_labels,
                                  num_banks=0,
                                  loss_scope=None):
  """Adds the unsupervised SegSort loss.

  Segments are the oversegmentation regions of each image, unique across the
  batch; no k-means, no memory. For pixel i in segment s, over all segments
  j of the batch, loss_i = -log(exp(kappa <e_i, p_s>) /
  sum_j exp(kappa <e_i, p_j>)), computed as logsumexp_j - kappa <e_i, p_s>;
  the loss is the mean over valid pixels (0 with zero gradients when there
  is none).

  Args:
    embedding: A float tensor [B, h, w, D] (not yet normalised).
    concentration: kappa (float).
    cluster_labels: An integer tensor [B, h, w] or [B, h, w, 1] of region
      ids; ids outside [0, 255) (255 is the crop padding) are not a segment.
    num_banks: Accepted for compatibility with the original signature and
      ignored (with a UserWarning when > 0): SPEC's unsupervised loss has no
      memory, and the original accepted and ignored it too.
    loss_scope: Optional name scope.

  Returns:
    A float32 scalar tensor.
  """
  if num_banks:
    # A Python warning: network/__init__ silences TensorFlow's logger.
    warnings.warn('add_unsupervised_segsort_loss: num_banks=%d is ignored; '
                  'the unsupervised loss uses no memory banks.' % num_banks,
                  stacklevel=2)
  with tf.name_scope(loss_scope, 'unsupervised_segsort_loss',
                     [embedding, cluster_labels]):
    embedding = tf.convert_to_tensor(embedding)
    _check_rank(embedding, 4, 'add_unsupervised_segsort_loss: embedding')
    batch = tf.shape(embedding)[0]
    embedding_dim = tf.shape(embedding)[3]
    embedding = tf.reshape(common_utils.normalize_embedding(embedding),
                           [batch, -1, embedding_dim])
    regions = tf.reshape(tf.cast(cluster_labels, tf.int32), [batch, -1])
    valid = tf.logical_and(regions >= 0, regions < _OVERSEG_KEY_RANGE - 1)
    keys = regions + _OVERSEG_KEY_RANGE * tf.range(batch)[:, tf.newaxis]

    pixel_embedding = tf.boolean_mask(embedding, valid)
    unique_keys, pixel_segments = tf.unique(tf.boolean_mask(keys, valid),
                                            out_idx=tf.int32)
    prototypes = common_utils.calculate_prototypes_from_labels(
        pixel_embedding, pixel_segments, tf.size(unique_keys))

    logits = _calculate_similarity_logits(pixel_embedding, prototypes,
                                          concentration)
    own_logit = tf.gather(logits, pixel_segments[:, tf.newaxis],
                          batch_dims=1)[:, 0]
    pixel_losses = tf.reduce_logsumexp(logits, axis=1) - own_logit
    num_pixels = tf.cast(tf.size(pixel_segments), pixel_losses.dtype)
    return tf.reduce_sum(pixel_losses) / tf.maximum(num_pixels, 1.0)
