"""Oriented watershed transform (OWT) of a contour map.

A plain watershed gives every boundary between two regions the contour
strength of the pixels it runs through. Near junctions and along curved
ridges the watershed lines often run ACROSS a strong contour instead of
along it, and then inherit a strength that belongs to another boundary. The
OWT weighs each boundary pixel by the contour signal at the orientation of
the boundary itself:

  0. the contour map is thinned to its ridges: a pixel keeps its value when
     it is at least as strong as the map one pixel away on both sides along
     the ridge normal (the dominant local gradient orientation), else it
     becomes 0 (`thin_contours`). A thick detector
     response (HED's lines are several pixels wide, and cluttered areas are
     bright throughout) then no longer lends its strength to watershed arcs
     that cross it instead of following its crest,
  1. the boundaries between regions are split into arcs, maximal chains of
     cracks (the unit edges between 4-adjacent pixels of different regions)
     between junctions; each arc is approximated by a polygon (recursive
     splitting at the point farthest from the chord, until every point is
     within `tolerance` pixels), and each crack takes the orientation of its
     polygon segment,
  2. the oriented contour signal at a pixel x and orientation theta is the
     contour map averaged along a short line through x in that direction,

         E(x, theta) = sum_k w_k c(x + k s u_theta) / sum_k w_k,
         w_k = exp(-(k s)^2 / (2 sigma^2)),  k = -K..K,  K = ceil(2 sigma),

     sampled bilinearly where the line crosses each row or column (the step
     s = 1 / max(|cos theta|, |sin theta|) lands on pixel centres at 0, 45
     and 90 degrees),

     so that a straight ridge of value v along theta gives E = v on it,
     whereas a line crossing the ridge samples mostly the flat map beside
     it,
  3. a crack between pixels p and q with orientation theta gets
     max(E(p, theta), E(q, theta)); a boundary's strength is then the mean
     over its cracks (utils/oversegmentation.py builds the ultrametric
     contour map from these).

Crack strengths are returned as two maps, `right` [H, W-1] for the crack
between (y, x) and (y, x+1) and `down` [H-1, W] for the crack between (y, x)
and (y+1, x), 0 where the two pixels are in the same region.
"""
import collections

import numpy as np
from scipy import ndimage
from scipy import sparse
from scipy.sparse import csgraph

# UCM threshold of the HED-owt-ucm masks, measured on CamVid val (README,
# "Oversegmentation without MATLAB").
DEFAULT_THRESHOLD = 0.2
DEFAULT_TOLERANCE = 1.0
DEFAULT_LINE_SIGMA = 2.0
DEFAULT_THIN_SIGMA = 1.0

# Cracks of a label map, one entry per crack, right cracks first:
#   pixels:   int64 [M, 2], flat indices of the two pixels (left/upper first),
#   key:      int64 [M], id of the region pair the crack separates,
#   corners:  int64 [M, 2], flat indices of its end points on the
#             (H+1) x (W+1) grid of pixel corners,
#   centre:   float64 [M, 2], (y, x) of its middle point,
#   tangent:  float64 [M, 2], (dy, dx) of the crack itself.
Cracks = collections.namedtuple(
    'Cracks', ['pixels', 'key', 'corners', 'centre', 'tangent'])

# Crack strengths: right [H, W-1] and down [H-1, W] (see the module doc).
CrackStrength = collections.namedtuple('CrackStrength', ['right', 'down'])


def thin_contours(contour, sigma=DEFAULT_THIN_SIGMA):
  """Non-maximum suppression of a contour map across its ridges.

  The normal at each pixel is the dominant gradient orientation around it,
  the eigenvector of the larger eigenvalue of the structure tensor

      J = G_{2 sigma} * (grad s grad s^T),  s = G_sigma * c,

  i.e. (cos phi, sin phi) in (x, y) with phi = atan2(2 Jxy, Jxx - Jyy) / 2.
  Both flanks of a ridge have their gradients across it (of opposite signs,
  which the outer product ignores), so the normal runs across the ridge on
  its crest too, where the gradient itself vanishes. A pixel keeps c when
  c >= the map (bilinear) one pixel away along the normal on both sides.

  Args:
    contour: float [H, W] contour strength.
    sigma: smoothing before the gradient, in pixels; the tensor is averaged
      over twice that.

  Returns:
    float32 [H, W]: c on the ridges, 0 elsewhere.
  """
  contour = np.asarray(contour, np.float64)
  gy = ndimage.gaussian_filter(contour, sigma, order=(1, 0), mode='nearest')
  gx = ndimage.gaussian_filter(contour, sigma, order=(0, 1), mode='nearest')
  jxx = ndimage.gaussian_filter(gx * gx, 2 * sigma, mode='nearest')
  jyy = ndimage.gaussian_filter(gy * gy, 2 * sigma, mode='nearest')
  jxy = ndimage.gaussian_filter(gx * gy, 2 * sigma, mode='nearest')
  phi = 0.5 * np.arctan2(2.0 * jxy, jxx - jyy)
  ny, nx = np.sin(phi), np.cos(phi)
  yy, xx = np.mgrid[:contour.shape[0], :contour.shape[1]].astype(np.float64)
  keep = np.ones(contour.shape, bool)
  for sign in (1.0, -1.0):
    beside = ndimage.map_coordinates(
        contour, [yy + sign * ny, xx + sign * nx], order=1, mode='nearest')
    keep &= contour >= beside
  return np.where(keep, contour, 0.0).astype(np.float32)


