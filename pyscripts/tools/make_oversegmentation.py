r"""Writes OWT-UCM-style oversegmentation masks (hed/NAME.png) for a data list.

Unsupervised SegSort trains on oversegmentation regions. The original masks
came from HED contours and MATLAB OWT-UCM; this tool makes them in Python
(utils/oversegmentation.py): contour strength (from --contour_dir PNGs, or a
built-in multi-scale colour-gradient detector), watershed regions, an
ultrametric contour map, thresholded at --threshold. With --contour_dir the
boundary strengths come from the oriented watershed transform
(utils/oriented_watershed.py; --watershed oriented): HED-owt-ucm masks from
the HED maps of make_contours.py.

  python pyscripts/tools/make_oversegmentation.py \
      --data_dir /data/VOCdevkit --data_list dataset/voc12/train+.txt \
      [--contour_dir /data/VOCdevkit/VOC2012/hed_contours]

Masks are grayscale uint8 PNGs of segment ids 0..N-1 (N <= 255), numbered in
raster order, at the path the training reader expects (third list column,
else LABEL with 'segcls' -> 'hed', else IMAGE with 'JPEGImages' -> 'hed').
"""
import argparse
import functools
import multiprocessing
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyscripts import flags  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from utils import oriented_watershed  # noqa: E402
from utils import oversegmentation  # noqa: E402


def get_arguments(argv=None):
  """Parses the command line."""
  parser = argparse.ArgumentParser(
      description='OWT-UCM-style oversegmentation masks for a data list.')
  flags.add_image_list_flags(
      parser, 'Optional folder of contour/HED probability PNGs NAME.png '
      '(0..255 = strength), same size as the images; default: contours '
      'from the image.', contour_dir_required=False)
  parser.add_argument('--watershed', choices=('plain', 'oriented'),
                      default=None,
                      help='Boundary strengths from the contour values '
                           '(plain) or the oriented watershed transform '
                           '(oriented); default: oriented with '
                           '--contour_dir, else plain.')
  parser.add_argument('--threshold', type=float, default=None,
                      help='UCM level in [0, 1] (the contour scale); '
                           'boundaries at or above it are kept. Higher '
                           'means fewer segments. Default: %g oriented, '
                           '%g plain.' % (
                               oriented_watershed.DEFAULT_THRESHOLD,
                               oversegmentation.DEFAULT_THRESHOLD))
  parser.add_argument('--max_segments', type=int,
                      default=oversegmentation.MAX_SEGMENTS,
                      help='At most this many segments per image (1..255; '
                           '255 is the padding value).')
  parser.add_argument('--min_size', type=int,
                      default=oversegmentation.DEFAULT_MIN_SIZE,
                      help='Regions with fewer pixels are merged into a '
                           'neighbour.')
  parser.add_argument('--num_workers', type=int,
                      default=multiprocessing.cpu_count(),
                      help='Parallel worker processes.')
  parser.add_argument('--save_ucm', action='store_true',
                      help='Also write the UCM as a 16-bit PNG to the mask '
                           'folder + "_ucm" (hed_ucm/NAME.png), levels * '
                           '%d.' % oversegmentation.UCM_PNG_SCALE)
  parser.add_argument('--overwrite', action='store_true',
                      help='Recompute masks that already exist.')
  args = parser.parse_args(argv)
  if args.watershed is None:
    args.watershed = 'oriented' if args.contour_dir else 'plain'
  if args.threshold is None:
    args.threshold = (oriented_watershed.DEFAULT_THRESHOLD
                      if args.watershed == 'oriented'
                      else oversegmentation.DEFAULT_THRESHOLD)
  if not 0.0 <= args.threshold <= 1.0:
    parser.error('--threshold must be in [0, 1], got %r' % args.threshold)
  if not 1 <= args.max_segments <= oversegmentation.MAX_SEGMENTS:
    parser.error('--max_segments must be in [1, %d], got %d'
                 % (oversegmentation.MAX_SEGMENTS, args.max_segments))
  if args.min_size < 0:
    parser.error('--min_size must be >= 0, got %d' % args.min_size)
  if args.num_workers < 1:
    parser.error('--num_workers must be >= 1, got %d' % args.num_workers)
  if not os.path.isdir(args.data_dir):
    parser.error('--data_dir is not a folder: %s' % args.data_dir)
  if args.contour_dir is not None and not os.path.isdir(args.contour_dir):
    parser.error('--contour_dir is not a folder: %s' % args.contour_dir)
  return args


def _process(task, threshold, max_segments, min_size, oriented):
  """Worker: one image; errors name the image."""
  image_path, mask_path, contour_path, ucm_path = task
  try:
    return oversegmentation.make_oversegmentation_mask(
        image_path, mask_path, contour_path, ucm_path, threshold=threshold,
        max_segments=max_segments, min_size=min_size, oriented=oriented)
  except Exception as e:
    raise RuntimeError('%s: %s' % (image_path, e)) from e


def _run(work, tasks, num_workers):
  """Yields work(task) for every task, in a process pool if num_workers > 1.

  Leaving early (an error, Ctrl-C) closes the generator, and the pool's
  context manager terminates the workers.
  """
  if num_workers > 1 and len(tasks) > 1:
    with multiprocessing.Pool(min(num_workers, len(tasks))) as pool:
      yield from pool.imap_unordered(work, tasks)
  else:
    yield from map(work, tasks)


def main(argv=None):
  return script_glue.run_script(make_masks, get_arguments(argv),
                                user_errors=(ValueError, RuntimeError))


def make_masks(args):
  """Writes the masks of the flags' list that are not there yet."""
  pairs = oversegmentation.read_oversegmentation_list(args.data_dir,
                                                      args.data_list)

  tasks, skipped = [], 0
  for image_path, mask_path in pairs:
    ucm_path = (oversegmentation.get_ucm_path(mask_path) if args.save_ucm
                else None)
    if (not args.overwrite and os.path.exists(mask_path)
        and (ucm_path is None or os.path.exists(ucm_path))):
      skipped += 1
      continue
    contour_path = (oversegmentation.get_contour_path(args.contour_dir,
                                                      image_path)
                    if args.contour_dir else None)
    tasks.append((image_path, mask_path, contour_path, ucm_path))

  # Fail before hours of work if inputs are missing, naming them.
  missing = [path for image_path, _, contour_path, _ in tasks
             for path in (image_path, contour_path)
             if path is not None and not os.path.isfile(path)]
  if missing:
    raise FileNotFoundError('%d input file(s) not found, first: %s'
                            % (len(missing), ', '.join(missing[:5])))

  print('%d images in %s: %d to do, %d already done (%s watershed, '
        'threshold %g)' % (len(pairs), args.data_list, len(tasks), skipped,
                           args.watershed, args.threshold))
  if not tasks:
    return
  work = functools.partial(_process, threshold=args.threshold,
                           max_segments=args.max_segments,
                           min_size=args.min_size,
                           oriented=args.watershed == 'oriented')
  counts = []
  for count in tqdm(_run(work, tasks, args.num_workers), total=len(tasks),
                    desc='oversegmentation', unit='img'):
    counts.append(count)
  print('wrote %d masks; segments per image: min %d, median %d, max %d'
        % (len(counts), min(counts), int(np.median(counts)), max(counts)))


if __name__ == '__main__':
  main()
