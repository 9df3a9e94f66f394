"""What every training script does after parsing its flags."""
from tqdm import tqdm

from pyscripts import checkpoint_settings
from pyscripts import script_glue
from seg_models import checkpoints
from seg_models import cluster as cluster_lib
from seg_models import trainer


def run(args, loss_type, **overrides):
  """Trains with parsed flags; a user error ends in one `error:` line.

  Args:
    args: the parsed flags (also saved next to the checkpoints).
    loss_type: a trainer.LOSS_* name.
    **overrides: TrainOptions fields the script sets itself.

  Returns:
    trainer.train's summary dict.
  """
  return script_glue.run_script(train, args, loss_type, **overrides)


def apply_resume_settings(args, loss_type):
  """On resume, the model flags not given come from SNAPSHOT_DIR/model.json.

  A given model flag (network or training setting) that differs from the
  folder's stops the run, naming the flag. Nothing happens when the folder
  holds no checkpoint (a new run).
  """
  if not args.snapshot_dir or not checkpoints.list_checkpoints(
      args.snapshot_dir):
    return None
  return checkpoint_settings.apply(
      args, args.snapshot_dir, trainer.get_loss(loss_type).output,
      strict=(checkpoint_settings.NETWORK, checkpoint_settings.TRAINING),
      what='the run to resume in --snapshot_dir', log=tqdm.write)


def train(args, loss_type, **overrides):
  """trainer.train with the options of the parsed flags.

  In a cluster (--cluster_spec or TF_CONFIG) the chief trains and the other
  tasks serve it (trainer.serve).
  """
  cluster = cluster_lib.from_args(args)
  if cluster is not None and not cluster.is_chief:
    return trainer.serve(script_glue.options_from_args(
        trainer.TrainOptions, args, **overrides), cluster)
  apply_resume_settings(args, loss_type)
  opts = script_glue.options_from_args(trainer.TrainOptions, args,
                                       **overrides)
  return trainer.train(opts, loss_type, config_args=args, cluster=cluster)
