"""Summarizes mIoU over random seeds: mean, spread and paired differences.

A recipe that trains every method once per seed (bashscripts/camvid/
train_camvid.sh with SEEDS="1 2 3") writes one line per finished run to a
runs file:

  METHOD SEED PATH/TO/miou.json

(the JSON of benchmark_by_mIoU.py --output_json). This script prints one
table and writes a JSON with, per method, the val mIoU of every seed, their
mean and sample standard deviation (n - 1; none for a single seed) and the
mean IoU of every class over the seeds; and, for each pair given by
--compare A-B, the per-seed differences A - B over the seeds both methods
ran, with their mean and standard deviation (a paired comparison: the seed
fixes the initialisation and the order of the data for both methods).

  python pyscripts/benchmark/summarize_seeds.py \
    --runs snapshots/camvid/runs.txt --compare segsort-softmax \
    --output_json snapshots/camvid/seed_summary.json

JSON layout:
  {"methods": {METHOD: {"seeds": [...], "miou": [...], "mean": float,
               "std": float or null, "pixel_accuracy_mean": float,
               "per_class_iou_mean": {CLASS: float or null}}},
   "differences": {"A - B": {"seeds": [...], "values": [...],
                   "mean": float, "std": float or null}},
   "ratios": {"A / B": float},   (ratio of the means, e.g. unsup / segsort)
   "settings": {KEY: VALUE}}     (the --setting pairs, as given)

--setting KEY=VALUE (repeatable) records what the runs were trained with
(steps, batch size, ...), so that a summary kept as a reference can be told
apart from one of other settings (the demo compares them before it prints
its reference column).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from pyscripts import script_glue  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import metrics  # noqa: E402


def get_arguments(argv=None):
  parser = argparse.ArgumentParser(
      description='Mean and spread of val mIoU over seeds, per method.',
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='example:\n  python pyscripts/benchmark/summarize_seeds.py '
             '--runs snapshots/camvid/runs.txt \\\n'
             '    --compare segsort-softmax --ratio unsup-segsort \\\n'
             '    --output_json snapshots/camvid/seed_summary.json')
  parser.add_argument('--runs', type=str, required=True,
                      help='Text file, one run per line: METHOD SEED '
                           'MIOU_JSON (paths relative to the file\'s folder '
                           'or absolute).')
  parser.add_argument('--compare', type=str, action='append', default=[],
                      help='A-B: per-seed differences of A minus B '
                           '(repeatable).')
  parser.add_argument('--ratio', type=str, action='append', default=[],
                      help='A-B: the ratio of A\'s mean mIoU to B\'s '
                           '(repeatable).')
  parser.add_argument('--setting', type=str, action='append', default=[],
                      help='KEY=VALUE: a setting the runs share, kept in '
                           'the JSON as written (repeatable).')
  parser.add_argument('--output_json', type=str, default='',
                      help='Where to write the summary (JSON).')
  return parser.parse_args(argv)


def parse_settings(pairs, flag='--setting'):
  """{KEY: VALUE} from KEY=VALUE strings, in their order."""
  settings = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep or not key:
      raise ValueError('%s expects KEY=VALUE, got %r' % (flag, pair))
    if key in settings and settings[key] != value:
      raise ValueError('%s %s is given twice (%r and %r)'
                       % (flag, key, settings[key], value))
    settings[key] = value
  return settings


def read_runs(path):
  """[(method, seed, results dict)] from a runs file, in its order."""
  folder = os.path.dirname(os.path.abspath(path))
  try:
    with open(path, encoding='utf-8') as f:
      lines = [line.split() for line in f if line.strip()]
  except FileNotFoundError:
    raise FileNotFoundError('--runs: %s not found' % path) from None
  runs = []
  seen = set()
  for number, fields in enumerate(lines, 1):
    if len(fields) != 3:
      raise ValueError('%s line %d: expected METHOD SEED MIOU_JSON, got %r'
                       % (path, number, ' '.join(fields)))
    method, seed, json_path = fields
    if (method, seed) in seen:
      raise ValueError('%s line %d: method %s with seed %s appears twice'
                       % (path, number, method, seed))
    seen.add((method, seed))
    json_path = os.path.join(folder, json_path)
    try:
      with open(json_path, encoding='utf-8') as f:
        results = json.load(f)
    except FileNotFoundError:
      raise FileNotFoundError('%s line %d: %s not found' % (
          path, number, json_path)) from None
    except json.JSONDecodeError as e:
      raise ValueError('%s line %d: %s is not JSON (%s)' % (
          path, number, json_path, e)) from None
    if not isinstance(results.get('miou'), (int, float)):
      raise ValueError('%s line %d: %s has no numeric "miou"' % (
          path, number, json_path))
    runs.append((method, seed, results))
  if not runs:
    raise ValueError('--runs: %s lists no run' % path)
  return runs


def _mean_of_defined(values):
  values = [v for v in values if v is not None]
  return sum(values) / len(values) if values else None


def summarize(runs, compare=(), ratio=(), settings=None):
  """The summary dict (see the module docstring) of read_runs' runs."""
  methods = {}
  for method, seed, results in runs:
    methods.setdefault(method, []).append((seed, results))
  summary = {'methods': {}, 'differences': {}, 'ratios': {},
             'settings': dict(settings or {})}
  for method, rows in methods.items():
    mious = [r['miou'] for _, r in rows]
    mean, std = metrics.mean_std(mious)
    classes = list(rows[0][1].get('per_class_iou', {}))
    summary['methods'][method] = {
        'seeds': [s for s, _ in rows], 'miou': mious, 'mean': mean,
        'std': std,
        'pixel_accuracy_mean': _mean_of_defined(
            [r.get('pixel_accuracy') for _, r in rows]),
        'per_class_iou_mean': {
            c: _mean_of_defined([r.get('per_class_iou', {}).get(c)
                                 for _, r in rows]) for c in classes}}
  for pair in compare:
    a, b = _split_pair(pair, '--compare', methods)
    by_seed_a = {s: r['miou'] for s, r in methods[a]}
    by_seed_b = {s: r['miou'] for s, r in methods[b]}
    seeds = [s for s in by_seed_a if s in by_seed_b]
    if not seeds:
      raise ValueError('--compare %s: the methods share no seed' % pair)
    values = [by_seed_a[s] - by_seed_b[s] for s in seeds]
    mean, std = metrics.mean_std(values)
    summary['differences']['%s - %s' % (a, b)] = {
        'seeds': seeds, 'values': values, 'mean': mean, 'std': std}
  for pair in ratio:
    a, b = _split_pair(pair, '--ratio', methods)
    denominator = summary['methods'][b]['mean']
    summary['ratios']['%s / %s' % (a, b)] = (
        summary['methods'][a]['mean'] / denominator if denominator else None)
  return summary


