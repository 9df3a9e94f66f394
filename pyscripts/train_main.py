"""What every training script does after parsing its flags."""
from pyscripts import script_glue
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


def train(args, loss_type, **overrides):
  """trainer.train with the options of the parsed flags.

  In a cluster (--cluster_spec or TF_CONFIG) the chief trains and the other
  tasks serve it (trainer.serve).
  """
  opts = script_glue.options_from_args(trainer.TrainOptions, args,
                                       **overrides)
  cluster = cluster_lib.from_args(args)
  if cluster is not None and not cluster.is_chief:
    return trainer.serve(opts, cluster)
  return trainer.train(opts, loss_type, config_args=args, cluster=cluster)
