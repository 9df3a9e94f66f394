"""Exports a SegSort model and its prototype bank as one TensorFlow SavedModel.

The SavedModel maps an image to its label map in one call: the network
over sliding windows, the test-time k-means and the kNN vote over the
training prototypes (held inside the model), the single-scale inference of
inference_segsort.py with the same flags. It has two signatures:

  serving_default   image: uint8 [H, W, 3]          -> labels: int32 [H, W]
  encoded_image     image_bytes: a PNG/JPEG file   -> labels: int32 [H, W]

and, with --with_embedding, a second output 'embedding' float32 [H, W, D]
(unit vectors). The settings, the checkpoint and the prototype set are
recorded in EXPORT_DIR/assets.extra/segsort_export.json. The folder is
written under a temporary name and renamed when complete.

  python pyscripts/tools/export_model.py \\
    --restore_from SNAPSHOT_DIR/stage1 \\
    --prototype_dir SNAPSHOT_DIR/stage1/results/train+/prototypes \\
    --input_size 720,720 --strides 320,320 --num_classes 21 \\
    --embedding_dim 32 --num_clusters 5 --kmeans_iterations 10 \\
    --k_in_nearest_neighbors 15 --export_dir SNAPSHOT_DIR/export

Label a folder of images with it: pyscripts/inference/segment_folder.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import prototype_sets  # noqa: E402
from seg_models import serving  # noqa: E402


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  group = parser.add_argument_group('exported graph')
  group.add_argument('--input_size', type=flags.int_pair,
                     default=flags.INFERENCE_WINDOW,
                     help='Comma-separated H,W of the sliding window (as '
                          'inference_segsort.py).')
  group.add_argument('--strides', type=flags.int_pair,
                     default=flags.INFERENCE_WINDOW,
                     help='Comma-separated H,W strides of the sliding '
                          'window.')
  group.add_argument('--inference_batch_size', type=flags.int_at_least(1),
                     default=4,
                     help='Windows per network call inside the graph '
                          '(memory grows with it).')
  group.add_argument('--export_dir', type=str, default='',
                     help='The SavedModel folder to write.')
  group.add_argument('--with_embedding', action='store_true',
                     help="Also output the unit embedding ('embedding', "
                          'float32 [H, W, D]).')
  group.add_argument('--overwrite', action='store_true',
                     help='Replace an existing --export_dir.')
  flags.add_model_flags(parser)
  flags.add_segsort_flags(parser)
  flags.add_knn_flags(parser)
  flags.add_prediction_flags(parser)
  return flags.parse(parser, argv)


def export(args):
  """Writes the SavedModel; returns its metadata (dict)."""
  if not args.export_dir:
    raise serving.ExportError('--export_dir is required')
  if not args.restore_from:
    raise serving.ExportError('--restore_from is required (a checkpoint '
                              'prefix or a snapshot folder)')
  # The model flags not given come from the checkpoint's model.json.
  inference_main.apply_checkpoint_settings(args, 'embedding')
  prototypes = prototype_sets.load_prototypes(
      args.prototype_dir, args.embedding_dim, args.num_classes)
  opts = inference_main.get_predictor_options(args)
  metadata = serving.export_saved_model(
      opts, prototypes, args.export_dir, args.prototype_dir,
      with_embedding=args.with_embedding, overwrite=args.overwrite)
  print('Exported %s with %d prototypes from %s to %s (signatures %s)'
        % (metadata['checkpoint'], metadata['num_prototypes'],
           args.prototype_dir, args.export_dir,
           ', '.join(sorted(metadata['signatures']))))
  return metadata


def main(argv=None):
  return script_glue.run_script(export, get_arguments(argv))


if __name__ == '__main__':
  main()
