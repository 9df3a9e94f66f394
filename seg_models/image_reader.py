"""Input pipeline: list files, decoding, augmentation and tf.data datasets.

A data list names one example per line, ``IMAGE [LABEL [OVERSEG]]``, relative
to ``data_dir``; its grammar and path rules (a leading '/', the mask path
from 'segcls' -> 'hed') are those of utils/data_lists.py, which the
oversegmentation tool reads too.

Samples are dicts keyed by the constants below. Training samples are built by
a ``tf.data`` pipeline (parallel decode + augmentation, prefetch, no queue
runners); augmentation draws its randomness from stateless random ops seeded
by (seed, position of the example in the stream), so a seeded pipeline gives
the same batches whatever the thread scheduling, and skipping the first N
batches (to resume training at step N) gives exactly the batches an
uninterrupted run would have seen.

Label-like channels of a training sample and their value in crop padding:

    LABEL          [h, w, 1] int32    class id            ignore_label (255)
    CLUSTER_LABEL  [h, w, 1] int32    k-means grid label  ignore_label (255)
    LOCATION       [h, w, 2] float32  (y / H, x / W)      -1.0 (both channels)
    OVERSEG        [h, w, 1] int32    segment id          ignore_label (255)

where H, W are the size of the ORIGINAL image (before scaling), so valid
locations lie in [0, 1).
"""
import os
import random

import numpy as np
from PIL import Image
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from network.segsort import common_utils
from utils import data_lists

# Keys of a sample dict.
IMAGE = 'image'
LABEL = 'label'
CLUSTER_LABEL = 'cluster_label'
LOCATION = 'location'
OVERSEG = 'overseg'
NAME = 'name'

# Mean colour subtracted from every image, in R, G, B order.
IMG_MEAN = np.array((122.675, 116.669, 104.008), np.float32)

# Value of the location channels on crop-padding pixels (valid ones are in
# [0, 1)); these pixels also carry ignore_label in every integer channel.
LOCATION_PADDING = -1.0

# Range of the random scale factor, [min, max).
MIN_SCALE = 0.5
MAX_SCALE = 2.0

# Image formats that both tf.io.decode_image and PIL read.
_IMAGE_FORMATS = ('JPEG', 'PNG', 'BMP', 'GIF')
# Show a progress bar when checking at least this many examples.
_PROGRESS_MIN_ENTRIES = 500


# The list reader's names, part of this module's interface.
DataListError = data_lists.DataListError
DataEntry = data_lists.DataEntry
read_data_list = data_lists.read_data_list
check_unique_names = data_lists.check_unique_names


def _where(entry):
  return '' if entry.line is None else ' (line %d)' % entry.line


def _list_name(data_list):
  return 'data list %s' % data_list if data_list else 'the data list'


def _raise_problems(problems, data_list, max_listed):
  """Raises one DataListError listing every problem (capped)."""
  shown = problems[:max_listed]
  message = '%d problem(s) with the files named in %s:\n  %s' % (
      len(problems), _list_name(data_list), '\n  '.join(shown))
  if len(problems) > len(shown):
    message += '\n  ... and %d more' % (len(problems) - len(shown))
  raise DataListError(message)


def _check_columns(entries, need_label, need_overseg, data_list,
                   max_listed=20):
  """Raises if a needed column is absent from some entries (no file I/O)."""
  problems = []
  for entry in entries:
    if need_label and entry.label is None:
      problems.append('%s: no LABEL column%s' % (entry.image, _where(entry)))
    if need_overseg and entry.overseg is None:
      problems.append(
          '%s: no OVERSEG column, and no LABEL path containing "segcls" (or '
          'image-only line in a "JPEGImages" folder) to derive it from%s'
          % (entry.image, _where(entry)))
  if problems:
    _raise_problems(problems, data_list, max_listed)


def _header(path, kind, entry, formats, modes, problems):
  """Opens an image header; returns its (width, height) or None on a problem.

  Only the header is read (PIL decodes lazily), so this is cheap.
  """
  if not os.path.isfile(path):
    problems.append('%s: missing %s%s' % (path, kind, _where(entry)))
    return None
  try:
    with Image.open(path) as img:
      fmt, mode, size = img.format, img.mode, img.size
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    problems.append('%s: unreadable %s (%s)%s' % (path, kind, e,
                                                  _where(entry)))
    return None
  if fmt not in formats:
    problems.append('%s: %s is %s, expected %s%s' % (
        path, kind, fmt, ' or '.join(formats), _where(entry)))
    return None
  if modes is not None and mode not in modes:
    hint = ''
    if mode == 'P':
      hint = (' (a palette PNG: TensorFlow would decode its colours, not its '
              'indices; save the indices as a grayscale PNG)')
    problems.append('%s: %s has PIL mode %s, expected an 8-bit grayscale PNG '
                    '(mode L)%s%s' % (path, kind, mode, hint, _where(entry)))
    return None
  return size


