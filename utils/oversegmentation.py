"""OWT-UCM-style oversegmentation in pure NumPy / SciPy / scikit-image.

Unsupervised SegSort pulls every pixel towards its own segment of an
oversegmentation. The original release shipped HED contours turned into
regions by the MATLAB OWT-UCM code; this module replaces that pipeline:

  1. a contour strength map c in [0, 1] (an external contour/HED probability
     map, or `get_contour_strength`, a multi-scale Lab colour gradient),
  2. fine regions: watershed of the smoothed contour map from its regional
     minima (`get_watershed_regions`),
  3. an ultrametric contour map (UCM): adjacent regions are merged greedily
     in increasing order of their boundary strength (mean contour strength
     along the shared boundary, or with `oriented` the oriented watershed
     transform's, utils/oriented_watershed.py); every boundary gets the
     level at which its two sides were merged
     (`get_ultrametric_contour_map`),
  4. the UCM thresholded, small regions merged away, the count capped, and
     ids renumbered in raster order (`get_oversegmentation`).

Nothing here imports TensorFlow; the module is used by
pyscripts/tools/make_oversegmentation.py and by tests.
"""
import collections
import heapq
import os

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage import color
from skimage import morphology
from skimage import segmentation

from utils import atomic_io
from utils import data_lists
from utils import oriented_watershed

# Mask value the training reader uses for padding ("not a segment"); real
# segment ids therefore stop at 254.
NOT_A_SEGMENT = 255
MAX_SEGMENTS = 255

DEFAULT_THRESHOLD = 0.5
# One 8x8 cell of the embedding at output stride 8: a smaller region barely
# survives the nearest-neighbour resize to the network's output size.
DEFAULT_MIN_SIZE = 64

DEFAULT_SIGMAS = (1.0, 2.0, 4.0)
# Texture suppression: the contrast at a pixel is reduced by the mean
# contrast of its surroundings (Gaussian, sigma 8 px). An isolated step edge
# keeps about 1 - sigma/sqrt(sigma^2 + 8^2) of its strength (~0.75 at
# sigma 2), whereas the dense edges of foliage or brickwork mostly cancel.
DEFAULT_SURROUND_SIGMA = 8.0
DEFAULT_SURROUND_WEIGHT = 1.0
# The suppression removes at most 90% of a pixel's contrast: weak edges
# inside texture keep their order, so the watershed still finds (and the
# hierarchy can still keep) them instead of flooding a flat zero plateau.
DEFAULT_SURROUND_FLOOR = 0.1
# Strength 1 = the 95th percentile of the suppressed contrast; on CamVid
# photos this is 6-13 Lab units, and the default threshold 0.5 gives 55-160
# segments per 480x360 image (median ~100, 41 train images).
DEFAULT_PERCENTILE = 95.0
# The normaliser is clamped to [MIN, MAX] contrast, in Lab units (about
# CIE76 delta E, after suppression). The floor: mild sensor or JPEG noise
# gives ~1, so an almost uniform image does not get full-strength contours
# from noise. The cap: a boundary of 20 units is plainly visible and stays a
# full-strength contour even in an image full of stronger ones (cartoons,
# synthetic images), where the percentile alone would halve it.
DEFAULT_MIN_CONTRAST = 4.0
DEFAULT_MAX_CONTRAST = 20.0

# UCM levels in [0, 1] are stored as 16-bit PNGs scaled by this factor.
UCM_PNG_SCALE = 65535

# Fine-region boundaries, one entry per pair of adjacent fine regions:
#   pairs:  int64 [E, 2], region ids (a < b),
#   sums:   float64 [E], sum of the strengths of the pixel pairs on it,
#   counts: int64 [E], number of pixel pairs on it.
Boundaries = collections.namedtuple('Boundaries', ['pairs', 'sums', 'counts'])


