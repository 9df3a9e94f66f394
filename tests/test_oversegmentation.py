"""Tests for utils/oversegmentation.py and the make_oversegmentation script.

All images are generated here: Voronoi partitions into regions of distinct
flat colours, plus Gaussian noise and a stripe texture on every other region,
so the true region borders are known exactly.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import color

from utils import data_lists
from utils import oversegmentation as ovs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'pyscripts', 'tools', 'make_oversegmentation.py')


def _make_image(seed, h=96, w=128, num_regions=7, noise=4.0, texture=6.0):
  """Voronoi regions of distinct colours + texture + noise; returns both."""
  rng = np.random.default_rng(seed)
  centres = rng.uniform([0, 0], [h, w], size=(num_regions, 2))
  yy, xx = np.mgrid[:h, :w]
  distance = ((yy[..., None] - centres[:, 0]) ** 2
              + (xx[..., None] - centres[:, 1]) ** 2)
  truth = np.argmin(distance, axis=-1)
  colours = []
  while len(colours) < num_regions:
    candidate = rng.uniform(20, 235, 3)
    # Neighbouring regions differ by at least 25 Lab units: a clearly visible
    # border, not one a detector could be forgiven for missing.
    lab = color.rgb2lab(candidate[None, None] / 255.0)[0, 0]
    if all(np.linalg.norm(lab - other) > 25 for _, other in colours):
      colours.append((candidate, lab))
  image = np.array([c for c, _ in colours])[truth]
  stripes = texture * np.sin(2 * np.pi * (xx + yy) / 4.0)
  image += (truth % 2 == 0)[..., None] * stripes[..., None]
  image += rng.normal(0.0, noise, image.shape)
  return np.clip(np.round(image), 0, 255).astype(np.uint8), truth


def _boundary(labels):
  """Pixels with a 4-neighbour of another label (both sides marked)."""
  edge = np.zeros(labels.shape, bool)
  horizontal = labels[:, :-1] != labels[:, 1:]
  vertical = labels[:-1, :] != labels[1:, :]
  edge[:, :-1] |= horizontal
  edge[:, 1:] |= horizontal
  edge[:-1, :] |= vertical
  edge[1:, :] |= vertical
  return edge


def _boundary_recall(truth, predicted, tolerance=2):
  """Fraction of true boundary pixels within tolerance px of a predicted one."""
  distance = ndimage.distance_transform_edt(~_boundary(predicted))
  return float(np.mean(distance[_boundary(truth)] <= tolerance))


def _assert_raster_ids(segments):
  """Ids are 0..N-1 and first appear in row-major order."""
  values, first = np.unique(segments.ravel(), return_index=True)
  np.testing.assert_array_equal(values, np.arange(len(values)))
  assert np.all(np.diff(first) > 0)
  assert segments.flat[0] == 0


def _contour_from_truth(truth):
  """A HED-like contour map: soft 255-valued ridges on the true borders."""
  ridge = _boundary(truth).astype(np.float32)
  soft = ndimage.gaussian_filter(ridge, 1.0)
  return np.clip(np.round(255 * soft / soft.max()), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- contours


def test_contour_strength_of_a_step_is_its_lab_contrast():
  """Scale-normalised gradient of a step edge = its Lab contrast (deltaE)."""
  left, right = np.array([200, 40, 40]), np.array([40, 90, 200])
  image = np.zeros((40, 40, 3), np.uint8)
  image[:, :20], image[:, 20:] = left, right
  delta_e = np.linalg.norm(
      color.rgb2lab(left[None, None] / 255.0)
      - color.rgb2lab(right[None, None] / 255.0))
  # No suppression, fixed normaliser of 200 Lab units.
  strength = ovs.get_contour_strength(image, surround_weight=0.0,
                                      min_contrast=200.0, max_contrast=200.0)
  peak = strength[20].max() * 200.0
  # Sampled at half a pixel from the edge, each scale loses a factor
  # exp(-1 / (8 sigma^2)): 0.882, 0.969, 0.992 for sigma 1, 2, 4.
  expected = delta_e * np.mean([np.exp(-1 / (8 * s * s)) for s in (1, 2, 4)])
  assert peak == pytest.approx(expected, rel=0.03)
  assert np.all(strength[:, :3] < 1e-3)  # Flat beyond the widest kernel.


def test_contour_strength_range_uniform_and_noise():
  rng = np.random.default_rng(0)
  flat = np.full((50, 60, 3), 120, np.uint8)
  np.testing.assert_array_equal(ovs.get_contour_strength(flat), 0.0)
  noisy = np.clip(120 + rng.normal(0, 3, (50, 60, 3)), 0, 255).astype(np.uint8)
  strength = ovs.get_contour_strength(noisy)
  assert strength.dtype == np.float32 and strength.shape == (50, 60)
  # The min_contrast floor keeps pure noise well below contour strength,
  # and no boundary made of noise survives the default threshold.
  assert np.percentile(strength, 99) < 0.35
  np.testing.assert_array_equal(
      ovs.get_oversegmentation(noisy, min_size=0), 0)
  image, _ = _make_image(1)
  strength = ovs.get_contour_strength(image)
  assert strength.min() >= 0.0 and strength.max() == 1.0


def test_surround_suppresses_texture_more_than_an_isolated_edge():
  xx = np.mgrid[:64, :96][1]
  image = np.full((64, 96, 3), 100.0)
  image[:, :40] += 40 * (((xx[:, :40] // 2) % 2) * 2 - 1)[..., None]  # Stripes.
  image[:, 70:] = 180  # One step edge at x = 70 in a flat area.
  image = image.astype(np.uint8)
  plain = ovs.get_contour_strength(image, surround_weight=0.0,
                                   min_contrast=100.0, max_contrast=100.0)
  suppressed = ovs.get_contour_strength(image, min_contrast=100.0,
                                        max_contrast=100.0)
  texture_kept = suppressed[:, 8:32].mean() / plain[:, 8:32].mean()
  edge_kept = suppressed[:, 69:71].max() / plain[:, 69:71].max()
  assert edge_kept > 0.6
  assert texture_kept < 0.5 * edge_kept


# ------------------------------------------------------ regions and the UCM


def _reference_levels(labels, contour):
  """Brute-force greedy merging: recompute every mean at every step."""
  h, w = labels.shape
  pairs = []
  for y in range(h):
    for x in range(w):
      for dy, dx in ((0, 1), (1, 0)):
        yy, xx = y + dy, x + dx
        if yy < h and xx < w and labels[y, x] != labels[yy, xx]:
          a, b = sorted((labels[y, x], labels[yy, xx]))
          pairs.append((a, b, float(max(contour[y, x], contour[yy, xx]))))
  cluster = np.arange(labels.max() + 1)
  levels = {}
  while len(np.unique(cluster)) > 1:
    sums = {}
    for a, b, s in pairs:
      ca, cb = sorted((cluster[a], cluster[b]))
      if ca != cb:
        total, count = sums.get((ca, cb), (0.0, 0))
        sums[(ca, cb)] = (total + s, count + 1)
    (ca, cb), (total, count) = min(sums.items(),
                                   key=lambda kv: kv[1][0] / kv[1][1])
    for a, b, _ in pairs:
      if {cluster[a], cluster[b]} == {ca, cb}:
        levels[(a, b)] = total / count
    cluster[cluster == cb] = ca
  return levels


def test_ucm_levels_match_brute_force_greedy_merging():
  rng = np.random.default_rng(3)
  labels = ovs.renumber_raster_order(_make_image(3, 20, 24, 9)[1])
  contour = rng.uniform(0, 1, labels.shape).astype(np.float32)
  ucm, boundaries, levels = ovs.get_ultrametric_contour_map(labels, contour)
  reference = _reference_levels(labels, contour)
  assert len(reference) == len(levels)
  for (a, b), level in zip(boundaries.pairs.tolist(), levels):
    assert level == pytest.approx(reference[(a, b)], abs=1e-9)
  # The pixel UCM is 0 inside regions and the largest adjacent level on
  # the straddling pixels.
  assert np.all(ucm[~_boundary(labels)] == 0)
  assert np.all(ucm[_boundary(labels)] > 0)
  assert ucm.max() == pytest.approx(levels.max(), abs=1e-6)


def test_hierarchy_is_ultrametric_and_nested():
  image, _ = _make_image(5)
  contour = ovs.get_contour_strength(image)
  fine = ovs.get_watershed_regions(contour)
  ucm, boundaries, levels = ovs.get_ultrametric_contour_map(fine, contour)
  a, b = boundaries.pairs[:, 0], boundaries.pairs[:, 1]
  previous, previous_count = None, np.inf
  for threshold in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.01):
    regions = ovs.threshold_hierarchy(fine, boundaries, levels, threshold)
    # Two adjacent fine regions are apart exactly when their level >= t.
    region_of = np.zeros(fine.max() + 1, np.int64)
    region_of[fine.ravel()] = regions.ravel()
    np.testing.assert_array_equal(region_of[a] != region_of[b],
                                  levels >= threshold)
    count = regions.max() + 1
    assert count <= previous_count
    if previous is not None:  # Each finer region lies in one coarser one.
      pairs = np.unique(np.stack([previous.ravel(), regions.ravel()]), axis=1)
      assert len(np.unique(pairs[0])) == pairs.shape[1]
    previous, previous_count = regions, count
  assert previous_count == 1
  assert ucm.min() >= 0 and ucm.max() <= 1


def test_watershed_regions_are_connected_and_dense():
  image, _ = _make_image(2)
  fine = ovs.get_watershed_regions(ovs.get_contour_strength(image))
  assert fine.dtype == np.int32 and fine.min() == 0
  np.testing.assert_array_equal(np.unique(fine), np.arange(fine.max() + 1))
  for region in range(fine.max() + 1):
    assert ndimage.label(fine == region)[1] == 1
  assert fine.max() + 1 >= 7  # At least as fine as the truth.
  np.testing.assert_array_equal(
      ovs.get_watershed_regions(np.zeros((8, 9), np.float32)), 0)


def test_renumber_raster_order_by_hand():
  labels = np.array([[5, 5, 2],
                     [7, 2, 9]])
  np.testing.assert_array_equal(ovs.renumber_raster_order(labels),
                                [[0, 0, 1],
                                 [2, 1, 3]])


def test_small_region_joins_the_neighbour_across_its_weakest_boundary():
  labels = np.zeros((10, 10), np.int64)
  labels[:, 5:] = 1
  labels[4:6, 4:6] = 2  # A 2x2 region straddling the 0|1 border.
  contour = np.zeros((10, 10), np.float32)
  contour[:, 4] = 0.5                # The 0|1 border.
  contour[[3, 6], 4] = 0.9           # Region 0 around region 2: strong.
  contour[4:6, 3] = 0.9
  contour[[3, 6], 5] = 0.1           # Region 1 around region 2: weak.
  contour[4:6, 6] = 0.1
  merged = ovs.merge_small_and_excess_regions(labels, contour, min_size=5)
  assert merged.max() + 1 == 2
  assert np.all(merged[4:6, 4:6] == merged[0, 9])
  assert merged[0, 0] != merged[0, 9]
  # Without min_size nothing changes; max_segments=1 leaves one region.
  kept = ovs.merge_small_and_excess_regions(labels, contour, min_size=0)
  assert kept.max() + 1 == 3
  one = ovs.merge_small_and_excess_regions(labels, contour, min_size=0,
                                           max_segments=1)
  assert one.max() == 0


# ------------------------------------------------------ the whole pipeline


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_oversegmentation_recovers_known_regions(seed):
  image, truth = _make_image(seed)
  segments = ovs.get_oversegmentation(image)
  assert segments.dtype == np.uint8 and segments.shape == truth.shape
  assert _boundary_recall(truth, segments) > 0.8
  _assert_raster_ids(segments)
  # About the true regions (one weak border may go), not a shattered image.
  num_true, num_segments = truth.max() + 1, segments.max() + 1
  assert num_true - 1 <= num_segments <= 3 * num_true


def test_threshold_is_monotone():
  image, _ = _make_image(4, num_regions=12)
  counts = [ovs.get_oversegmentation(image, threshold=t).max() + 1
            for t in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)]
  assert all(a >= b for a, b in zip(counts, counts[1:])), counts
  assert counts[0] > counts[-1]


def test_at_most_max_segments_and_ids_contiguous():
  # 400 blocks of random colours: far more true regions than ids.
  rng = np.random.default_rng(7)
  blocks = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
  image = np.kron(blocks, np.ones((6, 6, 1), np.uint8))
  segments = ovs.get_oversegmentation(image, threshold=0.0, min_size=0)
  assert segments.max() + 1 == ovs.MAX_SEGMENTS
  _assert_raster_ids(segments)
  few = ovs.get_oversegmentation(image, max_segments=10)
  assert few.max() + 1 <= 10
  _assert_raster_ids(few)
  with pytest.raises(ValueError, match='max_segments'):
    ovs.get_oversegmentation(image, max_segments=256)


def test_uniform_image_is_one_segment():
  segments, ucm = ovs.get_oversegmentation(
      np.full((30, 40, 3), 77, np.uint8), return_ucm=True)
  np.testing.assert_array_equal(segments, 0)
  np.testing.assert_array_equal(ucm, 0)


def test_contour_map_input(tmp_path):
  """Contour PNGs (HED-like) instead of the built-in detector."""
  image, truth = _make_image(6)
  path = str(tmp_path / 'x.png')
  Image.fromarray(_contour_from_truth(truth)).save(path)
  contour = ovs.read_contour_png(path)
  assert contour.dtype == np.float32 and contour.max() == 1.0
  # A flat grey image: every boundary must come from the contour map.
  grey = np.full_like(image, 128)
  segments = ovs.get_oversegmentation(grey, contour=contour)
  assert _boundary_recall(truth, segments) > 0.9
  assert segments.max() + 1 == truth.max() + 1
  _assert_raster_ids(segments)
  with pytest.raises(ValueError, match='differ in size'):
    ovs.get_oversegmentation(grey[:50], contour=contour)


def test_photo_sized_image_runs():
  """A 360x480 image goes through (about 0.1-0.3 s on one core)."""
  image, truth = _make_image(8, h=360, w=480, num_regions=40)
  segments = ovs.get_oversegmentation(image)
  assert _boundary_recall(truth, segments) > 0.8
  assert segments.max() + 1 <= ovs.MAX_SEGMENTS


# ------------------------------------------------------------- files, lists


def test_ucm_path():
  assert ovs.get_ucm_path('d/V/hed/a.png') == os.path.join('d/V/hed_ucm',
                                                           'a.png')


def test_read_list_mask_paths_and_errors(tmp_path):
  """The tool reads lists with the training reader's rules."""
  root = str(tmp_path / 'data')
  data_list = tmp_path / 'list.txt'
  data_list.write_text('V/JPEGImages/a.jpg V/segcls/a.png\n'
                       '/V/JPEGImages/b.jpg /V/segcls/b.png\n'
                       'V/JPEGImages/c.jpg\n'
                       'V/JPEGImages/d.jpg V/segcls/d.png V/mine/d.png\n')
  assert ovs.read_oversegmentation_list(root, str(data_list)) == [
      (os.path.join(root, 'V/JPEGImages/a.jpg'),
       os.path.join(root, 'V/hed/a.png')),
      (root + '/V/JPEGImages/b.jpg', root + '/V/hed/b.png'),
      (os.path.join(root, 'V/JPEGImages/c.jpg'),
       os.path.join(root, 'V/hed/c.png')),
      (os.path.join(root, 'V/JPEGImages/d.jpg'),
       os.path.join(root, 'V/mine/d.png'))]

  with pytest.raises(data_lists.DataListError, match='nope.txt'):
    ovs.read_oversegmentation_list(str(tmp_path), str(tmp_path / 'nope.txt'))
  bad = tmp_path / 'bad.txt'
  bad.write_text('a/JPEGImages/x.jpg a/segcls/x.png\n\na b c d\n')
  with pytest.raises(ValueError, match='bad.txt line 3'):
    ovs.read_oversegmentation_list(str(tmp_path), str(bad))
  # No rule applies: a mask must never overwrite a label or an image.
  bad.write_text('V/JPEGImages/a.jpg V/segcls/a.png\n'
                 'V/JPEGImages/b.jpg V/labels/b.png\n')
  with pytest.raises(ValueError, match=r'bad\.txt line 2.*labels/b.png.*'
                     'segcls'):
    ovs.read_oversegmentation_list(str(tmp_path), str(bad))
  bad.write_text('V/images/a.jpg\n')
  with pytest.raises(ValueError, match=r'bad\.txt line 1.*JPEGImages'):
    ovs.read_oversegmentation_list(str(tmp_path), str(bad))


