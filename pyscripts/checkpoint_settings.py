"""Model flags from the settings saved with a checkpoint.

Training writes SNAPSHOT_DIR/model.json (seg_models/snapshot_folder.py):
the network's flags (--model, --backbone, --backbone_variant,
--width_multiplier and the output depth, --embedding_dim or --num_classes)
and the other settings of the trained model (--num_classes of a SegSort
model, --num_banks). A script that restores a checkpoint calls apply():

- a flag not given on the command line takes the checkpoint's value (one
  line says which);
- a network flag given with another value stops the script with an error
  naming the flag (a wrong --backbone_variant would otherwise run with
  other numerics, a wrong --backbone fail on hundreds of variables);
- inference may give another --num_classes than the one the model was
  trained with (the prototypes' labels decide); a resumed run may not.

A checkpoint without model.json (the ImageNet one, the original release's)
leaves the flags as they are.
"""
from pyscripts import flags
from seg_models import snapshot_folder
from utils import errors

ModelSettingsError = errors.ModelSettingsError

NETWORK = 'network'
TRAINING = 'training'


def _differs(given, saved):
  if isinstance(saved, float) or isinstance(given, float):
    try:
      return float(given) != float(saved)
    except (TypeError, ValueError):
      return True
  return given != saved


def apply(args, restore_from, expected_output=None, strict=(NETWORK,),
          what='the checkpoint', log=print):
  """Fills and checks args' model flags from restore_from's model.json.

  Args:
    args: parsed flags (pyscripts.flags.parse records those given; a
      Namespace without that record counts every flag as given).
    restore_from: a checkpoint prefix or folder.
    expected_output: 'embedding' or 'logits' (what the script needs), or
      None.
    strict: the sections whose values a given flag must equal (NETWORK,
      TRAINING).
    what: how messages name the checkpoint.
    log: fn(message) for the line naming the flags taken.

  Returns:
    The settings dict, or None when there is no model.json.

  Raises:
    ModelSettingsError: naming the flag that contradicts the settings, or
      the script that fits a model of another kind.
    snapshot_folder.SnapshotFolderError: model.json is unreadable.
  """
  path, settings = snapshot_folder.read_model_settings(restore_from)
  if settings is None:
    return None
  output = settings.get('output')
  if expected_output is not None and output and output != expected_output:
    raise ModelSettingsError(
        '%s (%s) holds a %s model whose network outputs %s; this script '
        'needs one that outputs %s (%s).' % (
            what, restore_from, settings.get('loss'), output,
            expected_output,
            'use inference.py for softmax models' if output == 'logits'
            else 'use the SegSort scripts for embedding models'))
  taken = []
  for section in (NETWORK, TRAINING):
    for name, saved in sorted(settings.get(section, {}).items()):
      if not hasattr(args, name):
        continue
      given = getattr(args, name)
      if flags.is_explicit(args, name):
        if section in strict and _differs(given, saved):
          raise ModelSettingsError(
              '--%s %s contradicts %s: %s was trained with --%s %s (%s). '
              'Leave --%s out to use the checkpoint\'s value.' % (
                  name, given, what, restore_from, name, saved, path, name))
        if _differs(given, saved):
          log('Note: --%s %s differs from the %s the model was trained '
              'with (%s).' % (name, given, saved, path))
        continue
      setattr(args, name, saved)
      taken.append('--%s %s' % (name, saved))
  if taken:
    log('Model settings from %s: %s' % (path, ' '.join(taken)))
  return settings