def _split_pair(pair, flag, methods):
  parts = pair.split('-')
  if len(parts) != 2 or not all(parts):
    raise ValueError('%s must be A-B (two method names), got %r'
                     % (flag, pair))
  for name in parts:
    if name not in methods:
      raise ValueError('%s %s: no run of method %r (runs have %s)'
                       % (flag, pair, name, ', '.join(sorted(methods))))
  return parts


def format_table(summary):
  """The printed table: methods, then class means, then comparisons.

  Columns are as wide as the longest method name, so that no name is cut
  or runs into the next column.
  """
  methods = summary['methods']
  name_width = max([len('method')] + [len(m) for m in methods])
  lines = ['%-*s %5s  %-16s %s' % (name_width, 'method', 'seeds',
                                   'val mIoU (%)', 'per seed')]
  for name, row in methods.items():
    lines.append('%-*s %5d  %-16s %s' % (
        name_width, name, len(row['seeds']),
        metrics.format_mean_std(row['mean'], row['std']),
        ', '.join('%s: %.2f' % (s, m) for s, m in zip(row['seeds'],
                                                      row['miou']))))
  classes = []
  for row in methods.values():
    classes.extend(c for c in row['per_class_iou_mean'] if c not in classes)
  if classes:
    class_width = max([len('class')] + [len(c) for c in classes])
    lines.append('')
    lines.append('per-class IoU, mean over seeds (%)')
    lines.append('%-*s' % (class_width, 'class') +
                 ''.join(' %*s' % (max(len(m), 6), m) for m in methods))
    for c in classes:
      cells = []
      for name, row in methods.items():
        v = row['per_class_iou_mean'].get(c)
        cells.append(' %*s' % (max(len(name), 6),
                               'n/a' if v is None else '%.2f' % v))
      lines.append('%-*s' % (class_width, c) + ''.join(cells))
  for name, row in summary['differences'].items():
    lines.append('')
    lines.append('%s: %s mIoU over %d paired seed(s) (%s)' % (
        name, metrics.format_mean_std(row['mean'], row['std']),
        len(row['seeds']),
        ', '.join('%+.2f' % v for v in row['values'])))
  for name, value in summary['ratios'].items():
    lines.append('%s: %s' % (name, 'n/a' if value is None else
                             '%.3f' % value))
  if summary.get('settings'):
    lines.append('')
    lines.append('settings: ' + ', '.join(
        '%s=%s' % kv for kv in summary['settings'].items()))
  return '\n'.join(lines)


def run(args):
  settings = parse_settings(args.setting)
  summary = summarize(read_runs(args.runs), args.compare, args.ratio,
                      settings)
  print(format_table(summary))
  if args.output_json:
    atomic_io.atomic_write_json(args.output_json, summary)
    print('Wrote %s' % args.output_json)
  return summary


def main(argv=None):
  return script_glue.run_script(run, get_arguments(argv),
                                user_errors=(OSError, ValueError))


if __name__ == '__main__':
  main()
