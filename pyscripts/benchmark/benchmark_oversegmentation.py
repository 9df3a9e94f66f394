r"""Boundary quality of oversegmentation masks against label boundaries.

For the first --num_images examples of a labelled list, every method makes
its masks at each of its thresholds (--sweep; utils/oversegmentation.py, the
code make_oversegmentation.py runs), and the masks are scored against the
borders between the ground-truth classes (utils/boundary_metrics.py):
boundary recall, precision and F at --tolerance pixels, and segments per
image. Methods:

  gradient-ucm   the built-in colour-gradient contours, plain watershed
  hed-ucm        HED contours (--contour_dir), plain watershed
  hed-owt-ucm    HED contours, thinned, oriented watershed transform

Writes OUTPUT_DIR/oversegmentation_quality.json, a Markdown table
(oversegmentation_quality.md, also printed) and a picture grid
(oversegmentation_grid.png: image | HED | UCM | regions, for HED-owt-ucm at
--grid_threshold, and the gradient-ucm regions at its default).

  python pyscripts/tools/make_contours.py --data_dir DATA \
      --data_list DATA/val.txt --contour_dir CONTOURS
  python pyscripts/benchmark/benchmark_oversegmentation.py --data_dir DATA \
      --data_list DATA/val.txt --contour_dir CONTOURS --output_dir OUT
"""
import argparse
import functools
import multiprocessing
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyscripts import script_glue  # noqa: E402
from utils import boundary_metrics  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import data_lists  # noqa: E402
from utils import label_images  # noqa: E402
from utils import picture_grid  # noqa: E402
from utils import oriented_watershed  # noqa: E402
from utils import oversegmentation  # noqa: E402

# name: (uses the HED maps, oriented watershed)
METHODS = {
    'gradient-ucm': (False, False),
    'hed-ucm': (True, False),
    'hed-owt-ucm': (True, True),
}


DEFAULT_SWEEP = (
    'gradient-ucm:%g' % oversegmentation.DEFAULT_THRESHOLD,
    'hed-ucm:0.5,0.6',
    'hed-owt-ucm:0.1,0.15,0.2,0.25,0.3',
)


def _sweep(text):
  """'METHOD:T1,T2,...' -> (method, [thresholds])."""
  method, _, values = text.partition(':')
  try:
    thresholds = [float(v) for v in values.split(',') if v]
  except ValueError:
    thresholds = []
  if (method not in METHODS or not thresholds or min(thresholds) < 0
      or max(thresholds) > 1):
    raise argparse.ArgumentTypeError(
        'expected METHOD:T1,T2,... with METHOD one of %s and thresholds in '
        '[0, 1], got %r' % (', '.join(METHODS), text))
  return method, thresholds


def get_arguments(argv=None):
  """Parses the command line."""
  parser = argparse.ArgumentParser(
      description='Boundary recall/precision of oversegmentation masks.')
  parser.add_argument('--data_dir', type=str, required=True)
  parser.add_argument('--data_list', type=str, required=True,
                      help='Lines "IMAGE LABEL [OVERSEG]".')
  parser.add_argument('--contour_dir', type=str, required=True,
                      help='HED maps NAME.png (make_contours.py).')
  parser.add_argument('--output_dir', type=str, required=True)
  parser.add_argument('--num_images', type=int, default=30,
                      help='The first N examples of the list.')
  parser.add_argument('--sweep', type=_sweep, action='append',
                      help='METHOD:T1,T2,... (repeat per method); default: '
                           '%s.' % ' '.join(DEFAULT_SWEEP))
  parser.add_argument('--grid_threshold', type=float,
                      default=oriented_watershed.DEFAULT_THRESHOLD,
                      help='HED-owt-ucm threshold of the grid picture.')
  parser.add_argument('--grid_images', type=int, default=4)
  parser.add_argument('--tolerance', type=float,
                      default=boundary_metrics.DEFAULT_TOLERANCE,
                      help='Matching distance in pixels.')
  parser.add_argument('--ignore_label', type=int, default=255)
  parser.add_argument('--num_workers', type=int,
                      default=multiprocessing.cpu_count())
  args = parser.parse_args(argv)
  if not args.sweep:
    args.sweep = [_sweep(text) for text in DEFAULT_SWEEP]
  if args.num_images < 1 or args.num_workers < 1:
    parser.error('--num_images and --num_workers must be >= 1')
  return args


def _read_examples(data_dir, data_list, num_images, contour_dir):
  """[(image, label, contour path)] of the first num_images examples."""
  entries = data_lists.read_data_list(data_dir, data_list)[:num_images]
  unlabelled = [e.image for e in entries if e.label is None]
  if unlabelled:
    raise ValueError('%s: no LABEL column for %s' % (data_list,
                                                     unlabelled[0]))
  return [(e.image, e.label,
           oversegmentation.get_contour_path(contour_dir, e.image))
          for e in entries]


