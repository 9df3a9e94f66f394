r"""Builds PASCAL VOC 2012 list files and grayscale labels from the downloads.

Inputs (the official downloads, unpacked anywhere):

    DATA_DIR = .../VOCdevkit                      (the training --data_dir)
      VOC2012/ImageSets/Segmentation/{train,val,trainval,test}.txt
      VOC2012/SegmentationClass/NAME.png           colour-palette PNGs
      VOC2012/JPEGImages/NAME.jpg
    SBD_DIR = folder holding benchmark_RELEASE/ (or benchmark_RELEASE itself)
      benchmark_RELEASE/dataset/{train,val}.txt
      benchmark_RELEASE/dataset/cls/NAME.mat       struct GTcls.Segmentation
      benchmark_RELEASE/dataset/img/NAME.jpg

Outputs:

    DATA_DIR/VOC2012/segcls/NAME.png   grayscale class ids (0..20, 255 ignore)
    DATA_DIR/VOC2012/JPEGImages/NAME.jpg   SBD images VOC lacks, copied
    OUTPUT_DIR/train+.txt  VOC train + SBD train + SBD val - VOC val (10,582)
    OUTPUT_DIR/train.txt, val.txt, trainval.txt   the VOC 2012 splits
    OUTPUT_DIR/test.txt    only if VOC2012's test.txt is present (test download)

List lines are relative to DATA_DIR, as in the original release:
`VOC2012/JPEGImages/NAME.jpg VOC2012/segcls/NAME.png`; test lines hold the
image only. Lists are sorted and free of duplicates.

Labels: in a VOC palette PNG the palette index of a pixel IS its class id
(255 marks the void border), so the indices are written as they are. SBD's
masks are read from GTcls.Segmentation. An image annotated by both keeps
its VOC 2012 annotation (the official one, with void borders).

Running the tool again is cheap and gives the same result: labels and images
already in place are kept (unless --overwrite), files are written through a
temporary name so an interrupted run leaves no partial file, and every input
is checked before anything is written.

Usage (from the repository root):

    python pyscripts/tools/make_voc_lists.py \
        --data_dir ${DATAROOT}/VOCdevkit --sbd_dir ${DATAROOT}
"""
import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyscripts import script_glue  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import label_images  # noqa: E402

DEFAULT_OUTPUT_DIR = os.path.join(ROOT, 'dataset', 'voc12')
VOC_SUBDIR = 'VOC2012'
IMAGE_SUBDIR = 'JPEGImages'
LABEL_SUBDIR = 'segcls'
LABELLED_SPLITS = ('train+', 'train', 'val', 'trainval')
# How many missing files an error message lists before summarising.
MAX_LISTED_MISSING = 5


class DatasetError(Exception):
  """An input folder or file is missing or malformed (message names it)."""


def read_id_list(path):
  """Reads a list of image ids, one per line (VOC ImageSets / SBD format).

  Args:
    path: Text file path.

  Returns:
    The ids in file order, blank lines skipped.

  Raises:
    DatasetError: if the file is missing or a line holds more than one word.
  """
  if not os.path.isfile(path):
    raise DatasetError('id list not found: %s' % path)
  ids = []
  with open(path) as f:
    for line_number, line in enumerate(f, 1):
      words = line.split()
      if not words:
        continue
      if len(words) != 1:
        raise DatasetError('%s:%d: expected one image id, got %r'
                           % (path, line_number, line.strip()))
      ids.append(words[0])
  return ids


