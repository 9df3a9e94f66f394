"""SegSort building blocks shared by training and inference.

Embeddings are L2-normalised along their last axis; a prototype is the
L2-normalised sum of the embeddings of one segment; similarity is the dot
product.
"""
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
