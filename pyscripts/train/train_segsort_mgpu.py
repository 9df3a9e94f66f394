"""Training script for SegSort on several GPUs (or CPU devices) with synchronised batch norm."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import flags  # noqa: E402
from seg_models import train_main  # noqa: E402
from seg_models import trainer  # noqa: E402


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_data_flags(parser)
  flags.add_model_flags(parser)
  flags.add_segsort_flags(parser)
  flags.add_training_flags(parser, num_gpu=2)
  return flags.parse(parser, argv)


def main(argv=None):
  return train_main.run(get_arguments(argv), trainer.LOSS_SEGSORT)


if __name__ == '__main__':
  main()
