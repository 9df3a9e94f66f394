"""SegSort building blocks shared by training and inference.

Embeddings are L2-normalised along their last axis; a prototype is the
L2-normalised sum of the embeddings of one segment; similarity is the dot
product.

- Normalisation divides by max(||x||, 1e-6), so a zero vector (the sum of an
  empty cluster) normalises to zero instead of 0/0 = NaN.
- In vMF k-means an empty cluster never attracts pixels.
- `kmeans` clusters every image of a batch separately, in one batched graph;
  `batch_kmeans_with_initial_labels` is its form with explicit initial
  labels and a pixel validity mask, used by the training loss.
- `num_clusters` is n, the clusters along each axis of the initial grid (or
  a pair [n_y, n_x]); `cluster_grid` turns it into the grid and the number
  of clusters K = n_y * n_x.
"""
import collections
import numbers

import numpy as np
import tensorflow.compat.v1 as tf


def _ceil_div(a, b):
  return (a + b - 1) // b


def initialize_cluster_labels(num_clusters, img_dimensions):
  """Grid initialisation of the k-means labels.

  With step = (ceil(H / n_y), ceil(W / n_x)),
  label(y, x) = y // step_y + (max_y_label + 1) * (x // step_x),
  where max_y_label = (H - 1) // step_y.

  Args:
    num_clusters: [n_y, n_x], clusters along each axis (python ints).
    img_dimensions: [H, W], python ints or int32 scalar tensors.

  Returns:
    An int32 tensor [H, W] of initial cluster labels.
  """
  height = tf.convert_to_tensor(img_dimensions[0], tf.int32)
  width = tf.convert_to_tensor(img_dimensions[1], tf.int32)
  step_y = _ceil_div(height, num_clusters[0])
  step_x = _ceil_div(width, num_clusters[1])
  y_labels = tf.range(height) // step_y
  x_labels = tf.range(width) // step_x
  num_y_labels = (height - 1) // step_y + 1
  return y_labels[:, None] + num_y_labels * x_labels[None, :]


def generate_location_features(img_dimensions, feature_type='int'):
  """(y, x) coordinates of every pixel.

  Args:
    img_dimensions: [H, W], python ints or int32 scalar tensors.
    feature_type: 'int' for integer coordinates (int32), 'float' for
      coordinates divided by H and W (float32, in [0, 1)).

  Returns:
    A tensor [H, W, 2] holding (y, x) per pixel.
  """
  height = tf.convert_to_tensor(img_dimensions[0], tf.int32)
  width = tf.convert_to_tensor(img_dimensions[1], tf.int32)
  if feature_type == 'int':
    y_features = tf.range(height)
    x_features = tf.range(width)
  elif feature_type == 'float':
    y_features = tf.cast(tf.range(height), tf.float32) / tf.cast(
        height, tf.float32)
    x_features = tf.cast(tf.range(width), tf.float32) / tf.cast(
        width, tf.float32)
  else:
    raise ValueError("feature_type must be 'int' or 'float', got %r"
                     % (feature_type,))
  y_grid, x_grid = tf.meshgrid(y_features, x_features, indexing='ij')
  return tf.stack([y_grid, x_grid], axis=2)


def generate_location_features_np(img_dimensions):
  """(y, x) of every pixel spread evenly over [0, 1], in NumPy.

  Unlike generate_location_features('float'), the last row and column get
  1 (y = linspace(0, 1, H), x = linspace(0, 1, W)).

  Args:
    img_dimensions: [H, W].

  Returns:
    A float64 array [1, H, W, 2] holding (y, x) per pixel.
  """
  y_features = np.linspace(0.0, 1.0, img_dimensions[0])
  x_features = np.linspace(0.0, 1.0, img_dimensions[1])
  y_grid, x_grid = np.meshgrid(y_features, x_features, indexing='ij')
  return np.stack([y_grid, x_grid], axis=2)[np.newaxis]


# Squared-norm floor of normalize_embedding: a vector shorter than 1e-6 is
# scaled by 1e6 instead of divided by its norm, so a zero vector stays zero
# and its gradient stays finite.
_NORM_EPSILON_SQUARED = 1e-12

# Similarity given to an empty cluster in the E-step. Real similarities of
# normalised vectors lie in [-1, 1], so an empty cluster never wins.
_EMPTY_CLUSTER_SIMILARITY = -1e9


