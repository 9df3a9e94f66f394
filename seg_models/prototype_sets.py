"""Prototype sets: the training prototypes kNN inference votes with.

A set lives in one folder (SAVE_DIR/prototypes/ of extract_prototypes.py):

    prototype_features.npy   float32 [P, D], unit rows
    prototype_labels.npy     int32 [P], their classes
    prototype_index.json     optional: where every prototype came from

The index records, per prototype, its training image, the box of the
pixels that formed it and their count (for retrieval pictures), and the
SHA-256 digests of the two arrays, so that a loader can tell that the three
files belong together. Sets are written all-or-nothing (a new folder takes
the old one's place); sets without an index load too, with a warning.
"""
import dataclasses
import hashlib
import json
import os
import shutil
import warnings

import numpy as np

from utils import atomic_io
from utils import errors

# Files of a prototype set, in SAVE_DIR/prototypes/.
PROTOTYPE_SUBDIR = 'prototypes'
PROTOTYPE_FEATURES = 'prototype_features.npy'
PROTOTYPE_LABELS = 'prototype_labels.npy'
PROTOTYPE_INDEX = 'prototype_index.json'
PROTOTYPE_INDEX_FORMAT = 'segsort-prototype-index'
PROTOTYPE_INDEX_VERSION = 1


PrototypeError = errors.PrototypeError


@dataclasses.dataclass
class PrototypeSet:
  """Training prototypes and, when known, where they came from.

  Attributes:
    features: float32 [P, D], unit rows.
    labels: int32 [P], their classes.
    index: None, or a dict (see build_prototype_index) with per-prototype
      'image_index' [P], 'boxes' [P, 4] (top, left, bottom, right; bottom
      and right exclusive), 'num_pixels' [P], and 'images', 'names',
      'data_dir'.
  """
  features: np.ndarray
  labels: np.ndarray
  index: dict = None

  def __len__(self):
    return int(self.labels.shape[0])


@dataclasses.dataclass
class ImagePrototypes:
  """The prototypes of one annotated image and the pixels that formed them.

  Attributes:
    features: float32 [P, D], unit rows.
    labels: int32 [P], their classes.
    boxes: int64 [P, 4], (top, left, bottom, right) of the pixels forming
      each prototype; bottom and right exclusive.
    num_pixels: int64 [P], how many pixels formed each.
  """
  features: np.ndarray
  labels: np.ndarray
  boxes: np.ndarray
  num_pixels: np.ndarray

  @classmethod
  def empty(cls, embedding_dim):
    """No prototype (an image whose every pixel is ignored)."""
    return cls(np.zeros((0, embedding_dim), np.float32),
               np.zeros((0,), np.int32), np.zeros((0, 4), np.int64),
               np.zeros((0,), np.int64))

  def __len__(self):
    return int(self.labels.shape[0])


def get_prototype_boxes(clusters, label, prototype_labels):
  """Bounding box and size of the pixels that form every prototype.

  Prototype p belongs to the p-th non-empty cluster (in increasing id, the
  order of eval_utils.extract_trained_prototypes) and is formed by its
  pixels of class prototype_labels[p].

  Args:
    clusters: int [H, W] cluster of every pixel, -1 where left out.
    label: int [H, W] classes.
    prototype_labels: int [P].

  Returns:
    boxes int64 [P, 4] (top, left, bottom, right; exclusive ends),
    num_pixels int64 [P].
  """
  num = len(prototype_labels)
  cluster_ids = np.unique(clusters[clusters >= 0])
  if len(cluster_ids) != num:
    raise AssertionError('%d non-empty clusters for %d prototypes'
                         % (len(cluster_ids), num))
  ys, xs = np.nonzero(clusters >= 0)
  position = np.searchsorted(cluster_ids, clusters[ys, xs])
  keep = label[ys, xs] == prototype_labels[position]
  ys, xs, position = ys[keep], xs[keep], position[keep]
  big = np.iinfo(np.int64).max
  top = np.full(num, big, np.int64)
  left = np.full(num, big, np.int64)
  bottom = np.zeros(num, np.int64)
  right = np.zeros(num, np.int64)
  np.minimum.at(top, position, ys)
  np.minimum.at(left, position, xs)
  np.maximum.at(bottom, position, ys + 1)
  np.maximum.at(right, position, xs + 1)
  return (np.stack([top, left, bottom, right], axis=1),
          np.bincount(position, minlength=num).astype(np.int64))


