"""Training script for the pixel-wise softmax baseline (same networks).

The original's (that of AAF, the baseline codebase the original README
points to) spelled its flags with hyphens (--data-dir, --learning-rate,
...): both spellings are accepted.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import flags  # noqa: E402
from pyscripts import train_main  # noqa: E402
from seg_models import trainer  # noqa: E402


def get_arguments(argv=None):
  return flags.get_training_arguments(
      __doc__, argv, segsort=False, learning_rate=2.5e-4,
      hyphenated=flags.SOFTMAX_TRAINING_HYPHENATED)


def main(argv=None):
  return train_main.run(get_arguments(argv), trainer.LOSS_SOFTMAX)


if __name__ == '__main__':
  main()
