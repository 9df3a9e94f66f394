"""One trainer behind the four training scripts.

    train_segsort.py        LOSS_SEGSORT, one tower
    train_segsort_mgpu.py   LOSS_SEGSORT, --num_gpu towers
    train_segsort_unsup.py  LOSS_UNSUPERVISED (oversegmentation masks)
    train.py                LOSS_SOFTMAX (pixel-wise softmax baseline)

The recipe is the original release's: SGD with momentum, poly learning rate
lr * (1 - step / num_steps)^power, the head (block5) at 10x, L2 weight decay
on every conv weight, restore from --restore_from (skipping the head with
--not_restore_classifier). On top of it:

- --iter_size N accumulates the gradients of N batches into ONE update (the
  original ran N updates);
- a run whose --snapshot_dir holds checkpoints resumes from the latest one:
  step, learning rate, momentum, batch-norm statistics and memory banks are
  restored and the input pipeline skips the batches already seen, so a
  resumed run ends where an uninterrupted one does;
- Ctrl-C writes a checkpoint before leaving;
- towers: with --num_gpu N the batch is split over N devices (GPUs, or
  virtual CPU devices when there is no GPU) that share variables; batch norm
  is synchronised across them; the loss sees the whole batch.
"""
import dataclasses
import math
import os
import time

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from network.multigpu import towers
from network.segsort import train_utils
from network.segsort import vis_utils
from seg_models import checkpoints
from seg_models import image_reader
from seg_models import models
from seg_models.models import common
from utils import general

LOSS_SEGSORT = 'segsort'
LOSS_UNSUPERVISED = 'segsort_unsup'
LOSS_SOFTMAX = 'softmax'
LOSS_TYPES = (LOSS_SEGSORT, LOSS_UNSUPERVISED, LOSS_SOFTMAX)

# The network's output stride.
OUTPUT_STRIDE = 8
# Learning-rate multiplier of the head (block5), as the original.
HEAD_LR_MULTIPLIER = 10.0
# How many images of a batch go to TensorBoard.
MAX_SUMMARY_IMAGES = 3


class TrainingError(ValueError):
  """Options that cannot train (reported without a stack trace)."""


@dataclasses.dataclass
class TrainOptions:
  """Everything the trainer needs; the defaults are the original's."""
  data_dir: str = ''
  data_list: str = ''
  input_size: tuple = (336, 336)
  batch_size: int = 1
  ignore_label: int = 255
  random_seed: int = 1234
  model: str = 'pspnet'
  backbone: str = 'resnet_v1_101'
  backbone_variant: str = 'original'
  width_multiplier: float = 1.0
  bn_decay: float = None
  num_classes: int = 21
  is_training: bool = True
  use_global_status: bool = False
  restore_from: str = ''
  embedding_dim: int = 32
  concentration: float = 10.0
  num_clusters: int = 5
  kmeans_iterations: int = 10
  num_banks: int = 2
  learning_rate: float = 1e-3
  power: float = 0.9
  momentum: float = 0.9
  weight_decay: float = 5e-4
  num_steps: int = 20000
  iter_size: int = 10
  random_mirror: bool = False
  random_crop: bool = False
  random_scale: bool = False
  save_pred_every: int = 10000
  update_tb_every: int = 20
  snapshot_dir: str = ''
  not_restore_classifier: bool = False
  num_gpu: int = 1
  xla: bool = False
  show_progress: bool = True

  @classmethod
  def from_args(cls, args, **overrides):
    """Options from parsed flags (fields the script does not have keep
    their defaults)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


def get_output_size(input_size):
  """(ceil(h / 8), ceil(w / 8)), the size of the network's outputs."""
  return tuple(int(math.ceil(v / float(OUTPUT_STRIDE))) for v in input_size)


def resize_labels(labels, size):
  """Nearest-neighbour resize of [B, H, W, C] label maps (the original's)."""
  return tf.image.resize_nearest_neighbor(labels, size, align_corners=False)


def add_softmax_loss(logits, labels, num_classes, ignore_label):
  """Pixel-wise softmax cross-entropy over the pixels with a valid class.

  loss = mean over pixels i with 0 <= y_i < num_classes and y_i !=
  ignore_label of -log softmax(logits_i)[y_i]; 0 when no pixel is valid.

  Args:
    logits: [B, h, w, num_classes].
    labels: [B, h, w, 1] or [B, h, w] integer classes.
    num_classes: C.
    ignore_label: the class id to leave out.

  Returns:
    A scalar loss.
  """
  labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
  logits = tf.reshape(logits, [-1, num_classes])
  valid = tf.logical_and(tf.logical_and(labels >= 0, labels < num_classes),
                         tf.not_equal(labels, ignore_label))
  indices = tf.squeeze(tf.where(valid), 1)
  losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.gather(labels, indices), logits=tf.gather(logits, indices))
  count = tf.cast(tf.size(indices), tf.float32)
  return tf.reduce_sum(losses) / tf.maximum(count, 1.0)