def get_contour_strength(image,
                         sigmas=DEFAULT_SIGMAS,
                         surround_sigma=DEFAULT_SURROUND_SIGMA,
                         surround_weight=DEFAULT_SURROUND_WEIGHT,
                         surround_floor=DEFAULT_SURROUND_FLOOR,
                         percentile=DEFAULT_PERCENTILE,
                         min_contrast=DEFAULT_MIN_CONTRAST,
                         max_contrast=DEFAULT_MAX_CONTRAST):
  """Multi-scale colour-gradient contour strength of an RGB image.

  The image is converted to CIE Lab. At every scale sigma the scale-normalised
  gradient magnitude of the Gaussian-smoothed Lab image is

      g_sigma = sqrt(2 pi) * sigma * sqrt(sum_ch |grad (G_sigma * I_ch)|^2),

  which equals the Lab contrast A of an ideal step edge at every scale (the
  peak of a smoothed step's derivative is A / (sqrt(2 pi) sigma)). Averaging
  over scales, g = mean_sigma g_sigma, keeps real edges at full strength and
  damps fine texture and noise, which only the small scales see. Texture is
  suppressed further by the surround (Grigorescu-style inhibition):

      g' = max(g - w * (G_s * g), f * g),

  and the result is divided by clip(P, min_contrast, max_contrast), P the
  percentile-th percentile of g', and clipped to [0, 1].

  Args:
    image: uint8 [H, W, 3] RGB image (or [H, W] gray, or float in [0, 1]).
    sigmas: Gaussian scales in pixels.
    surround_sigma: s, the scale of the surround in pixels.
    surround_weight: w; 0 switches the suppression off.
    surround_floor: f, the fraction of g the suppression always leaves.
    percentile: the percentile of g' that maps to strength 1.
    min_contrast: floor of the normaliser in Lab units, so that a nearly
      uniform image does not get strong contours from noise.
    max_contrast: cap of the normaliser in Lab units: contrasts above it
      are always full-strength contours.

  Returns:
    float32 [H, W] contour strength in [0, 1].
  """
  image = np.asarray(image)
  if image.ndim == 2:
    image = np.stack([image] * 3, axis=-1)
  if image.ndim != 3 or image.shape[-1] not in (3, 4):
    raise ValueError('expected an RGB image [H, W, 3], got shape %s'
                     % (image.shape,))
  if not sigmas:
    raise ValueError('sigmas must not be empty')
  image = image[..., :3]
  if image.dtype == np.uint8:
    image = image.astype(np.float32) / 255.0
  lab = color.rgb2lab(np.clip(image, 0.0, 1.0)).astype(np.float32)

  total = np.zeros(lab.shape[:2], np.float32)
  for sigma in sigmas:
    squared = np.zeros(lab.shape[:2], np.float32)
    for ch in range(3):
      squared += ndimage.gaussian_gradient_magnitude(
          lab[..., ch], sigma, mode='nearest') ** 2
    total += np.sqrt(2.0 * np.pi) * sigma * np.sqrt(squared)
  total /= len(sigmas)
  if surround_weight > 0:
    surround = ndimage.gaussian_filter(total, surround_sigma, mode='nearest')
    total = np.maximum(total - surround_weight * surround,
                       surround_floor * total)

  if not 0 < min_contrast <= max_contrast:
    raise ValueError('need 0 < min_contrast <= max_contrast, got %r, %r'
                     % (min_contrast, max_contrast))
  scale = float(np.clip(np.percentile(total, percentile), min_contrast,
                        max_contrast))
  return np.clip(total / scale, 0.0, 1.0).astype(np.float32)


def get_watershed_regions(contour, smoothing=1.0, min_depth=0.01):
  """Fine regions: watershed of the contour map from its regional minima.

  Markers are the h-minima of the smoothed map (minima shallower than
  min_depth are noise and would only multiply the regions the hierarchy has
  to merge again); the flooding itself runs on the unsmoothed map so that
  region borders sit on the contour ridges.

  Args:
    contour: float [H, W] contour strength in [0, 1].
    smoothing: Gaussian sigma applied before finding the minima (0 = none).
    min_depth: depth h of the h-minima used as markers.

  Returns:
    int32 [H, W] region ids 0..K-1, every region 4-connected.
  """
  contour = np.asarray(contour, np.float32)
  if contour.ndim != 2:
    raise ValueError('contour map must be [H, W], got shape %s'
                     % (contour.shape,))
  smooth = (ndimage.gaussian_filter(contour, smoothing, mode='nearest')
            if smoothing > 0 else contour)
  if min_depth > 0:
    minima = morphology.h_minima(smooth, min_depth)
  else:
    minima = morphology.local_minima(smooth)
  markers, num_markers = ndimage.label(minima)
  if num_markers == 0:  # A constant map has no h-minima: one region.
    return np.zeros(contour.shape, np.int32)
  labels = segmentation.watershed(contour, markers, connectivity=1)
  # Watershed basins are connected, but relabel 0..K-1 to be safe for any
  # markers that produced nothing.
  _, labels = np.unique(labels, return_inverse=True)
  return labels.reshape(contour.shape).astype(np.int32)


