r"""Extracts the segment prototypes of an annotated set with SegSort.

Every image goes through the network window by window (--input_size,
--strides) over the zero-padded image, the upsampled outputs summed where
windows overlap; k-means on the embedding (with location) from the grid
start; each cluster takes its majority class, and its pixels of that class
form its prototype. Writes SAVE_DIR/prototypes/prototype_features.npy
[P, D], prototype_labels.npy [P] and prototype_index.json (new here: the
image and box every prototype came from, for visualize_retrieval.py), all or
none.

example:
  python pyscripts/inference/extract_prototypes.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/train+.txt \
    --restore_from SNAPSHOT_DIR/stage1/model.ckpt-30000 \
    --input_size 480,480 --strides 320,320 --num_classes 21 \
    --embedding_dim 32 --num_clusters 5 --kmeans_iterations 10 \
    --save_dir SNAPSHOT_DIR/stage1/results/train+
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from tqdm import tqdm  # noqa: E402

from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import prototype_sets  # noqa: E402


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_data_flags(parser, input_size=flags.INFERENCE_WINDOW,
                       training=False)
  flags.add_model_flags(parser, training=False)
  flags.add_segsort_flags(parser, training=False)
  flags.add_inference_flags(parser, strides=flags.INFERENCE_WINDOW,
                            multiscale=False, colormap=False)
  return flags.parse(parser, argv)


def extract(args):
  """Extracts and saves the prototypes; returns the PrototypeSet."""
  inference_main.reject_multiscale_flags(args, 'extract_prototypes.py')
  save_dir = inference_main.require_save_dir(args)
  inference_main.apply_checkpoint_settings(args, 'embedding')
  entries = inference_main.get_entries(args, need_label=True)
  collector = prototype_sets.PrototypeCollector(
      args.embedding_dim, args.data_dir, args.data_list)
  opts = inference_main.get_predictor_options(args)
  with predictor.SegSortPredictor(opts) as model:
    tqdm.write('Restored model parameters from %s' % model.checkpoint)
    for entry in tqdm(entries, desc='prototypes', unit='image'):
      image = inference_main.load_image(entry)
      label = inference_main.load_label(entry, args.num_classes,
                                        args.ignore_label)
      collector.add(entry.image, entry.name,
                    model.extract_prototypes(image, label))
  prototype_dir = os.path.join(save_dir, prototype_sets.PROTOTYPE_SUBDIR)
  prototypes = collector.save(prototype_dir)
  tqdm.write('Total number of prototypes extracted: %d (in %s)'
             % (len(prototypes), prototype_dir))
  return prototypes


def main(argv=None):
  return script_glue.run_script(extract, get_arguments(argv))


if __name__ == '__main__':
  main()