# ------------------------------------------------------------------ script


def _write_dataset(root, num_images=3):
  """root/V/{JPEGImages,segcls}; returns the truths by name."""
  truths = {}
  for folder in ('JPEGImages', 'segcls'):
    os.makedirs(os.path.join(root, 'V', folder))
  for i in range(num_images):
    image, truth = _make_image(10 + i, h=64, w=80, num_regions=5)
    name = 'img%d' % i
    Image.fromarray(image).save(os.path.join(root, 'V', 'JPEGImages',
                                             name + '.png'))
    Image.fromarray(truth.astype(np.uint8)).save(
        os.path.join(root, 'V', 'segcls', name + '.png'))
    truths[name] = truth
  return truths


def _run_script(*args):
  return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


def test_script_end_to_end(tmp_path):
  root = str(tmp_path)
  truths = _write_dataset(root)
  data_list = tmp_path / 'list.txt'
  data_list.write_text(''.join('V/JPEGImages/%s.png V/segcls/%s.png\n'
                               % (n, n) for n in truths))
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--num_workers', '2', '--save_ucm')
  assert result.returncode == 0, result.stderr
  threshold = int(round(ovs.DEFAULT_THRESHOLD * ovs.UCM_PNG_SCALE))
  for name, truth in truths.items():
    with Image.open(os.path.join(root, 'V', 'hed', name + '.png')) as mask:
      assert mask.mode == 'L'
      segments = np.asarray(mask)
    with Image.open(os.path.join(root, 'V', 'hed_ucm', name + '.png')) as ucm:
      assert ucm.mode == 'I;16'
      ucm = np.asarray(ucm)
    _assert_raster_ids(segments)
    assert _boundary_recall(truth, segments) > 0.8
    # Every border left in the mask is a UCM boundary at or above threshold.
    assert np.all(ucm[_boundary(segments)] >= threshold - 1)
  # Exactly the masks, no temporary files left behind.
  assert sorted(os.listdir(os.path.join(root, 'V', 'hed'))) == [
      'img0.png', 'img1.png', 'img2.png']

  # Existing outputs are skipped unless --overwrite.
  mask_path = os.path.join(root, 'V', 'hed', 'img0.png')
  os.utime(mask_path, ns=(0, 0))
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--num_workers', '1', '--save_ucm')
  assert result.returncode == 0 and '0 to do' in result.stdout
  assert os.stat(mask_path).st_mtime_ns == 0
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--num_workers', '1', '--overwrite',
                       '--threshold', '0.9')
  assert result.returncode == 0, result.stderr
  assert os.stat(mask_path).st_mtime_ns > 0


