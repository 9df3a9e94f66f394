"""Pictures that explain a SegSort prediction by the segments it retrieved.

SegSort labels every segment of a test image by a vote of its k nearest
training prototypes, so each decision can be shown: the segment next to the
training segments it voted with. make_retrieval_picture lays out

    row 0:  image | segments | prediction | [ground truth] | embedding PCA
    row i:  the i-th largest segment (the rest of the image dimmed) |
            its k nearest training segments (crops of the training images
            at the prototype's box), captioned with class and similarity.

NumPy / PIL only.
"""
import os

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from network.segsort import vis_utils
from seg_models import image_reader
from utils import colormaps
from utils import label_images
from utils import picture_grid

# Brightness left to the pixels outside a highlighted segment.
DIM_FACTOR = 0.3
# Weight of the segment colours over the image in the segments picture.
SEGMENT_ALPHA = 0.5
# Background and caption colours.
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def to_rgb(image):
  """Mean-subtracted float image [H, W, 3] -> uint8 RGB."""
  return np.clip(np.round(np.asarray(image) + image_reader.IMG_MEAN), 0,
                 255).astype(np.uint8)


def segment_boundaries(labels):
  """True where a pixel's label differs from its right or lower neighbour."""
  labels = np.asarray(labels)
  edges = np.zeros(labels.shape, bool)
  edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
  edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
  return edges


def segments_picture(rgb, cluster_labels):
  """The image with every segment tinted its own colour, boundaries white."""
  # Distinct colours for segment ids: the VOC palette from entry 1 on.
  palette = colormaps.get_voc_colormap()[1:].astype(np.float32)
  colours = palette[np.asarray(cluster_labels) % len(palette)]
  out = (1 - SEGMENT_ALPHA) * rgb.astype(np.float32) + SEGMENT_ALPHA * colours
  out[segment_boundaries(cluster_labels)] = 255
  return np.round(out).astype(np.uint8)


def highlight(rgb, mask):
  """The image cropped to the mask's box, pixels outside the mask dimmed."""
  ys, xs = np.nonzero(mask)
  if not len(ys):
    return rgb
  out = rgb.astype(np.float32)
  out[~mask] *= DIM_FACTOR
  out = np.round(out).astype(np.uint8)
  return out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def crop_box(rgb, box):
  """rgb[top:bottom, left:right], the box clipped to the image."""
  top, left, bottom, right = [int(v) for v in box]
  height, width = rgb.shape[:2]
  top, bottom = max(0, min(top, height - 1)), max(1, min(bottom, height))
  left, right = max(0, min(left, width - 1)), max(1, min(right, width))
  return rgb[top:max(bottom, top + 1), left:max(right, left + 1)]


def fit(picture, size):
  """Resizes a picture to fit in size x size (aspect kept, at least 1 px)."""
  height, width = picture.shape[:2]
  scale = float(size) / max(height, width)
  new = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
  resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
  return np.asarray(Image.fromarray(picture).resize(new, resample))


def compose_rows(rows, padding=4):
  """Draws rows of captioned pictures on a white canvas.

  Args:
    rows: list of rows; a row is a list of (uint8 [h, w, 3], caption).
    padding: pixels between pictures and around the canvas.

  Returns:
    uint8 [H, W, 3].
  """
  font = ImageFont.load_default()
  probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  top, bottom = probe.textbbox((0, 0), 'Hgy|', font=font)[1::2]
  caption_h = bottom + max(top, 0) + 2
  heights = [caption_h + max(p.shape[0] for p, _ in row) for row in rows]
  widths = [sum(p.shape[1] + padding for p, _ in row) for row in rows]
  canvas = Image.new('RGB', (padding + max(widths),
                             padding + sum(h + padding for h in heights)),
                     _WHITE)
  draw = ImageDraw.Draw(canvas)
  y = padding
  for row, height in zip(rows, heights):
    x = padding
    for picture, caption in row:
      width = picture.shape[1]
      draw.text((x, y), picture_grid.fit_text(draw, caption, font, max(width, 1)),
                fill=_BLACK, font=font)
      canvas.paste(Image.fromarray(picture), (x, y + caption_h))
      x += width + padding
    y += height + padding
  return np.asarray(canvas).copy()