def get_weight_decay_loss(weight_decay, variables):
  """weight_decay * sum of ||w||^2 / 2 over the conv weights."""
  weights = [v for v in variables if v.op.name.endswith('/weights')]
  if not weights or weight_decay == 0:
    return tf.constant(0.0)
  return weight_decay * tf.add_n([tf.nn.l2_loss(w) for w in weights])


def get_poly_learning_rate(base_lr, step, num_steps, power):
  """base_lr * (1 - step / num_steps)^power (never negative)."""
  progress = tf.minimum(tf.cast(step, tf.float32) / float(num_steps), 1.0)
  return base_lr * tf.pow(1.0 - progress, power)


def _color_labels(labels, colormap):
  """[B, H, W, 1] int labels -> [B, H, W, 3] uint8 colours."""
  indices = tf.clip_by_value(tf.cast(labels[..., 0], tf.int32), 0,
                             colormap.shape[0] - 1)
  return tf.gather(tf.constant(colormap), indices)


def _image_summaries(images, labels, output, loss_type):
  """One row per image: input | ground truth | embedding PCA / prediction."""
  size = images.get_shape().as_list()[1:3]
  colormap = general.get_colormap()
  pictures = [tf.cast(tf.clip_by_value(
      images + image_reader.IMG_MEAN, 0, 255), tf.uint8)]
  if labels is not None:
    pictures.append(_color_labels(labels, colormap))
  if loss_type == LOSS_SOFTMAX:
    prediction = tf.expand_dims(tf.argmax(output, axis=3), 3)
    pictures.append(_color_labels(
        tf.image.resize_nearest_neighbor(prediction, size), colormap))
  else:
    pca = vis_utils.embedding_to_pca_image(tf.stop_gradient(output))
    pictures.append(tf.image.resize_nearest_neighbor(pca, size))
  return tf.summary.image('images', tf.concat(pictures, axis=2),
                          max_outputs=MAX_SUMMARY_IMAGES)


class _TrainGraph(object):
  """The ops of one training graph (see build_train_graph)."""

  def __init__(self, **ops):
    self.__dict__.update(ops)


def _check_options(opts, loss_type):
  if loss_type not in LOSS_TYPES:
    raise TrainingError('Unknown loss %r; choose one of %s.'
                        % (loss_type, LOSS_TYPES))
  if not opts.is_training:
    raise TrainingError('Nothing to train without --is_training (the '
                        'original made every variable non-trainable then).')
  if not opts.snapshot_dir:
    raise TrainingError('--snapshot_dir is required.')
  if opts.batch_size % opts.num_gpu:
    raise TrainingError('--batch_size %d is not a multiple of --num_gpu %d.'
                        % (opts.batch_size, opts.num_gpu))
  if opts.num_banks < 0:
    raise TrainingError('--num_banks must be >= 0, got %d.' % opts.num_banks)