def _adjacent_pixel_pairs(labels):
  """Flat indices (p, q) of 4-adjacent pixels whose labels differ."""
  h, w = labels.shape
  index = np.arange(h * w).reshape(h, w)
  right = labels[:, :-1] != labels[:, 1:]
  down = labels[:-1, :] != labels[1:, :]
  p = np.concatenate([index[:, :-1][right], index[:-1, :][down]])
  q = np.concatenate([index[:, 1:][right], index[1:, :][down]])
  return p, q


def get_boundaries(labels, contour, crack_strength=None):
  """Boundaries between adjacent regions and their contour strengths.

  A boundary is made of the 4-adjacent pixel pairs (p, q) that straddle it;
  a pair's strength is max(c_p, c_q), since the watershed line (the ridge of
  c) lies on one side or the other, or its crack strength if given.

  Args:
    labels: int [H, W] region ids 0..K-1.
    contour: float [H, W] contour strength.
    crack_strength: optional oriented_watershed.CrackStrength of every
      adjacent pixel pair of a finer (or the same) partition.

  Returns:
    (Boundaries, pair_boundary, p, q): the per-boundary sums, the boundary
    index of every straddling pixel pair (int64 [P]) and the pairs' flat
    pixel indices (int64 [P] each).
  """
  labels = np.asarray(labels)
  flat_labels = labels.ravel().astype(np.int64)
  flat_contour = np.asarray(contour, np.float64).ravel()
  p, q = _adjacent_pixel_pairs(labels)
  a = flat_labels[p]
  b = flat_labels[q]
  lo = np.minimum(a, b)
  hi = np.maximum(a, b)
  num_labels = int(flat_labels.max()) + 1 if flat_labels.size else 0
  keys = lo * num_labels + hi
  unique_keys, pair_boundary = np.unique(keys, return_inverse=True)
  if crack_strength is None:
    strength = np.maximum(flat_contour[p], flat_contour[q])
  else:
    strength = oriented_watershed.get_pair_strength(crack_strength, p, q,
                                                    labels.shape[1])
  sums = np.bincount(pair_boundary, weights=strength,
                     minlength=unique_keys.size)
  counts = np.bincount(pair_boundary, minlength=unique_keys.size)
  pairs = np.stack([unique_keys // max(num_labels, 1),
                    unique_keys % max(num_labels, 1)], axis=1)
  return (Boundaries(pairs, sums, counts.astype(np.int64)),
          pair_boundary.ravel(), p, q)


class _RegionGraph(object):
  """Region adjacency graph merged greedily by mean boundary strength.

  Nodes are the current regions (union-find roots over the initial ids);
  an edge holds [strength sum, pixel-pair count, initial boundary ids] of
  everything between two regions. Merging two regions adds their edges to
  common neighbours, so an edge's strength stays the mean over all pixel
  pairs between the two regions; as every merged edge is at least the level
  being merged, the merge levels never decrease (an ultrametric).
  """

  def __init__(self, num_regions, boundaries, sizes):
    self.parent = np.arange(num_regions)
    self.sizes = np.asarray(sizes, np.int64).copy()
    self.num_regions = num_regions
    self.adjacency = [dict() for _ in range(num_regions)]
    self.heap = []
    for i, (a, b) in enumerate(boundaries.pairs.tolist()):
      edge = [float(boundaries.sums[i]), int(boundaries.counts[i]), [i]]
      self.adjacency[a][b] = edge
      self.adjacency[b][a] = edge
      self.heap.append((edge[0] / edge[1], a, b))
    heapq.heapify(self.heap)

  def find(self, i):
    root = i
    while self.parent[root] != root:
      root = self.parent[root]
    while self.parent[i] != root:  # Path compression.
      self.parent[i], i = root, self.parent[i]
    return root

  def merge(self, a, b):
    """Merges two adjacent roots a and b.

    Returns:
      (root, edge): the surviving root and the removed edge between them
      ([sum, count, initial boundary ids]).
    """
    # Keep the region with more neighbours, so dict updates stay cheap.
    if len(self.adjacency[a]) < len(self.adjacency[b]):
      a, b = b, a
    adjacency_a = self.adjacency[a]
    merged_edge = adjacency_a.pop(b)
    self.adjacency[b].pop(a)
    for c, edge in self.adjacency[b].items():
      adjacency_c = self.adjacency[c]
      del adjacency_c[b]
      existing = adjacency_a.get(c)
      if existing is None:
        adjacency_a[c] = edge
        adjacency_c[a] = edge
      else:
        existing[0] += edge[0]
        existing[1] += edge[1]
        # Extend the longer list by the shorter one.
        if len(existing[2]) < len(edge[2]):
          existing[2], edge[2] = edge[2], existing[2]
        existing[2].extend(edge[2])
        edge = existing
      heapq.heappush(self.heap, (edge[0] / edge[1], min(a, c), max(a, c)))
    self.adjacency[b] = {}
    self.parent[b] = a
    self.sizes[a] += self.sizes[b]
    self.num_regions -= 1
    return a, merged_edge

  def pop_weakest(self):
    """Removes and returns the weakest live edge as (level, a, b) or None."""
    while self.heap:
      level, a, b = heapq.heappop(self.heap)
      edge = self.adjacency[a].get(b)
      # Stale entries: a side was merged away or the edge has grown since.
      if edge is not None and edge[0] / edge[1] == level:
        return level, a, b
    return None

  def weakest_neighbour(self, a):
    """The neighbour of root a sharing its weakest boundary, or None."""
    best, best_level = None, None
    for c, edge in self.adjacency[a].items():
      level = edge[0] / edge[1]
      if best is None or level < best_level or (level == best_level
                                                and c < best):
        best, best_level = c, level
    return best

  def labels(self):
    """Root of every initial region, renumbered 0..R-1 (int64 [K])."""
    roots = np.array([self.find(i) for i in range(len(self.parent))],
                     np.int64)
    _, dense = np.unique(roots, return_inverse=True)
    return dense.ravel()


