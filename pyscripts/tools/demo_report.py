r"""Collects a demo run into DEMO_DIR/results.json and prints its table.

    python pyscripts/tools/demo_report.py --demo_dir snapshots/demo \
        --timings snapshots/demo/timings.txt \
        --miou segsort=snapshots/demo/segsort/val/miou.json ... \
        --pictures 'snapshots/demo/*/val/color' ...

--timings holds one `STAGE SECONDS` per line (the demo script appends them);
each --miou names a benchmark_by_mIoU.py --output_json file.
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


def read_mious(pairs):
  """{method: mIoU in percent} from METHOD=JSON pairs."""
  mious = {}
  for pair in pairs:
    if '=' not in pair:
      raise ValueError('--miou expects METHOD=PATH, got %r' % (pair,))
    method, path = pair.split('=', 1)
    if not os.path.exists(path):
      raise ValueError('--miou %s: %s does not exist' % (method, path))
    with open(path) as f:
      mious[method] = json.load(f)['miou']
  return mious


def format_table(mious, seconds, pictures):
  lines = ['', 'SegSort demo results (val split of the synthetic data)', '',
           '  %-14s %8s' % ('method', 'mIoU %')]
  for method, value in mious.items():
    lines.append('  %-14s %8.2f' % (method, value))
  lines += ['', '  %-14s %8s' % ('stage', 'seconds')]
  for stage, value in seconds.items():
    lines.append('  %-14s %8.1f' % (stage, value))
  lines.append('  %-14s %8.1f' % ('total', sum(seconds.values())))
  lines += ['', 'Pictures:'] + ['  ' + p for p in pictures]
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--demo_dir', required=True)
  parser.add_argument('--timings', required=True)
  parser.add_argument('--miou', nargs='+', default=[],
                      help='METHOD=benchmark json, in table order.')
  parser.add_argument('--pictures', nargs='*', default=[],
                      help='Picture files, folders or glob patterns.')
  return script_glue.run_script(write_report, parser.parse_args(argv),
                                user_errors=(OSError, ValueError))


def write_report(args):
  """Writes DEMO_DIR/results.json and prints the table; returns them."""
  seconds = read_timings(args.timings)
  mious = read_mious(args.miou)
  pictures = []
  for pattern in args.pictures:
    pictures.extend(sorted(glob.glob(pattern)) or [pattern])
  results = {'miou': mious, 'seconds': seconds, 'pictures': pictures}
  path = os.path.join(args.demo_dir, 'results.json')
  atomic_io.atomic_write_text(path, json.dumps(results, indent=1) + '\n')
  print(format_table(mious, seconds, pictures))
  print('\nWritten to %s' % path)
  return results


if __name__ == '__main__':
  main()
