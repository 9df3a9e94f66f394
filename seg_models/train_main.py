"""What every training script does after parsing its flags."""
import sys

from seg_models import checkpoints
from seg_models import image_reader
from seg_models import snapshot_folder
from seg_models import trainer


def run(args, loss_type, **overrides):
  """Trains with parsed flags; exits with a one-line message on bad input.

  Returns:
    trainer.train's summary dict.
  """
  opts = trainer.TrainOptions.from_args(args, **overrides)
  try:
    return trainer.train(opts, loss_type, config_args=args)
  except (image_reader.DataListError, checkpoints.RestoreError,
          trainer.TrainingError, snapshot_folder.SnapshotFolderError) as e:
    sys.stderr.write('error: %s\n' % e)
    sys.exit(1)
  except KeyboardInterrupt:
    sys.exit(130)
