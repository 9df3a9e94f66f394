"""The configuration snapshot written next to a training run's checkpoints."""
import os

from utils import atomic_io


def save_config(snapshot_dir, args):
  """Writes SNAPSHOT_DIR/config: one `name: value` line per argument, sorted.

  A human-readable record of the run; the model settings that scripts
  read back are in SNAPSHOT_DIR/model.json (seg_models/snapshot_folder.py).

  Args:
    snapshot_dir: folder (created if needed).
    args: a dict of argument values, or an object holding them as
      attributes (the parsed flags).

  Returns:
    The path of the config file.
  """
  values = args if isinstance(args, dict) else vars(args)
  # Names starting with '_' are bookkeeping (pyscripts.flags.EXPLICIT_ATTR).
  lines = ['%s: %s\n' % (name, values[name]) for name in sorted(values)
           if not name.startswith('_')]
  path = os.path.join(snapshot_dir, 'config')
  atomic_io.atomic_write_text(path, ''.join(lines))
  return path