def build_train_graph(opts, loss_type, start_step=0):
  """Builds inputs, towers, loss, optimiser and summaries into the graph.

  Args:
    opts: TrainOptions.
    loss_type: one of LOSS_TYPES.
    start_step: the step training resumes at (the input pipeline skips the
      batches of the steps before it).

  Returns:
    A _TrainGraph with the ops the loop runs.
  """
  _check_options(opts, loss_type)
  tf.set_random_seed(opts.random_seed)
  segsort = loss_type == LOSS_SEGSORT
  unsupervised = loss_type == LOSS_UNSUPERVISED
  with tf.device('/cpu:0'), tf.name_scope('create_inputs'):
    dataset = image_reader.get_train_dataset(
        opts.data_dir, opts.data_list, opts.input_size, opts.batch_size,
        random_scale=opts.random_scale, random_mirror=opts.random_mirror,
        random_crop=opts.random_crop, ignore_label=opts.ignore_label,
        num_clusters=opts.num_clusters if segsort else None,
        with_label=not unsupervised, with_overseg=unsupervised,
        shuffle=True, seed=opts.random_seed,
        skip_batches=start_step * opts.iter_size)
    batch = tf.data.make_one_shot_iterator(dataset).get_next()
  images = batch[image_reader.IMAGE]
  out_size = get_output_size(opts.input_size)

  # Created before the loss: the memory banks draw their shuffle from it.
  global_step = tf.train.get_or_create_global_step()
  model_fn = models.get_model_fn(opts.model, opts.backbone,
                                 opts.width_multiplier, opts.backbone_variant,
                                 opts.bn_decay)
  num_outputs = opts.num_classes if loss_type == LOSS_SOFTMAX else (
      opts.embedding_dim)
  variables_before = set(tf.global_variables())
  if opts.num_gpu > 1:
    devices = towers.get_tower_devices(opts.num_gpu)
    parts = towers.split_batch({image_reader.IMAGE: images}, devices)
    tower_outputs = model_fn([p[image_reader.IMAGE] for p in parts],
                             num_outputs, opts.is_training,
                             opts.use_global_status)
    with tf.device(devices[0]):
      output = tf.concat(tower_outputs, axis=0)
  else:
    devices = [None]
    output = model_fn(images, num_outputs, opts.is_training,
                      opts.use_global_status)
  # The model's variables (what --restore_from restores): not the global
  # step, the optimiser's slots or the memory banks.
  model_variables = [v for v in tf.global_variables()
                     if v not in variables_before]

  labels = None
  with tf.device(devices[0]), tf.name_scope('loss'):
    if unsupervised:
      overseg = resize_labels(batch[image_reader.OVERSEG], out_size)
      seg_loss = train_utils.add_unsupervised_segsort_loss(
          output, opts.concentration, overseg)
    else:
      labels = resize_labels(batch[image_reader.LABEL], out_size)
      if segsort:
        seg_loss = train_utils.add_segsort_loss(
            output, labels, opts.embedding_dim, opts.ignore_label,
            opts.concentration,
            resize_labels(batch[image_reader.CLUSTER_LABEL], out_size),
            opts.num_clusters, opts.kmeans_iterations, opts.num_banks,
            resize_labels(batch[image_reader.LOCATION], out_size))
      else:
        seg_loss = add_softmax_loss(output, labels, opts.num_classes,
                                    opts.ignore_label)
    trainable = tf.trainable_variables()
    l2_loss = get_weight_decay_loss(opts.weight_decay, trainable)
    total_loss = seg_loss + l2_loss

  learning_rate = get_poly_learning_rate(opts.learning_rate, global_step,
                                         opts.num_steps, opts.power)
  head_vars = [v for v in trainable if common.is_head_variable(v)]
  base_vars = [v for v in trainable if not common.is_head_variable(v)]
  grads = tf.gradients(total_loss, base_vars + head_vars,
                       colocate_gradients_with_ops=True)
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)

  def apply(gradients):
    opt_base = tf.train.MomentumOptimizer(learning_rate, opts.momentum)
    opt_head = tf.train.MomentumOptimizer(learning_rate * HEAD_LR_MULTIPLIER,
                                          opts.momentum)
    ops = [opt_base.apply_gradients(
        list(zip(gradients[:len(base_vars)], base_vars)),
        global_step=global_step)]
    if head_vars:
      ops.append(opt_head.apply_gradients(
          list(zip(gradients[len(base_vars):], head_vars))))
    return tf.group(*ops)

  if opts.iter_size == 1:
    with tf.control_dependencies(update_ops):
      step_op = apply(grads)
    accumulate_op = zero_op = None
  else:
    # Gradients of iter_size batches are averaged in local (never saved)
    # accumulators, then applied once.
    accumulators = [
        tf.Variable(tf.zeros(v.shape, v.dtype.base_dtype), trainable=False,
                    collections=[tf.GraphKeys.LOCAL_VARIABLES],
                    name=v.op.name.replace('/', '_') + '_accumulator')
        for v in base_vars + head_vars]
    zero_op = tf.group(*[a.assign(tf.zeros_like(a)) for a in accumulators])
    accumulate_op = tf.group(*(
        [a.assign_add(g / float(opts.iter_size))
         for a, g in zip(accumulators, grads)] + update_ops))
    step_op = apply([a.read_value() for a in accumulators])

  with tf.device('/cpu:0'):
    summaries = [tf.summary.scalar('seg_loss', seg_loss),
                 tf.summary.scalar('l2_loss', l2_loss),
                 tf.summary.scalar('total_loss', total_loss),
                 tf.summary.scalar('learning_rate', learning_rate),
                 _image_summaries(images, batch.get(image_reader.LABEL),
                                  output, loss_type)]
    summary_op = tf.summary.merge(summaries)

  return _TrainGraph(
      images=images, labels=labels, output=output,
      total_loss=total_loss, seg_loss=seg_loss, learning_rate=learning_rate,
      global_step=global_step, step_op=step_op, accumulate_op=accumulate_op,
      zero_op=zero_op, summary_op=summary_op,
      model_variables=model_variables, num_devices=len(devices),
      cpu_towers=opts.num_gpu > 1 and devices[0].startswith('/cpu'))