def largest_segments(cluster_labels, count):
  """Ids of the `count` largest segments, largest first (ties: lower id)."""
  sizes = np.bincount(np.asarray(cluster_labels).ravel())
  order = np.argsort(-sizes, kind='stable')
  return [int(k) for k in order[:count] if sizes[k] > 0]


def make_retrieval_picture(image, prediction, neighbor_crops, class_names,
                           colormap, num_segments=3, thumbnail_size=96,
                           ground_truth=None):
  """The retrieval picture of one image.

  Args:
    image: float32 [H, W, 3] (mean subtracted).
    prediction: a predictor.SegSortPrediction.
    neighbor_crops: fn(prototype index) -> uint8 [h, w, 3] crop of the
      training segment.
    class_names: list of class names (index = class id).
    colormap: uint8 [N, 3].
    num_segments: rows of retrieved neighbours (largest segments first).
    thumbnail_size: side of the box every crop is fitted in.
    ground_truth: optional int [H, W] labels, painted with the colormap
      (255 = ignore gets the palette's entry 255).

  Returns:
    uint8 [H', W', 3].
  """
  rgb = to_rgb(image)
  overview_size = 3 * thumbnail_size
  pictures = [(rgb, 'image'),
              (segments_picture(rgb, prediction.cluster_labels), 'segments'),
              (label_images.label_to_color(prediction.labels, colormap),
               'prediction')]
  if ground_truth is not None:
    pictures.append((label_images.label_to_color(
        np.clip(ground_truth, 0, len(colormap) - 1), colormap),
                     'ground truth'))
  pictures.append((vis_utils.pca_picture(prediction.embedding),
                   'embedding PCA'))
  rows = [[(fit(p, overview_size), c) for p, c in pictures]]

  def name(label):
    label = int(label)
    return class_names[label] if 0 <= label < len(class_names) else str(label)

  for k in largest_segments(prediction.cluster_labels, num_segments):
    mask = prediction.cluster_labels == k
    # Every pixel of a segment has its cluster's label.
    label = prediction.labels[mask][0]
    row = [(fit(highlight(rgb, mask), thumbnail_size),
            '%s (%d px)' % (name(label), int(mask.sum())))]
    for j, similarity in zip(prediction.neighbor_indices[k],
                             prediction.neighbor_similarities[k]):
      crop, label = neighbor_crops(int(j))
      row.append((fit(crop, thumbnail_size),
                  '%s %.2f' % (name(label), similarity)))
    rows.append(row)
  return compose_rows(rows)


class TrainingCrops(object):
  """Crops of the training segments named by a prototype index."""

  def __init__(self, prototypes, data_dir=None, cache_size=64):
    """Args: prototypes, a PrototypeSet with an index; data_dir overrides
    the index's (the training images moved)."""
    self.index = prototypes.index
    self.labels = prototypes.labels
    self.data_dir = data_dir or self.index.get('data_dir', '')
    self._cache = {}
    self._cache_size = cache_size

  def image_path(self, image_id):
    path = self.index['images'][image_id]
    return path if os.path.isabs(path) else os.path.join(self.data_dir, path)

  def _image(self, image_id):
    if image_id not in self._cache:
      if len(self._cache) >= self._cache_size:
        self._cache.pop(next(iter(self._cache)))
      path = self.image_path(image_id)
      if not os.path.isfile(path):
        raise FileNotFoundError(
            'training image %s of the prototype index not found (pass '
            '--prototype_data_dir if the training data moved)' % path)
      with Image.open(path) as img:
        self._cache[image_id] = np.asarray(img.convert('RGB'))
    return self._cache[image_id]

  def __call__(self, prototype):
    """(uint8 crop [h, w, 3], class) of training prototype `prototype`."""
    image = self._image(int(self.index['image_index'][prototype]))
    return crop_box(image, self.index['boxes'][prototype]), int(
        self.labels[prototype])