def _decode(path, kind, entry, problems):
  """Decodes a whole file (a truncated JPEG passes the header check);
  returns its pixels or None on a problem."""
  try:
    with Image.open(path) as img:
      return np.asarray(img)
  except (OSError, ValueError, SyntaxError) as e:
    problems.append('%s: %s cannot be decoded (%s)%s' % (path, kind, e,
                                                        _where(entry)))
    return None


def _check_label_ids(label, path, entry, num_classes, ignore_label,
                     problems):
  """Adds a problem naming the ids of label outside [0, num_classes)."""
  ids = np.unique(label)
  bad = ids[(ids >= num_classes) & (ids != ignore_label)]
  if bad.size:
    problems.append('%s: label ids %s are >= --num_classes %d (and not '
                    '--ignore_label %d)%s' % (
                        path, ', '.join(str(i) for i in bad[:10]),
                        num_classes, ignore_label, _where(entry)))


def check_files(entries, need_label=True, need_overseg=False, data_list=None,
                max_listed=20, decode=True, num_classes=None,
                ignore_label=255):
  """Checks, before training, that every needed file exists and is readable.

  The image must be a JPEG/PNG/BMP/GIF, labels and oversegmentation masks
  8-bit grayscale PNGs of the image's size. With decode, every file is
  decoded whole, so that a truncated file is found now rather than when
  the pipeline draws it.

  Args:
    entries: list of DataEntry (see read_data_list).
    need_label: check the LABEL files (and that every line has one).
    need_overseg: check the OVERSEG files (and that every line has one).
    data_list: path of the list file, named in the error message.
    max_listed: list at most this many problems, then their count.
    decode: decode every file (else read headers only).
    num_classes: if given (with need_label and decode), label ids must be
      below it or equal ignore_label.
    ignore_label: the label id that marks pixels to ignore.

  Raises:
    DataListError: naming every missing or unreadable file at once.
  """
  _check_columns(entries, need_label, need_overseg, data_list, max_listed)
  problems = []
  for entry in tqdm(entries, desc='Checking data files', unit='example',
                    disable=len(entries) < _PROGRESS_MIN_ENTRIES):
    size = _header(entry.image, 'image', entry, _IMAGE_FORMATS, None,
                   problems)
    if size is not None and decode:
      _decode(entry.image, 'image', entry, problems)
    masks = []
    if need_label:
      masks.append((entry.label, 'label'))
    if need_overseg:
      masks.append((entry.overseg, 'oversegmentation mask'))
    for path, kind in masks:
      mask_size = _header(path, kind, entry, ('PNG',), ('L',), problems)
      if mask_size is not None and decode:
        pixels = _decode(path, kind, entry, problems)
        if pixels is not None and kind == 'label' and num_classes:
          _check_label_ids(pixels, path, entry, num_classes, ignore_label,
                           problems)
      if size is not None and mask_size is not None and mask_size != size:
        problems.append('%s: %s is %dx%d (WxH) but image %s is %dx%d%s' % (
            path, kind, mask_size[0], mask_size[1], entry.image, size[0],
            size[1], _where(entry)))
  if problems:
    _raise_problems(problems, data_list, max_listed)


