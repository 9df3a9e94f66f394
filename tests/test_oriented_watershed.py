"""Tests for utils/oriented_watershed.py and the OWT-UCM masks it gives.

Contour maps are made here: straight bands and lines of known value and
angle, ridges on the borders of discs and a straight line, and graded
ridges on the borders of Voronoi regions (tests/test_oversegmentation.py's
generator), so the expected strengths and regions are known exactly.
"""
import numpy as np
import pytest
from scipy import ndimage

from tests.test_oversegmentation import _make_image
from utils import oriented_watershed as owt
from utils import oversegmentation as ovs


def _band(shape, angle, offset, half_width, value):
  """A straight band of constant value through the image.

  The band's centre line passes through (H/2, W/2 + offset) with direction
  angle (radians, from the x axis towards y); pixels within half_width of
  it get value, the others 0. Returns (contour, side): side is 1 on one
  side of the centre line, 0 on the other.
  """
  h, w = shape
  yy, xx = np.mgrid[:h, :w].astype(float)
  normal = np.array([np.cos(angle), -np.sin(angle)])  # (ny, nx)
  distance = (yy - h / 2) * normal[0] + (xx - w / 2 - offset) * normal[1]
  contour = np.where(np.abs(distance) <= half_width, value, 0.0)
  return contour, (distance > 0).astype(np.int64)


def _interior_cracks(labels, margin):
  """Masks (right, down) of the cracks at least margin px from the border."""
  h, w = labels.shape
  yy, xx = np.mgrid[:h, :w]
  inside = ((yy >= margin) & (yy < h - margin) & (xx >= margin)
            & (xx < w - margin))
  right = (labels[:, :-1] != labels[:, 1:]) & inside[:, :-1] & inside[:, 1:]
  down = (labels[:-1] != labels[1:]) & inside[:-1] & inside[1:]
  return right, down


@pytest.mark.parametrize('degrees', [0, 45, 90, 135, np.degrees(
    np.arctan2(1, 2))])
def test_straight_edge_strength_is_the_contour_value(degrees):
  """A boundary along a band of value v gets exactly v on every crack."""
  angle = np.radians(degrees)
  contour, side = _band((48, 56), angle, 0.0, 2.0, 0.7)
  strength = owt.get_oriented_crack_strength(side, contour, thin_sigma=None)
  right, down = _interior_cracks(side, margin=6)
  values = np.concatenate([strength.right[right], strength.down[down]])
  assert values.size > 20
  np.testing.assert_allclose(values, 0.7, atol=1e-6)
  # No strength between pixels of the same region.
  assert np.all(strength.right[side[:, :-1] == side[:, 1:]] == 0)
  assert np.all(strength.down[side[:-1] == side[1:]] == 0)


@pytest.mark.parametrize('degrees', [0, 45, 90, 135])
def test_thinned_line_keeps_its_value(degrees):
  """With thinning (the default): a one-pixel line of value v survives it,
  the blur beside it does not, and the boundary along the line gets v."""
  h, w = 40, 48
  yy, xx = np.mgrid[:h, :w]
  direction = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (1, -1)}[degrees]
  # Signed offset from the line through (20, 24), in whole pixels.
  offset = (yy - 20) * direction[1] - (xx - 24) * direction[0]
  contour = np.where(offset == 0, 0.7, 0.0)
  contour = np.maximum(contour, 0.3 * (np.abs(offset) == 1))
  thin = owt.thin_contours(contour)
  inner = (yy > 4) & (yy < h - 5) & (xx > 4) & (xx < w - 5)
  np.testing.assert_allclose(thin[inner], np.where(offset == 0, 0.7,
                                                   0.0)[inner], atol=1e-6)
  side = (offset > 0).astype(np.int64)
  strength = owt.get_oriented_crack_strength(side, contour)
  right, down = _interior_cracks(side, margin=6)
  values = np.concatenate([strength.right[right], strength.down[down]])
  assert values.size > 20
  np.testing.assert_allclose(values, 0.7, atol=1e-6)


def test_oriented_signal_by_hand():
  """E(x, theta): the line average along theta, Gaussian weights."""
  contour = np.zeros((11, 11))
  contour[:, 5] = 1.0  # A vertical line of 1s, one pixel wide.
  point = np.array([[5.0, 5.0]])
  along = owt.get_oriented_signal(contour, point, np.array([[1.0, 0.0]]),
                                  sigma=1.0)
  across = owt.get_oriented_signal(contour, point, np.array([[0.0, 1.0]]),
                                   sigma=1.0)
  assert along[0] == pytest.approx(1.0)
  # Across the line only the middle sample (t = 0) of t = -2..2 hits it.
  weights = np.exp(-0.5 * np.arange(-2, 3) ** 2)
  assert across[0] == pytest.approx(1.0 / weights.sum())


