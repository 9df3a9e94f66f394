"""The original release's utils/general.py functions, by name and call.

Code written against the original release calls these three; they are thin
wrappers over utils.label_images, utils.colormaps and utils.config_snapshot,
which the project's own code uses directly.
"""
import numpy as np

from utils import colormaps
from utils import config_snapshot
from utils import label_images


def decode_labels(labels, num_classes=21):
  """Paints label maps with the VOC palette.

  Args:
    labels: An integer array [N, H, W, 1] of ids in [0, 256).
    num_classes: Accepted for the original's call shape; every id is painted
      with its palette colour whatever its value.

  Returns:
    A uint8 array [N, H, W, 3].
  """
  del num_classes
  labels = np.asarray(labels)
  outputs = np.zeros(labels.shape[:3] + (3,), np.uint8)
  for i, label in enumerate(labels):
    outputs[i] = label_images.label_to_color(label[:, :, 0],
                                             colormaps.VOC_COLORMAP)
  return outputs


def inv_preprocess(imgs, img_mean):
  """Adds the mean back to mean-subtracted images.

  Args:
    imgs: A float array [N, H, W, 3].
    img_mean: The per-channel mean [3] that was subtracted.

  Returns:
    A uint8 array [N, H, W, 3]: imgs + img_mean, rounded (float32 images
    give back 0.99999 for 1) and clipped to [0, 255].
  """
  restored = np.asarray(imgs, np.float64) + np.asarray(img_mean, np.float64)
  return np.clip(np.round(restored), 0, 255).astype(np.uint8)


def snapshot_arg(args):
  """Prints the parsed arguments and writes them to SNAPSHOT_DIR/config.

  Args:
    args: An argparse.Namespace with a `snapshot_dir` attribute.

  Returns:
    The path of the config file (see utils.config_snapshot.save_config).
  """
  values = vars(args)
  for name in sorted(values):
    print('| %s = %s' % (name, values[name]))
  return config_snapshot.save_config(args.snapshot_dir, values)
