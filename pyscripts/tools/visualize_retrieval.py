r"""Pictures of what SegSort retrieved: segments and their nearest training ones.

For every image of --data_list: the single-scale prediction of
inference_segsort.py, then SAVE_DIR/retrieval/NAME.png with the image, its
segments, the predicted labels (and the ground truth when the list has a
label column), and, for each of the --num_segments largest segments, the
--k_in_nearest_neighbors training segments it voted with (crops of the
training images, with their classes and similarities); and
SAVE_DIR/pca/NAME.png, the embedding's first three principal components as
RGB. Needs the prototype_index.json that extract_prototypes.py writes next
to the prototypes.

example:
  python pyscripts/tools/visualize_retrieval.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --restore_from SNAPSHOT_DIR/stage1/model.ckpt-30000 \
    --prototype_dir SNAPSHOT_DIR/stage1/results/train+/prototypes \
    --save_dir SNAPSHOT_DIR/stage1/results/val_retrieval --max_images 20
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from tqdm import tqdm  # noqa: E402

from network.segsort import vis_utils  # noqa: E402
from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402
from seg_models import prototype_sets  # noqa: E402
from seg_models import retrieval_vis  # noqa: E402
from utils import atomic_io  # noqa: E402
from utils import classes  # noqa: E402

RETRIEVAL_SUBDIR = 'retrieval'
PCA_SUBDIR = 'pca'


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_segsort_inference_flags(parser, input_size='720,720',
                                    strides='320,320', multiscale=False)
  group = parser.add_argument_group('pictures')
  group.add_argument('--num_segments', type=int, default=3,
                     help='Show the neighbours of this many of the largest '
                          'segments.')
  group.add_argument('--thumbnail_size', type=int, default=96,
                     help='Side in pixels of the box every crop is fitted '
                          'in.')
  group.add_argument('--max_images', type=int, default=0,
                     help='Only the first this many images (0 = all).')
  group.add_argument('--class_names', type=str, default='',
                     help='Optional text file, one class name per line.')
  group.add_argument('--prototype_data_dir', type=str, default='',
                     help='Folder of the training images (default: the '
                          'data_dir recorded in the prototype index).')
  return flags.parse(parser, argv)


def visualize(args):
  """Writes the pictures; returns the paths of the retrieval pictures."""
  inference_main.reject_multiscale_flags(args, 'visualize_retrieval.py')
  save_dir = inference_main.require_save_dir(args)
  inference_main.apply_checkpoint_settings(args, 'embedding')
  if args.num_segments < 0 or args.thumbnail_size < 8:
    raise predictor.PredictorError('--num_segments must be >= 0 and '
                                   '--thumbnail_size >= 8')
  colormap = inference_main.get_colormap(args.colormap)
  class_names = classes.get_class_names(args.num_classes, args.class_names)
  entries = inference_main.get_entries(args)
  if args.max_images > 0:
    entries = entries[:args.max_images]
  prototypes = prototype_sets.load_prototypes(
      args.prototype_dir, args.embedding_dim, args.num_classes,
      need_index=True)
  crops = retrieval_vis.TrainingCrops(prototypes, args.prototype_data_dir)
  opts = inference_main.get_predictor_options(args)
  paths = []
  with predictor.SegSortPredictor(opts, prototypes) as model:
    tqdm.write('Restored model parameters from %s' % model.checkpoint)
    for entry in tqdm(entries, desc='pictures', unit='image'):
      image = inference_main.load_image(entry)
      prediction = model.predict(image, details=True)
      ground_truth = None
      if entry.label is not None and os.path.isfile(entry.label):
        ground_truth = inference_main.load_label(entry, 256, 255)
      picture = retrieval_vis.make_retrieval_picture(
          image, prediction, crops, class_names, colormap,
          args.num_segments, args.thumbnail_size, ground_truth)
      path = os.path.join(save_dir, RETRIEVAL_SUBDIR, entry.name + '.png')
      atomic_io.atomic_save_png(path, picture)
      atomic_io.atomic_save_png(
          os.path.join(save_dir, PCA_SUBDIR, entry.name + '.png'),
          vis_utils.pca_picture(prediction.embedding))
      paths.append(path)
  return paths


def main(argv=None):
  return script_glue.run_script(visualize, get_arguments(argv))


if __name__ == '__main__':
  main()
