"""A small synthetic segmentation dataset in the VOC layout.

The demo (bashscripts/demo) trains SegSort end to end on CPU in minutes, so it
needs data that a small network can learn quickly and that needs no
download. Every scene is a textured background with one to a few objects
painted on it. Each object class has its own SHAPE and its own TEXTURE
(stripes, dots, checks, blocky noise, ...), while both colours of every
object are drawn at random, so colour alone does not reveal the class: the
network has to learn texture and shape, as on real images.

Layout written under OUTPUT_DIR (the `--data_dir` of the training and
inference scripts; it is flat, with no VOC2012/ subfolder):

    OUTPUT_DIR/JPEGImages/NAME.jpg   RGB JPEG, quality 95, no chroma subsampling
    OUTPUT_DIR/segcls/NAME.png       grayscale PNG of class ids, 255 = ignore
    OUTPUT_DIR/train.txt             lines `JPEGImages/NAME.jpg segcls/NAME.png`
    OUTPUT_DIR/val.txt               same format
    OUTPUT_DIR/classes.txt           one class name per line, line i = class i

Names are `train_000000`, ..., `val_000000`, ... so that both splits can
share the folders. As in VOC, a thin band of ignore (255) pixels runs along
every label boundary (`border_width` pixels on each side).

The output is a pure function of the arguments: running twice with the same
arguments gives byte-identical files. Image i of a split depends only on
(seed, split, i), so changing num_train does not change the val images.
"""
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from utils import atomic_io

IGNORE_LABEL = 255
JPEG_QUALITY = 95
SPLITS = ('train', 'val')

# Object classes 1, 2, ...: (name, shape, texture). Every class has a shape
# and a texture no other class uses, so either cue separates them; the order
# puts first the classes a small network trained from scratch tells apart
# soonest (measured: with 3 object classes, a 1/8-width PSPNet reached 85%
# mIoU in 2000 steps with this order, 56% with disc/square/triangle first,
# whose outlines blur together at output stride 8).
OBJECT_CLASSES = (
    ('striped_disc', 'ellipse', 'stripes'),
    ('speckled_star', 'star', 'noise'),
    ('ringed_cross', 'cross', 'rings'),
    ('checked_triangle', 'triangle', 'checks'),
    ('dotted_square', 'rectangle', 'dots'),
    ('gridded_hexagon', 'hexagon', 'grid'),
    ('wavy_annulus', 'annulus', 'waves'),
)
BACKGROUND_NAME = 'background'
MAX_NUM_CLASSES = len(OBJECT_CLASSES) + 1

# Object radius as a fraction of the shorter image side: diameters of 20% to
# 60% of the side, large enough to survive output stride 8.
MIN_RADIUS_FRACTION = 0.10
MAX_RADIUS_FRACTION = 0.30
# A new object may cover at most this fraction of any object already placed
# (and of itself), so no object is hidden by occlusion.
MAX_OVERLAP_FRACTION = 0.25
PLACEMENT_TRIES = 20
# The two colours of a texture differ by at least this much in luminance, so
# the pattern survives JPEG compression and is visible to the network.
MIN_LUMINANCE_CONTRAST = 70.0
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114])


def get_class_names(num_classes):
  """Returns the names of classes 0..num_classes-1 (0 is the background)."""
  _check_num_classes(num_classes)
  return [BACKGROUND_NAME] + [c[0] for c in OBJECT_CLASSES[:num_classes - 1]]


def _check_num_classes(num_classes):
  if not 2 <= num_classes <= MAX_NUM_CLASSES:
    raise ValueError(
        'num_classes must be in [2, %d] (background + up to %d object '
        'classes), got %d' % (MAX_NUM_CLASSES, len(OBJECT_CLASSES),
                               num_classes))


def _smooth_noise(rng, height, width, cell):
  """Value noise: a random grid every `cell` pixels, bilinearly upsampled.

  Returns:
    A float array of shape [height, width] with values roughly in [-1, 1].
  """
  grid_h = int(np.ceil(height / cell)) + 1
  grid_w = int(np.ceil(width / cell)) + 1
  grid = rng.uniform(-1.0, 1.0, size=(grid_h, grid_w))
  # A random sub-cell offset so that the grid does not line up across images.
  ys = np.arange(height) / cell + rng.uniform(0.0, 1.0)
  xs = np.arange(width) / cell + rng.uniform(0.0, 1.0)
  y0 = np.minimum(ys.astype(np.int64), grid_h - 2)
  x0 = np.minimum(xs.astype(np.int64), grid_w - 2)
  wy = (ys - y0)[:, None]
  wx = (xs - x0)[None, :]
  top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x0 + 1] * wx
  bottom = grid[y0 + 1][:, x0] * (1 - wx) + grid[y0 + 1][:, x0 + 1] * wx
  return top * (1 - wy) + bottom * wy