def _evaluate(example, sweep, tolerance, ignore_label):
  """All methods and thresholds on one image: {(method, t): (counts, n, s)}."""
  image_path, label_path, contour_path = example
  image = oversegmentation.read_image(image_path)
  labels = label_images.read_label_png(label_path)
  contour = oversegmentation.read_contour_png(contour_path)
  results = {}
  for method, thresholds in sweep:
    uses_hed, oriented = METHODS[method]
    for threshold in thresholds:
      tic = time.time()
      segments = oversegmentation.get_oversegmentation(
          image, contour if uses_hed else None, threshold=threshold,
          oriented=oriented)
      seconds = time.time() - tic
      counts = boundary_metrics.get_boundary_counts(
          segments, labels, ignore_label, tolerance)
      results[(method, threshold)] = (counts, int(segments.max()) + 1,
                                      seconds)
  return results


def summarize(per_image, sweep):
  """One row per (method, threshold), summed over images."""
  rows = []
  for method, thresholds in sweep:
    for threshold in thresholds:
      values = [r[(method, threshold)] for r in per_image]
      counts = boundary_metrics.sum_counts([v[0] for v in values])
      recall, precision, f = boundary_metrics.get_recall_precision(counts)
      segments = np.array([v[1] for v in values])
      rows.append({
          'method': method, 'threshold': threshold,
          'recall': round(recall, 4), 'precision': round(precision, 4),
          'f': round(f, 4),
          'segments_mean': round(float(segments.mean()), 1),
          'segments_median': float(np.median(segments)),
          'segments_min': int(segments.min()),
          'segments_max': int(segments.max()),
          'seconds_per_image': round(float(np.mean([v[2] for v in values])),
                                     3)})
  return rows


def format_table(rows):
  """Markdown table of summarize() rows."""
  lines = ['| method | threshold | recall | precision | F | segments '
           '(mean, min-max) | s/image |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append('| %s | %.2f | %.3f | %.3f | %.3f | %.0f (%d-%d) | %.2f |'
                 % (r['method'], r['threshold'], r['recall'], r['precision'],
                    r['f'], r['segments_mean'], r['segments_min'],
                    r['segments_max'], r['seconds_per_image']))
  return '\n'.join(lines) + '\n'


def _draw_regions(image, segments):
  """The image with its segment borders in red."""
  picture = image.copy()
  picture[boundary_metrics.get_boundary_map(segments)] = (255, 0, 0)
  return picture


def save_grid(path, examples, threshold):
  """image | HED | UCM | regions (HED-owt-ucm) | regions (gradient-ucm)."""
  pictures, titles = [], []
  for image_path, _, contour_path in examples:
    image = oversegmentation.read_image(image_path)
    contour = oversegmentation.read_contour_png(contour_path)
    segments, ucm = oversegmentation.get_oversegmentation(
        image, contour, threshold=threshold, oriented=True, return_ucm=True)
    today = oversegmentation.get_oversegmentation(image)
    name = os.path.basename(image_path)
    pictures += [image, np.round(255 * contour).astype(np.uint8),
                 np.round(255 * ucm).astype(np.uint8),
                 _draw_regions(image, segments), _draw_regions(image, today)]
    titles += [name, 'HED', 'UCM (OWT)',
               'hed-owt-ucm t=%.2f: %d' % (threshold, segments.max() + 1),
               'gradient-ucm t=%.2f: %d' % (oversegmentation.DEFAULT_THRESHOLD,
                                            today.max() + 1)]
  picture_grid.save_grid_png(path, pictures, titles, ncols=5)


def main(argv=None):
  return script_glue.run_script(measure, get_arguments(argv),
                                user_errors=(OSError, ValueError))


def measure(args):
  """Scores the masks of the list's first images; writes the reports."""
  examples = _read_examples(args.data_dir, args.data_list, args.num_images,
                            args.contour_dir)
  missing = [p for example in examples for p in example
             if not os.path.isfile(p)]
  if missing:
    raise FileNotFoundError(
        '%d input file(s) not found, first: %s (contour maps come from '
        'pyscripts/tools/make_contours.py)' % (len(missing), missing[0]))
  work = functools.partial(_evaluate, sweep=args.sweep,
                           tolerance=args.tolerance,
                           ignore_label=args.ignore_label)
  progress = functools.partial(tqdm, total=len(examples),
                               desc='oversegmentation quality', unit='img')
  if args.num_workers == 1:
    per_image = list(progress(map(work, examples)))
  else:
    # Spawned, not forked: the parent has imported TensorFlow (the list
    # reader), whose threads a fork would copy in an unknown state.
    with multiprocessing.get_context('spawn').Pool(args.num_workers) as pool:
      per_image = list(progress(pool.imap(work, examples)))
  rows = summarize(per_image, args.sweep)
  table = format_table(rows)
  print(table)
  result = {'data_list': args.data_list, 'num_images': len(examples),
            'tolerance': args.tolerance, 'ignore_label': args.ignore_label,
            'results': rows}
  atomic_io.atomic_write_json(
      os.path.join(args.output_dir, 'oversegmentation_quality.json'), result)
  atomic_io.atomic_write_text(
      os.path.join(args.output_dir, 'oversegmentation_quality.md'), table)
  grid_path = os.path.join(args.output_dir, 'oversegmentation_grid.png')
  save_grid(grid_path, examples[:args.grid_images], args.grid_threshold)
  print('wrote %s' % grid_path)


if __name__ == '__main__':
  main()