def find_sbd_dataset_dir(sbd_dir):
  """Finds SBD's `dataset` folder (holding train.txt, val.txt, cls/, img/).

  Accepts the folder that contains benchmark_RELEASE/, benchmark_RELEASE/
  itself, or its dataset/ folder.

  Raises:
    DatasetError: naming the folders tried, if none has SBD's layout.
  """
  candidates = [os.path.join(sbd_dir, 'benchmark_RELEASE', 'dataset'),
                os.path.join(sbd_dir, 'dataset'),
                sbd_dir]
  for candidate in candidates:
    if (os.path.isfile(os.path.join(candidate, 'train.txt')) and
        os.path.isdir(os.path.join(candidate, 'cls'))):
      return candidate
  raise DatasetError(
      'SBD not found under --sbd_dir=%s: none of %s holds train.txt and cls/ '
      '(expected benchmark_RELEASE/dataset from the SBD download)'
      % (sbd_dir, ', '.join(candidates)))


def get_split_ids(voc_train, voc_val, voc_trainval=None, sbd_train=(),
                  sbd_val=()):
  """Computes the sorted, deduplicated id lists of every labelled split.

  train+ = (VOC train | SBD train | SBD val) - VOC val: every annotated
  image that is not in the VOC 2012 validation set.

  Args:
    voc_train, voc_val: VOC 2012 segmentation ids.
    voc_trainval: VOC 2012 trainval ids; train | val when None.
    sbd_train, sbd_val: SBD ids (empty without SBD).

  Returns:
    A dict from 'train+', 'train', 'val', 'trainval' to sorted id lists.
  """
  if voc_trainval is None:
    voc_trainval = set(voc_train) | set(voc_val)
  train_aug = (set(voc_train) | set(sbd_train) | set(sbd_val)) - set(voc_val)
  return {
      'train+': sorted(train_aug),
      'train': sorted(set(voc_train)),
      'val': sorted(set(voc_val)),
      'trainval': sorted(set(voc_trainval)),
  }


def load_voc_class_mask(path):
  """Reads a VOC SegmentationClass PNG as class ids.

  The PNG is indexed: palette index = class id, 255 = void border. A
  grayscale PNG (already converted) is read as it is.

  Returns:
    A uint8 array of shape [height, width].

  Raises:
    DatasetError: for an unreadable file or a colour (RGB) PNG.
  """
  try:
    return label_images.read_label_png(path, modes=('P', 'L')).astype(
        np.uint8)
  except (OSError, ValueError) as e:
    raise DatasetError('VOC label: %s' % e) from e


def load_sbd_class_mask(path):
  """Reads an SBD cls/*.mat file's GTcls.Segmentation as class ids.

  Returns:
    A uint8 array of shape [height, width].

  Raises:
    DatasetError: if the file is unreadable or not in SBD's layout.
  """
  try:
    mat = scipy.io.loadmat(path)
  except (OSError, ValueError, TypeError) as e:
    raise DatasetError('cannot read SBD label %s: %s' % (path, e)) from e
  gt = mat.get('GTcls')
  if gt is None or gt.dtype.names is None or (
      'Segmentation' not in gt.dtype.names):
    raise DatasetError('%s: no struct GTcls with a Segmentation field '
                       '(expected an SBD cls/*.mat file)' % path)
  # loadmat keeps MATLAB's 1x1 struct array; its one element is the mask.
  seg = np.asarray(gt['Segmentation'].ravel()[0])
  integral = np.issubdtype(seg.dtype, np.integer) or (
      np.issubdtype(seg.dtype, np.floating) and np.all(seg == np.round(seg)))
  if seg.ndim != 2 or not integral:
    raise DatasetError('%s: GTcls.Segmentation must be a 2-D integer map, '
                       'got %s of shape %s' % (path, seg.dtype, seg.shape))
  if seg.size and (seg.min() < 0 or seg.max() > 255):
    raise DatasetError('%s: class ids must lie in [0, 255], got [%d, %d]'
                       % (path, seg.min(), seg.max()))
  return seg.astype(np.uint8)


def _copy_atomically(src, dst):
  with open(src, 'rb') as source, atomic_io.atomic_open(dst, 'wb') as target:
    shutil.copyfileobj(source, target)


