r"""Single-scale inference of the pixel-wise softmax baseline (train.py).

Every image goes through the sliding window (--input_size, --strides) over
the zero-padded image; each window's softmax probabilities are summed where
windows overlap; the label is their argmax. Writes SAVE_DIR/gray/NAME.png
and SAVE_DIR/color/NAME.png. Multi-scale: inference_msc.py. The original's
hyphenated spellings (--data-dir, --data-list, --input-size, --num-classes,
--ignore-label, --restore-from, --save-dir) are accepted too.

example:
  python pyscripts/inference/inference.py \
    --data_dir VOCdevkit/ --data_list dataset/voc12/val.txt \
    --input_size 720,720 --strides 320,320 --num_classes 21 \
    --restore_from snapshots/voc12/softmax/model.ckpt-30000 \
    --save_dir snapshots/voc12/softmax/results/val
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


from pyscripts import flags  # noqa: E402
from pyscripts import inference_main  # noqa: E402
from pyscripts import script_glue  # noqa: E402
from seg_models import predictor  # noqa: E402


def get_parser(description, multiscale=False):
  """The flags of inference.py and inference_msc.py (both spellings)."""
  parser = flags.get_parser(description)
  flags.add_data_flags(parser, input_size=flags.INFERENCE_WINDOW,
                       training=False, ignore_label=False)
  flags.add_model_flags(parser, training=False)
  flags.add_inference_flags(parser, multiscale=multiscale, overwrite=True)
  flags.accept_hyphenated(parser, flags.SOFTMAX_INFERENCE_HYPHENATED)
  return parser


def get_arguments(argv=None):
  return flags.parse(get_parser(__doc__), argv)


def infer(args):
  """Predicts and saves every image of the list; returns the names."""
  inference_main.reject_multiscale_flags(args, 'inference.py',
                                         'inference_msc.py')
  inference_main.apply_checkpoint_settings(args, 'logits')
  opts = inference_main.get_predictor_options(args)
  return inference_main.predict_list(
      args, lambda: predictor.SoftmaxPredictor(opts),
      lambda model, image: model.predict(image),
      mode=inference_main.SINGLE_SCALE, script='inference.py')


def main(argv=None):
  return script_glue.run_script(infer, get_arguments(argv))


if __name__ == '__main__':
  main()