def normalize_embedding(embedding):
  """L2-normalises the embedding along its last axis.

  e / max(||e||, 1e-6), so that the features lie on the unit hypersphere; a
  zero vector (e.g. the sum of an empty cluster) maps to zero, not NaN.

  Args:
    embedding: A float tensor [..., D].

  Returns:
    A float tensor of the same shape with unit (or zero) rows.
  """
  embedding = tf.convert_to_tensor(embedding)
  squared_norm = tf.reduce_sum(tf.square(embedding), axis=-1, keepdims=True)
  return embedding * tf.rsqrt(tf.maximum(squared_norm, _NORM_EPSILON_SQUARED))


def calculate_prototypes_from_labels(embedding, labels, max_label=None):
  """Prototypes (normalised sums) of the embeddings sharing a label.

  p_k = normalize(sum_{i: labels_i = k} e_i), for k in [0, max_label). This is
  also the M-step of the vMF k-means. A label with no pixel gets a zero
  prototype; pixels whose label is negative or >= max_label are left out.

  Args:
    embedding: A float tensor [..., D] (e.g. [N, D] or [B, H, W, D]); all
      leading axes are flattened together.
    labels: An integer tensor with as many elements as embedding has pixels
      (e.g. [N], [B, H, W] or [B, H, W, 1]).
    max_label: Number of prototypes K (python int or int scalar tensor), the
      largest label plus one. Computed from labels if None.

  Returns:
    A float tensor [K, D].
  """
  embedding = tf.convert_to_tensor(embedding)
  embedding = tf.reshape(embedding, [-1, tf.shape(embedding)[-1]])
  labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
  if max_label is None:
    max_label = tf.reduce_max(labels) + 1
  max_label = tf.maximum(tf.cast(max_label, tf.int32), 0)
  # unsorted_segment_sum drops negative ids; out-of-range ids are mapped to
  # -1 so that they are dropped too instead of raising.
  labels = tf.where_v2(labels < max_label, labels, -1)
  sums = tf.math.unsorted_segment_sum(embedding, labels, max_label)
  return normalize_embedding(sums)


def find_nearest_prototypes(embedding, prototypes, valid_prototypes=None):
  """Index of the most similar prototype for every pixel (the E-step).

  label_i = argmax_k <e_i, p_k>, over the valid prototypes only; ties go to
  the lowest index.

  Args:
    embedding: A float tensor [..., D]; leading axes are flattened.
    prototypes: A float tensor [K, D].
    valid_prototypes: Optional bool tensor [K]; prototypes marked False (e.g.
      those of empty clusters) never win.

  Returns:
    An int32 tensor [num_pixels].
  """
  prototypes = tf.convert_to_tensor(prototypes)
  embedding = tf.reshape(embedding, [-1, tf.shape(prototypes)[-1]])
  similarities = tf.matmul(embedding, prototypes, transpose_b=True)
  if valid_prototypes is not None:
    similarities = tf.where_v2(valid_prototypes[tf.newaxis, :], similarities,
                               _EMPTY_CLUSTER_SIMILARITY)
  return tf.argmax(similarities, axis=1, output_type=tf.int32)