def _raise_if_missing(paths, what):
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    listed = '\n  '.join(missing[:MAX_LISTED_MISSING])
    more = ('\n  ... and %d more' % (len(missing) - MAX_LISTED_MISSING)
            if len(missing) > MAX_LISTED_MISSING else '')
    raise DatasetError('%d %s missing:\n  %s%s'
                       % (len(missing), what, listed, more))


def write_list(path, ids, with_label=True):
  """Writes a list file of `VOC2012/JPEGImages/x.jpg VOC2012/segcls/x.png`.

  Args:
    path: Output text file.
    ids: Image ids in the order to write.
    with_label: False for test lists (image path only).
  """
  lines = []
  for image_id in ids:
    image = '/'.join((VOC_SUBDIR, IMAGE_SUBDIR, image_id + '.jpg'))
    label = '/'.join((VOC_SUBDIR, LABEL_SUBDIR, image_id + '.png'))
    lines.append(image + (' ' + label if with_label else '') + '\n')
  atomic_io.atomic_write_text(path, ''.join(lines))


def make_voc_lists(data_dir, sbd_dir=None, output_dir=DEFAULT_OUTPUT_DIR,
                   overwrite=False, show_progress=True):
  """Converts the labels, copies SBD-only images and writes the list files.

  Args:
    data_dir: The VOCdevkit folder (it contains VOC2012/).
    sbd_dir: Folder of the SBD download (see find_sbd_dataset_dir), or None
      to build only the VOC splits (train+ is then skipped).
    output_dir: Where to write the list files.
    overwrite: Re-convert labels that already exist in VOC2012/segcls.
    show_progress: Whether to show a tqdm progress bar.

  Returns:
    A dict from split name to its sorted list of ids, for every list written.

  Raises:
    DatasetError: naming the missing or malformed folder or file.
  """
  voc_root = os.path.join(data_dir, VOC_SUBDIR)
  if not os.path.isdir(voc_root):
    raise DatasetError(
        'VOC2012 folder not found: %s (--data_dir must be the VOCdevkit '
        'folder that contains VOC2012/)' % voc_root)
  image_sets = os.path.join(voc_root, 'ImageSets', 'Segmentation')
  if not os.path.isdir(image_sets):
    raise DatasetError('VOC segmentation splits not found: %s' % image_sets)
  voc_train = read_id_list(os.path.join(image_sets, 'train.txt'))
  voc_val = read_id_list(os.path.join(image_sets, 'val.txt'))
  trainval_path = os.path.join(image_sets, 'trainval.txt')
  voc_trainval = (read_id_list(trainval_path)
                  if os.path.isfile(trainval_path) else None)
  test_path = os.path.join(image_sets, 'test.txt')
  voc_test = (sorted(set(read_id_list(test_path)))
              if os.path.isfile(test_path) else [])

  sbd_train, sbd_val, sbd_dataset = [], [], None
  if sbd_dir is not None:
    sbd_dataset = find_sbd_dataset_dir(sbd_dir)
    sbd_train = read_id_list(os.path.join(sbd_dataset, 'train.txt'))
    sbd_val = read_id_list(os.path.join(sbd_dataset, 'val.txt'))
  splits = get_split_ids(voc_train, voc_val, voc_trainval, sbd_train,
                         sbd_val)
  if sbd_dataset is None:
    del splits['train+']  # Without SBD it would only repeat VOC train.

  voc_image_dir = os.path.join(voc_root, IMAGE_SUBDIR)
  voc_label_dir = os.path.join(voc_root, 'SegmentationClass')
  segcls_dir = os.path.join(voc_root, LABEL_SUBDIR)
  voc_annotated = set(splits['trainval']) | set(voc_train) | set(voc_val)
  labelled = sorted(set().union(*splits.values()))

  # Where every label and image comes from; all checked before any write.
  jobs = []  # (id, label source, is_voc_label, image source or None)
  for image_id in labelled:
    if image_id in voc_annotated:
      label_src = os.path.join(voc_label_dir, image_id + '.png')
    else:
      label_src = os.path.join(sbd_dataset, 'cls', image_id + '.mat')
    image_dst = os.path.join(voc_image_dir, image_id + '.jpg')
    image_src = None
    if not os.path.isfile(image_dst):
      if sbd_dataset is None:
        image_src = image_dst  # reported missing below
      else:
        image_src = os.path.join(sbd_dataset, 'img', image_id + '.jpg')
    jobs.append((image_id, label_src, image_id in voc_annotated, image_src))
  label_missing = [j[1] for j in jobs if overwrite or not os.path.isfile(
      os.path.join(segcls_dir, j[0] + '.png'))]
  _raise_if_missing(label_missing, 'label files (VOC SegmentationClass/*.png '
                    'or SBD cls/*.mat) are')
  _raise_if_missing([j[3] for j in jobs if j[3] is not None],
                    'images (VOC2012/JPEGImages or SBD img/) are')
  _raise_if_missing([os.path.join(voc_image_dir, i + '.jpg')
                     for i in voc_test], 'test images (from %s) are'
                    % test_path)

  os.makedirs(segcls_dir, exist_ok=True)
  os.makedirs(voc_image_dir, exist_ok=True)
  for image_id, label_src, is_voc_label, image_src in tqdm(
      jobs, desc='VOC labels', disable=not show_progress):
    image_path = os.path.join(voc_image_dir, image_id + '.jpg')
    if image_src is not None:
      _copy_atomically(image_src, image_path)
    label_path = os.path.join(segcls_dir, image_id + '.png')
    if os.path.isfile(label_path) and not overwrite:
      continue
    if is_voc_label:
      label = load_voc_class_mask(label_src)
    else:
      label = load_sbd_class_mask(label_src)
    with Image.open(image_path) as image:
      width, height = image.size  # header only, no decoding
    if label.shape != (height, width):
      raise DatasetError('%s is %dx%d but its image %s is %dx%d (HxW)'
                         % (label_src, label.shape[0], label.shape[1],
                            image_path, height, width))
    label_images.save_label_png(label_path, label)

  os.makedirs(output_dir, exist_ok=True)
  for split, ids in splits.items():
    write_list(os.path.join(output_dir, split + '.txt'), ids)
  if voc_test:
    write_list(os.path.join(output_dir, 'test.txt'), voc_test,
               with_label=False)
    splits['test'] = voc_test
  return splits