def get_ultrametric_contour_map(labels, contour, crack_strength=None):
  """Hierarchical merging of adjacent regions -> ultrametric contour map.

  Repeatedly merges the two adjacent regions with the weakest boundary,
  where a boundary's strength is the mean pixel-pair strength
  max(c_p, c_q) along it; every fine boundary gets the level of the merge
  that joined its two sides. Levels are ultrametric: the level separating
  two fine regions is the largest level on the best path between them, and
  thresholding at t keeps exactly the boundaries of the merge state reached
  just before level t.

  Args:
    labels: int [H, W] fine region ids 0..K-1 (e.g. from
      get_watershed_regions).
    contour: float [H, W] contour strength in [0, 1].
    crack_strength: optional oriented_watershed.CrackStrength replacing the
      pixel-pair strengths (as in get_boundaries).

  Returns:
    (ucm, boundaries, levels): float32 [H, W] pixel UCM (every pixel of a
    straddling pixel pair carries the pair's boundary level, 0 inside
    regions), the fine Boundaries and float64 [E] merge level per fine
    boundary.
  """
  labels = np.asarray(labels)
  if labels.shape != np.shape(contour):
    raise ValueError('labels %s and contour %s differ in shape'
                     % (labels.shape, np.shape(contour)))
  num_regions = int(labels.max()) + 1 if labels.size else 0
  boundaries, pair_boundary, p, q = get_boundaries(labels, contour,
                                                   crack_strength)
  sizes = np.bincount(labels.ravel(), minlength=num_regions)
  graph = _RegionGraph(num_regions, boundaries, sizes)
  levels = np.zeros(len(boundaries.counts), np.float64)
  while True:
    weakest = graph.pop_weakest()
    if weakest is None:
      break
    level, a, b = weakest
    _, edge = graph.merge(a, b)
    levels[edge[2]] = level

  ucm = np.zeros(labels.size, np.float32)
  pair_levels = levels[pair_boundary].astype(np.float32)
  np.maximum.at(ucm, p, pair_levels)
  np.maximum.at(ucm, q, pair_levels)
  return ucm.reshape(labels.shape), boundaries, levels


def threshold_hierarchy(labels, boundaries, levels, threshold):
  """Regions of the hierarchy at a threshold.

  Two adjacent fine regions are joined when their boundary level is below
  the threshold (boundaries at or above it survive); by the ultrametric
  property this is the merge state at that level.

  Args:
    labels: int [H, W] fine region ids 0..K-1.
    boundaries: the fine Boundaries from get_ultrametric_contour_map.
    levels: float [E] merge level per fine boundary.
    threshold: level in the contour scale [0, 1].

  Returns:
    int64 [H, W] region ids 0..R-1 (arbitrary order).
  """
  num_regions = int(np.max(labels)) + 1
  keep = levels < threshold
  pairs = boundaries.pairs[keep]
  graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                     shape=(num_regions, num_regions))
  _, component = connected_components(graph, directed=False)
  return component[labels]


