"""Benchmarks class-id PNG predictions against ground truth by mean IoU.

For every prediction PNG in --pred_dir, the ground truth of the same name
(after --string_replace) in --gt_dir; prints the per-class IoU, mean IoU over
the classes present and pixel accuracy. Ground-truth ids are in
[0, num_classes) or 255 (ignored); any other id is an error naming the file.

  python pyscripts/benchmark/benchmark_by_mIoU.py \
    --pred_dir SNAPSHOT_DIR/results/val/gray/ \
    --gt_dir VOCdevkit/VOC2012/segcls/ --num_classes 21 --allow_extra_gt
"""
import argparse
import os
import sys

# Run as a file, so put the repository root on the path for `utils`.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from pyscripts import script_glue  # noqa: E402
from utils import classes  # noqa: E402
from utils import metrics  # noqa: E402


def get_arguments(argv=None):
  parser = argparse.ArgumentParser(
      description='Benchmark segmentation predictions by mean IoU.')
  parser.add_argument('--pred_dir', type=str, default='',
                      help='Folder of predicted class-id PNGs.')
  parser.add_argument('--gt_dir', type=str, default='',
                      help='Folder of ground-truth class-id PNGs.')
  parser.add_argument('--num_classes', type=int, default=21,
                      help='Number of classes; ground-truth ids must be '
                           'below it, or 255 (ignored).')
  parser.add_argument('--string_replace', type=str, default=',',
                      help='"old,new": replace old by new in a prediction '
                           'file name to get its ground-truth name.')
  parser.add_argument('--class_names', type=str, default='',
                      help='Optional text file, one class name per line.')
  parser.add_argument('--output_json', type=str, default='',
                      help='Optional path to write the results as JSON.')
  parser.add_argument('--allow_extra_gt', action='store_true',
                      help='Skip ground truths without a prediction instead '
                           'of failing (gt_dir holding every split).')
  return parser.parse_args(argv)


def main(argv=None):
  # The messages name the flag or file at fault; a traceback adds nothing.
  return script_glue.run_script(evaluate, get_arguments(argv),
                                user_errors=(OSError, ValueError))


def evaluate(args):
  """Prints (and saves) the mIoU of the predictions; returns the results."""
  if args.num_classes < 1:
    raise ValueError('--num_classes must be >= 1, got %d' % args.num_classes)
  class_names = classes.get_class_names(args.num_classes, args.class_names)
  accumulator = metrics.evaluate_folders(
      args.pred_dir, args.gt_dir, args.num_classes,
      string_replace=args.string_replace,
      allow_extra_gt=args.allow_extra_gt)
  results = accumulator.get_results(class_names)
  print(metrics.format_results(results))
  if args.output_json:
    metrics.save_results_json(args.output_json, results)
  return results


if __name__ == '__main__':
  main()
