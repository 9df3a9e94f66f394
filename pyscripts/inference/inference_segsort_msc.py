r"""Multi-scale SegSort inference: kNN votes summed over scales and flips.

With --scale_aug the image is resized by 0.5, 0.75, 1, 1.25, 1.5 and 1.75
(--scales overrides the list), with --flip_aug each is also mirrored. Every
view goes through the sliding window (--input_size, --strides); every
window's part inside the view is clustered by k-means on its own, from the
grid over the whole window (--kmeans_grid canvas; image: over the part
inside the view), and each of its pixels receives
the class votes of its cluster's --k_in_nearest_neighbors nearest training
prototypes. The votes are resized to the image, flipped back and summed; the
label is their argmax. Writes SAVE_DIR/gray/NAME.png and
SAVE_DIR/color/NAME.png.

example:
  python pyscripts/inference/inference_segsort_msc.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 480,480 --strides 320,320 --flip_aug --scale_aug \
    --restore_from SNAPSHOT_DIR/stage2/model.ckpt-30000 \
    --num_classes 21 --embedding_dim 32 --num_clusters 5 \
    --kmeans_iterations 10 --k_in_nearest_neighbors 15 \
    --save_dir SNAPSHOT_DIR/stage2/results/val_msc \
    --prototype_dir SNAPSHOT_DIR/stage2/results/train/prototypes
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import prototype_sets  # noqa: E402


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_segsort_inference_flags(parser, overwrite=True)
  return flags.parse(parser, argv)


def infer(args):
  """Predicts and saves every image of the list; returns the names."""
  # Bad --scales stop the script before anything is loaded.
  predictor.get_scales(args.scale_aug, args.scales)
  inference_main.apply_checkpoint_settings(args, 'embedding')
  prototypes = prototype_sets.load_prototypes(
      args.prototype_dir, args.embedding_dim, args.num_classes)
  opts = inference_main.get_predictor_options(args)
  return inference_main.predict_list_multiscale(
      args, lambda: predictor.SegSortPredictor(opts, prototypes),
      'inference_segsort_msc.py')


def main(argv=None):
  return script_glue.run_script(infer, get_arguments(argv))


if __name__ == '__main__':
  main()
