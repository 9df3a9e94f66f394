"""Prototype maps (PCA, t-SNE), subsampling and prediction overlays.

The PCA against a NumPy SVD (another algorithm than the eigendecomposition
the tool uses), t-SNE's shape and determinism, the overlay against a NumPy
blend, and visualize_prototypes.py end to end on files written here.
"""
import os

import numpy as np
import pytest
from PIL import Image

from pyscripts.tools import visualize_prototypes
from seg_models import prototype_sets
from utils import colormaps
from utils import prototype_plots


def _clustered(num_per_class=(30, 12, 3), depth=6, seed=0):
  """Unit vectors around one centre per class; (features, labels)."""
  rng = np.random.RandomState(seed)
  centres = rng.randn(len(num_per_class), depth)
  features, labels = [], []
  for c, count in enumerate(num_per_class):
    features.append(centres[c] + 0.3 * rng.randn(count, depth))
    labels += [c] * count
  features = np.concatenate(features)
  features /= np.linalg.norm(features, axis=1, keepdims=True)
  return features.astype(np.float32), np.array(labels, np.int32)


def _svd_pca(features, num_components):
  """Reference: the right singular vectors of the centred data."""
  centred = features - features.mean(axis=0)
  _, singular, vt = np.linalg.svd(centred, full_matrices=False)
  components = vt[:num_components].T
  # Each direction's largest-magnitude entry positive (the tool's rule).
  for j in range(components.shape[1]):
    if components[np.argmax(np.abs(components[:, j])), j] < 0:
      components[:, j] *= -1
  variance = singular ** 2
  return centred @ components, variance[:num_components] / variance.sum()


@pytest.mark.parametrize('shape', [(50, 6), (7, 32), (200, 3)])
def test_pca_coordinates_match_svd(shape):
  rng = np.random.RandomState(1)
  # Distinct variances along the axes: a well-defined order of directions.
  features = rng.randn(*shape) * np.linspace(3.0, 0.5, shape[1])
  coordinates, explained = prototype_plots.pca_coordinates(features, 2)
  want, want_explained = _svd_pca(features.astype(np.float64), 2)
  np.testing.assert_allclose(coordinates, want, atol=1e-9)
  np.testing.assert_allclose(explained, want_explained, atol=1e-12)
  # Uncorrelated coordinates, the first with the largest variance.
  cov = np.cov(coordinates.T)
  assert abs(cov[0, 1]) < 1e-8 and cov[0, 0] >= cov[1, 1]


def test_pca_of_degenerate_sets():
  coordinates, explained = prototype_plots.pca_coordinates(
      np.ones((4, 3)), 2)
  np.testing.assert_array_equal(coordinates, 0)
  np.testing.assert_array_equal(explained, 0)
  # One feature dimension: the second coordinate is zero.
  coordinates, explained = prototype_plots.pca_coordinates(
      np.arange(5.0)[:, None], 2)
  np.testing.assert_allclose(coordinates[:, 0], np.arange(5.0) - 2)
  np.testing.assert_array_equal(coordinates[:, 1], 0)
  np.testing.assert_allclose(explained, [1.0, 0.0])


def test_tsne_shape_and_determinism():
  features, labels = _clustered()
  first = prototype_plots.tsne_coordinates(features, seed=3)
  again = prototype_plots.tsne_coordinates(features, seed=3)
  assert first.shape == (len(features), 2) and np.all(np.isfinite(first))
  np.testing.assert_array_equal(first, again)
  # Neighbours stay neighbours: a point's nearest one on the map is
  # nearly always of its class.
  distances = np.linalg.norm(first[:, None] - first[None], axis=2)
  np.fill_diagonal(distances, np.inf)
  assert np.mean(labels[np.argmin(distances, axis=1)] == labels) > 0.9
  # A handful of points: the perplexity is capped below their number.
  assert prototype_plots.tsne_perplexity(5) == pytest.approx(4 / 3.0)
  assert prototype_plots.tsne_coordinates(features[:5]).shape == (5, 2)
  with pytest.raises(ValueError, match='at least 2'):
    prototype_plots.tsne_coordinates(features[:1])


def test_subsample_gives_classes_equal_shares():
  labels = np.array([0] * 100 + [1] * 30 + [2] * 4 + [5] * 1)
  kept = prototype_plots.subsample(labels, 40, seed=0)
  assert len(kept) == 40 and len(np.unique(kept)) == 40
  assert np.all(np.diff(kept) > 0)
  counts = {c: int(np.sum(labels[kept] == c)) for c in (0, 1, 2, 5)}
  # The two small classes whole, the rest shared: 35 // 2 = 17, then 18.
  assert counts == {5: 1, 2: 4, 1: 17, 0: 18}
  np.testing.assert_array_equal(kept, prototype_plots.subsample(labels, 40))
  assert not np.array_equal(kept, prototype_plots.subsample(labels, 40, 1))
  np.testing.assert_array_equal(prototype_plots.subsample(labels, 0),
                                np.arange(len(labels)))
  np.testing.assert_array_equal(prototype_plots.subsample(labels, 500),
                                np.arange(len(labels)))


