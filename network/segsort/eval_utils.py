"""SegSort inference: prototype extraction and kNN label prediction.

- extract_trained_prototypes: the prototypes of an annotated image (and, on
  request, the cluster of every pixel).
- extract_test_prototypes: test-time clustering, one prototype per cluster
  (get_test_start: its start when the region lies in a larger canvas).
  extract_test_prototypes_upsampled is the same from a network output
  before upsampling, with less work (labels equal up to float near-ties).
- get_k_nearest_prototypes: the kNN search and vote. For every test
  prototype, its k most similar training prototypes and the per-class
  votes of their labels; the training bank may be scanned in chunks so that
  memory stays bounded. Every kNN prediction goes through it.
- k_nearest_neighbors and predict_semantic_instance_labels (at the end):
  the paper release's interface, over the same search and vote.
"""
import collections

import tensorflow.compat.v1 as tf

from network.segsort import common_utils

EVALUATION_MODES = ('semantic', 'panoptic')


def _class_counts(labels, cluster_labels, num_clusters, num_classes):
  """counts[k, c] = #pixels with cluster k and label c -> int32 [K, C].

  Pixels with a label or cluster outside range are not counted.
  """
  in_range = tf.logical_and(
      tf.logical_and(labels >= 0, labels < num_classes),
      tf.logical_and(cluster_labels >= 0, cluster_labels < num_clusters))
  keys = tf.where_v2(in_range, cluster_labels * num_classes + labels, -1)
  counts = tf.math.unsorted_segment_sum(tf.ones_like(keys), keys,
                                        num_clusters * num_classes)
  return tf.reshape(counts, [num_clusters, num_classes])


def find_majority_label_index(labels, cluster_labels):
  """Pixels that carry the majority label of their cluster.

  Args:
    labels: An integer tensor [N] of (semantic or panoptic) labels >= 0.
    cluster_labels: An integer tensor [N] of cluster ids >= 0.

  Returns:
    select_pixels: An int64 tensor [S, 1], indices of the pixels whose label
      is the majority label of their cluster (as tf.where returns them).
    majority_labels: An int32 tensor [max(cluster_labels) + 1], the majority
      label of every cluster (ties: lowest label; 0 for an empty cluster).
  """
  labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
  cluster_labels = tf.cast(tf.reshape(cluster_labels, [-1]), tf.int32)
  num_classes = tf.maximum(tf.reduce_max(labels) + 1, 1)
  num_clusters = tf.maximum(tf.reduce_max(cluster_labels) + 1, 1)
  counts = _class_counts(labels, cluster_labels, num_clusters, num_classes)
  majority_labels = tf.argmax(counts, axis=1, output_type=tf.int32)
  select_pixels = tf.where(
      tf.equal(tf.gather(majority_labels, cluster_labels), labels))
  return select_pixels, majority_labels