def get_parser():
  """Command-line flags of this tool."""
  parser = argparse.ArgumentParser(
      description='Build dataset/voc12/{train+,train,val,trainval,test}.txt '
      'and VOC2012/segcls grayscale labels from VOCdevkit and SBD.')
  parser.add_argument('--data_dir', type=str, required=True,
                      help='The VOCdevkit folder (contains VOC2012/); the '
                      'lists are relative to it.')
  parser.add_argument('--sbd_dir', type=str, default=None,
                      help='Folder of the SBD download (containing '
                      'benchmark_RELEASE/); without it train+ is skipped.')
  parser.add_argument('--output_dir', type=str, default=DEFAULT_OUTPUT_DIR,
                      help='Where to write the list files.')
  parser.add_argument('--overwrite', action='store_true',
                      help='Re-convert labels already in VOC2012/segcls.')
  return parser


def main(argv=None):
  return script_glue.run_script(write_lists, get_parser().parse_args(argv),
                                user_errors=(DatasetError,))


def write_lists(args):
  """make_voc_lists with the flags' folders; prints one line per split."""
  splits = make_voc_lists(args.data_dir, args.sbd_dir, args.output_dir,
                          overwrite=args.overwrite)
  for split, ids in splits.items():
    print('%-9s %6d images -> %s' % (
        split, len(ids), os.path.join(args.output_dir, split + '.txt')))
  if args.sbd_dir is None:
    print('train+ skipped: it needs SBD (--sbd_dir).')


if __name__ == '__main__':
  main()