def get_cracks(labels):
  """Lists the cracks between 4-adjacent pixels of different regions.

  Args:
    labels: int [H, W] region ids (non-negative).

  Returns:
    Cracks with M entries; the right cracks (horizontal neighbours) in
    raster order, then the down cracks in raster order.
  """
  labels = np.asarray(labels).astype(np.int64)
  w = labels.shape[1]
  num_labels = int(labels.max()) + 1 if labels.size else 1
  ys, xs = np.nonzero(labels[:, :-1] != labels[:, 1:])
  yd, xd = np.nonzero(labels[:-1, :] != labels[1:, :])
  # A right crack separates (y, x) | (y, x+1) and runs from corner (y, x+1)
  # down to corner (y+1, x+1); a down crack separates (y, x) / (y+1, x) and
  # runs from corner (y+1, x) to (y+1, x+1). Corner (i, j) is the top-left
  # corner of pixel (i, j), at position (i - 0.5, j - 0.5).
  first = np.concatenate([ys * w + xs, yd * w + xd])
  second = np.concatenate([ys * w + xs + 1, (yd + 1) * w + xd])
  corners = np.stack([
      np.concatenate([ys * (w + 1) + xs + 1, (yd + 1) * (w + 1) + xd]),
      np.concatenate([(ys + 1) * (w + 1) + xs + 1,
                      (yd + 1) * (w + 1) + xd + 1])], axis=1)
  centre = np.stack([np.concatenate([ys, yd + 0.5]),
                     np.concatenate([xs + 0.5, xd])], axis=1).astype(float)
  tangent = np.concatenate([np.tile([[1.0, 0.0]], (len(ys), 1)),
                            np.tile([[0.0, 1.0]], (len(yd), 1))]).reshape(
                                -1, 2)
  a = labels.ravel()[first]
  b = labels.ravel()[second]
  key = np.minimum(a, b) * num_labels + np.maximum(a, b)
  return Cracks(np.stack([first, second], axis=1), key, corners, centre,
                tangent)


