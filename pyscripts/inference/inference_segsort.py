r"""Single-scale SegSort inference: kNN labels for the segments of every image.

The image is zero-padded to --input_size (default 512,512; the VOC recipes
pass 720,720, which holds every VOC image; larger images go through the
sliding window with --strides), embedded, and its pixels are clustered by
k-means (with location) from the grid over the padded input (--kmeans_grid
canvas: a 500x375 image in 720x720 starts from 12 clusters; image: from the
grid over the image); every cluster takes the majority class of its
--k_in_nearest_neighbors nearest training prototypes (--prototype_dir, from
extract_prototypes.py). Writes
SAVE_DIR/gray/NAME.png (class ids) and SAVE_DIR/color/NAME.png (VOC colours,
or --colormap).

example:
  python pyscripts/inference/inference_segsort.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 720,720 --strides 320,320 \
    --restore_from SNAPSHOT_DIR/stage1/model.ckpt-30000 \
    --num_classes 21 --embedding_dim 32 --num_clusters 5 \
    --kmeans_iterations 10 --k_in_nearest_neighbors 15 \
    --save_dir SNAPSHOT_DIR/stage1/results/val \
    --prototype_dir SNAPSHOT_DIR/stage1/results/train+/prototypes
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
  flags.add_segsort_inference_flags(parser, multiscale=False, overwrite=True)
  return flags.parse(parser, argv)


def infer(args):
  """Predicts and saves every image of the list; returns the names."""
  inference_main.reject_multiscale_flags(args, 'inference_segsort.py')
  inference_main.apply_checkpoint_settings(args, 'embedding')
  prototypes = prototype_sets.load_prototypes(
      args.prototype_dir, args.embedding_dim, args.num_classes)
  opts = inference_main.get_predictor_options(args)
  return inference_main.predict_list(
      args, lambda: predictor.SegSortPredictor(opts, prototypes),
      lambda model, image: model.predict(image),
      script='inference_segsort.py')


def main(argv=None):
  return script_glue.run_script(infer, get_arguments(argv))


if __name__ == '__main__':
  main()