@pytest.mark.parametrize('alpha', [0.0, 0.25, 0.5, 0.3, 1.0])
def test_overlay_matches_numpy_blend(alpha):
  rng = np.random.RandomState(2)
  rgb = rng.randint(0, 256, (9, 13, 3)).astype(np.uint8)
  labels = rng.randint(0, 21, (9, 13))
  labels[0, 0] = 255
  got = prototype_plots.overlay(rgb, labels, alpha=alpha)
  colours = colormaps.VOC_COLORMAP[labels].astype(np.float64)
  want = (1 - alpha) * rgb + alpha * colours
  assert got.dtype == np.uint8 and got.shape == rgb.shape
  # float32 arithmetic: off by one only where the float64 blend sits on a
  # half; exact for alphas that are binary fractions.
  assert np.max(np.abs(got.astype(int) - np.round(want))) <= 1
  if alpha in (0.0, 0.25, 0.5, 1.0):
    np.testing.assert_array_equal(got, np.round(want).astype(np.uint8))
  if alpha == 0.0:
    np.testing.assert_array_equal(got, rgb)
  with pytest.raises(ValueError, match='shape'):
    prototype_plots.overlay(rgb, labels[:3])


def test_scatter_picture_colours_and_size():
  features, labels = _clustered()
  coordinates, _ = prototype_plots.pca_coordinates(features)
  names = ['background', 'cat', 'dog']
  picture = prototype_plots.scatter_picture(coordinates, labels, names,
                                            'title')
  assert picture.dtype == np.uint8 and picture.ndim == 3
  assert picture.shape[:2] == (
      2 * prototype_plots.MARGIN + prototype_plots.PLOT_SIZE,
      2 * prototype_plots.MARGIN + prototype_plots.PLOT_SIZE +
      prototype_plots.LEGEND_WIDTH)
  # Every class's colour is drawn (points and legend swatch).
  flat = picture.reshape(-1, 3)
  for c in range(3):
    colour = colormaps.VOC_COLORMAP[c]
    assert np.sum(np.all(flat == colour, axis=1)) > 20, c


def _write_prototypes(folder):
  features, labels = _clustered((40, 15, 5, 2))
  prototype_sets.save_prototypes(str(folder), features, labels)
  return features, labels


def test_script_draws_prototype_maps(tmp_path):
  features, labels = _write_prototypes(tmp_path / 'prototypes')
  names = tmp_path / 'names.txt'
  names.write_text('background\ncat\ndog\nbird\n')
  save_dir = tmp_path / 'pictures'
  paths = visualize_prototypes.main(
      ['--prototype_dir', str(tmp_path / 'prototypes'), '--class_names',
       str(names), '--save_dir', str(save_dir), '--max_prototypes', '30'])
  assert [os.path.basename(p) for p in paths] == [
      'prototypes_pca.png', 'prototypes_tsne.png']
  for path in paths:
    with Image.open(path) as image:
      assert image.mode == 'RGB' and image.size[0] > image.size[1] > 100
  points = np.load(str(save_dir / 'prototypes_2d.npz'))
  kept = points['indices']
  assert len(kept) == 30
  np.testing.assert_array_equal(points['labels'], labels[kept])
  # The PCA directions of the whole set, its subsample drawn.
  coordinates, _ = prototype_plots.pca_coordinates(features)
  np.testing.assert_allclose(points['pca'], coordinates[kept])
  assert points['tsne'].shape == (30, 2)


def _write_predictions(root, names, size=(6, 8)):
  rng = np.random.RandomState(5)
  (root / 'images').mkdir()
  (root / 'pred' / 'gray').mkdir(parents=True)
  for name in names:
    rgb = rng.randint(0, 256, size + (3,)).astype(np.uint8)
    Image.fromarray(rgb).save(str(root / 'images' / (name + '.png')))
    labels = rng.randint(0, 4, size).astype(np.uint8)
    Image.fromarray(labels).save(str(root / 'pred' / 'gray' / (name + '.png')))
  (root / 'list.txt').write_text(
      ''.join('images/%s.png\n' % name for name in names))


def test_script_writes_overlays(tmp_path, capsys):
  names = ['a', 'b', 'c']
  _write_predictions(tmp_path, names)
  out = tmp_path / 'out'
  for extra in (['--data_dir', str(tmp_path), '--data_list',
                 str(tmp_path / 'list.txt')],
                ['--input_dir', str(tmp_path / 'images')]):
    paths = visualize_prototypes.main(
        ['--pred_dir', str(tmp_path / 'pred'), '--save_dir', str(out),
         '--alpha', '0.5'] + extra)
    assert paths == [str(out / 'overlay' / (n + '.png')) for n in names]
    for name in names:
      rgb = np.asarray(Image.open(str(tmp_path / 'images' / (name + '.png'))))
      labels = np.asarray(Image.open(
          str(tmp_path / 'pred' / 'gray' / (name + '.png'))))
      want = np.round(0.5 * rgb + 0.5 * colormaps.VOC_COLORMAP[labels])
      got = np.asarray(Image.open(str(out / 'overlay' / (name + '.png'))))
      np.testing.assert_array_equal(got, want.astype(np.uint8))

  # A missing prediction is named; nothing asked is an error.
  capsys.readouterr()
  os.remove(str(tmp_path / 'pred' / 'gray' / 'b.png'))
  for argv, words in (
      (['--pred_dir', str(tmp_path / 'pred'), '--input_dir',
        str(tmp_path / 'images')], ['b.png', 'no prediction']),
      ([], ['nothing to draw']),
      (['--pred_dir', str(tmp_path / 'pred')], ['--data_list']),
      (['--prototype_dir', str(tmp_path / 'none')], ['--prototype_dir'])):
    with pytest.raises(SystemExit):
      visualize_prototypes.main(argv + ['--save_dir', str(out)])
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for word in words:
      assert word in err, (word, err)