def batch_kmeans_with_initial_labels(embedding,
                                     initial_labels,
                                     num_clusters,
                                     iterations=10,
                                     valid_mask=None):
  """vMF k-means on every image of a batch at once.

  Starting from the initial labels, `iterations` times:
    M-step: p_{b,k} = normalize(sum_{i valid, label_{b,i} = k} e_{b,i});
    E-step: label_{b,i} = argmax over non-empty k of <e_{b,i}, p_{b,k}>.
  Every image has its own K clusters. A cluster with no pixel has a zero
  prototype and is excluded from the E-step, so it never attracts pixels and
  never produces NaN. Implemented with one-hot assignments [B, N, K] and
  batched matmuls in a tf.while_loop, so the graph does not grow with the
  batch size or the number of iterations; the loop stops early once no
  valid pixel changes cluster (a fixed point: the remaining iterations
  would repeat it), which gives the same labels.

  Args:
    embedding: A float tensor [B, N, D]; expected L2-normalised.
    initial_labels: An integer tensor [B, N]. Labels outside [0, K) put the
      pixel in no cluster for the first M-step.
    num_clusters: K, a python int or int scalar tensor.
    iterations: Number of M/E iterations (python int >= 0 or int tensor).
    valid_mask: Optional bool tensor [B, N]; invalid pixels take no part in
      any cluster and get label -1.

  Returns:
    An int32 tensor [B, N] of cluster labels in [0, K) (-1 where invalid).
  """
  if isinstance(iterations, int) and iterations < 0:
    raise ValueError('kmeans iterations must be >= 0, got %d' % iterations)
  # Cluster assignments are not differentiable; keep the loop out of the
  # gradient graph.
  embedding = tf.stop_gradient(tf.convert_to_tensor(embedding))
  labels = tf.cast(initial_labels, tf.int32)
  num_clusters = tf.cast(num_clusters, tf.int32)
  if valid_mask is None:
    valid_mask = tf.ones_like(labels, dtype=tf.bool)
  # Invalid pixels carry label -1 throughout: in no cluster.
  labels = tf.where_v2(valid_mask, labels, -1)
  depth = tf.shape(embedding)[2]
  # A constant 1 after every pixel's features: the M-step matmul then also
  # counts the pixels of every cluster (exact in float32 up to 2**24), and
  # in the E-step it meets every prototype's bias: 0, or
  # _EMPTY_CLUSTER_SIMILARITY for an empty cluster, which thus never wins.
  augmented = tf.concat([embedding, tf.ones_like(embedding[:, :, :1])],
                        axis=2)
  # One image: 2-D matmuls, faster than batched ones of batch 1.
  single = tf.dimension_value(embedding.get_shape()[0]) == 1

  def matmul(a, b, **kwargs):
    if single:
      return tf.matmul(a[0], b[0], **kwargs)[tf.newaxis]
    return tf.matmul(a, b, **kwargs)

  def m_step(cur_labels):
    # [B, N, K] one-hot assignments; labels outside [0, K) (-1 for invalid
    # pixels) give an all-zero row.
    assignments = tf.one_hot(cur_labels, num_clusters, dtype=embedding.dtype)
    sums = matmul(assignments, augmented, transpose_a=True)
    bias = tf.where_v2(sums[:, :, depth:] > 0, 0.0,
                       _EMPTY_CLUSTER_SIMILARITY)
    return tf.concat([normalize_embedding(sums[:, :, :depth]), bias], 2)

  def e_step(prototypes):
    similarities = matmul(augmented, prototypes, transpose_b=True)
    # The most similar prototype; top_k, like argmax, puts the lower index
    # first among equals, and is faster.
    return tf.nn.top_k(similarities, 1).indices[:, :, 0]

  def body(step, cur_labels, _):
    new_labels = tf.where_v2(valid_mask, e_step(m_step(cur_labels)), -1)
    new_labels.set_shape(cur_labels.get_shape())
    changed = tf.reduce_any(tf.not_equal(new_labels, cur_labels))
    return step + 1, new_labels, changed

  # Once no valid pixel changes cluster, every later iteration would
  # compute the same prototypes and labels again: stopping there gives the
  # labels of all `iterations` iterations.
  _, labels, _ = tf.while_loop(
      lambda step, _, changed: tf.logical_and(step < iterations, changed),
      body, [tf.constant(0), labels, tf.constant(True)], back_prop=False)
  return labels


def kmeans_with_initial_labels(embedding,
                               initial_labels,
                               max_label=None,
                               iterations=10):
  """vMF k-means of one set of pixels from initial labels.

  See batch_kmeans_with_initial_labels for the iteration; this is its
  single-image form.

  Args:
    embedding: A float tensor [N, D] (leading axes are flattened); expected
      L2-normalised.
    initial_labels: An integer tensor with N elements.
    max_label: The number of clusters K (cluster_grid(n).count for a grid
      start). Largest initial label plus one if None.
    iterations: Number of k-means iterations.

  Returns:
    An int32 tensor [N] of cluster labels in [0, K).
  """
  embedding = tf.convert_to_tensor(embedding)
  embedding = tf.reshape(embedding, [-1, tf.shape(embedding)[-1]])
  initial_labels = tf.cast(tf.reshape(initial_labels, [-1]), tf.int32)
  if max_label is None:
    max_label = tf.reduce_max(initial_labels) + 1
  labels = batch_kmeans_with_initial_labels(
      embedding[tf.newaxis], initial_labels[tf.newaxis], max_label,
      iterations)
  return labels[0]


