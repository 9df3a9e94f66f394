"""network/segsort/vis_utils.py: PCA pictures of embeddings."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from network.segsort import vis_utils


def _stretch(x):
  return np.round(255 * (x - x.min()) / (x.max() - x.min()))


def _planar_embedding(rng, height=6, width=5, depth=8):
  """Data in a 3-D subspace with known principal axes and variances."""
  basis, _ = np.linalg.qr(rng.randn(depth, 3))
  coefficients = rng.randn(height * width, 3)
  coefficients -= coefficients.mean(axis=0)
  # Orthogonal coefficient columns, scaled 3 : 2 : 1.
  q, _ = np.linalg.qr(coefficients)
  coefficients = q * np.array([3.0, 2.0, 1.0])
  embedding = coefficients @ basis.T + 0.5   # an offset PCA must remove
  return embedding.reshape(height, width, depth), coefficients


def test_pca_recovers_principal_axes():
  rng = np.random.RandomState(0)
  embedding, coefficients = _planar_embedding(rng)
  picture = vis_utils.pca_picture(embedding)
  assert picture.shape == (6, 5, 3) and picture.dtype == np.uint8
  assert picture.min() == 0 and picture.max() == 255
  flat = picture.reshape(-1, 3).astype(np.float64)
  for c in range(3):
    # Each channel is the stretched c-th coefficient, up to its sign.
    candidates = [_stretch(coefficients[:, c]), _stretch(-coefficients[:, c])]
    assert min(np.abs(flat[:, c] - cand).max() for cand in candidates) <= 1


def test_pca_shapes_and_degenerate_input():
  assert vis_utils.pca_picture(np.zeros((4, 2))).tolist() == [[0, 0, 0]] * 4
  rng = np.random.RandomState(1)
  assert vis_utils.pca_picture(rng.randn(10, 5),
                               n_components=2).shape == (10, 2)
  with pytest.raises(ValueError, match='n_components'):
    vis_utils.pca_picture(rng.randn(10, 5), n_components=0)


def test_tensorflow_pca_image_matches_numpy():
  rng = np.random.RandomState(2)
  embedding, _ = _planar_embedding(rng)
  batch = np.stack([embedding[:3], embedding[3:]]).astype(np.float32)
  image = vis_utils.embedding_to_pca_image(tf.constant(batch))
  with tf.Session() as sess:
    image = sess.run(image)
  assert image.shape == (2, 3, 5, 3) and image.dtype == np.uint8
  expected = vis_utils.pca_picture(batch)
  assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
