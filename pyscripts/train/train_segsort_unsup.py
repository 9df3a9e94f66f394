"""Training script for unsupervised SegSort.

The segments come from oversegmentation masks (third list column, or the
label path with segcls -> hed); no class label is used. No k-means and no
memory banks: as in the original, there are no --num_clusters,
--kmeans_iterations or --num_banks flags (the prototypes of the trained
model are extracted with extract_prototypes.py's).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import flags  # noqa: E402
from pyscripts import train_main  # noqa: E402
from seg_models import trainer  # noqa: E402


def get_arguments(argv=None):
  return flags.get_training_arguments(__doc__, argv, learning_rate=2.5e-4,
                                      clustering=False)


def main(argv=None):
  return train_main.run(get_arguments(argv), trainer.LOSS_UNSUPERVISED)


if __name__ == '__main__':
  main()