def extract_trained_prototypes(embedding,
                               location_features,
                               cluster_labels,
                               num_clusters,
                               kmeans_iterations,
                               panoptic_labels,
                               panoptic_label_divisor,
                               ignore_label,
                               evaluate_semantic_or_panoptic,
                               return_cluster_labels=False):
  """Prototypes of one annotated image.

  Over the valid pixels (semantic label = panoptic // divisor, neither
  ignore_label nor negative): vMF k-means on normalize(concat(embedding,
  location)) from `cluster_labels`; every non-empty cluster takes the
  majority class of its pixels (ties: lowest class), and only its pixels of
  that class form its prototype (normalised sum of the embeddings without
  location). In 'panoptic' mode a segment is an instance instead of a
  class: the majority is over the image's distinct panoptic labels
  (numbered 0, 1, ... in order of first appearance among the valid pixels,
  ties to the lowest number), and only the pixels of that instance form the
  prototype.

  Args:
    embedding: A float tensor [N, D] (any leading shape is flattened);
      normalised here.
    location_features: A float tensor [N, 2] of (y, x) locations.
    cluster_labels: An integer tensor [N], the initial (grid) labels.
    num_clusters: Total number of clusters K
      (common_utils.cluster_grid(n).count for the grid start).
    kmeans_iterations: Number of k-means iterations.
    panoptic_labels: An integer tensor [N]; the semantic class when
      panoptic_label_divisor is 1 (as the scripts call it).
    panoptic_label_divisor: An int, semantic = panoptic // divisor.
    ignore_label: The class id to leave out (e.g. 255).
    evaluate_semantic_or_panoptic: 'semantic' or 'panoptic'.
    return_cluster_labels: Also return the cluster of every pixel.

  Returns:
    prototype_features: A float tensor [P, D] (P <= K: one per non-empty
      cluster, in increasing cluster id).
    prototype_semantic_labels: An int32 tensor [P].
    prototype_instance_labels: An int32 tensor [P]: zeros in 'semantic'
      mode; in 'panoptic' mode the number of the prototype's panoptic
      label (see above).
    cluster_labels: Only with return_cluster_labels, an int32 tensor [N]:
      the k-means cluster of every pixel, -1 for the pixels left out.
      Prototype p is formed by the pixels of its class (or instance) in
      the p-th non-empty cluster.

  Raises:
    ValueError: for a mode other than 'semantic' and 'panoptic'.
  """
  if evaluate_semantic_or_panoptic not in EVALUATION_MODES:
    raise ValueError("extract_trained_prototypes: "
                     "evaluate_semantic_or_panoptic must be one of %s, "
                     "got %r" % (EVALUATION_MODES,
                                 evaluate_semantic_or_panoptic))
  panoptic = evaluate_semantic_or_panoptic == 'panoptic'
  embedding = tf.convert_to_tensor(embedding)
  embedding_dim = tf.shape(embedding)[-1]
  embedding = common_utils.normalize_embedding(
      tf.reshape(embedding, [-1, embedding_dim]))
  location_features = tf.reshape(
      tf.cast(location_features, embedding.dtype), [-1, 2])
  cluster_labels = tf.cast(tf.reshape(cluster_labels, [-1]), tf.int32)
  panoptic_labels = tf.cast(tf.reshape(panoptic_labels, [-1]), tf.int32)
  semantic_labels = panoptic_labels // panoptic_label_divisor

  valid = tf.logical_and(tf.not_equal(semantic_labels, ignore_label),
                         semantic_labels >= 0)
  num_pixels = tf.shape(valid)
  embedding = tf.boolean_mask(embedding, valid)
  location_features = tf.boolean_mask(location_features, valid)
  cluster_labels = tf.boolean_mask(cluster_labels, valid)
  semantic_labels = tf.boolean_mask(semantic_labels, valid)
  if panoptic:
    # Segment keys: the image's distinct panoptic labels, numbered.
    panoptic_ids, keys = tf.unique(tf.boolean_mask(panoptic_labels, valid),
                                   out_idx=tf.int32)
  else:
    keys = semantic_labels

  embedding_with_location = common_utils.normalize_embedding(
      tf.concat([embedding, location_features], axis=1))
  cluster_labels = common_utils.kmeans_with_initial_labels(
      embedding_with_location, cluster_labels, num_clusters,
      kmeans_iterations)

  num_keys = tf.maximum(tf.reduce_max(keys) + 1, 1)
  counts = _class_counts(keys, cluster_labels, num_clusters, num_keys)
  majority_labels = tf.argmax(counts, axis=1, output_type=tf.int32)
  non_empty = tf.reduce_sum(counts, axis=1) > 0

  selected = tf.equal(tf.gather(majority_labels, cluster_labels), keys)
  prototypes = common_utils.calculate_prototypes_from_labels(
      tf.boolean_mask(embedding, selected),
      tf.boolean_mask(cluster_labels, selected), num_clusters)
  prototype_features = tf.boolean_mask(prototypes, non_empty)
  prototype_keys = tf.boolean_mask(majority_labels, non_empty)
  if panoptic:
    prototype_semantic_labels = (tf.gather(panoptic_ids, prototype_keys)
                                 // panoptic_label_divisor)
    prototype_instance_labels = prototype_keys
  else:
    prototype_semantic_labels = prototype_keys
    prototype_instance_labels = tf.zeros_like(prototype_keys)
  outputs = (prototype_features, prototype_semantic_labels,
             prototype_instance_labels)
  if not return_cluster_labels:
    return outputs
  # Back to every pixel; the pixels left out get -1.
  pixel_clusters = tf.scatter_nd(tf.cast(tf.where(valid), tf.int32),
                                 cluster_labels + 1, num_pixels) - 1
  return outputs + (pixel_clusters,)


def get_test_start(num_clusters, region_size, canvas_size=None,
                   location_size=None):
  """The k-means start of a test region: initial labels and locations.

  The region is the top-left h x w part of a canvas (e.g. the zero-padded
  input the network saw). The initial labels are the grid over the whole
  canvas cropped to the region, so a region smaller than its canvas starts
  with fewer than K clusters (a 375 x 500 region of a 720 x 720 canvas: 3 x
  4 of the 5 x 5); pixel (y, x) is located at (y / L_h, x / L_w).

  Args:
    num_clusters: n per axis or [n_y, n_x].
    region_size: [h, w], python ints or int32 scalar tensors.
    canvas_size: [P_h, P_w], each >= the region's; default region_size.
    location_size: [L_h, L_w], each >= the region's; default region_size.

  Returns:
    initial_labels: An int32 tensor [h, w] in [0, K).
    location_features: A float32 tensor [h, w, 2].
  """
  height, width = region_size
  canvas_size = region_size if canvas_size is None else canvas_size
  location_size = region_size if location_size is None else location_size
  grid = common_utils.cluster_grid(num_clusters)
  initial_labels = common_utils.initialize_cluster_labels(
      grid, canvas_size)[:height, :width]
  location_features = common_utils.generate_location_features(
      location_size, 'float')[:height, :width]
  return initial_labels, location_features


def extract_test_prototypes(embedding, num_clusters, kmeans_iterations,
                            location_features=None, initial_labels=None):
  """Clusters test embeddings and returns one prototype per cluster.

  normalize(concat(normalize(embedding), location)) is clustered by vMF
  k-means from the grid start (or initial_labels), per image; cluster ids
  are offset by b * K so that they are unique over the batch; the
  prototypes are computed from the embeddings without location.

  Args:
    embedding: A float tensor [B, H, W, D].
    num_clusters: n per axis (K = n * n) or [n_y, n_x].
    kmeans_iterations: Number of k-means iterations.
    location_features: Optional float tensor [B, H, W, 2] or [H, W, 2];
      default (y / H, x / W) from common_utils.generate_location_features.
    initial_labels: Optional integer tensor [H, W] or [B, H, W] in [0, K)
      (e.g. from get_test_start); default the grid over H x W.

  Returns:
    cluster_labels: An int32 tensor [B, H, W] in [0, B * K).
    test_prototypes: A float tensor [B * K, D] (zero rows for empty
      clusters, which no pixel refers to).
  """
  embedding = common_utils.normalize_embedding(embedding)
  shape = tf.shape(embedding)
  if location_features is None:
    location_features = common_utils.generate_location_features(
        [shape[1], shape[2]], 'float')
  location_features = tf.cast(location_features, embedding.dtype)
  if location_features.get_shape().ndims == 3:
    location_features = tf.tile(location_features[tf.newaxis],
                                [shape[0], 1, 1, 1])
  embedding_with_location = common_utils.normalize_embedding(
      tf.concat([embedding, location_features], axis=3))
  cluster_labels = common_utils.kmeans(embedding_with_location, num_clusters,
                                       kmeans_iterations, initial_labels)
  total = common_utils.cluster_grid(num_clusters).count
  cluster_labels += total * tf.range(shape[0])[:, tf.newaxis, tf.newaxis]
  test_prototypes = common_utils.calculate_prototypes_from_labels(
      embedding, cluster_labels, total * shape[0])
  return cluster_labels, test_prototypes


def extract_test_prototypes_upsampled(low_embedding, size, region_size,
                                      num_clusters, kmeans_iterations,
                                      location_features=None,
                                      initial_labels=None):
  """extract_test_prototypes of an upsampled network output, faster.

  The region is resize_bilinear(low_embedding, size) cropped to its
  top-left region_size; the result is that of extract_test_prototypes on
  the region (one image) up to float rounding: the labels of
  common_utils.upsampled_kmeans (equal up to float near-ties) and
  prototypes summed by a one-hot matmul.

  Args:
    low_embedding: A float tensor [h_low, w_low, D].
    size: [H, W], the size of the upsampled output (the window).
    region_size: [h, w] <= size, python ints or int32 scalar tensors.
    num_clusters: n per axis (K = n * n) or [n_y, n_x].
    kmeans_iterations: Number of k-means iterations (a python int).
    location_features: Optional float tensor [h, w, 2]; default (y / h,
      x / w).
    initial_labels: Optional integer tensor [h, w] in [0, K); default the
      grid over h x w.

  Returns:
    cluster_labels: An int32 tensor [1, h, w] in [0, K).
    test_prototypes: A float tensor [K, D] (zero rows for empty clusters).
  """
  grid = common_utils.cluster_grid(num_clusters)
  if initial_labels is None:
    initial_labels = common_utils.initialize_cluster_labels(grid,
                                                            region_size)
  cluster_labels, embedding = common_utils.upsampled_kmeans(
      low_embedding, size, initial_labels, grid.count, kmeans_iterations,
      location_features)
  # A one-hot matmul sums faster than unsorted_segment_sum on CPU.
  test_prototypes = common_utils.normalize_embedding(tf.matmul(
      tf.one_hot(tf.reshape(cluster_labels, [-1]), grid.count,
                 dtype=embedding.dtype),
      tf.reshape(embedding, [-1, tf.shape(embedding)[2]]),
      transpose_a=True))
  return cluster_labels[tf.newaxis], test_prototypes


# ---------------------------------------------------------------------------
# kNN: the search and the vote.
# ---------------------------------------------------------------------------

KNearestPrototypes = collections.namedtuple(
    'KNearestPrototypes', ['similarities', 'indices', 'votes'])
KNearestPrototypes.__doc__ = """kNN of Q test prototypes in a training bank.

Attributes:
  similarities: A float tensor [Q, k'] (k' = min(k, T)), decreasing.
  indices: An int32 tensor [Q, k'] of training prototype rows.
  votes: A float32 tensor [Q, C], votes[q, c] = #{j in indices[q] :
    label_j = c}.
"""


def _count_votes(indices, prototype_labels, num_classes=None):
  """votes[q, c] = #{j in indices[q] : prototype_labels[j] = c}.

  Args:
    indices: An integer tensor [Q, k] of training prototype rows.
    prototype_labels: An integer tensor [T]; labels outside
      [0, num_classes) cast no vote.
    num_classes: C, a python int or int scalar tensor; the largest label
      among the neighbours plus one if None.

  Returns:
    A float32 tensor [Q, C].
  """
  labels = tf.gather(tf.cast(prototype_labels, tf.int32), indices)
  if num_classes is None:
    num_classes = tf.maximum(tf.reduce_max(labels) + 1, 1)
  return tf.reduce_sum(tf.one_hot(labels, num_classes, dtype=tf.float32),
                       axis=1)


def _majority(votes):
  """The class with the most votes [Q, C] -> int32 [Q]; ties: lowest."""
  # argmax returns the first maximum.
  return tf.argmax(votes, axis=1, output_type=tf.int32)


# Training prototypes per group of the two-stage top-k (_exact_top_k).
_TOP_K_GROUP = 64


def _exact_top_k(similarities, k):
  """tf.nn.top_k(similarities, k) of rows [Q, n], k <= n, in two stages.

  The row is cut into groups of _TOP_K_GROUP; the k groups with the largest
  maxima hold every one of the row's k largest entries (an entry among the
  k largest has at most k - 1 entries above it, so at most k - 1 groups'
  maxima can rank above its group's), so the top-k runs over the maxima and
  then over the k * _TOP_K_GROUP entries of those groups, instead of over
  the whole row: the same values and indices, ties included (top_k puts the
  lower index first among equals; the maxima's groups are ranked by the
  same rule, and the candidates are kept in index order). The row is padded
  with -inf to a whole number of groups; k <= n real entries outrank the
  padding.

  Args:
    similarities: A float tensor [Q, n].
    k: An int (or int scalar tensor) <= n.

  Returns:
    (values, indices) [Q, k], as tf.nn.top_k(similarities, k, sorted=True).
  """
  group = _TOP_K_GROUP
  num_rows = tf.shape(similarities)[0]
  length = tf.shape(similarities)[1]
  num_groups = (length + group - 1) // group
  padded = tf.pad(similarities, [[0, 0], [0, num_groups * group - length]],
                  constant_values=-float('inf'))
  maxima = tf.reduce_max(tf.reshape(padded, [num_rows, num_groups, group]),
                         axis=2)
  _, groups = tf.nn.top_k(maxima, k=tf.minimum(k, num_groups), sorted=False)
  # The candidates in increasing index order, so that top_k's tie rule
  # (lower position first) is the lower index first.
  groups = tf.sort(groups, axis=1)
  positions = tf.reshape(groups[:, :, tf.newaxis] * group + tf.range(group),
                         [num_rows, -1])
  values, order = tf.nn.top_k(tf.gather(padded, positions, batch_dims=1),
                              k=k, sorted=True)
  return values, tf.gather(positions, order, batch_dims=1)


def _top_k_similar(test_prototypes, prototype_features, k, chunk_size):
  """(similarities, indices) [Q, min(k, T)]; see get_k_nearest_prototypes."""
  test_prototypes = tf.convert_to_tensor(test_prototypes)
  prototype_features = tf.cast(prototype_features, test_prototypes.dtype)
  num_train = tf.shape(prototype_features)[0]
  k_found = tf.minimum(k, num_train)
  if chunk_size is None:
    similarities = tf.matmul(test_prototypes, prototype_features,
                             transpose_b=True)
    return _exact_top_k(similarities, k_found)

  num_test = tf.shape(test_prototypes)[0]
  num_chunks = (num_train + chunk_size - 1) // chunk_size

  def body(chunk, best_values, best_indices):
    start = chunk * chunk_size
    features = prototype_features[start:start + chunk_size]
    found = tf.minimum(k, tf.shape(features)[0])
    values, indices = _exact_top_k(
        tf.matmul(test_prototypes, features, transpose_b=True), found)
    # Fewer than k in a (last) chunk: -inf placeholders after them.
    values = tf.pad(values, [[0, 0], [0, k - found]],
                    constant_values=-float('inf'))
    indices = tf.pad(indices + start, [[0, 0], [0, k - found]],
                     constant_values=-1)
    # The running best (lower training indices) come first, so ties keep
    # the lower training index, as top_k over the whole bank does.
    values, positions = tf.nn.top_k(
        tf.concat([best_values, values], axis=1), k=k, sorted=True)
    indices = tf.gather(tf.concat([best_indices, indices], axis=1),
                        positions, batch_dims=1)
    return chunk + 1, values, indices

  init_values = tf.fill([num_test, k],
                        tf.constant(-float('inf'), test_prototypes.dtype))
  init_indices = tf.fill([num_test, k], -1)
  _, values, indices = tf.while_loop(
      lambda chunk, *_: chunk < num_chunks, body,
      [tf.constant(0), init_values, init_indices],
      back_prop=False, parallel_iterations=1)
  # Fewer than k training prototypes: the -inf placeholders are last.
  return values[:, :k_found], indices[:, :k_found]


def get_k_nearest_prototypes(test_prototypes, prototype_features,
                             prototype_labels, k, num_classes=None,
                             chunk_size=None):
  """The k most similar training prototypes of every test one, and votes.

  Similarity is the dot product; ties go to the lower training index. Each
  test prototype q receives one vote per neighbour for the neighbour's
  label: votes[q, c] = #{j in the k nearest of q : label_j = c}, and its
  kNN label is argmax_c votes[q, c] (ties: lowest class). With chunk_size,
  the training bank is scanned chunk by chunk in a tf.while_loop that keeps
  a running top-k, so that memory is O(Q * (k + chunk_size)) instead of
  O(Q * T); the result is identical.

  Args:
    test_prototypes: A float tensor [Q, D].
    prototype_features: A float tensor [T, D] of training prototypes.
    prototype_labels: An integer tensor [T], their labels; labels outside
      [0, num_classes) cast no vote.
    k: Number of neighbours (python int >= 1); min(k, T) are returned.
    num_classes: C, a python int or int scalar tensor; the largest label
      among the neighbours plus one if None.
    chunk_size: Optional python int, training prototypes per chunk.

  Returns:
    A KNearestPrototypes (similarities [Q, k'], indices [Q, k'],
    votes [Q, C]).

  Raises:
    ValueError: k or chunk_size below 1.
  """
  if k < 1:
    raise ValueError('k (k_in_nearest_neighbors) must be >= 1, got %d' % k)
  if chunk_size is not None and chunk_size < 1:
    raise ValueError('chunk_size must be >= 1, got %d' % chunk_size)
  similarities, indices = _top_k_similar(test_prototypes, prototype_features,
                                         k, chunk_size)
  return KNearestPrototypes(similarities, indices,
                            _count_votes(indices, prototype_labels,
                                         num_classes))


# ---------------------------------------------------------------------------
# The paper release's interface, over get_k_nearest_prototypes.
# ---------------------------------------------------------------------------


def k_nearest_neighbors(k_predictions, prototype_labels, num_classes=None):
  """Majority label of each test prototype's k nearest training prototypes.

  Args:
    k_predictions: An integer tensor [Q, k] of training prototype indices
      (get_k_nearest_prototypes(...).indices).
    prototype_labels: An integer tensor [T] of their (semantic or instance)
      labels, >= 0.
    num_classes: Optional number of labels; max label + 1 if None.

  Returns:
    An int32 tensor [Q]: the label with the most votes, ties going to the
    lowest label.
  """
  return _majority(_count_votes(k_predictions, prototype_labels,
                                num_classes))


def predict_semantic_instance_labels(cluster_labels,
                                     test_prototypes,
                                     prototype_features,
                                     prototype_semantic_labels,
                                     prototype_instance_labels,
                                     k=1,
                                     chunk_size=None):
  """Paints every test cluster with the kNN vote of its prototype.

  Args:
    cluster_labels: An integer tensor of any shape (e.g. [B, H, W]) whose
      values index test_prototypes.
    test_prototypes: A float tensor [Q, D], one prototype per test cluster.
    prototype_features: A float tensor [T, D] of training prototypes.
    prototype_semantic_labels: An integer tensor [T].
    prototype_instance_labels: An integer tensor [T], or None.
    k: Number of nearest neighbours (k_in_nearest_neighbors).
    chunk_size: Optional, see get_k_nearest_prototypes.

  Returns:
    semantic_predictions: An int32 tensor shaped like cluster_labels (ties
      in the vote go to the lowest class).
    instance_predictions: An int32 tensor shaped like cluster_labels
      (instance votes renumbered from 0 in order of first appearance), or
      None when prototype_instance_labels is None.
  """
  nearest = get_k_nearest_prototypes(test_prototypes, prototype_features,
                                     prototype_semantic_labels, k,
                                     chunk_size=chunk_size)
  semantic_predictions = tf.gather(_majority(nearest.votes), cluster_labels)
  if prototype_instance_labels is None:
    return semantic_predictions, None
  _, instance_ids = tf.unique(
      k_nearest_neighbors(nearest.indices, prototype_instance_labels),
      out_idx=tf.int32)
  return semantic_predictions, tf.gather(instance_ids, cluster_labels)


def predict_all_labels(embedding,
                       num_clusters,
                       kmeans_iterations,
                       prototype_features,
                       prototype_semantic_labels,
                       prototype_instance_labels,
                       k_in_nearest_neighbors,
                       panoptic_label_divisor,
                       class_has_instances_list):
  """Panoptic, semantic and instance labels of every pixel by kNN.

  Test clusters and prototypes from extract_test_prototypes (locations
  (y / H, x / W)), labels from predict_semantic_instance_labels; pixels
  whose class is not in class_has_instances_list get instance 0, and
  panoptic = semantic * panoptic_label_divisor + instance.

  Args:
    embedding: A float tensor [B, H, W, D].
    num_clusters: n per axis or [n_y, n_x].
    kmeans_iterations: Number of k-means iterations.
    prototype_features: A float tensor [T, D] of training prototypes.
    prototype_semantic_labels: An integer tensor [T].
    prototype_instance_labels: An integer tensor [T], or None (instance 0
      everywhere).
    k_in_nearest_neighbors: k of the kNN vote.
    panoptic_label_divisor: An int.
    class_has_instances_list: The ids of the classes with instances.

  Returns:
    (panoptic_predictions, semantic_predictions, instance_predictions,
    cluster_labels), int32 tensors [B, H, W].
  """
  cluster_labels, test_prototypes = extract_test_prototypes(
      embedding, num_clusters, kmeans_iterations)
  semantic, instance = predict_semantic_instance_labels(
      cluster_labels, test_prototypes, prototype_features,
      prototype_semantic_labels, prototype_instance_labels,
      k_in_nearest_neighbors)
  if instance is None:
    instance = tf.zeros_like(semantic)
  things = tf.reshape(tf.cast(class_has_instances_list, tf.int32), [-1])
  is_thing = tf.reduce_any(
      tf.equal(semantic[..., tf.newaxis], things), axis=-1)
  instance = tf.where_v2(is_thing, instance, 0)
  panoptic = semantic * panoptic_label_divisor + instance
  return panoptic, semantic, instance, cluster_labels


def oracle_region(embedding, labels):
  """Regions given by the ground truth, for debugging.

  Args:
    embedding: A float tensor [B, H, W, D].
    labels: An integer tensor [B, H, W] (or [B, H, W, 1]) of labels >= 0.

  Returns:
    cluster_labels: An int32 tensor [B, H, W]: the distinct labels numbered
      0, 1, ... in order of first appearance (row-major over the batch).
    prototypes: A float tensor [max(labels) + 1, D]: row r the sum (not
      normalised) of the embeddings of region r; rows past the number of
      regions are zero.
  """
  embedding = tf.convert_to_tensor(embedding)
  shape = tf.shape(embedding)
  labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
  _, cluster_labels = tf.unique(labels, out_idx=tf.int32)
  prototypes = tf.math.unsorted_segment_sum(
      tf.reshape(embedding, [-1, shape[3]]), cluster_labels,
      tf.reduce_max(labels) + 1)
  return tf.reshape(cluster_labels, shape[:3]), prototypes


def predict_oracle_labels(cluster_labels, labels, ignore_label=255):
  """Paints every cluster with its majority ground-truth label.

  Args:
    cluster_labels: An integer tensor [B, H, W] of cluster ids >= 0.
    labels: An integer tensor [B, H, W] of ground-truth labels; ignore_label
      counts as class 0 (background).
    ignore_label: The label counted as background.

  Returns:
    An int32 tensor [B, H, W]: the most frequent label of each pixel's
    cluster (ties: lowest label).
  """
  shape = tf.shape(cluster_labels)
  cluster_labels = tf.cast(tf.reshape(cluster_labels, [-1]), tf.int32)
  labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
  labels = tf.where_v2(tf.equal(labels, ignore_label), 0, labels)
  counts = _class_counts(labels, cluster_labels,
                         tf.reduce_max(cluster_labels) + 1,
                         tf.reduce_max(labels) + 1)
  majority = tf.argmax(counts, axis=1, output_type=tf.int32)
  return tf.reshape(tf.gather(majority, cluster_labels), shape)
