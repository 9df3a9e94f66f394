"""Multi-scale inference of the pixel-wise softmax baseline (train.py).

With --scale_aug the image is resized by 0.5, 0.75, 1, 1.25, 1.5 and 1.75
(--scales overrides the list), with --flip_aug each is also mirrored;
neither: the image as it is. Every view goes through the sliding window
(--input_size, --strides); its windows' softmax probabilities are averaged
where they overlap, resized to the image and flipped back; the views' maps
are summed and the label is their argmax. Writes SAVE_DIR/gray/NAME.png and
SAVE_DIR/color/NAME.png (SAVE_DIR/inference.json records the run). The
original's hyphenated spellings (--data-dir, --data-list, --input-size,
--num-classes, --ignore-label, --restore-from, --save-dir, --flip-aug,
--scale-aug) are accepted too.

example:
  python pyscripts/inference/inference_msc.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 480,480 --strides 320,320 --num_classes 21 \
    --flip_aug --scale_aug \
    --restore_from snapshots/voc12/softmax/model.ckpt-30000 \
    --save_dir snapshots/voc12/softmax/results/val_msc
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from pyscripts.inference import inference  # noqa: E402
from seg_models import predictor  # noqa: E402


def get_arguments(argv=None):
  return flags.parse(inference.get_parser(__doc__, multiscale=True), argv)


def infer(args):
  """Predicts and saves every image of the list; returns the names."""
  inference_main.apply_checkpoint_settings(args, 'logits')
  opts = inference_main.get_predictor_options(args)
  return inference_main.predict_list_multiscale(
      args, lambda: predictor.SoftmaxPredictor(opts), 'inference_msc.py')


def main(argv=None):
  return script_glue.run_script(infer, get_arguments(argv))


if __name__ == '__main__':
  main()