def merge_small_and_excess_regions(labels, contour, min_size=DEFAULT_MIN_SIZE,
                                   max_segments=MAX_SEGMENTS,
                                   crack_strength=None):
  """Merges regions below min_size, then caps the region count.

  Small regions, smallest first, join the neighbour across their weakest
  boundary (mean strength); then, while more than max_segments regions
  remain, the weakest boundary overall is removed, continuing the
  hierarchy.

  Args:
    labels: int [H, W] region ids 0..R-1.
    contour: float [H, W] contour strength.
    min_size: regions with fewer pixels are merged (unless they are alone).
    max_segments: the largest number of regions returned (>= 1).
    crack_strength: optional oriented_watershed.CrackStrength (as in
      get_boundaries).

  Returns:
    int64 [H, W] region ids 0..R'-1 (arbitrary order), R' <= max_segments.
  """
  if max_segments < 1:
    raise ValueError('max_segments must be at least 1, got %d' % max_segments)
  labels = np.asarray(labels)
  num_regions = int(labels.max()) + 1
  sizes = np.bincount(labels.ravel(), minlength=num_regions)
  boundaries = get_boundaries(labels, contour, crack_strength)[0]
  graph = _RegionGraph(num_regions, boundaries, sizes)

  if min_size > 1:
    small = [(int(sizes[i]), i) for i in range(num_regions)
             if sizes[i] < min_size]
    heapq.heapify(small)
    while small and graph.num_regions > 1:
      size, i = heapq.heappop(small)
      if graph.find(i) != i or graph.sizes[i] != size:
        continue  # Merged away, or grown since it was queued.
      neighbour = graph.weakest_neighbour(i)
      if neighbour is None:
        continue
      root, _ = graph.merge(i, neighbour)
      if graph.sizes[root] < min_size:
        heapq.heappush(small, (int(graph.sizes[root]), root))

  while graph.num_regions > max_segments:
    weakest = graph.pop_weakest()
    if weakest is None:  # Disconnected regions cannot be merged further.
      break
    graph.merge(weakest[1], weakest[2])
  return graph.labels()[labels]


def renumber_raster_order(labels):
  """Renumbers ids by first appearance in row-major order.

  The region containing pixel (0, 0) gets 0, the next region met scanning
  rows top to bottom, left to right gets 1, and so on.

  Args:
    labels: int [H, W] region ids (any values).

  Returns:
    int64 [H, W] ids 0..R-1.
  """
  labels = np.asarray(labels)
  values, first, inverse = np.unique(labels.ravel(), return_index=True,
                                     return_inverse=True)
  rank = np.empty(len(values), np.int64)
  rank[np.argsort(first, kind='stable')] = np.arange(len(values))
  return rank[inverse.ravel()].reshape(labels.shape)


def get_oversegmentation(image=None,
                         contour=None,
                         threshold=DEFAULT_THRESHOLD,
                         max_segments=MAX_SEGMENTS,
                         min_size=DEFAULT_MIN_SIZE,
                         return_ucm=False,
                         oriented=False):
  """OWT-UCM-style oversegmentation of an image.

  Args:
    image: uint8 [H, W, 3] RGB image; used to compute the contour strength
      when contour is None.
    contour: optional float [H, W] contour strength in [0, 1] (e.g. a HED
      probability map); takes precedence over the image.
    threshold: UCM level in [0, 1]; boundaries at or above it are kept.
      Higher thresholds give fewer, larger segments.
    max_segments: at most this many segments (1..255; 255 is reserved for
      padding by the training reader).
    min_size: regions with fewer pixels are merged into a neighbour.
    return_ucm: also return the float32 [H, W] UCM.
    oriented: boundary strengths from the oriented watershed transform
      (utils/oriented_watershed.py) instead of the plain contour values.

  Returns:
    uint8 [H, W] segment ids 0..N-1 in raster order (N <= max_segments), and
    the UCM if return_ucm.
  """
  if not 1 <= max_segments <= MAX_SEGMENTS:
    raise ValueError('max_segments must be in [1, %d], got %r'
                     % (MAX_SEGMENTS, max_segments))
  if contour is None:
    if image is None:
      raise ValueError('get_oversegmentation needs an image or a contour map')
    contour = get_contour_strength(image)
  contour = np.asarray(contour, np.float32)
  if image is not None and np.shape(image)[:2] != contour.shape:
    raise ValueError('image %s and contour map %s differ in size'
                     % (np.shape(image)[:2], contour.shape))
  fine = get_watershed_regions(contour)
  crack_strength = (
      oriented_watershed.get_oriented_crack_strength(fine, contour)
      if oriented else None)
  ucm, boundaries, levels = get_ultrametric_contour_map(fine, contour,
                                                        crack_strength)
  regions = threshold_hierarchy(fine, boundaries, levels, threshold)
  regions = merge_small_and_excess_regions(regions, contour, min_size,
                                           max_segments, crack_strength)
  segments = renumber_raster_order(regions).astype(np.uint8)
  if return_ucm:
    return segments, ucm
  return segments


