"""Pictures of a prototype set and of predictions: 2-D maps and overlays.

- subsample: at most N prototypes, every class keeping an equal share (a
  class with fewer keeps all of its own), so that rare classes stay visible;
- pca_coordinates: the prototypes projected on their first principal
  directions (NumPy);
- tsne_coordinates: a t-SNE map (scikit-learn, imported when called);
- scatter_picture: points coloured by class with a legend of class names,
  drawn with PIL (no plotting library);
- overlay: an image blended with the colours of its label map.

NumPy / PIL only (scikit-learn for t-SNE); no TensorFlow.
"""
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from utils import colormaps
from utils import picture_grid

# Picture layout of scatter_picture, in pixels.
PLOT_SIZE = 560
MARGIN = 36
LEGEND_WIDTH = 230
POINT_RADIUS = 2
# t-SNE runs on one thread below this many points.
_TSNE_THREADED_FROM = 4000
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_GREY = (160, 160, 160)


def subsample(labels, max_count, seed=0):
  """Indices of at most max_count prototypes, classes sharing equally.

  Classes are served from the smallest: each takes all of its prototypes
  or an equal share of what is left, whichever is fewer; within a class the
  prototypes are drawn at random (seeded).

  Args:
    labels: int array [P].
    max_count: the most to keep (<= 0: keep all).
    seed: random seed.

  Returns:
    Sorted int64 indices into labels.
  """
  labels = np.asarray(labels)
  if max_count <= 0 or len(labels) <= max_count:
    return np.arange(len(labels), dtype=np.int64)
  rng = np.random.RandomState(seed)
  classes, counts = np.unique(labels, return_counts=True)
  order = np.argsort(counts, kind='stable')
  left = int(max_count)
  chosen = []
  for position, c in enumerate(order):
    share = min(int(counts[c]), left // (len(order) - position))
    members = np.flatnonzero(labels == classes[c])
    chosen.append(rng.choice(members, share, replace=False))
    left -= share
  return np.sort(np.concatenate(chosen)).astype(np.int64)


def fix_signs(components):
  """Flips every column so that its largest-magnitude entry is positive.

  The convention of network/segsort/vis_utils.py: the pictures do not flip
  between runs.
  """
  components = np.asarray(components)
  rows = np.argmax(np.abs(components), axis=0)
  signs = np.sign(components[rows, np.arange(components.shape[1])])
  signs[signs == 0] = 1.0
  return components * signs


def pca_coordinates(features, num_components=2):
  """The features projected on their first principal directions.

  x_i - mean, times the eigenvectors of the covariance with the largest
  eigenvalues (columns sign-fixed by fix_signs).

  Args:
    features: float array [P, D], P >= 1.
    num_components: the output dimensions (<= D; more are zero columns).

  Returns:
    coordinates: float64 [P, num_components].
    explained: float64 [num_components], the fraction of the variance of
      each direction (0 when the features do not vary).
  """
  features = np.asarray(features, dtype=np.float64)
  if features.ndim != 2 or not len(features):
    raise ValueError('pca_coordinates: expected [P, D] with P >= 1, got %s'
                     % (features.shape,))
  centred = features - features.mean(axis=0, keepdims=True)
  values, vectors = np.linalg.eigh(centred.T @ centred)
  # eigh gives ascending eigenvalues.
  values, vectors = values[::-1], vectors[:, ::-1]
  kept = min(num_components, features.shape[1])
  coordinates = np.zeros((len(features), num_components))
  coordinates[:, :kept] = centred @ fix_signs(vectors[:, :kept])
  explained = np.zeros(num_components)
  total = np.clip(values, 0, None).sum()
  if total > 0:
    explained[:kept] = np.clip(values[:kept], 0, None) / total
  return coordinates, explained


def tsne_perplexity(count, perplexity=30.0):
  """The perplexity t-SNE can take for count points (it must be < count)."""
  return float(max(1.0, min(perplexity, (count - 1) / 3.0)))


def tsne_coordinates(features, seed=0, perplexity=30.0):
  """A 2-D t-SNE map of the features (scikit-learn's TSNE).

  Cosine distances (the prototypes are unit vectors compared by their dot
  product), PCA initialisation and a fixed random_state: the same input
  gives the same map. Barnes-Hut: 13 s of CPU for 3,000 32-dimensional
  points here.

  Args:
    features: float array [P, D] with P >= 2.
    seed: random_state.
    perplexity: capped by tsne_perplexity.

  Returns:
    float64 [P, 2].
  """
  # pylint: disable=import-outside-toplevel
  import threadpoolctl
  from sklearn import manifold
  features = np.asarray(features, dtype=np.float32)
  if features.ndim != 2 or len(features) < 2:
    raise ValueError('t-SNE needs at least 2 prototypes, got shape %s'
                     % (features.shape,))
  tsne = manifold.TSNE(
      n_components=2, perplexity=tsne_perplexity(len(features), perplexity),
      init='pca', learning_rate='auto', metric='cosine', random_state=seed)
  # Below a few thousand points, OpenMP threads cost more in start-ups and
  # waits at each of the 1000 iterations than they save.
  threads = 1 if len(features) < _TSNE_THREADED_FROM else None
  with threadpoolctl.threadpool_limits(limits=threads, user_api='openmp'):
    return tsne.fit_transform(features).astype(np.float64)


def _font(size=13):
  """Pillow's default font at `size` (its bitmap font without FreeType)."""
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, ImportError, OSError):
    return ImageFont.load_default()