def test_boundary_across_a_ridge_is_weak_along_it_strong():
  """The OWT's point: a watershed arc crossing a strong contour does not
  inherit its strength, one running along it does."""
  contour = np.zeros((40, 40))
  contour[:, 19:21] = 0.9            # A strong vertical ridge.
  labels = np.zeros((40, 40), np.int64)
  labels[:, 20:] = 1                 # Along the ridge.
  labels[20:, :20] = 2               # Across it: a horizontal boundary
  labels[20:, 20:] = 3               # from x = 0 to x = 39.
  strength = owt.get_oriented_crack_strength(labels, contour)
  plain = np.maximum(contour[:-1], contour[1:])  # max(c_p, c_q)
  across = strength.down[19, 17:23]  # Down cracks where it crosses.
  assert np.all(plain[19, 17:23][2:4] == 0.9)
  assert across.max() < 0.5
  np.testing.assert_allclose(strength.right[5:15, 19], 0.9)


def test_polygon_tangents_of_a_digital_line_and_a_corner():
  """Tangents within a few degrees of a digital line's slope; an L-shaped
  arc splits at its corner into its two directions (within the half pixel
  by which the polygon's corner, a crack centre, misses the true one)."""
  yy, xx = np.mgrid[:60, :80]
  labels = (2 * (yy - 10) < (xx - 5)).astype(np.int64)  # Slope 1/2.
  cracks = owt.get_cracks(labels)
  order, starts = owt.get_arcs(cracks)
  assert len(starts) == 2  # One arc, border to border.
  tangent = owt.get_polygon_tangents(cracks.centre[order], starts)
  angle = np.degrees(np.arctan2(np.abs(tangent[:, 0]), np.abs(tangent[:, 1])))
  np.testing.assert_allclose(angle, np.degrees(np.arctan(0.5)), atol=4.0)

  labels = np.zeros((30, 30), np.int64)
  labels[10:, 10:] = 1  # Arc: down x = 9.5 from the bottom, then along y.
  cracks = owt.get_cracks(labels)
  order, starts = owt.get_arcs(cracks)
  tangent = owt.get_polygon_tangents(cracks.centre[order], starts)
  centre = cracks.centre[order]
  far = (np.abs(centre[:, 0] - 9.5) > 1.5) | (np.abs(centre[:, 1] - 9.5) > 1.5)
  vertical = centre[:, 1] == 9.5
  angle = np.degrees(np.arctan2(np.abs(tangent[:, 0]), np.abs(tangent[:, 1])))
  np.testing.assert_allclose(angle[far & vertical], 90.0, atol=2.0)
  np.testing.assert_allclose(angle[far & ~vertical], 0.0, atol=2.0)


def test_arcs_stop_at_junctions_and_close_around_islands():
  labels = np.zeros((20, 20), np.int64)
  labels[:, 10:] = 1
  labels[10:, :] = 2          # A T-junction: three arcs.
  labels[3:6, 3:6] = 3        # An island: one closed arc.
  cracks = owt.get_cracks(labels)
  order, starts = owt.get_arcs(cracks)
  assert len(starts) - 1 == 4
  lengths = sorted(np.diff(starts).tolist())
  assert lengths == [10, 10, 10, 12]
  for i in range(len(starts) - 1):
    arc = order[starts[i]:starts[i + 1]]
    assert len(np.unique(cracks.key[arc])) == 1
    # Consecutive cracks share a corner.
    corners = cracks.corners[arc]
    for a, b in zip(corners[:-1], corners[1:]):
      assert set(a) & set(b)


def test_pair_strength_lookup_matches_the_maps():
  rng = np.random.default_rng(0)
  strength = owt.CrackStrength(rng.uniform(size=(4, 4)),
                               rng.uniform(size=(3, 5)))
  first = np.array([0, 3, 6, 14, 2, 9])      # Flat indices in a 4x5 image.
  second = np.array([1, 4, 7, 19, 7, 14])    # Right, right, right, down ...
  expected = [strength.right[0, 0], strength.right[0, 3],
              strength.right[1, 1], strength.down[2, 4],
              strength.down[0, 2], strength.down[1, 4]]
  np.testing.assert_allclose(
      owt.get_pair_strength(strength, first, second, 5), expected)


# ------------------------------------------------------- OWT-UCM masks


def _hed_like(seed, h=96, w=128, num_regions=9):
  """Voronoi regions, ridges of a different strength on every border, plus
  a weak noise texture: a graded hierarchy to threshold."""
  rng = np.random.default_rng(seed)
  truth = _make_image(seed, h, w, num_regions)[1]
  contour = np.zeros((h, w))
  for region in range(num_regions):
    border = ndimage.binary_dilation(truth == region) & (truth != region)
    contour = np.maximum(contour, border * rng.uniform(0.2, 1.0))
  contour = ndimage.gaussian_filter(contour, 1.0) * 2.0
  contour += rng.uniform(0, 0.05, contour.shape)
  return np.clip(contour, 0, 1).astype(np.float32), truth