def _digest(array):
  return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def build_prototype_index(features, labels, image_index, boxes, num_pixels,
                          images, names, data_dir='', data_list=''):
  """The JSON-able index of a prototype set.

  It records the digests of the features and labels arrays, so that a
  loader can tell that the three files belong together.
  """
  return {
      'format': PROTOTYPE_INDEX_FORMAT,
      'version': PROTOTYPE_INDEX_VERSION,
      'count': int(len(labels)),
      'embedding_dim': int(features.shape[1]),
      'features_sha256': _digest(features),
      'labels_sha256': _digest(labels),
      'data_dir': data_dir,
      'data_list': data_list,
      'images': list(images),
      'names': list(names),
      'image_index': [int(v) for v in image_index],
      'boxes': [[int(v) for v in box] for box in boxes],
      'num_pixels': [int(v) for v in num_pixels],
  }


def _side_folder(prototype_dir, kind, pid):
  """SAVE_DIR/.prototypes.KIND-PID, beside the set's folder."""
  parent, name = os.path.split(os.path.abspath(prototype_dir))
  return os.path.join(parent, '.%s.%s-%d' % (name, kind, pid))


def _side_folders(prototype_dir, kind):
  """{pid: path} of the KIND side folders of prototype_dir."""
  parent, name = os.path.split(os.path.abspath(prototype_dir))
  prefix = '.%s.%s-' % (name, kind)
  found = {}
  if os.path.isdir(parent):
    for entry in os.listdir(parent):
      if entry.startswith(prefix) and entry[len(prefix):].isdigit():
        found[int(entry[len(prefix):])] = os.path.join(parent, entry)
  return found


def recover_prototype_dir(prototype_dir):
  """Cleans what a killed save_prototypes left beside prototype_dir.

  Staging folders of processes that are gone are deleted; a previous set
  moved aside just before the new one was renamed into place is put back
  when no set is in place, else deleted.
  """
  for pid, path in _side_folders(prototype_dir, 'staging').items():
    if pid == os.getpid() or not atomic_io.is_process_alive(pid):
      shutil.rmtree(path, ignore_errors=True)
  for pid, path in sorted(_side_folders(prototype_dir, 'previous').items()):
    if pid != os.getpid() and atomic_io.is_process_alive(pid):
      continue
    if not os.path.exists(prototype_dir):
      os.rename(path, prototype_dir)
    else:
      shutil.rmtree(path, ignore_errors=True)