class ClusterGrid(collections.namedtuple('ClusterGrid', ['rows', 'cols'])):
  """The k-means start grid: [n_y, n_x] clusters along y and x."""
  __slots__ = ()

  @property
  def count(self):
    """K = n_y * n_x, the number of clusters."""
    return self.rows * self.cols


def cluster_grid(num_clusters):
  """The k-means grid of a `num_clusters` setting.

  Args:
    num_clusters: n, clusters along each axis (a python or NumPy integer,
      K = n * n), or a pair [n_y, n_x].

  Returns:
    A ClusterGrid (rows, cols), usable wherever [n_y, n_x] is expected; its
    `count` is K.

  Raises:
    ValueError: not a positive integer or a pair of them.
  """
  if isinstance(num_clusters, numbers.Integral):
    pair = [num_clusters, num_clusters]
  else:
    try:
      pair = list(num_clusters)
    except TypeError:
      pair = []
  if (len(pair) != 2 or
      not all(isinstance(n, numbers.Integral) and n >= 1 for n in pair)):
    raise ValueError('num_clusters must be a positive int or a pair '
                     '[n_y, n_x] of them, got %r' % (num_clusters,))
  return ClusterGrid(int(pair[0]), int(pair[1]))


def kmeans(embedding, num_clusters, iterations=10, initial_labels=None):
  """vMF k-means of every image, started from the grid initialisation.

  Args:
    embedding: A float tensor [B, H, W, D]; expected L2-normalised (the
      scripts pass normalize(concat(embedding, location))).
    num_clusters: [n_y, n_x] clusters along each axis, or an int n for
      n x n; K = n_y * n_x clusters per image.
    iterations: Number of k-means iterations.
    initial_labels: Optional integer tensor [H, W] (every image) or
      [B, H, W] of start labels in [0, K); default the grid over H x W.

  Returns:
    An int32 tensor [B, H, W] of per-image cluster labels in [0, K). Labels
    of different images are NOT offset: add b * K before computing
    prototypes over a batch larger than one.
  """
  grid = cluster_grid(num_clusters)
  embedding = tf.convert_to_tensor(embedding)
  shape = tf.shape(embedding)
  batch, height, width, depth = shape[0], shape[1], shape[2], shape[3]
  if initial_labels is None:
    initial_labels = initialize_cluster_labels(grid, [height, width])
  initial = tf.cast(tf.reshape(initial_labels, [-1, height * width]),
                    tf.int32)
  initial = tf.tile(initial, [batch // tf.shape(initial)[0], 1])
  flat = tf.reshape(embedding, [batch, -1, depth])
  labels = batch_kmeans_with_initial_labels(
      flat, initial, grid.count, iterations)
  labels = tf.reshape(labels, [batch, height, width])
  static = embedding.get_shape()
  if static.ndims == 4:
    labels.set_shape(static[:3])
  return labels


def prepare_prototype_labels(semantic_labels, instance_labels, offset=256):
  """Unique segment ids from (instance, semantic) pairs.

  A segment is one (instance, semantic) pair, keyed as
  semantic + instance * offset; keys are numbered in order of first
  appearance.

  Args:
    semantic_labels: An integer tensor [N] of classes in [0, offset).
    instance_labels: An integer tensor [N] (instance or cluster ids).
    offset: An int greater than every semantic label.

  Returns:
    unique_instance_labels: An int32 tensor [N], the segment id of every
      pixel, in [0, P).
    prototype_labels: An int32 tensor [P], the semantic class of every
      segment.
  """
  semantic_labels = tf.cast(tf.reshape(semantic_labels, [-1]), tf.int64)
  instance_labels = tf.cast(tf.reshape(instance_labels, [-1]), tf.int64)
  keys = semantic_labels + instance_labels * offset
  unique_keys, segment_ids = tf.unique(keys, out_idx=tf.int32)
  prototype_labels = tf.cast(tf.math.floormod(unique_keys, offset), tf.int32)
  return segment_ids, prototype_labels
