r"""Collects a demo run into DEMO_DIR/results.json and prints its table.

    python pyscripts/tools/demo_report.py --demo_dir snapshots/demo \
        --timings snapshots/demo/timings.txt \
        --seed_summary snapshots/demo/seed_summary.json \
        --reference bashscripts/demo/reference_seeds.json \
        --pictures 'snapshots/demo/seed1/*/results/val/color' ...

--timings holds one `STAGE SECONDS` per line (the demo script appends them);
--seed_summary is the summarize_seeds.py JSON of this run's seeds (one seed
or several); --reference is the same JSON of a run with several seeds kept
with the code: the spread a rerun should expect. Its column is printed only
when its settings (summarize_seeds.py --setting) equal this run's, so that
a run with other steps or data is never compared with it.

results.json:
  {"miou": {METHOD: mean over this run's seeds}, "miou_std": {METHOD: std
   or null}, "seeds": {METHOD: [...]}, "differences": {"A - B": {"mean",
   "std"}}, "ratios": {"A / B": ratio of the means}, "settings": {...},
   "reference": {"file", "methods": {METHOD: {"mean", "std", "min", "max",
   "seeds"}}, "differences": {...}, "ratios": {...}} or null,
   "reference_note": why there is no reference column (or ""),
   "seconds": {STAGE: ...}, "pictures": [...]}
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import script_glue  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import metrics  # noqa: E402

_pm = metrics.format_mean_std


def read_timings(path):
  """{stage: seconds} from `STAGE SECONDS` lines (later lines add up)."""
  seconds = {}
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      parts = line.split()
      if len(parts) != 2:
        raise ValueError('%s:%d: expected "STAGE SECONDS", got %r'
                         % (path, number, line.strip()))
      seconds[parts[0]] = seconds.get(parts[0], 0.0) + float(parts[1])
  return seconds


def read_summary(path, flag):
  """A summarize_seeds.py JSON, checked for the keys the report reads."""
  if not os.path.exists(path):
    raise ValueError('%s: %s does not exist' % (flag, path))
  try:
    with open(path, encoding='utf-8') as f:
      summary = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError('%s: %s is not JSON (%s)' % (flag, path, e)) from None
  methods = summary.get('methods') if isinstance(summary, dict) else None
  if not isinstance(methods, dict) or not all(
      isinstance(row, dict) and {'mean', 'std', 'miou', 'seeds'} <= set(row)
      for row in methods.values()):
    raise ValueError('%s: %s is not a summarize_seeds.py summary (no '
                     '"methods" with mean, std, miou and seeds)'
                     % (flag, path))
  summary.setdefault('differences', {})
  summary.setdefault('settings', {})
  return summary


def compare_settings(run, reference):
  """'' when the settings agree, else what differs (one line)."""
  differences = []
  for key in sorted(set(run) | set(reference)):
    if run.get(key) != reference.get(key):
      differences.append('%s %s here, %s there' % (
          key, run.get(key, 'unset'), reference.get(key, 'unset')))
  return '; '.join(differences)


def reference_rows(reference, path):
  """The reference part of results.json."""
  return {
      'file': path,
      'methods': {
          method: {'mean': row['mean'], 'std': row['std'],
                   'min': min(row['miou']), 'max': max(row['miou']),
                   'seeds': row['seeds']}
          for method, row in reference['methods'].items()},
      'differences': {
          name: {'mean': row['mean'], 'std': row['std']}
          for name, row in reference['differences'].items()},
      'ratios': dict(reference.get('ratios', {}))}


def format_table(results):
  reference = results['reference']
  seeds = sorted({s for row in results['seeds'].values() for s in row})
  head = 'this run (%s %s)' % ('seed' if len(seeds) == 1 else 'seeds',
                               ', '.join(seeds))
  width = max([len('method'), len('stage')] +
              [len(m) for m in results['miou']] +
              [len(d) for d in results['differences']] +
              [len(r) for r in results['ratios']] +
              [len(s) for s in results['seconds']])
  lines = ['', 'SegSort demo results (val mIoU % of the synthetic data)', '',
           '  %-*s  %-18s %s' % (width, 'method', head,
                                 'reference: mean +- std (min - max) over '
                                 'seeds' if reference else '')]
  for method, value in results['miou'].items():
    cell = _pm(value, results['miou_std'][method])
    ref = reference['methods'].get(method) if reference else None
    lines.append(('  %-*s  %-18s %s' % (
        width, method, cell,
        '%s (%.2f - %.2f), %d seeds' % (
            _pm(ref['mean'], ref['std']), ref['min'], ref['max'],
            len(ref['seeds'])) if ref else '')).rstrip())
  for name, row in results['differences'].items():
    ref = reference['differences'].get(name) if reference else None
    lines.append(('  %-*s  %-18s %s' % (
        width, name, _pm(row['mean'], row['std'], signed=True),
        _pm(ref['mean'], ref['std'], signed=True) if ref else '')).rstrip())
  for name, value in results['ratios'].items():
    ref = reference['ratios'].get(name) if reference else None
    lines.append(('  %-*s  %-18s %s' % (
        width, name, 'n/a' if value is None else '%.3f' % value,
        '%.3f' % ref if ref is not None else '')).rstrip())
  if reference:
    lines += ['', 'Reference: %s, measured with the same settings; it is '
              'the spread a rerun should expect (seeds, machines and '
              'oneDNN on or off all move the result).' % reference['file']]
  elif results['reference_note']:
    lines += ['', results['reference_note']]
  lines += ['', '  %-*s %8s' % (width, 'stage', 'seconds')]
  for stage, value in results['seconds'].items():
    lines.append('  %-*s %8.1f' % (width, stage, value))
  lines.append('  %-*s %8.1f' % (width, 'total',
                                 sum(results['seconds'].values())))
  if len(seeds) > 1:
    lines.append('  (stages run once per seed add up over the %d seeds)'
                 % len(seeds))
  lines += ['', 'Pictures:'] + ['  ' + p for p in results['pictures']]
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--demo_dir', required=True)
  parser.add_argument('--timings', required=True)
  parser.add_argument('--seed_summary', required=True,
                      help='summarize_seeds.py JSON of this run.')
  parser.add_argument('--reference', default='',
                      help='summarize_seeds.py JSON of a reference run with '
                           'several seeds (optional).')
  parser.add_argument('--pictures', nargs='*', default=[],
                      help='Picture files, folders or glob patterns.')
  return script_glue.run_script(write_report, parser.parse_args(argv),
                                user_errors=(OSError, ValueError))


def write_report(args):
  """Writes DEMO_DIR/results.json and prints the table; returns them."""
  seconds = read_timings(args.timings)
  summary = read_summary(args.seed_summary, '--seed_summary')
  pictures = []
  for pattern in args.pictures:
    pictures.extend(sorted(glob.glob(pattern)) or [pattern])
  methods = summary['methods']
  results = {
      'miou': {m: row['mean'] for m, row in methods.items()},
      'miou_std': {m: row['std'] for m, row in methods.items()},
      'seeds': {m: row['seeds'] for m, row in methods.items()},
      'differences': {name: {'mean': row['mean'], 'std': row['std']}
                      for name, row in summary['differences'].items()},
      'ratios': dict(summary.get('ratios', {})),
      'settings': summary['settings'], 'reference': None,
      'reference_note': '', 'seconds': seconds, 'pictures': pictures}
  if args.reference:
    reference = read_summary(args.reference, '--reference')
    differ = compare_settings(summary['settings'], reference['settings'])
    if differ:
      results['reference_note'] = (
          'No reference column: %s was measured with other settings (%s).'
          % (args.reference, differ))
    else:
      results['reference'] = reference_rows(reference, args.reference)
  path = os.path.join(args.demo_dir, 'results.json')
  atomic_io.atomic_write_text(path, json.dumps(results, indent=1) + '\n')
  print(format_table(results))
  print('\nWritten to %s' % path)
  return results


if __name__ == '__main__':
  main()