def save_prototypes(prototype_dir, features, labels, index=None):
  """Writes a prototype set all-or-nothing.

  The files are written into a new staging folder beside prototype_dir,
  which then takes the place of prototype_dir: an exception or a kill
  while writing leaves the previous set as it was (a kill between moving
  the previous set aside and renaming the new one into place is undone by
  recover_prototype_dir, which every save and load runs first).

  Args:
    prototype_dir: folder (created), e.g. SAVE_DIR/prototypes.
    features: float [P, D].
    labels: int [P].
    index: optional dict from build_prototype_index.

  Returns:
    The list of paths written.
  """
  features = np.asarray(features, dtype=np.float32)
  labels = np.asarray(labels, dtype=np.int32)
  recover_prototype_dir(prototype_dir)
  names = [PROTOTYPE_FEATURES, PROTOTYPE_LABELS]
  if index is not None:
    names.append(PROTOTYPE_INDEX)
  staging = _side_folder(prototype_dir, 'staging', os.getpid())
  previous = _side_folder(prototype_dir, 'previous', os.getpid())
  os.makedirs(staging)
  try:
    with open(os.path.join(staging, PROTOTYPE_FEATURES), 'wb') as f:
      np.save(f, features, allow_pickle=False)
    with open(os.path.join(staging, PROTOTYPE_LABELS), 'wb') as f:
      np.save(f, labels, allow_pickle=False)
    if index is not None:
      with open(os.path.join(staging, PROTOTYPE_INDEX), 'w',
                encoding='utf-8') as f:
        json.dump(index, f)
    if os.path.exists(prototype_dir):
      os.rename(prototype_dir, previous)
    os.rename(staging, prototype_dir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    if os.path.exists(previous) and not os.path.exists(prototype_dir):
      os.rename(previous, prototype_dir)
    raise
  shutil.rmtree(previous, ignore_errors=True)
  return [os.path.join(prototype_dir, name) for name in names]


def _load_npy(path, what):
  if not os.path.isfile(path):
    folder = os.path.dirname(path)
    hint = ''
    if os.path.isfile(os.path.join(folder, PROTOTYPE_SUBDIR,
                                   os.path.basename(path))):
      hint = ' (did you mean --prototype_dir %s?)' % os.path.join(
          folder, PROTOTYPE_SUBDIR)
    raise PrototypeError('%s not found: %s (--prototype_dir; run '
                         'extract_prototypes.py first)%s' % (what, path, hint))
  try:
    return np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise PrototypeError('cannot read %s %s: %s' % (what, path, e)) from e


class PrototypeCollector(object):
  """Gathers the prototypes of a data list, image by image, with their index.

  Nothing is written until save(), so an interrupted extraction leaves no
  file behind.
  """

  def __init__(self, embedding_dim, data_dir='', data_list=''):
    self.embedding_dim = embedding_dim
    self.data_dir = os.path.abspath(data_dir) if data_dir else ''
    self.data_list = os.path.abspath(data_list) if data_list else ''
    self._features, self._labels = [], []
    self._image_index, self._boxes, self._num_pixels = [], [], []
    self.images, self.names = [], []

  def add(self, image_path, name, prototypes):
    """Adds one image's prototypes.

    Args:
      image_path: the image file (kept relative to data_dir when inside).
      name: the image's name in the data list.
      prototypes: its ImagePrototypes.
    """
    image_id = len(self.images)
    if self.data_dir and os.path.abspath(image_path).startswith(
        self.data_dir + os.sep):
      image_path = os.path.relpath(os.path.abspath(image_path), self.data_dir)
    self.images.append(image_path)
    self.names.append(name)
    self._features.append(np.asarray(prototypes.features, np.float32))
    self._labels.append(np.asarray(prototypes.labels, np.int32))
    self._image_index.append(np.full(len(prototypes), image_id, np.int64))
    self._boxes.append(np.asarray(prototypes.boxes, np.int64).reshape(-1, 4))
    self._num_pixels.append(np.asarray(prototypes.num_pixels, np.int64))

  def __len__(self):
    return int(sum(len(l) for l in self._labels))

  def get_set(self):
    """The PrototypeSet gathered so far (with its index)."""
    if self._labels:
      features = np.concatenate(self._features, axis=0)
      labels = np.concatenate(self._labels, axis=0)
      image_index = np.concatenate(self._image_index)
      boxes = np.concatenate(self._boxes, axis=0)
      num_pixels = np.concatenate(self._num_pixels)
    else:
      features = np.zeros((0, self.embedding_dim), np.float32)
      labels = np.zeros((0,), np.int32)
      image_index = num_pixels = np.zeros((0,), np.int64)
      boxes = np.zeros((0, 4), np.int64)
    index = build_prototype_index(features, labels, image_index, boxes,
                                  num_pixels, self.images, self.names,
                                  self.data_dir, self.data_list)
    return PrototypeSet(features, labels, index)

  def save(self, prototype_dir):
    """Writes the set (all files or none); returns the PrototypeSet."""
    prototypes = self.get_set()
    if not len(prototypes):
      raise PrototypeError('no prototype was extracted: every pixel of every '
                           'label is ignore_label')
    save_prototypes(prototype_dir, prototypes.features, prototypes.labels,
                    prototypes.index)
    return prototypes


def load_prototypes(prototype_dir, embedding_dim=None, num_classes=None,
                    need_index=False):
  """Loads and checks a prototype set written by save_prototypes.

  Args:
    prototype_dir: the folder holding the files (--prototype_dir).
    embedding_dim: if given, the feature dimension must equal it.
    num_classes: if given, every label must be in [0, num_classes).
    need_index: require prototype_index.json (retrieval pictures).

  Returns:
    A PrototypeSet (index None when there is no index file and it is not
    needed).

  Raises:
    PrototypeError naming the file and the flag at fault.
  """
  if not prototype_dir:
    raise PrototypeError('--prototype_dir is required')
  recover_prototype_dir(prototype_dir)
  features_path = os.path.join(prototype_dir, PROTOTYPE_FEATURES)
  labels_path = os.path.join(prototype_dir, PROTOTYPE_LABELS)
  index_path = os.path.join(prototype_dir, PROTOTYPE_INDEX)
  features = _load_npy(features_path, 'prototype features')
  labels = _load_npy(labels_path, 'prototype labels')
  if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
    raise PrototypeError('%s: expected a float [P, D] array, got %s %s'
                         % (features_path, features.dtype, features.shape))
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise PrototypeError('%s: expected an integer [P] array, got %s %s'
                         % (labels_path, labels.dtype, labels.shape))
  if features.shape[0] != labels.shape[0]:
    raise PrototypeError('%s holds %d prototypes but %s holds %d labels: the '
                         'files are not from the same extraction'
                         % (features_path, features.shape[0], labels_path,
                            labels.shape[0]))
  if features.shape[0] == 0:
    raise PrototypeError('%s holds no prototype' % features_path)
  if not np.all(np.isfinite(features)):
    raise PrototypeError('%s contains NaN or infinite values' % features_path)
  if embedding_dim is not None and features.shape[1] != embedding_dim:
    raise PrototypeError('%s has %d-dimensional prototypes but '
                         '--embedding_dim is %d' % (features_path,
                                                    features.shape[1],
                                                    embedding_dim))
  if num_classes is not None and (labels.min() < 0 or
                                  labels.max() >= num_classes):
    raise PrototypeError('%s has labels in [%d, %d], outside [0, %d) '
                         '(--num_classes %d)' % (labels_path, labels.min(),
                                                 labels.max(), num_classes,
                                                 num_classes))
  features = features.astype(np.float32)
  labels = labels.astype(np.int32)
  index = None
  if os.path.isfile(index_path):
    index = _load_index(index_path, features, labels)
  elif need_index:
    raise PrototypeError('prototype index not found: %s (written by this '
                         "project's extract_prototypes.py; rerun it)"
                         % index_path)
  else:
    warnings.warn('%s has no %s: the features and labels cannot be checked '
                  'to belong together (rerun extract_prototypes.py to write '
                  'one).' % (prototype_dir, PROTOTYPE_INDEX), stacklevel=2)
  return PrototypeSet(features, labels, index)


def _load_index(path, features, labels):
  try:
    with open(path, encoding='utf-8') as f:
      index = json.load(f)
  except (OSError, ValueError) as e:
    raise PrototypeError('cannot read prototype index %s: %s' % (path, e))
  if (not isinstance(index, dict) or
      index.get('format') != PROTOTYPE_INDEX_FORMAT):
    raise PrototypeError('%s is not a prototype index' % path)
  if (index.get('count') != len(labels) or
      index.get('features_sha256') != _digest(features) or
      index.get('labels_sha256') != _digest(labels)):
    raise PrototypeError('%s does not describe the %s and %s next to it (the '
                         'set is inconsistent; rerun extract_prototypes.py)'
                         % (path, PROTOTYPE_FEATURES, PROTOTYPE_LABELS))
  for key in ('image_index', 'boxes', 'num_pixels'):
    if len(index.get(key, ())) != len(labels):
      raise PrototypeError('%s: %r has %d entries, expected %d'
                           % (path, key, len(index.get(key, ())),
                              len(labels)))
  index['image_index'] = np.asarray(index['image_index'], np.int64)
  index['boxes'] = np.asarray(index['boxes'], np.int64).reshape(-1, 4)
  index['num_pixels'] = np.asarray(index['num_pixels'], np.int64)
  if len(labels) and (index['image_index'].min() < 0 or
                      index['image_index'].max() >= len(index['images'])):
    raise PrototypeError('%s: image_index out of range' % path)
  return index
