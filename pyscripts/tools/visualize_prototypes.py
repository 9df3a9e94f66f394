"""Pictures of a prototype set (t-SNE, PCA) and of predictions (overlays).

Prototypes (--prototype_dir, from extract_prototypes.py) give

  SAVE_DIR/prototypes_pca.png    the first two principal components
  SAVE_DIR/prototypes_tsne.png   a t-SNE map (scikit-learn; cosine distance)
  SAVE_DIR/prototypes_2d.npz     the points drawn: indices, labels, pca, tsne

every point coloured by its class (the colours of the label pictures,
--colormap) with a legend of class names (--class_names, else VOC's for 21
classes, else class_0, class_1, ...). Large sets are subsampled to
--max_prototypes, every class keeping an equal share (small classes whole);
the PCA directions come from the whole set. t-SNE time grows a little
faster than the number of points (13 s of CPU for 3,000 32-dimensional
points here).

Predictions (--pred_dir: the --save_dir of an inference script or of
segment_folder.py, or its gray/ folder) with their images (--data_dir and
--data_list as for inference, or --input_dir as for segment_folder.py) give

  SAVE_DIR/overlay/NAME.png      the image blended with the colour label map
                                 (weight --alpha of the colours)

  python pyscripts/tools/visualize_prototypes.py \\
    --prototype_dir SNAPSHOT_DIR/stage1/results/train+/prototypes \\
    --save_dir SNAPSHOT_DIR/stage1/results/pictures

  python pyscripts/tools/visualize_prototypes.py \\
    --pred_dir SNAPSHOT_DIR/stage1/results/val --data_dir VOCdevkit/ \\
    --data_list dataset/voc12/val.txt --max_images 20 \\
    --save_dir SNAPSHOT_DIR/stage1/results/pictures
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyscripts import flags  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import prototype_sets  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import classes  # noqa: E402
from utils import colormaps  # noqa: E402
from utils import data_lists  # noqa: E402
from utils import errors  # noqa: E402
from utils import label_images  # noqa: E402
from utils import prototype_plots  # noqa: E402

PCA_PICTURE = 'prototypes_pca.png'
TSNE_PICTURE = 'prototypes_tsne.png'
POINTS_FILE = 'prototypes_2d.npz'
OVERLAY_SUBDIR = 'overlay'
GRAY_SUBDIR = 'gray'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')


VisualizeError = errors.PictureError


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  parser.add_argument('--save_dir', type=str, required=True,
                      help='Where the pictures go (created).')
  parser.add_argument('--colormap', type=str, default='',
                      help='Colormap (.mat or .npy); VOC colours by '
                           'default.')
  group = parser.add_argument_group('prototypes')
  group.add_argument('--prototype_dir', type=str, default='',
                     help='Folder of prototype_features.npy and '
                          'prototype_labels.npy.')
  group.add_argument('--num_classes', type=int, default=0,
                     help='Number of classes (0: the largest label + 1).')
  group.add_argument('--class_names', type=str, default='',
                     help='Text file, one class name per line.')
  group.add_argument('--max_prototypes', type=int, default=5000,
                     help='Draw at most this many prototypes (0: all); '
                          't-SNE time grows with it.')
  group.add_argument('--no_tsne', action='store_true',
                     help='Only the PCA picture.')
  group.add_argument('--perplexity', type=float, default=30.0,
                     help='t-SNE perplexity (capped at a third of the '
                          'points).')
  group.add_argument('--seed', type=int, default=0,
                     help='Seed of the subsampling, t-SNE and drawing '
                          'order.')
  group = parser.add_argument_group('overlays')
  group.add_argument('--pred_dir', type=str, default='',
                     help='Predictions: a folder holding gray/NAME.png, or '
                          'the gray folder itself.')
  group.add_argument('--data_dir', type=str, default='',
                     help='Folder the --data_list paths are relative to.')
  group.add_argument('--data_list', type=str, default='',
                     help='The images, one "IMAGE [LABEL]" line each.')
  group.add_argument('--input_dir', type=str, default='',
                     help='Or a folder of images (as segment_folder.py).')
  group.add_argument('--alpha', type=float, default=0.5,
                     help='Weight of the label colours in the overlay.')
  group.add_argument('--max_images', type=int, default=0,
                     help='Only the first this many images (0: all).')
  return parser.parse_args(argv)


def draw_prototypes(args, colormap):
  """The PCA and t-SNE pictures; returns the paths written."""
  prototypes = prototype_sets.load_prototypes(args.prototype_dir)
  labels = prototypes.labels
  num_classes = args.num_classes or int(labels.max()) + 1
  if labels.max() >= num_classes:
    raise VisualizeError('--num_classes %d but the prototypes have label %d'
                         % (num_classes, labels.max()))
  try:
    names = classes.get_class_names(num_classes, args.class_names)
  except ValueError as e:
    raise VisualizeError('--class_names: %s' % e) from e
  total = len(labels)
  kept = prototype_plots.subsample(labels, args.max_prototypes, args.seed)
  present, counts = np.unique(labels, return_counts=True)
  totals = dict(zip(present.tolist(), counts.tolist()))
  shown = ('%d prototypes' % total if len(kept) == total else
           '%d of %d prototypes' % (len(kept), total))
  stages = ['pca'] + ([] if args.no_tsne else ['t-sne'])
  points = {'indices': kept, 'labels': labels[kept]}
  paths = []
  for stage in tqdm(stages, desc='prototype maps', unit='map'):
    start = time.perf_counter()
    if stage == 'pca':
      # The directions of the whole set; the subsample is drawn.
      coordinates, explained = prototype_plots.pca_coordinates(
          prototypes.features)
      coordinates = coordinates[kept]
      title = 'PCA of %s' % shown
      axes = ('PC1 (%.1f%% of the variance)' % (100 * explained[0]),
              'PC2 (%.1f%%)' % (100 * explained[1]))
      path = os.path.join(args.save_dir, PCA_PICTURE)
      points['pca'] = coordinates
    else:
      if len(kept) < 2:
        tqdm.write('t-SNE skipped: it needs at least 2 prototypes.')
        continue
      coordinates = prototype_plots.tsne_coordinates(
          prototypes.features[kept], args.seed, args.perplexity)
      title = 't-SNE of %s (perplexity %.3g, cosine)' % (
          shown, prototype_plots.tsne_perplexity(len(kept),
                                                 args.perplexity))
      axes = ('', '')
      path = os.path.join(args.save_dir, TSNE_PICTURE)
      points['tsne'] = coordinates
    picture = prototype_plots.scatter_picture(
        coordinates, labels[kept], names, title, colormap, totals, axes,
        args.seed)
    atomic_io.atomic_save_png(path, picture)
    paths.append(path)
    tqdm.write('%s: %s (%.1f s)' % (stage, path,
                                    time.perf_counter() - start))
  with atomic_io.atomic_open(os.path.join(args.save_dir, POINTS_FILE)) as f:
    np.savez(f, **points)
  return paths


def _list_images(args):
  """(name, image path) of the images to overlay."""
  if args.data_list:
    entries = data_lists.read_data_list(args.data_dir, args.data_list)
    data_lists.check_unique_names(entries, args.data_list)
    images = [(entry.name, entry.image) for entry in entries]
  elif args.input_dir:
    if not os.path.isdir(args.input_dir):
      raise FileNotFoundError('--input_dir: folder not found: %s'
                              % args.input_dir)
    images = sorted(
        (os.path.splitext(f)[0], os.path.join(args.input_dir, f))
        for f in os.listdir(args.input_dir)
        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
  else:
    raise VisualizeError('--pred_dir needs the images: --data_list (with '
                         '--data_dir) or --input_dir')
  if args.max_images > 0:
    images = images[:args.max_images]
  if not images:
    raise VisualizeError('no image to overlay')
  return images


def draw_overlays(args, colormap):
  """SAVE_DIR/overlay/NAME.png for every image; returns the paths."""
  if not 0.0 <= args.alpha <= 1.0:
    raise VisualizeError('--alpha must be in [0, 1], got %g' % args.alpha)
  pred_dir = args.pred_dir
  if os.path.isdir(os.path.join(pred_dir, GRAY_SUBDIR)):
    pred_dir = os.path.join(pred_dir, GRAY_SUBDIR)
  if not os.path.isdir(pred_dir):
    raise FileNotFoundError('--pred_dir: folder not found: %s' % pred_dir)
  images = _list_images(args)
  missing = [name for name, _ in images
             if not os.path.isfile(os.path.join(pred_dir, name + '.png'))]
  if missing:
    raise VisualizeError('%d image(s) have no prediction in %s: %s%s' % (
        len(missing), pred_dir, ', '.join(m + '.png' for m in missing[:5]),
        ' ...' if len(missing) > 5 else ''))
  paths = []
  for name, image_path in tqdm(images, desc='overlays', unit='image'):
    try:
      with Image.open(image_path) as image:
        rgb = np.asarray(image.convert('RGB'), dtype=np.uint8)
    except (OSError, ValueError) as e:
      raise VisualizeError('cannot read image %s: %s' % (image_path, e))
    pred_path = os.path.join(pred_dir, name + '.png')
    labels = label_images.read_label_png(pred_path)
    if labels.shape != rgb.shape[:2]:
      raise VisualizeError('prediction %s is %dx%d but image %s is %dx%d'
                           % ((pred_path,) + labels.shape + (image_path,) +
                              rgb.shape[:2]))
    path = os.path.join(args.save_dir, OVERLAY_SUBDIR, name + '.png')
    atomic_io.atomic_save_png(
        path, prototype_plots.overlay(rgb, labels, colormap, args.alpha))
    paths.append(path)
  return paths


def visualize(args):
  """Writes the pictures asked for; returns their paths."""
  if not args.prototype_dir and not args.pred_dir:
    raise VisualizeError('nothing to draw: give --prototype_dir and/or '
                         '--pred_dir')
  try:
    colormap = colormaps.get_colormap(args.colormap)
  except (OSError, ValueError) as e:
    raise VisualizeError('--colormap: %s' % e) from e
  paths = []
  if args.prototype_dir:
    paths += draw_prototypes(args, colormap)
  if args.pred_dir:
    paths += draw_overlays(args, colormap)
  return paths


def main(argv=None):
  return script_glue.run_script(visualize, get_arguments(argv))


if __name__ == '__main__':
  main()