@pytest.mark.parametrize('seed', [0, 1])
def test_raising_the_threshold_only_merges_regions(seed):
  contour, _ = _hed_like(seed)
  fine = ovs.get_watershed_regions(contour)
  strength = owt.get_oriented_crack_strength(fine, contour)
  _, boundaries, levels = ovs.get_ultrametric_contour_map(fine, contour,
                                                          strength)
  previous, counts = None, []
  for threshold in np.linspace(0, 1.01, 12):
    regions = ovs.threshold_hierarchy(fine, boundaries, levels, threshold)
    segments = ovs.get_oversegmentation(contour=contour, threshold=threshold,
                                        min_size=0, oriented=True)
    # The masks are the hierarchy's regions, renumbered.
    np.testing.assert_array_equal(segments,
                                  ovs.renumber_raster_order(regions))
    if previous is not None:  # Every finer region lies in one coarser one.
      pairs = np.unique(np.stack([previous.ravel(), segments.ravel()]), axis=1)
      assert len(np.unique(pairs[0])) == pairs.shape[1]
    previous = segments
    counts.append(segments.max() + 1)
  assert all(a >= b for a, b in zip(counts, counts[1:])), counts
  assert counts[0] > 9 and counts[-1] == 1


def _discs_and_a_line(seed, h=96, w=128):
  """A straight border at a random angle and three discs off it."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:h, :w]
  angle = rng.uniform(0, np.pi)
  side = (yy - h / 2) * np.cos(angle) - (xx - w / 2) * np.sin(angle)
  truth = (side > 0).astype(np.int64)
  discs = []
  while len(discs) < 3:
    centre, radius = rng.uniform([15, 15], [h - 15, w - 15]), rng.uniform(7, 14)
    line = abs((centre[0] - h / 2) * np.cos(angle)
               - (centre[1] - w / 2) * np.sin(angle))
    if line > radius + 4 and all(np.hypot(*(centre - c)) > radius + r + 4
                                 for c, r in discs):
      discs.append((centre, radius))
  for i, (centre, radius) in enumerate(discs):
    truth[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius ** 2] = 2 + i
  return truth


def _crack_count(truth):
  """How many of each pixel's 4-neighbours lie in another region."""
  count = np.zeros(truth.shape)
  right = truth[:, :-1] != truth[:, 1:]
  down = truth[:-1] != truth[1:]
  count[:, :-1] += right
  count[:, 1:] += right
  count[:-1] += down
  count[1:] += down
  return count


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_regions_follow_a_synthetic_contour_map_exactly(seed):
  """Ridges on the true borders -> the true regions, pixel for pixel.

  The map is the count of differing 4-neighbours, slightly blurred: a ridge
  two pixels wide straddling every border. A pixel that touches the border
  on two sides (a staircase corner of a digital curve) lies under the
  ridge's crest with no lower neighbour in its own region, so the map does
  not say on which side it belongs: it must only go to a region it touches.
  Every other pixel must be in its own region.
  """
  truth = ovs.renumber_raster_order(_discs_and_a_line(seed))
  count = _crack_count(truth)
  contour = ndimage.gaussian_filter(count, 0.5, mode='constant')
  segments = ovs.get_oversegmentation(contour=contour / contour.max(),
                                      threshold=0.3, oriented=True)
  assert segments.max() == truth.max()
  clear = count <= 1
  # One segment per true region on the clear pixels.
  pairs = np.unique(np.stack([truth[clear], segments[clear]]), axis=1)
  assert pairs.shape[1] == truth.max() + 1
  assert len(np.unique(pairs[1])) == pairs.shape[1]
  segment_to_truth = dict(zip(pairs[1].tolist(), pairs[0].tolist()))
  padded = np.pad(truth, 1, mode='edge')
  for y, x in np.argwhere(~clear):
    touched = {truth[y, x], padded[y, x + 1], padded[y + 2, x + 1],
               padded[y + 1, x], padded[y + 1, x + 2]}
    assert segment_to_truth[segments[y, x]] in touched


def test_at_most_255_segments_with_owt():
  # 400 cells separated by ridges: far more regions than ids.
  contour = np.zeros((120, 120), np.float32)
  contour[::6, :] = 1.0
  contour[:, ::6] = 1.0
  segments = ovs.get_oversegmentation(contour=contour, threshold=0.0,
                                      min_size=0, oriented=True)
  assert segments.max() + 1 == ovs.MAX_SEGMENTS
  values, first = np.unique(segments.ravel(), return_index=True)
  np.testing.assert_array_equal(values, np.arange(len(values)))
  assert np.all(np.diff(first) > 0)
