r"""Generates a small synthetic segmentation dataset in the VOC layout.

Textured shapes on textured backgrounds, written under --output_dir (the
--data_dir of the training and inference scripts); utils/synthetic_data.py
describes the scenes and the layout. The same flags give byte-identical
files.

Usage (from the repository root):

    python pyscripts/tools/make_synthetic_dataset.py --output_dir data/synth \
        --num_train 300 --num_val 60 --height 128 --width 128 --num_classes 5
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from pyscripts import script_glue  # noqa: E402
from utils import synthetic_data  # noqa: E402


def _fraction_pair(text):
  try:
    low, high = (float(v) for v in text.split(','))
  except ValueError:
    raise argparse.ArgumentTypeError('expected MIN,MAX, got %r' % (text,))
  return low, high


def get_parser():
  """Command-line flags of this tool."""
  parser = argparse.ArgumentParser(
      description='Generate a synthetic VOC-layout segmentation dataset '
      '(textured shapes on textured backgrounds).')
  parser.add_argument('--output_dir', type=str, required=True,
                      help='Folder to write (it becomes the --data_dir).')
  parser.add_argument('--num_train', type=int, default=300,
                      help='Number of training images.')
  parser.add_argument('--num_val', type=int, default=60,
                      help='Number of validation images.')
  parser.add_argument('--height', type=int, default=128,
                      help='Image height in pixels.')
  parser.add_argument('--width', type=int, default=128,
                      help='Image width in pixels.')
  parser.add_argument('--num_classes', type=int, default=5,
                      help='Classes including the background (2 to %d).'
                      % synthetic_data.MAX_NUM_CLASSES)
  parser.add_argument('--max_objects', type=int, default=3,
                      help='Maximum number of objects per image.')
  parser.add_argument('--border_width', type=int, default=1,
                      help='Ignore (255) band width in pixels on each side '
                      'of every label boundary; 0 disables it.')
  parser.add_argument('--object_size', type=_fraction_pair,
                      default=(synthetic_data.MIN_RADIUS_FRACTION,
                               synthetic_data.MAX_RADIUS_FRACTION),
                      help='MIN,MAX object radius as a fraction of the image '
                      'side (larger objects are easier at output stride 8).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Random seed; same flags give identical files.')
  return parser


def main(argv=None):
  return script_glue.run_script(generate, get_parser().parse_args(argv),
                                user_errors=(ValueError,))


def generate(args):
  """Writes the dataset the flags describe."""
  names = synthetic_data.generate_dataset(
      args.output_dir, num_train=args.num_train, num_val=args.num_val,
      height=args.height, width=args.width, num_classes=args.num_classes,
      seed=args.seed, max_objects=args.max_objects,
      border_width=args.border_width, object_size=args.object_size)
  print('Wrote %d train and %d val images (%dx%d, %d classes) to %s'
        % (len(names['train']), len(names['val']), args.height, args.width,
           args.num_classes, args.output_dir))


if __name__ == '__main__':
  main()