def get_arcs(cracks):
  """Orders the cracks into arcs.

  Two cracks are consecutive on an arc when they separate the same two
  regions and share a pixel corner at which no other crack of those two
  regions ends; arcs therefore stop at junctions of three or more regions,
  at the image border and where two regions touch only at a corner. A
  closed arc (a region inside another) is cut open at its first crack.

  Args:
    cracks: Cracks from get_cracks.

  Returns:
    (order, starts): int64 [M] crack indices arc by arc, each arc from one
    end to the other, and int64 [A + 1] offsets of the arcs in `order`
    (arc i is order[starts[i]:starts[i + 1]]).
  """
  m = len(cracks.key)
  if m == 0:
    return np.zeros(0, np.int64), np.zeros(1, np.int64)
  crack = np.concatenate([np.arange(m), np.arange(m)])
  corner = cracks.corners.T.ravel()
  key = np.concatenate([cracks.key, cracks.key])
  by_end = np.lexsort((corner, key))
  crack, corner, key = crack[by_end], corner[by_end], key[by_end]
  same = (corner[1:] == corner[:-1]) & (key[1:] == key[:-1])
  # Link i with i+1 when exactly those two cracks of the pair end there.
  group_start = np.concatenate([[True], ~same])
  group_id = np.cumsum(group_start) - 1
  group_size = np.bincount(group_id)
  link = same & (group_size[group_id[:-1]] == 2)
  u, v = crack[:-1][link], crack[1:][link]

  degree = np.bincount(np.concatenate([u, v]), minlength=m)
  graph = sparse.coo_matrix((np.ones(len(u)), (u, v)), shape=(m, m))
  num_arcs, arc = csgraph.connected_components(graph, directed=False)
  # One start per arc: its first end crack, or its first crack if closed.
  is_end = degree < 2
  has_end = np.zeros(num_arcs, bool)
  has_end[arc[is_end]] = True
  candidates = np.nonzero(is_end | ~has_end[arc])[0]
  _, first = np.unique(arc[candidates], return_index=True)
  start = candidates[first]
  # Cut every closed arc open: drop one of the two links of its start.
  closed_start = np.zeros(m, bool)
  closed_start[start[~has_end]] = True
  incident = np.nonzero(closed_start[u] | closed_start[v])[0]
  owner = np.where(closed_start[u[incident]], u[incident], v[incident])
  _, first = np.unique(owner, return_index=True)
  keep = np.ones(len(u), bool)
  keep[incident[first]] = False
  u, v = u[keep], v[keep]
  # Position along the arc = hop distance from its start, all arcs at once
  # through one extra node linked to every start.
  source = m
  rows = np.concatenate([u, np.full(num_arcs, source)])
  cols = np.concatenate([v, start])
  graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)),
                            shape=(m + 1, m + 1)).tocsr()
  position = csgraph.shortest_path(graph, directed=False, unweighted=True,
                                   indices=source)[:m]
  order = np.lexsort((position, arc))
  starts = np.concatenate([[0], np.cumsum(np.bincount(arc,
                                                      minlength=num_arcs))])
  return order, starts.astype(np.int64)


def _ranges(first, last):
  """Concatenated index ranges first[i]..last[i] (inclusive) and owners."""
  lengths = last - first + 1
  owner = np.repeat(np.arange(len(first)), lengths)
  offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  return first[owner] + np.arange(owner.size) - offsets[owner], owner


def get_polygon_tangents(points, starts, tolerance=DEFAULT_TOLERANCE,
                         single_tangent=None):
  """Unit tangents of arcs approximated by polygons.

  Each arc (a point sequence) starts as one segment, its chord; a segment
  whose farthest interior point lies more than `tolerance` from the chord is
  split there, until none is. Every point takes the direction of the chord
  of its segment (a point shared by two segments belongs to the earlier
  one, except an arc's first point).

  Args:
    points: float [N, 2] (y, x) of the points, arc by arc, in order.
    starts: int [A + 1] offsets of the arcs in points.
    tolerance: largest distance of a point from its segment's chord, in
      pixels.
    single_tangent: optional float [N, 2] direction for arcs of one point
      (default (1, 0)).

  Returns:
    float64 [N, 2] unit (dy, dx) tangents, sign arbitrary.
  """
  points = np.asarray(points, np.float64)
  starts = np.asarray(starts, np.int64)
  first, last = starts[:-1], starts[1:] - 1
  first, last = first[last >= first], last[last >= first]
  done_first, done_last = [], []
  while first.size:
    index, owner = _ranges(first, last)
    chord = points[last] - points[first]
    length = np.maximum(np.hypot(chord[:, 0], chord[:, 1]), 1e-12)
    offset = points[index] - points[first][owner]
    distance = np.abs(chord[owner, 0] * offset[:, 1]
                      - chord[owner, 1] * offset[:, 0]) / length[owner]
    # The farthest point of each segment (the first of equals).
    by_distance = np.lexsort((index, -distance, owner))
    farthest = by_distance[np.concatenate(
        [[0], np.cumsum(last - first + 1)[:-1]])]
    split = distance[farthest] > tolerance
    done_first.append(first[~split])
    done_last.append(last[~split])
    middle = index[farthest[split]]
    first = np.concatenate([first[split], middle])
    last = np.concatenate([middle, last[split]])
  first = np.concatenate(done_first) if done_first else first
  last = np.concatenate(done_last) if done_last else last

  chord = points[last] - points[first]
  if single_tangent is None:
    single_tangent = np.tile([[1.0, 0.0]], (len(points), 1))
  single = first == last
  chord[single] = np.asarray(single_tangent, np.float64)[first[single]]
  chord /= np.hypot(chord[:, 0], chord[:, 1])[:, None]
  tangent = np.zeros_like(points)
  # Interiors and last points first, then the arcs' first points.
  index, owner = _ranges(np.minimum(first + 1, last), last)
  tangent[index] = chord[owner]
  arc_first = np.isin(first, starts[:-1])
  tangent[first[arc_first]] = chord[arc_first]
  return tangent