def read_image(path):
  """Reads an image file as uint8 [H, W, 3] RGB."""
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB'))


def read_contour_png(path):
  """Reads a contour probability PNG as float32 [H, W] in [0, 1].

  8-bit maps (0..255) are divided by 255, 16-bit maps by 65535; colour PNGs
  are converted to gray first.
  """
  with Image.open(path) as image:
    if image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
      return np.clip(np.asarray(image, np.float32) / 65535.0, 0.0, 1.0)
    return np.asarray(image.convert('L'), np.float32) / 255.0


def ucm_to_uint16(ucm):
  """UCM levels in [0, 1] -> uint16 [H, W] scaled by UCM_PNG_SCALE."""
  return np.round(np.clip(ucm, 0.0, 1.0) * UCM_PNG_SCALE).astype(np.uint16)


def get_ucm_path(mask_path):
  """UCM path next to a mask: folder + '_ucm' (hed/x.png -> hed_ucm/x.png)."""
  folder, name = os.path.split(mask_path)
  return os.path.join(folder + '_ucm', name)


def read_oversegmentation_list(data_dir, data_list):
  """Reads a data list into (image path, mask path) pairs under data_dir.

  The list and its mask paths follow utils/data_lists.py.

  Returns:
    A list of (image_path, mask_path).

  Raises:
    DataListError: the list file is missing or malformed, or no mask path
      rule applies to a line; the message names the file and line.
  """
  pairs = []
  for entry in data_lists.read_data_list(data_dir, data_list):
    if entry.overseg is None:
      if entry.label is not None:
        problem = ("label path %r has no 'segcls' to replace by 'hed'; give "
                   'the mask path as a third column' % entry.label)
      else:
        problem = ("image path %r has no 'JPEGImages' folder to replace by "
                   "'hed'; give IMAGE LABEL OVERSEG columns instead"
                   % entry.image)
      raise data_lists.DataListError('%s line %d: %s'
                                     % (data_list, entry.line, problem))
    pairs.append((entry.image, entry.overseg))
  return pairs


def get_contour_path(contour_dir, image_path):
  """contour_dir/NAME.png for image .../NAME.ext."""
  name = os.path.splitext(os.path.basename(image_path))[0]
  return os.path.join(contour_dir, name + '.png')


def make_oversegmentation_mask(image_path, mask_path, contour_path=None,
                               ucm_path=None, threshold=DEFAULT_THRESHOLD,
                               max_segments=MAX_SEGMENTS,
                               min_size=DEFAULT_MIN_SIZE, oriented=False):
  """Computes one image's mask (and UCM) and writes them atomically.

  Args:
    image_path: the image file.
    mask_path: where the uint8 PNG of segment ids goes.
    contour_path: optional contour probability PNG (same size as the
      image); without it the contours come from get_contour_strength.
    ucm_path: optional path of the 16-bit UCM PNG.
    threshold, max_segments, min_size, oriented: as in
      get_oversegmentation.

  Returns:
    The number of segments written.

  Raises:
    FileNotFoundError / ValueError naming the file at fault.
  """
  if not os.path.isfile(image_path):
    raise FileNotFoundError('image not found: %s' % image_path)
  image = read_image(image_path)
  contour = None
  if contour_path is not None:
    if not os.path.isfile(contour_path):
      raise FileNotFoundError('contour map not found: %s' % contour_path)
    contour = read_contour_png(contour_path)
    if contour.shape != image.shape[:2]:
      raise ValueError('contour map %s is %dx%d but image %s is %dx%d' % (
          contour_path, contour.shape[1], contour.shape[0], image_path,
          image.shape[1], image.shape[0]))
  segments, ucm = get_oversegmentation(
      image, contour, threshold=threshold, max_segments=max_segments,
      min_size=min_size, return_ucm=True, oriented=oriented)
  atomic_io.atomic_save_png(mask_path, segments)
  if ucm_path is not None:
    atomic_io.atomic_save_png(ucm_path, ucm_to_uint16(ucm))
  return int(segments.max()) + 1