def load_image(path):
  """Loads an image for inference (NumPy side).

  Args:
    path: image file (any format PIL reads; converted to RGB).

  Returns:
    float32 [H, W, 3]: RGB values minus IMG_MEAN.

  Raises:
    FileNotFoundError: the file does not exist.
    ValueError: the file cannot be decoded (the message names it).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError('image file not found: %s' % path)
  try:
    with Image.open(path) as img:
      rgb = np.asarray(img.convert('RGB'), dtype=np.float32)
  except (OSError, ValueError) as e:
    raise ValueError('cannot decode image %s: %s' % (path, e)) from e
  return rgb - IMG_MEAN


def _normalize_num_clusters(num_clusters):
  """int n or (n_y, n_x) -> [n_y, n_x] of positive python ints."""
  if np.ndim(num_clusters) == 0:
    pair = [int(num_clusters)] * 2
  else:
    pair = [int(n) for n in num_clusters]
  if len(pair) != 2 or min(pair) < 1:
    raise ValueError('num_clusters must be a positive int or a pair of them, '
                     'got %r' % (num_clusters,))
  return pair


def resize_image_and_masks(image, masks, size):
  """Resizes an image (bilinear) and its masks (nearest) to `size`.

  TF 1.x sampling (align_corners=False, no half-pixel centres): output pixel
  i samples the input at i * in_size / out_size, bilinearly for the image,
  at floor(i * in_size / out_size) for the masks. Both grids start at the
  top-left pixel centre, so the masks stay registered with the image.

  Args:
    image: float32 [H, W, 3].
    masks: int32 [H, W, C] or None.
    size: int32 [2], the new (height, width).

  Returns:
    (image, masks) of size [size[0], size[1]].
  """
  image = tf.image.resize_bilinear(
      image[tf.newaxis], size, align_corners=False)[0]
  if masks is not None:
    masks = tf.image.resize_nearest_neighbor(
        masks[tf.newaxis], size, align_corners=False)[0]
  return image, masks


def _random_scale(image, masks, seed):
  """Rescales by a factor s ~ U[MIN_SCALE, MAX_SCALE) (stateless, seeded).

  New size: floor(H * s), floor(W * s) (at least 1); resampled by
  resize_image_and_masks.

  Args:
    image: float32 [H, W, 3].
    masks: int32 [H, W, C] or None.
    seed: int64 [2] stateless seed.

  Returns:
    (image, masks) of size [H', W'].
  """
  scale = tf.random.stateless_uniform([], seed, minval=MIN_SCALE,
                                      maxval=MAX_SCALE, dtype=tf.float32)
  size = tf.cast(tf.cast(tf.shape(image)[:2], tf.float32) * scale, tf.int32)
  size = tf.maximum(size, 1)
  return resize_image_and_masks(image, masks, size)


def _random_mirror(image, masks, seed):
  """Flips left-right with probability 1/2 (stateless, seeded)."""
  flip = tf.random.stateless_uniform([], seed) < 0.5
  image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
  if masks is not None:
    masks = tf.cond(flip, lambda: tf.reverse(masks, [1]), lambda: masks)
  return image, masks


def _pad_and_crop(image, masks, mask_pad_values, crop_size, random_crop,
                  seed):
  """Pads (bottom/right) to at least crop_size, then crops crop_size.

  The image is padded with 0 (mean-subtracted black), mask channel c with
  mask_pad_values[c]. The crop is uniformly random with random_crop, else
  centred (offset = (padded - crop) // 2).

  Args:
    image: float32 [H, W, 3].
    masks: int32 [H, W, C] or None.
    mask_pad_values: C python ints.
    crop_size: (crop_h, crop_w) python ints.
    random_crop: bool.
    seed: int64 [2] stateless seed (used only with random_crop).

  Returns:
    image float32 [crop_h, crop_w, 3], masks int32 [crop_h, crop_w, C] (or
    None), with static shapes.
  """
  crop = tf.constant(crop_size, tf.int32)
  shape = tf.shape(image)[:2]
  padded = tf.maximum(shape, crop)
  paddings = tf.concat([tf.stack([tf.zeros([2], tf.int32), padded - shape],
                                 axis=1), [[0, 0]]], axis=0)
  image = tf.pad(image, paddings)
  if masks is not None:
    # Shift so that the pad value becomes 0, pad with 0, shift back: one pad
    # op for all channels with per-channel pad values.
    pad_values = tf.constant(mask_pad_values, tf.int32)
    masks = tf.pad(masks - pad_values, paddings) + pad_values
  slack = padded - crop
  if random_crop:
    uniform = tf.random.stateless_uniform([2], seed)
    offset = tf.minimum(
        tf.cast(uniform * tf.cast(slack + 1, tf.float32), tf.int32), slack)
  else:
    offset = slack // 2
  image = tf.slice(image, tf.concat([offset, [0]], 0),
                   tf.concat([crop, [-1]], 0))
  image.set_shape([crop_size[0], crop_size[1], 3])
  if masks is not None:
    masks = tf.slice(masks, tf.concat([offset, [0]], 0),
                     tf.concat([crop, [-1]], 0))
    masks.set_shape([crop_size[0], crop_size[1], len(mask_pad_values)])
  return image, masks


def _assert_same_size(mask, image, mask_path, image_path):
  """Fails with both paths when a mask's size differs from its image's."""
  mask_shape = tf.shape(mask)[:2]
  image_shape = tf.shape(image)[:2]
  check = tf.Assert(
      tf.reduce_all(tf.equal(mask_shape, image_shape)),
      ['mask', mask_path, 'has size (H, W)', mask_shape, 'but image',
       image_path, 'has', image_shape])
  with tf.control_dependencies([check]):
    return tf.identity(mask)


def _make_parse_fn(input_size, random_scale, random_mirror, random_crop,
                   ignore_label, num_clusters, with_label, with_overseg,
                   seed):
  """Returns fn(index, paths) -> sample dict for one example."""

  def parse(index, paths):
    # Independent stateless seeds for this example's three random draws,
    # derived from the global seed and the example's position in the stream.
    example_seed = tf.stack([tf.constant(seed, tf.int64),
                             tf.cast(index, tf.int64)])
    scale_seed, mirror_seed, crop_seed = tf.unstack(
        tf.random.experimental.stateless_split(example_seed, num=3))

    image = tf.io.decode_image(tf.io.read_file(paths[IMAGE]), channels=3,
                               expand_animations=False)
    image = tf.cast(image, tf.float32) - IMG_MEAN
    height = tf.shape(image)[0]
    width = tf.shape(image)[1]

    # Everything that moves with the labels is stacked into one int32
    # tensor so that scale (nearest), mirror and crop keep it aligned.
    channels, pad_values, slots = [], [], {}

    def add(name, tensor, pad_value):
      depth = int(tensor.shape[-1])
      slots[name] = (len(pad_values), len(pad_values) + depth)
      channels.append(tensor)
      pad_values.extend([pad_value] * depth)

    if with_label:
      label = tf.io.decode_png(tf.io.read_file(paths[LABEL]), channels=1)
      label = _assert_same_size(label, image, paths[LABEL], paths[IMAGE])
      add(LABEL, tf.cast(label, tf.int32), ignore_label)
    if num_clusters is not None:
      grid = common_utils.initialize_cluster_labels(num_clusters,
                                                    [height, width])
      add(CLUSTER_LABEL, grid[:, :, None], ignore_label)
      location = common_utils.generate_location_features([height, width],
                                                         'int')
      # Integer coordinates are >= 0, so -1 marks padding unambiguously.
      add(LOCATION, location, -1)
    if with_overseg:
      overseg = tf.io.decode_png(tf.io.read_file(paths[OVERSEG]), channels=1)
      overseg = _assert_same_size(overseg, image, paths[OVERSEG],
                                  paths[IMAGE])
      add(OVERSEG, tf.cast(overseg, tf.int32), ignore_label)
    masks = tf.concat(channels, axis=2) if channels else None

    if random_scale:
      image, masks = _random_scale(image, masks, scale_seed)
    if random_mirror:
      image, masks = _random_mirror(image, masks, mirror_seed)
    image, masks = _pad_and_crop(image, masks, pad_values, input_size,
                                 random_crop, crop_seed)

    sample = {IMAGE: image, NAME: paths[NAME]}
    for name, (begin, end) in slots.items():
      sample[name] = masks[:, :, begin:end]
    if LOCATION in sample:
      # Divide by the ORIGINAL size: valid locations lie in [0, 1).
      location = sample[LOCATION]
      scaled = tf.cast(location, tf.float32) / tf.cast(
          tf.stack([height, width]), tf.float32)
      sample[LOCATION] = tf.where(
          location < 0, tf.fill(tf.shape(scaled), LOCATION_PADDING), scaled)
    return sample

  return parse


def get_train_dataset(data_dir,
                      data_list,
                      input_size,
                      batch_size,
                      random_scale=False,
                      random_mirror=False,
                      random_crop=False,
                      ignore_label=255,
                      num_clusters=None,
                      with_label=True,
                      with_overseg=False,
                      shuffle=True,
                      seed=None,
                      num_parallel_calls=tf.data.AUTOTUNE,
                      repeat=True,
                      check=True,
                      skip_batches=0,
                      num_classes=None):
  """Builds the training input pipeline.

  Per example: decode, subtract IMG_MEAN, then (each optional) random scale
  in [0.5, 2.0) (bilinear image, nearest masks), random left-right mirror,
  and pad (image 0, masks see module docstring) + crop to input_size
  (random with random_crop, else centred). Labels keep the crop size; the
  trainer resizes them to the network's output size.

  Args:
    data_dir: folder the list's paths are relative to.
    data_list: list file (see read_data_list).
    input_size: (crop_h, crop_w).
    batch_size: examples per batch (the last partial batch is dropped).
    random_scale, random_mirror, random_crop: augmentation switches.
    ignore_label: label of crop padding in the integer channels.
    num_clusters: None, or n (or (n_y, n_x)) for supervised SegSort: adds
      CLUSTER_LABEL (the n_y x n_x grid initialisation of the ORIGINAL image)
      and LOCATION, both transformed with the labels.
    with_label: read LABEL (2nd column).
    with_overseg: read OVERSEG (see utils/data_lists.py for its path).
    shuffle: shuffle the examples every epoch (with seed: reproducibly).
    seed: python int for the shuffle order and the augmentation; None draws
      one at random.
    num_parallel_calls: parallel decode/augment calls.
    repeat: repeat forever (else one epoch).
    check: check every needed file up front (see check_files).
    skip_batches: skip this many batches (resuming at step N with the same
      seed sees the data an uninterrupted run sees from step N).
    num_classes: if given, the check refuses label ids >= num_classes
      other than ignore_label.

  Returns:
    A tf.data.Dataset of dicts with static shapes:
      IMAGE [B, h, w, 3] float32, NAME [B] string, and
      LABEL [B, h, w, 1] int32 if with_label,
      CLUSTER_LABEL [B, h, w, 1] int32 and LOCATION [B, h, w, 2] float32 if
      num_clusters is not None,
      OVERSEG [B, h, w, 1] int32 if with_overseg.

  Raises:
    DataListError: bad list file or files (all reported at once).
    ValueError: bad input_size, batch_size, num_clusters or skip_batches.
  """
  input_size = tuple(int(s) for s in input_size)
  if len(input_size) != 2 or min(input_size) < 1:
    raise ValueError('input_size (--input_size) must be two positive ints '
                     'H,W, got %r' % (input_size,))
  if batch_size < 1:
    raise ValueError('batch_size (--batch_size) must be positive, got %r'
                     % (batch_size,))
  if skip_batches < 0:
    raise ValueError('skip_batches must be >= 0, got %r' % (skip_batches,))
  if num_clusters is not None:
    num_clusters = _normalize_num_clusters(num_clusters)

  entries = read_data_list(data_dir, data_list)
  if check:
    check_files(entries, need_label=with_label, need_overseg=with_overseg,
                data_list=data_list, num_classes=num_classes,
                ignore_label=ignore_label)
  else:
    _check_columns(entries, with_label, with_overseg, data_list)
  if not repeat and len(entries) < batch_size:
    raise ValueError('%s has %d examples, fewer than batch_size %d: one '
                     'epoch gives no full batch' % (
                         _list_name(data_list), len(entries), batch_size))
  if seed is None:
    seed = random.SystemRandom().randrange(2**31)

  paths = {IMAGE: [e.image for e in entries],
           NAME: [e.name for e in entries]}
  if with_label:
    paths[LABEL] = [e.label for e in entries]
  if with_overseg:
    paths[OVERSEG] = [e.overseg for e in entries]

  dataset = tf.data.Dataset.from_tensor_slices(paths)
  if shuffle:
    # Only paths are shuffled, so a full-size buffer is cheap.
    dataset = dataset.shuffle(len(entries), seed=seed,
                              reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  # The stream position seeds the augmentation of each example; skipping
  # happens before decoding so that resuming costs no image reads.
  dataset = dataset.enumerate()
  if skip_batches:
    dataset = dataset.skip(skip_batches * batch_size)
  dataset = dataset.map(
      _make_parse_fn(input_size, random_scale, random_mirror, random_crop,
                     ignore_label, num_clusters, with_label, with_overseg,
                     seed),
      num_parallel_calls=num_parallel_calls)
  dataset = dataset.batch(batch_size, drop_remainder=True)
  dataset = dataset.prefetch(tf.data.AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  return dataset.with_options(options)