def scatter_picture(coordinates, labels, class_names, title, colormap=None,
                    counts=None, axis_names=('', ''), seed=0):
  """Points coloured by class, with a legend, as a uint8 RGB picture.

  The points are drawn in a random (seeded) order, so that no class always
  lies on top; the legend lists the classes present, each with its colour
  (colormap[class], the colours of the label pictures) and its number of
  points.

  Args:
    coordinates: float array [N, 2].
    labels: int array [N], class ids.
    class_names: list of names, index = class id.
    title: text above the plot.
    colormap: uint8 [K, 3] (None: the VOC palette).
    counts: optional {class id: total prototypes of the class}; the
      legend says 'N of TOTAL' for the classes drawn in part.
    axis_names: captions of the x and y axes.
    seed: drawing order.

  Returns:
    uint8 [H, W, 3].
  """
  coordinates = np.asarray(coordinates, dtype=np.float64)
  labels = np.asarray(labels)
  colormap = (colormaps.VOC_COLORMAP if colormap is None
              else np.asarray(colormap))
  if coordinates.ndim != 2 or coordinates.shape[1] != 2:
    raise ValueError('scatter_picture: coordinates must be [N, 2], got %s'
                     % (coordinates.shape,))
  if len(labels) != len(coordinates):
    raise ValueError('scatter_picture: %d labels for %d points'
                     % (len(labels), len(coordinates)))
  font = _font()
  width = MARGIN * 2 + PLOT_SIZE + LEGEND_WIDTH
  height = MARGIN * 2 + PLOT_SIZE
  canvas = Image.new('RGB', (width, height), _WHITE)
  draw = ImageDraw.Draw(canvas)
  left, top = MARGIN, MARGIN
  right, bottom = MARGIN + PLOT_SIZE, MARGIN + PLOT_SIZE
  draw.rectangle([left, top, right, bottom], outline=_GREY)
  draw.text((left, 10), picture_grid.fit_text(draw, title, font,
                                              width - 2 * MARGIN),
            fill=_BLACK, font=font)
  draw.text((left, bottom + 6), axis_names[0], fill=_BLACK, font=font)
  if axis_names[1]:
    draw.text((left + 4, top + 4), axis_names[1], fill=_BLACK, font=font)
  if len(coordinates):
    low = coordinates.min(axis=0)
    span = coordinates.max(axis=0) - low
    span[span == 0] = 1.0
    inner = PLOT_SIZE - 4 * POINT_RADIUS
    pixels = (coordinates - low) / span * inner + 2 * POINT_RADIUS
    xs = left + pixels[:, 0]
    # Image rows grow downwards; the y axis upwards.
    ys = bottom - pixels[:, 1]
    for i in np.random.RandomState(seed).permutation(len(coordinates)):
      colour = tuple(int(v) for v in colormap[int(labels[i])])
      draw.ellipse([xs[i] - POINT_RADIUS, ys[i] - POINT_RADIUS,
                    xs[i] + POINT_RADIUS, ys[i] + POINT_RADIUS],
                   fill=colour, outline=colour)
  # Legend.
  x0 = right + 16
  y = top
  line = 18
  present, shown = np.unique(labels, return_counts=True)
  for c, n in zip(present, shown):
    if y + line > bottom:
      draw.text((x0, y), '...', fill=_BLACK, font=font)
      break
    colour = tuple(int(v) for v in colormap[int(c)])
    draw.rectangle([x0, y + 3, x0 + 11, y + 14], fill=colour,
                   outline=_GREY)
    name = class_names[int(c)] if int(c) < len(class_names) else str(c)
    total = counts.get(int(c), n) if counts is not None else n
    total = '' if total == n else ' of %d' % total
    text = '%s (%d%s)' % (name, n, total)
    draw.text((x0 + 16, y), picture_grid.fit_text(
        draw, text, font, LEGEND_WIDTH - 20), fill=_BLACK, font=font)
    y += line
  return np.asarray(canvas).copy()


def overlay(rgb, labels, colormap=None, alpha=0.5):
  """An image blended with the colours of its label map.

  out = round((1 - alpha) * rgb + alpha * colormap[labels]), in float32.

  Args:
    rgb: uint8 [H, W, 3].
    labels: int [H, W], ids into colormap.
    colormap: uint8 [K, 3] (None: the VOC palette).
    alpha: weight of the label colours, in [0, 1].

  Returns:
    uint8 [H, W, 3].
  """
  rgb = np.asarray(rgb)
  labels = np.asarray(labels)
  if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
    raise ValueError('overlay: expected a uint8 [H, W, 3] image, got %s %s'
                     % (rgb.dtype, rgb.shape))
  if labels.shape != rgb.shape[:2]:
    raise ValueError('overlay: label map of shape %s for an image of shape '
                     '%s' % (labels.shape, rgb.shape[:2]))
  if not 0.0 <= alpha <= 1.0:
    raise ValueError('overlay: alpha must be in [0, 1], got %r' % (alpha,))
  colormap = (colormaps.VOC_COLORMAP if colormap is None
              else np.asarray(colormap))
  colours = colormap[labels.astype(np.intp)].astype(np.float32)
  out = (np.float32(1.0 - alpha) * rgb.astype(np.float32) +
         np.float32(alpha) * colours)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)