def _render_background(rng, height, width):
  """A random base colour with smooth clouds, a gradient and fine grain.

  The background varies (colour, cloud scale, gradient direction) but has no
  high-contrast pattern at the 4-12 pixel scale of the object textures, so
  it stays separable from every object class.

  Returns:
    A float array of shape [height, width, 3] (RGB, not yet clipped).
  """
  base = rng.uniform(30.0, 225.0, size=3)
  image = np.broadcast_to(base, (height, width, 3)).copy()
  side = min(height, width)
  for octave, amplitude in ((0.5, 35.0), (0.25, 18.0), (0.125, 8.0)):
    cell = max(4.0, side * octave)
    for channel in range(3):
      image[..., channel] += amplitude * rng.uniform(0.3, 1.0) * (
          _smooth_noise(rng, height, width, cell))
  angle = rng.uniform(0.0, 2.0 * np.pi)
  ys, xs = np.mgrid[0:height, 0:width]
  ramp = (np.cos(angle) * xs + np.sin(angle) * ys) / side - 0.5
  image += ramp[..., None] * rng.uniform(-40.0, 40.0, size=3)
  image += rng.normal(0.0, 3.0, size=image.shape)
  return image


def _object_frame(height, width, center, angle):
  """Coordinates (u, v) of every pixel in an object's rotated frame."""
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
  dy = ys - center[0]
  dx = xs - center[1]
  cos, sin = np.cos(angle), np.sin(angle)
  return cos * dx + sin * dy, -sin * dx + cos * dy


def _regular_polygon_mask(u, v, inradius, num_sides):
  """Inside of a regular polygon: every edge's half-plane test holds."""
  inside = np.ones(u.shape, dtype=bool)
  for k in range(num_sides):
    phi = 2.0 * np.pi * k / num_sides
    inside &= np.cos(phi) * u + np.sin(phi) * v <= inradius
  return inside


def _shape_mask(shape, u, v, radius, rng):
  """Boolean mask of `shape` with circumradius about `radius` at (u, v) = 0."""
  if shape == 'ellipse':
    b = radius * rng.uniform(0.65, 1.0)
    return (u / radius) ** 2 + (v / b) ** 2 <= 1.0
  if shape == 'rectangle':
    b = radius * rng.uniform(0.6, 1.0)
    return (np.abs(u) <= radius * 0.85) & (np.abs(v) <= b * 0.85)
  if shape == 'triangle':
    # Equilateral: the inradius is half the circumradius.
    return _regular_polygon_mask(u, v, radius * 0.5, 3)
  if shape == 'hexagon':
    return _regular_polygon_mask(u, v, radius * np.cos(np.pi / 6), 6)
  if shape == 'star':
    # A five-pointed star in polar form: r <= R * (0.65 + 0.35 * cos(5 phi)),
    # with arms wide enough to survive output stride 8.
    r = np.hypot(u, v)
    phi = np.arctan2(v, u)
    return r <= radius * (0.65 + 0.35 * np.cos(5.0 * phi))
  if shape == 'cross':
    arm = radius * rng.uniform(0.3, 0.4)
    return (((np.abs(u) <= radius) & (np.abs(v) <= arm)) |
            ((np.abs(v) <= radius) & (np.abs(u) <= arm)))
  if shape == 'annulus':
    r = np.hypot(u, v)
    return (r <= radius) & (r >= radius * rng.uniform(0.4, 0.55))
  raise ValueError('unknown shape %r' % shape)


