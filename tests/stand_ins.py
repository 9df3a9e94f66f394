"""A stand-in for `python` that the recipes' dry-run tests put in PYTHON.

The recipes (bashscripts/...) call `$PYTHON script.py --flags ...`; with the
stand-in they run in a second, and the test reads what was called.
"""
import os
import stat
import sys


def write_stand_in_python(path, log_path, run=(), mious=(), env_names=()):
  """Writes an executable stand-in for python at `path`.

  Each call appends its argv (script first) as one JSON line to log_path,
  and, when env_names are given, {NAME: value or null} of those environment
  variables as one JSON line to log_path + '.env'.
  The scripts whose file names are in `run` then run for real. Any other
  call creates the folders the next stage looks for (SAVE_DIR/gray and
  SAVE_DIR/prototypes for --save_dir) and, for --output_json, writes a
  benchmark JSON whose mIoU is the value of the first (substring, value)
  pair of `mious` found in the JSON's path (40.0 when none is).
  """
  with open(path, 'w') as f:
    f.write('#!%s\n' % sys.executable)
    f.write('import json, os, sys\n'
            'args = sys.argv[1:]\n'
            'with open(%r, "a") as f:\n'
            '  f.write(json.dumps(args) + "\\n")\n'
            'if %r:\n'
            '  with open(%r + ".env", "a") as f:\n'
            '    f.write(json.dumps({n: os.environ.get(n) for n in %r}) + "\\n")\n'
            'if args and os.path.basename(args[0]) in %r:\n'
            '  os.execv(sys.executable, [sys.executable] + args)\n'
            'def value_of(flag):\n'
            '  return args[args.index(flag) + 1] if flag in args else None\n'
            'save_dir = value_of("--save_dir")\n'
            'if save_dir:\n'
            '  for sub in ("gray", "prototypes"):\n'
            '    os.makedirs(os.path.join(save_dir, sub), exist_ok=True)\n'
            'output = value_of("--output_json")\n'
            'if output:\n'
            '  miou = next((m for s, m in %r if s in output), 40.0)\n'
            '  os.makedirs(os.path.dirname(output) or ".", exist_ok=True)\n'
            '  with open(output, "w") as f:\n'
            '    json.dump({"miou": miou, "per_class_iou": {}}, f)\n'
            % (str(log_path), bool(env_names), str(log_path),
               tuple(env_names), tuple(run), tuple(mious)))
  os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


def read_calls(log_path):
  """The logged calls, each a list: script path, then its arguments."""
  import json
  with open(log_path) as f:
    return [json.loads(line) for line in f if line.strip()]
