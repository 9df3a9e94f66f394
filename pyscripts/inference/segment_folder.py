"""Labels every image of a folder with an exported SegSort SavedModel.

Loads EXPORT_DIR (written by pyscripts/tools/export_model.py; no
checkpoint, prototype files or model flags needed) and, for every image
file of --input_dir (.jpg, .jpeg, .png, .bmp, .gif; sorted by name; with
--recursive also in its subfolders), writes SAVE_DIR/gray/NAME.png (class
ids) and SAVE_DIR/color/NAME.png (VOC colours, or --colormap), as the
inference scripts do; NAME is the file's path below --input_dir without
its extension.

Images are decoded with PIL, as the inference scripts decode them, and fed
as uint8 [H, W, 3] to the 'serving_default' signature: the labels are those
of inference_segsort.py with the flags the model was exported with.
--feed encoded sends the file's bytes to the 'encoded_image' signature
instead (TensorFlow decodes them: the same pixels for PNG, BMP and GIF;
JPEG decoders may differ by a level here and there).

  python pyscripts/inference/segment_folder.py \\
    --export_dir SNAPSHOT_DIR/export --input_dir my_photos/ \\
    --save_dir my_photos_labels/
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import serving  # noqa: E402
from utils import atomic_io  # noqa: E402

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif')
FEED_IMAGE = 'image'
FEED_ENCODED = 'encoded'
EMBEDDING_SUBDIR = 'embedding'


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  parser.add_argument('--export_dir', type=str, required=True,
                      help='The SavedModel folder (export_model.py).')
  parser.add_argument('--input_dir', type=str, required=True,
                      help='Folder of the images to label.')
  parser.add_argument('--save_dir', type=str, required=True,
                      help='Where gray/ and color/ go (created).')
  parser.add_argument('--recursive', action='store_true',
                      help='Also label the images of the subfolders.')
  parser.add_argument('--colormap', type=str, default='',
                      help='Colormap (.mat or .npy); VOC colours by '
                           'default.')
  parser.add_argument('--feed', choices=(FEED_IMAGE, FEED_ENCODED),
                      default=FEED_IMAGE,
                      help="'image': decode with PIL, feed uint8 pixels "
                           "(default); 'encoded': feed the file's bytes.")
  parser.add_argument('--save_embedding', action='store_true',
                      help='Also write SAVE_DIR/embedding/NAME.npy (float16 '
                           '[H, W, D]; needs a model exported with '
                           '--with_embedding).')
  return parser.parse_args(argv)


def list_images(input_dir, recursive=False):
  """The image files of a folder as sorted (name, path) pairs.

  name is the path below input_dir without the extension, with '/'
  separators.

  Raises:
    FileNotFoundError: no such folder.
    serving.ExportError: no image in it, or two files with one name
      (a.jpg and a.png).
  """
  if not os.path.isdir(input_dir):
    raise FileNotFoundError('--input_dir: folder not found: %s' % input_dir)
  found = []
  for dirpath, dirnames, filenames in os.walk(input_dir):
    dirnames.sort()
    if not recursive:
      dirnames[:] = []
    for filename in filenames:
      if os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS:
        path = os.path.join(dirpath, filename)
        name = os.path.splitext(os.path.relpath(path, input_dir))[0]
        found.append((name.replace(os.sep, '/'), path))
  found.sort()
  if not found:
    raise serving.ExportError('no image (%s) in %s%s' % (
        ', '.join(IMAGE_EXTENSIONS), input_dir,
        '' if recursive else ' (--recursive for its subfolders)'))
  names = [name for name, _ in found]
  repeated = sorted({n for i, n in enumerate(names) if n in names[:i]})
  if repeated:
    raise serving.ExportError('several images named %s in %s (their '
                              'outputs would overwrite each other)'
                              % (', '.join(repeated[:5]), input_dir))
  return found


def read_rgb(path):
  """An image file as uint8 [H, W, 3], decoded as the inference scripts do."""
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert('RGB'), dtype=np.uint8)
  except (OSError, ValueError) as e:
    raise serving.ExportError('cannot decode image %s: %s' % (path, e)) from e


def segment(args):
  """Labels the folder; returns the names of the images written."""
  colormap = inference_main.get_colormap(args.colormap)
  images = list_images(args.input_dir, args.recursive)
  with serving.ExportedSegmenter(args.export_dir) as model:
    if args.save_embedding and serving.OUTPUT_EMBEDDING not in model.outputs:
      raise serving.ExportError(
          '--save_embedding: %s has no embedding output (export it with '
          '--with_embedding)' % args.export_dir)
    settings = model.metadata.get('settings', {})
    tqdm.write('Loaded %s (checkpoint %s, %s prototypes, window %s)' % (
        args.export_dir, model.metadata.get('checkpoint', '?'),
        model.metadata.get('num_prototypes', '?'),
        settings.get('input_size', '?')))
    inference_main.make_output_dirs(args.save_dir)
    for name, path in tqdm(images, desc='segment', unit='image'):
      if args.feed == FEED_ENCODED:
        with open(path, 'rb') as f:
          outputs = model.segment_encoded(f.read())
      else:
        outputs = model.segment(read_rgb(path))
      inference_main.save_prediction(args.save_dir, name,
                                     outputs[serving.OUTPUT_LABELS], colormap)
      if args.save_embedding:
        target = os.path.join(args.save_dir, EMBEDDING_SUBDIR, name + '.npy')
        with atomic_io.atomic_open(target) as f:
          np.save(f, outputs[serving.OUTPUT_EMBEDDING].astype(np.float16))
  return [name for name, _ in images]


def main(argv=None):
  return script_glue.run_script(segment, get_arguments(argv))


if __name__ == '__main__':
  main()
