"""PCA of embeddings, to look at them as RGB pictures.

The embedding is centred, projected on the eigenvectors of its covariance
with the largest eigenvalues (each eigenvector's sign fixed so that its
largest-magnitude entry is positive, so the colours do not flip between
runs), and every component is stretched to [0, 255]:
  channel_c = 255 * (x_c - min x_c) / (max x_c - min x_c)  (0 if constant).
"""
import numpy as np
import tensorflow.compat.v1 as tf


def _fix_signs_np(components):
  rows = np.argmax(np.abs(components), axis=0)
  signs = np.sign(components[rows, np.arange(components.shape[1])])
  signs[signs == 0] = 1.0
  return components * signs


def _stretch_to_uint8_np(projected):
  low = projected.min(axis=0, keepdims=True)
  span = projected.max(axis=0, keepdims=True) - low
  scaled = np.where(span > 0, (projected - low) / np.where(span > 0, span, 1),
                    0.0)
  return np.round(scaled * 255.0).astype(np.uint8)


def pca_picture(embedding, n_components=3):
  """Principal components of an embedding map as a uint8 picture (NumPy).

  Args:
    embedding: An array [H, W, D] or [N, D] (any leading shape).
    n_components: Number of output channels; channels beyond D are 0.

  Returns:
    A uint8 array [..., n_components] in [0, 255], with the leading shape of
    the input.
  """
  embedding = np.asarray(embedding, dtype=np.float64)
  if embedding.ndim < 2:
    raise ValueError('pca_picture: embedding must be [..., D], got shape %s'
                     % (embedding.shape,))
  if n_components < 1:
    raise ValueError('pca_picture: n_components must be >= 1, got %d'
                     % n_components)
  leading, depth = embedding.shape[:-1], embedding.shape[-1]
  flat = embedding.reshape(-1, depth)
  output = np.zeros((flat.shape[0], n_components), dtype=np.uint8)
  kept = min(n_components, depth)
  if flat.shape[0] and kept:
    centred = flat - flat.mean(axis=0, keepdims=True)
    # eigh returns ascending eigenvalues; the last columns are the largest.
    _, vectors = np.linalg.eigh(centred.T @ centred)
    components = _fix_signs_np(vectors[:, ::-1][:, :kept])
    output[:, :kept] = _stretch_to_uint8_np(centred @ components)
  return output.reshape(leading + (n_components,))


def calculate_principal_components(embedding, num_components=3):
  """The top principal directions of a set of embeddings (TensorFlow).

  Args:
    embedding: A float tensor [N, D].
    num_components: Number of directions, <= D.

  Returns:
    A float tensor [D, num_components], columns by decreasing variance, each
    with its largest-magnitude entry positive.
  """
  embedding = tf.convert_to_tensor(embedding)
  centred = embedding - tf.reduce_mean(embedding, axis=0, keepdims=True)
  _, vectors = tf.linalg.eigh(tf.matmul(centred, centred, transpose_a=True))
  components = tf.reverse(vectors, axis=[1])[:, :num_components]
  rows = tf.argmax(tf.abs(components), axis=0, output_type=tf.int32)
  peaks = tf.gather_nd(components,
                       tf.stack([rows, tf.range(tf.shape(rows)[0])], axis=1))
  signs = tf.where_v2(peaks < 0, -1.0, 1.0)
  return components * signs[tf.newaxis, :]


def pca(embedding, num_components=3, principal_components=None):
  """Projects embedding maps on their principal directions (TensorFlow).

  The projection is of the embedding itself (not centred); the directions
  come from calculate_principal_components unless given.

  Args:
    embedding: A float tensor [B, H, W, D].
    num_components: Number of output channels.
    principal_components: An optional float tensor [D, num_components].

  Returns:
    A float tensor [B, H, W, num_components].
  """
  embedding = tf.convert_to_tensor(embedding)
  shape = tf.shape(embedding)
  flat = tf.reshape(embedding, [-1, shape[3]])
  if principal_components is None:
    principal_components = calculate_principal_components(flat,
                                                          num_components)
  projected = tf.matmul(flat, principal_components)
  return tf.reshape(projected,
                    [shape[0], shape[1], shape[2], num_components])


def embedding_to_pca_image(embedding, n_components=3):
  """PCA picture of a batch of embedding maps, for image summaries.

  The components and the stretch are shared by the whole batch, so that
  colours are comparable between its images.

  Args:
    embedding: A float tensor [B, h, w, D] with a static D >= n_components.
    n_components: Number of output channels (3 for RGB).

  Returns:
    A uint8 tensor [B, h, w, n_components].
  """
  embedding = tf.convert_to_tensor(embedding)
  depth = tf.dimension_value(embedding.get_shape()[-1])
  if depth is None or depth < n_components:
    raise ValueError('embedding_to_pca_image: needs a static embedding '
                     'depth >= n_components=%d, got shape %s'
                     % (n_components, embedding.get_shape()))
  shape = tf.shape(embedding)
  flat = tf.reshape(embedding, [-1, depth])
  centred = flat - tf.reduce_mean(flat, axis=0, keepdims=True)
  projected = tf.matmul(centred,
                        calculate_principal_components(flat, n_components))
  low = tf.reduce_min(projected, axis=0, keepdims=True)
  span = tf.reduce_max(projected, axis=0, keepdims=True) - low
  scaled = tf.where_v2(span > 0,
                       (projected - low) / tf.where_v2(span > 0, span, 1.0),
                       0.0)
  image = tf.cast(tf.round(scaled * 255.0), tf.uint8)
  return tf.reshape(image, [shape[0], shape[1], shape[2], n_components])