def _save(saver, sess, snapshot_dir, step):
  """Writes SNAPSHOT_DIR/model.ckpt-STEP (the `checkpoint` index is updated
  only once the files are complete, so a checkpoint is there or absent)."""
  return saver.save(sess, os.path.join(snapshot_dir,
                                       checkpoints.CHECKPOINT_PREFIX),
                    global_step=step, write_meta_graph=False)


def train(opts, loss_type, config_args=None, step_callback=None):
  """Trains to opts.num_steps, resuming from SNAPSHOT_DIR when possible.

  Args:
    opts: TrainOptions.
    loss_type: one of LOSS_TYPES.
    config_args: what to write to SNAPSHOT_DIR/config (the parsed flags);
      defaults to opts.
    step_callback: optional fn(step, loss) called after every update (a
      KeyboardInterrupt raised there is handled as Ctrl-C).

  Returns:
    A dict: {'step': last step, 'loss': last loss, 'checkpoint': path,
    'seconds': wall time of the loop}.
  """
  _check_options(opts, loss_type)
  os.makedirs(opts.snapshot_dir, exist_ok=True)
  general.save_config(opts.snapshot_dir, config_args if config_args
                      is not None else dataclasses.asdict(opts))
  start_step = checkpoints.latest_step(opts.snapshot_dir) or 0
  resume = start_step > 0 or tf.train.latest_checkpoint(opts.snapshot_dir)

  graph = tf.Graph()
  with graph.as_default():
    g = build_train_graph(opts, loss_type, start_step=start_step)
    saver = tf.train.Saver(var_list=tf.global_variables(), max_to_keep=10)
    init_ops = [tf.global_variables_initializer(),
                tf.local_variables_initializer()]
    writer = tf.summary.FileWriter(opts.snapshot_dir, graph=graph)
    config = towers.session_config(g.num_devices if g.cpu_towers else 1,
                                   xla=opts.xla)
    restorer = None
    if not resume and opts.restore_from:
      restorer = checkpoints.get_restorer(
          opts.restore_from, g.model_variables,
          skip_head=opts.not_restore_classifier)
    graph.finalize()

  with tf.Session(graph=graph, config=config) as sess:
    sess.run(init_ops)
    if resume:
      checkpoint = tf.train.latest_checkpoint(opts.snapshot_dir)
      saver.restore(sess, checkpoint)
      tqdm.write('Resumed from %s' % checkpoint)
    elif restorer is not None:
      checkpoint, _, restore = restorer
      restore(sess)
      tqdm.write('Restored model parameters from %s' % checkpoint)
    step = int(sess.run(g.global_step))
    last = dict(step=step, loss=float('nan'), checkpoint=None, seconds=0.0)
    start = time.time()
    pbar = tqdm(total=opts.num_steps, initial=step, desc='train',
                disable=not opts.show_progress, dynamic_ncols=True)
    try:
      while step < opts.num_steps:
        write_summary = step % opts.update_tb_every == 0
        loss_sum = 0.0
        if g.zero_op is not None:
          sess.run(g.zero_op)
        for it in range(opts.iter_size):
          fetches = {'loss': g.total_loss,
                     'op': g.step_op if g.accumulate_op is None
                     else g.accumulate_op}
          if write_summary and it == opts.iter_size - 1:
            fetches['summary'] = g.summary_op
          out = sess.run(fetches)
          loss_sum += out['loss']
          if 'summary' in out:
            writer.add_summary(out['summary'], step)
        if g.accumulate_op is not None:
          sess.run(g.step_op)
        step = int(sess.run(g.global_step))
        loss = loss_sum / opts.iter_size
        lr = sess.run(g.learning_rate)
        pbar.update(1)
        pbar.set_postfix(loss='%.4f' % loss, lr='%.2e' % lr)
        last.update(step=step, loss=loss)
        if not np.isfinite(loss):
          raise TrainingError('The loss became %s at step %d; the last good '
                              'checkpoint is in %s.'
                              % (loss, step, opts.snapshot_dir))
        if step % opts.save_pred_every == 0 or step == opts.num_steps:
          last['checkpoint'] = _save(saver, sess, opts.snapshot_dir, step)
        if step_callback is not None:
          step_callback(step, loss)
    except KeyboardInterrupt:
      pbar.close()
      step = int(sess.run(g.global_step))
      path = _save(saver, sess, opts.snapshot_dir, step)
      tqdm.write('Interrupted: saved %s; run the same command to resume.'
                 % path)
      raise
    finally:
      pbar.close()
      writer.close()
    if last['checkpoint'] is None:
      last['checkpoint'] = _save(saver, sess, opts.snapshot_dir, step)
    last['seconds'] = time.time() - start
  return last