def get_oriented_signal(contour, points, tangents,
                        sigma=DEFAULT_LINE_SIGMA):
  """Oriented contour signal E(x, theta) at points and orientations.

  Args:
    contour: float [H, W] contour strength.
    points: float [N, 2] (y, x) positions.
    tangents: float [N, 2] unit (dy, dx) directions theta.
    sigma: Gaussian scale of the line average along theta, in pixels.

  Returns:
    float64 [N]: the contour map averaged along the line through each point
    in its direction (see the module doc).
  """
  contour = np.asarray(contour, np.float64)
  points = np.asarray(points, np.float64)
  tangents = np.asarray(tangents, np.float64)
  half = int(np.ceil(2.0 * sigma)) if sigma > 0 else 0
  # [N, S] distances along the line: one step per row or column crossed.
  step = 1.0 / np.max(np.abs(tangents), axis=1)
  along = step[:, None] * np.arange(-half, half + 1, dtype=np.float64)
  weights = np.exp(-0.5 * (along / max(sigma, 1e-12)) ** 2)
  weights /= weights.sum(axis=1, keepdims=True)
  # [2, N, S] sample coordinates.
  coords = points.T[:, :, None] + tangents.T[:, :, None] * along[None]
  samples = ndimage.map_coordinates(
      contour, coords.reshape(2, -1), order=1, mode='nearest')
  return np.sum(samples.reshape(along.shape) * weights, axis=1)


def get_oriented_crack_strength(labels, contour,
                                tolerance=DEFAULT_TOLERANCE,
                                sigma=DEFAULT_LINE_SIGMA,
                                thin_sigma=DEFAULT_THIN_SIGMA):
  """OWT strength of every crack of a region map.

  Args:
    labels: int [H, W] region ids (e.g. watershed regions).
    contour: float [H, W] contour strength in [0, 1].
    tolerance: polygon fitting tolerance in pixels.
    sigma: scale of the oriented line average in pixels.
    thin_sigma: smoothing of thin_contours, applied to the contour map
      first; None uses the map as it is.

  Returns:
    CrackStrength (right float32 [H, W-1], down float32 [H-1, W]): for each
    crack max(E(p, theta), E(q, theta)) with theta its arc's local polygon
    direction; 0 between pixels of the same region.
  """
  labels = np.asarray(labels)
  contour = np.asarray(contour, np.float64)
  if labels.shape != contour.shape or labels.ndim != 2:
    raise ValueError('labels %s and contour %s must be the same [H, W]'
                     % (labels.shape, contour.shape))
  h, w = labels.shape
  if thin_sigma is not None:
    contour = thin_contours(contour, thin_sigma)
  cracks = get_cracks(labels)
  order, starts = get_arcs(cracks)
  tangent = np.zeros_like(cracks.centre)
  tangent[order] = get_polygon_tangents(
      cracks.centre[order], starts, tolerance,
      single_tangent=cracks.tangent[order])
  pixels = np.stack(np.unravel_index(cracks.pixels, (h, w)), axis=-1)
  strength = np.maximum(
      get_oriented_signal(contour, pixels[:, 0], tangent, sigma),
      get_oriented_signal(contour, pixels[:, 1], tangent, sigma))
  right = np.zeros((h, max(w - 1, 0)), np.float32)
  down = np.zeros((max(h - 1, 0), w), np.float32)
  num_right = int(np.count_nonzero(labels[:, :-1] != labels[:, 1:]))
  first = cracks.pixels[:, 0]
  right.ravel()[first[:num_right] - first[:num_right] // w] = (
      strength[:num_right])
  down.ravel()[first[num_right:]] = strength[num_right:]
  return CrackStrength(right, down)


def get_pair_strength(crack_strength, first, second, width):
  """Strengths of 4-adjacent pixel pairs looked up in crack maps.

  Args:
    crack_strength: CrackStrength of the image.
    first, second: int [P] flat indices of the pairs' pixels, first the
      left/upper one (second = first + 1 or first + width).
    width: image width W.

  Returns:
    float64 [P] strengths.
  """
  first = np.asarray(first, np.int64)
  second = np.asarray(second, np.int64)
  right = (second - first == 1) & (first % width != width - 1)
  strength = np.empty(first.shape, np.float64)
  strength[right] = np.asarray(crack_strength.right).ravel()[
      first[right] - first[right] // width]
  strength[~right] = np.asarray(crack_strength.down).ravel()[first[~right]]
  return strength
