"""What every training script does after parsing its flags."""
from pyscripts import script_glue
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
  """trainer.train with the options of the parsed flags."""
  opts = script_glue.options_from_args(trainer.TrainOptions, args,
                                       **overrides)
  return trainer.train(opts, loss_type, config_args=args)