def _texture_pattern(texture, u, v, rng):
  """Binary pattern of `texture` in the object frame (period 4-12 pixels).

  Returns:
    A boolean array of the shape of u: True where the first colour goes.
  """
  if texture == 'stripes':
    period = rng.uniform(6.0, 11.0)
    return np.mod(u, period) < period / 2
  if texture == 'dots':
    period = rng.uniform(7.0, 11.0)
    du = np.mod(u, period) - period / 2
    dv = np.mod(v, period) - period / 2
    return du ** 2 + dv ** 2 <= (0.3 * period) ** 2
  if texture == 'checks':
    cell = rng.uniform(3.5, 6.0)
    return np.mod(np.floor(u / cell) + np.floor(v / cell), 2) == 0
  if texture == 'noise':
    # Random blocks of 2-3 pixels: a speckle no other class has.
    cell = int(rng.integers(2, 4))
    height, width = u.shape
    bits = rng.random((height // cell + 1, width // cell + 1)) < 0.5
    return np.repeat(np.repeat(bits, cell, 0), cell, 1)[:height, :width]
  if texture == 'rings':
    period = rng.uniform(6.0, 10.0)
    return np.mod(np.hypot(u, v), period) < period / 2
  if texture == 'grid':
    period = rng.uniform(7.0, 11.0)
    return (np.mod(u, period) < 2.0) | (np.mod(v, period) < 2.0)
  if texture == 'waves':
    period = rng.uniform(6.0, 10.0)
    wavelength = rng.uniform(2.5, 3.5) * period
    bent = u + 0.4 * period * np.sin(2.0 * np.pi * v / wavelength)
    return np.mod(bent, period) < period / 2
  raise ValueError('unknown texture %r' % texture)


def _texture_colours(rng):
  """Two random RGB colours whose luminances differ enough to show a pattern."""
  first = rng.uniform(0.0, 255.0, size=3)
  lum = first @ LUMINANCE_WEIGHTS
  # Draw candidates in one go (deterministic count of RNG calls) and take the
  # first that contrasts enough; shifting the grey level is the fallback.
  candidates = rng.uniform(0.0, 255.0, size=(16, 3))
  ok = np.abs(candidates @ LUMINANCE_WEIGHTS - lum) >= MIN_LUMINANCE_CONTRAST
  if ok.any():
    second = candidates[np.argmax(ok)]
  else:
    shift = 110.0 if lum < 128.0 else -110.0
    second = np.clip(first + shift, 0.0, 255.0)
  return first, second


def _ignore_boundaries(label, border_width, ignore_label=IGNORE_LABEL):
  """Sets to `ignore_label` every pixel within `border_width` of another class.

  Args:
    label: An integer array of shape [height, width].
    border_width: Radius of the band in pixels on each side of a boundary
      (0 disables it).

  Returns:
    A copy of label with the boundary band set to ignore_label.
  """
  if border_width <= 0:
    return label.copy()
  height, width = label.shape
  band = np.zeros(label.shape, dtype=bool)
  r = border_width
  for dy in range(-r, r + 1):
    for dx in range(-r, r + 1):
      if (dy, dx) <= (0, 0):
        continue  # Every pair of pixels is compared once; both ends marked.
      ys, ye = max(0, -dy), min(height, height - dy)
      xs, xe = max(0, -dx), min(width, width - dx)
      diff = label[ys:ye, xs:xe] != label[ys + dy:ye + dy, xs + dx:xe + dx]
      band[ys:ye, xs:xe] |= diff
      band[ys + dy:ye + dy, xs + dx:xe + dx] |= diff
  out = label.copy()
  out[band] = ignore_label
  return out


def render_scene(rng, height, width, num_classes, first_class=None,
                 max_objects=3, border_width=1,
                 object_size=(MIN_RADIUS_FRACTION, MAX_RADIUS_FRACTION)):
  """Draws one synthetic scene and its label map.

  Args:
    rng: A numpy.random.Generator; the scene is a function of its state.
    height: Image height in pixels.
    width: Image width in pixels.
    num_classes: Number of classes including the background (class 0).
    first_class: Class id (1..num_classes-1) of the first object, so that
      callers can balance the classes; random if None.
    max_objects: The scene has 1..max_objects objects.
    border_width: Width in pixels of the ignore band on each side of every
      label boundary.
    object_size: (min, max) object radius as a fraction of the image side.

  Returns:
    image: A uint8 array of shape [height, width, 3] (RGB).
    label: A uint8 array of shape [height, width] with values in
      {0, ..., num_classes-1, 255}.
  """
  _check_num_classes(num_classes)
  if first_class is not None and not 1 <= first_class < num_classes:
    raise ValueError('first_class must be in [1, %d), got %d'
                     % (num_classes, first_class))
  image = _render_background(rng, height, width)
  label = np.zeros((height, width), dtype=np.uint8)
  side = min(height, width)
  num_objects = int(rng.integers(1, max_objects + 1))
  areas = {}  # object index -> pixels it owned when it was drawn
  owner = np.full((height, width), -1, dtype=np.int32)
  for index in range(num_objects):
    if index == 0 and first_class is not None:
      cls = int(first_class)
    else:
      cls = int(rng.integers(1, num_classes))
    _, shape, texture = OBJECT_CLASSES[cls - 1]
    for _ in range(PLACEMENT_TRIES):
      radius = side * rng.uniform(object_size[0], object_size[1])
      # Centres stay half a radius inside the frame: most of the object shows.
      center = (rng.uniform(0.0, height), rng.uniform(0.0, width))
      center = (np.clip(center[0], radius * 0.5, height - radius * 0.5),
                np.clip(center[1], radius * 0.5, width - radius * 0.5))
      u, v = _object_frame(height, width, center, rng.uniform(0, 2 * np.pi))
      mask = _shape_mask(shape, u, v, radius, rng)
      area = int(mask.sum())
      if area == 0:
        continue
      covered = owner[mask]
      covered = covered[covered >= 0]
      if covered.size > MAX_OVERLAP_FRACTION * area:
        continue
      hidden = np.bincount(covered, minlength=index)
      if any(hidden[j] > MAX_OVERLAP_FRACTION * areas[j] for j in areas):
        continue
      break
    else:
      continue  # No room left: the scene keeps the objects placed so far.
    pattern = _texture_pattern(texture, u, v, rng)
    first, second = _texture_colours(rng)
    paint = np.where(pattern[..., None], first, second)
    image[mask] = paint[mask]
    label[mask] = cls
    owner[mask] = index
    areas[index] = area
  # Sensor-like grain over everything, so flat colours are never exact.
  image += rng.normal(0.0, 2.0, size=image.shape)
  image = np.clip(np.round(image), 0, 255).astype(np.uint8)
  return image, _ignore_boundaries(label, border_width)


def generate_dataset(output_dir, num_train=300, num_val=60, height=128,
                     width=128, num_classes=5, seed=0, max_objects=3,
                     border_width=1, show_progress=True,
                     object_size=(MIN_RADIUS_FRACTION, MAX_RADIUS_FRACTION)):
  """Writes the synthetic dataset (layout in the module docstring).

  Image i of split s is drawn from numpy.random.default_rng([seed, s, i]);
  its first object cycles through the object classes (class 1 + i mod
  (num_classes - 1)), so every class appears once a split has at least
  num_classes - 1 images.

  Args:
    output_dir: Folder to write into (created if needed); it is the data_dir.
    num_train: Number of training images.
    num_val: Number of validation images.
    height: Image height in pixels.
    width: Image width in pixels.
    num_classes: Number of classes including the background.
    seed: Random seed; the output is a function of all the arguments.
    max_objects: Maximum number of objects per image.
    border_width: Ignore band width in pixels on each side of boundaries.
    show_progress: Whether to show a tqdm progress bar.
    object_size: (min, max) object radius as a fraction of the image side.

  Returns:
    A dict from split name ('train', 'val') to the list of example names.
  """
  _check_num_classes(num_classes)
  for argument, value, minimum in (('num_train', num_train, 0),
                                   ('num_val', num_val, 0),
                                   ('height', height, 16),
                                   ('width', width, 16),
                                   ('max_objects', max_objects, 1),
                                   ('border_width', border_width, 0)):
    if value < minimum:
      raise ValueError('%s must be >= %d, got %d'
                       % (argument, minimum, value))
  if not 0 < object_size[0] <= object_size[1] <= 0.5:
    raise ValueError('object_size must be (min, max) with 0 < min <= max <= '
                     '0.5, got %s' % (object_size,))
  image_dir = os.path.join(output_dir, 'JPEGImages')
  label_dir = os.path.join(output_dir, 'segcls')
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(label_dir, exist_ok=True)

  # One name per line, the format utils.classes.get_class_names reads.
  atomic_io.atomic_write_text(
      os.path.join(output_dir, 'classes.txt'),
      ''.join(name + '\n' for name in get_class_names(num_classes)))

  jobs = [(split_index, split, i)
          for split_index, (split, count) in enumerate(
              zip(SPLITS, (num_train, num_val)))
          for i in range(count)]
  names = {split: [] for split in SPLITS}
  for split_index, split, i in tqdm(jobs, desc='synthetic images',
                                    disable=not show_progress):
    rng = np.random.default_rng([seed, split_index, i])
    image, label = render_scene(
        rng, height, width, num_classes,
        first_class=1 + i % (num_classes - 1), max_objects=max_objects,
        border_width=border_width, object_size=object_size)
    name = '%s_%06d' % (split, i)
    # Written directly, not through atomic_io's writers: their
    # fsync per file would double the run time, and an interrupted run is
    # repaired by running it again (the lists, written last, are atomic).
    # subsampling=0 keeps full-resolution colour (4:4:4): the textures are
    # only a few pixels wide.
    Image.fromarray(image).save(os.path.join(image_dir, name + '.jpg'),
                                format='JPEG', quality=JPEG_QUALITY,
                                subsampling=0)
    Image.fromarray(label).save(os.path.join(label_dir, name + '.png'),
                                format='PNG')
    names[split].append(name)

  for split in SPLITS:
    atomic_io.atomic_write_text(
        os.path.join(output_dir, split + '.txt'),
        ''.join('JPEGImages/%s.jpg segcls/%s.png\n' % (name, name)
                for name in names[split]))
  return names


def write_training_set(folder, num_images, height, width, num_classes, seed):
  """A train-only synthetic set for benchmarks; returns (data_dir, list).

  num_classes is clamped to what the generator draws (2 to MAX_NUM_CLASSES):
  a benchmark's class count does not change the cost of the pipeline.
  """
  generate_dataset(folder, num_train=num_images, num_val=0, height=height,
                   width=width,
                   num_classes=min(max(num_classes, 2), MAX_NUM_CLASSES),
                   seed=seed, show_progress=False)
  return folder, os.path.join(folder, 'train.txt')
