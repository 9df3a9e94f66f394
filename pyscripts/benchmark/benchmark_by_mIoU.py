r"""Benchmarks class-id PNG predictions against ground truth by mean IoU.

With --data_list: exactly the listed images are scored, the prediction
PRED_DIR/NAME.png of each (NAME: the image's basename, as the inference
scripts name their outputs) against GT_DIR/NAME.png (after
--string_replace) or, without --gt_dir, the list's label column; other files
in either folder are left alone. Without it: every prediction PNG in
--pred_dir against the ground truth of the same name in --gt_dir, which must
hold no other PNG unless --allow_extra_gt.

Prints the per-class IoU, mean IoU over the classes present and pixel
accuracy. Ground-truth ids are in [0, num_classes) or 255 (ignored); any
other id is an error naming the file.

examples:
  # The VOC val images (segcls/ holds the labels of every split).
  python pyscripts/benchmark/benchmark_by_mIoU.py \
    --pred_dir SNAPSHOT_DIR/results/val/gray/ \
    --data_list dataset/voc12/val.txt \
    --gt_dir VOCdevkit/VOC2012/segcls/ --num_classes 21

  # Ground truth from the list's label column.
  python pyscripts/benchmark/benchmark_by_mIoU.py \
    --pred_dir SNAPSHOT_DIR/results/val/gray/ \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt --num_classes 21
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
from utils import data_lists  # noqa: E402
from utils import metrics  # noqa: E402


def get_arguments(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
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
                      help='Without --data_list: skip ground truths without '
                           'a prediction instead of failing (gt_dir holding '
                           'every split).')
  parser.add_argument('--data_list', type=str, default='',
                      help='Score exactly the images of this list (new '
                           'here); extra files in --pred_dir or --gt_dir '
                           'are then no error.')
  parser.add_argument('--data_dir', type=str, default='',
                      help='Folder the --data_list paths are relative to '
                           '(for the label column, used without --gt_dir).')
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
  pairs = None
  if args.data_list:
    entries = data_lists.read_data_list(args.data_dir, args.data_list)
    data_lists.check_unique_names(entries, args.data_list)
    pairs = metrics.match_listed_files(
        args.pred_dir, [e.name for e in entries], args.gt_dir,
        args.string_replace, [e.label for e in entries])
  elif not args.gt_dir:
    raise ValueError('--gt_dir is required without --data_list')
  accumulator = metrics.evaluate_folders(
      args.pred_dir, args.gt_dir, args.num_classes,
      string_replace=args.string_replace,
      allow_extra_gt=args.allow_extra_gt, pairs=pairs)
  results = accumulator.get_results(class_names)
  print(metrics.format_results(results))
  if args.output_json:
    metrics.save_results_json(args.output_json, results)
  return results


if __name__ == '__main__':
  main()
