r"""Inference of the pixel-wise softmax baseline (train.py), one or many scales.

Without --scale_aug, --scales or --flip_aug: the argmax of the logits over
the sliding window (--input_size, --strides; logits averaged where windows
overlap). With them: for every scale (0.5 ... 1.75 with --scale_aug, or
--scales) and, with --flip_aug, its mirror, the softmax probabilities are
resized to the image, flipped back and summed; argmax. Writes
SAVE_DIR/gray/NAME.png and SAVE_DIR/color/NAME.png.

example:
  python pyscripts/inference/inference.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 720,720 --strides 320,320 --num_classes 21 \
    --restore_from snapshots/voc12/softmax/model.ckpt-30000 \
    --save_dir snapshots/voc12/softmax/results/val

multi-scale (its own folder: a run refuses to write over the other mode's
results, see --overwrite):
  python pyscripts/inference/inference.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 480,480 --strides 320,320 --scale_aug --flip_aug \
    --restore_from snapshots/voc12/softmax \
    --save_dir snapshots/voc12/softmax/results/val_msc
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402


def get_arguments(argv=None):
  parser = flags.get_parser(__doc__)
  flags.add_data_flags(parser, input_size='720,720', training=False,
                       ignore_label=False)
  flags.add_model_flags(parser, training=False)
  flags.add_inference_flags(parser, overwrite=True)
  return flags.parse(parser, argv)


def infer(args):
  """Predicts and saves every image of the list; returns the names."""
  inference_main.apply_checkpoint_settings(args, 'logits')
  multiscale = bool(args.scale_aug or args.scales or args.flip_aug)
  scales = predictor.get_scales(args.scale_aug, args.scales)
  opts = inference_main.get_predictor_options(args)

  def predict(model, image):
    if multiscale:
      return model.predict_multiscale(image, scales, args.flip_aug)
    return model.predict(image)
  return inference_main.predict_list(
      args, lambda: predictor.SoftmaxPredictor(opts), predict,
      mode=(inference_main.MULTI_SCALE if multiscale else
            inference_main.SINGLE_SCALE),
      script='inference.py', scales=scales if multiscale else None,
      flip=args.flip_aug)


def main(argv=None):
  return script_glue.run_script(infer, get_arguments(argv))


if __name__ == '__main__':
  main()