def test_script_image_only_list_and_contour_dir(tmp_path):
  root = str(tmp_path)
  truths = _write_dataset(root, num_images=2)
  contour_dir = tmp_path / 'contours'
  contour_dir.mkdir()
  for name, truth in truths.items():
    Image.fromarray(_contour_from_truth(truth)).save(
        str(contour_dir / (name + '.png')))
  data_list = tmp_path / 'test.txt'
  data_list.write_text(''.join('V/JPEGImages/%s.png\n' % n for n in truths))
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--contour_dir', str(contour_dir), '--num_workers', '1')
  assert result.returncode == 0, result.stderr
  for name, truth in truths.items():
    with Image.open(os.path.join(root, 'V', 'hed', name + '.png')) as mask:
      segments = np.asarray(mask)
    assert _boundary_recall(truth, segments) > 0.9
    assert segments.max() + 1 == truth.max() + 1


def test_script_errors_name_the_missing_file(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, num_images=1)
  data_list = tmp_path / 'list.txt'
  data_list.write_text('V/JPEGImages/img0.png V/segcls/img0.png\n'
                       'V/JPEGImages/gone.jpg V/segcls/gone.png\n')
  result = _run_script('--data_dir', root, '--data_list', str(data_list))
  assert result.returncode != 0
  assert 'gone.jpg' in result.stderr
  result = _run_script('--data_dir', root, '--data_list',
                       str(tmp_path / 'missing.txt'))
  assert result.returncode != 0 and 'missing.txt' in result.stderr
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--max_segments', '300')
  assert result.returncode != 0 and '--max_segments' in result.stderr
  assert not os.path.exists(os.path.join(root, 'V', 'hed'))


def test_script_worker_error_names_the_file(tmp_path):
  root = str(tmp_path)
  truths = _write_dataset(root, num_images=2)
  contour_dir = tmp_path / 'contours'
  contour_dir.mkdir()
  Image.fromarray(_contour_from_truth(truths['img0'])).save(
      str(contour_dir / 'img0.png'))
  Image.fromarray(np.zeros((10, 10), np.uint8)).save(
      str(contour_dir / 'img1.png'))  # Wrong size.
  data_list = tmp_path / 'list.txt'
  data_list.write_text(''.join('V/JPEGImages/%s.png V/segcls/%s.png\n'
                               % (n, n) for n in truths))
  result = _run_script('--data_dir', root, '--data_list', str(data_list),
                       '--contour_dir', str(contour_dir),
                       '--num_workers', '2')
  assert result.returncode != 0
  assert os.path.join('contours', 'img1.png') in result.stderr
  assert not os.path.exists(os.path.join(root, 'V', 'hed', 'img1.png'))
