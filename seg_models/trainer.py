"""One trainer behind the four training scripts.

    train_segsort.py        LOSS_SEGSORT, one tower
    train_segsort_mgpu.py   LOSS_SEGSORT, --num_gpu devices
    train_segsort_unsup.py  LOSS_UNSUPERVISED (oversegmentation masks)
    train.py                LOSS_SOFTMAX (pixel-wise softmax baseline)

What differs between the losses (the input channels, the network's output
depth, the loss itself) is declared in seg_models/losses.py's table; the
trainer builds the graph in the same steps for all of them: inputs, towers,
loss, train ops, summaries (build_train_graph).

The recipe is the original release's: SGD with momentum, poly learning rate
lr * (1 - step / num_steps)^power, the head at 10x, L2 weight decay
on every conv weight, restore from --restore_from (skipping the head with
--not_restore_classifier). On top of it:

- --iter_size N accumulates the gradients of N batches into ONE update (the
  original ran N updates);
- a run whose --snapshot_dir holds checkpoints resumes from the latest one:
  step, learning rate, momentum, batch-norm statistics and memory banks are
  restored and the input pipeline skips the batches already seen, so a
  resumed run ends where an uninterrupted one does;
- Ctrl-C or SIGTERM stops at the next step boundary after writing a
  checkpoint, and --save_every_minutes adds time-based checkpoints;
- a NaN or infinite state (or a diverging loss) stops the run before it
  is saved; one run at a time writes a snapshot folder (see train);
- devices (get_devices): --num_gpu N >= 2 uses N devices (GPUs, or virtual
  CPU devices when there are not N GPUs). As in the original, the batch is
  split over N - 1 network towers that share variables, with batch norm
  synchronised across them, and the last device computes the loss on the
  whole batch; with --loss_device tower (new here) all N run the network
  and the loss runs on the first. N = 1 runs everything on one device.
"""
import contextlib
import dataclasses
import math
import os
import signal
import sys
import time
from typing import Optional

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from network.multigpu import towers
from network.segsort import vis_utils
from seg_models import checkpoints
from seg_models import cluster as cluster_lib
from seg_models import image_reader
from seg_models import losses
from seg_models import models
from seg_models import run_guards
from seg_models import snapshot_folder
from seg_models import train_log
from seg_models import validation
from seg_models.models import common
from utils import colormaps
from utils import config_snapshot
from utils import errors

# The loss names the scripts pass (the keys of losses.LOSSES).
LOSS_SEGSORT = losses.SEGSORT
LOSS_UNSUPERVISED = losses.UNSUPERVISED
LOSS_SOFTMAX = losses.SOFTMAX
LOSS_TYPES = tuple(losses.LOSSES)

# The network's output stride.
OUTPUT_STRIDE = 8
# Learning-rate multiplier of the head (models.get_extra_layer_scopes).
HEAD_LR_MULTIPLIER = 10.0
# How many images of a batch go to TensorBoard.
MAX_SUMMARY_IMAGES = 3

# Where the loss runs with --num_gpu N >= 2 (TrainOptions.loss_device): on
# a device of its own, the N-th, after N - 1 network towers (the
# original's); or on the first of N network towers.
LOSS_DEVICE_SEPARATE = 'separate'
LOSS_DEVICE_TOWER = 'tower'
LOSS_DEVICES = (LOSS_DEVICE_SEPARATE, LOSS_DEVICE_TOWER)


TrainingError = errors.TrainingError
NonFiniteStateError = errors.NonFiniteStateError
DivergenceError = errors.DivergenceError


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
  save_every_minutes: float = 30.0
  update_tb_every: int = 20
  log_every: int = 20
  val_data_list: str = ''
  val_every: int = 1000
  val_max_images: int = 100
  val_train_images: int = 100
  snapshot_dir: str = ''
  not_restore_classifier: bool = False
  num_gpu: int = 1
  cluster_wait_seconds: float = 120.0
  run_timeout_seconds: float = 600.0
  loss_device: str = LOSS_DEVICE_SEPARATE
  xla: bool = False
  show_progress: bool = True


def get_output_size(input_size):
  """(ceil(h / 8), ceil(w / 8)), the size of the network's outputs."""
  return tuple(int(math.ceil(v / float(OUTPUT_STRIDE))) for v in input_size)


def resize_labels(labels, size):
  """Nearest-neighbour resize of [B, H, W, C] label maps (the original's)."""
  return tf.image.resize_nearest_neighbor(labels, size, align_corners=False)


def get_poly_learning_rate(base_lr, step, num_steps, power):
  """base_lr * (1 - step / num_steps)^power (never negative)."""
  progress = tf.minimum(tf.cast(step, tf.float32) / float(num_steps), 1.0)
  return base_lr * tf.pow(1.0 - progress, power)


def get_loss(loss_type):
  """The losses.LOSSES entry named loss_type.

  Raises:
    TrainingError: for a name that is not in the table.
  """
  if loss_type not in losses.LOSSES:
    raise TrainingError('Unknown loss %r; choose one of %s.'
                        % (loss_type, LOSS_TYPES))
  return losses.LOSSES[loss_type]


def get_train_dataset(opts, loss_type, skip_batches=0):
  """The training dataset, with the channels the loss declares.

  Args:
    opts: TrainOptions.
    loss_type: one of LOSS_TYPES.
    skip_batches: batches to skip (those of the steps a resumed run did).

  Returns:
    An image_reader.get_train_dataset dataset whose samples hold IMAGE,
    NAME and the loss's channels (CLUSTER_LABEL and LOCATION come together:
    the reader computes both from the grid of opts.num_clusters).
  """
  channels = get_loss(loss_type).channels
  with_grid = (image_reader.CLUSTER_LABEL in channels or
               image_reader.LOCATION in channels)
  return image_reader.get_train_dataset(
      opts.data_dir, opts.data_list, opts.input_size, opts.batch_size,
      random_scale=opts.random_scale, random_mirror=opts.random_mirror,
      random_crop=opts.random_crop, ignore_label=opts.ignore_label,
      num_clusters=opts.num_clusters if with_grid else None,
      with_label=image_reader.LABEL in channels,
      with_overseg=image_reader.OVERSEG in channels,
      shuffle=True, seed=opts.random_seed, skip_batches=skip_batches,
      num_classes=opts.num_classes)


@dataclasses.dataclass
class TrainGraph:
  """The tensors and ops of one training graph (see build_train_graph).

  Attributes:
    batch: The input pipeline's next batch, {image_reader key: tensor} at
      the crop size: IMAGE [B, H, W, 3], NAME [B] and the loss's channels.
    output: The network's output [B, h, w, depth] (the towers' outputs
      concatenated), the tensor the loss reads.
    seg_loss: The loss of the losses.LOSSES entry, a scalar.
    l2_loss: The weight decay, a scalar.
    total_loss: seg_loss + l2_loss.
    learning_rate: The poly learning rate at global_step.
    global_step: The step counter (advanced by step_op).
    step_op: One SGD update (with iter_size > 1, of the accumulated
      gradients).
    accumulate_op: With iter_size > 1, adds one batch's gradients to the
      accumulators and runs the update ops (batch-norm statistics, memory
      banks); else None.
    zero_op: With iter_size > 1, clears the accumulators; else None.
    summary_op: The merged TensorBoard summaries (set last: they read the
      other fields).
    model_variables: The network's variables (what --restore_from
      restores): not the global step, optimiser slots or memory banks.
    num_devices: The number of devices (towers, and the loss's own).
    cpu_towers: Whether the devices are virtual CPU devices.
  """
  batch: dict
  output: tf.Tensor
  seg_loss: tf.Tensor
  l2_loss: tf.Tensor
  total_loss: tf.Tensor
  learning_rate: tf.Tensor
  global_step: tf.Variable
  step_op: tf.Operation
  accumulate_op: Optional[tf.Operation]
  zero_op: Optional[tf.Operation]
  summary_op: Optional[tf.Tensor]
  model_variables: list
  num_devices: int
  cpu_towers: bool


def _check_options(opts, loss_type, cluster=None):
  get_loss(loss_type)
  if not opts.is_training:
    raise TrainingError('Nothing to train without --is_training (the '
                        'original made every variable non-trainable then).')
  if not opts.snapshot_dir:
    raise TrainingError('--snapshot_dir is required.')
  if opts.loss_device not in LOSS_DEVICES:
    raise TrainingError('--loss_device must be one of %s, got %r.'
                        % (LOSS_DEVICES, opts.loss_device))
  per_task = get_num_towers(opts.num_gpu, opts.loss_device)
  num_tasks = 1 if cluster is None else cluster.num_tasks
  if opts.batch_size % (per_task * num_tasks):
    raise TrainingError(
        '--batch_size %d is not a multiple of the %d network towers of '
        '--num_gpu %d%s%s.' % (
            opts.batch_size, per_task * num_tasks, opts.num_gpu,
            ' (N - 1: the last device computes the loss, as in the '
            'original; --loss_device tower runs the network on all N)'
            if per_task < opts.num_gpu else '',
            ' on each of the %d tasks of the cluster' % num_tasks
            if cluster is not None else ''))
  if opts.num_banks < 0:
    raise TrainingError('--num_banks must be >= 0, got %d.' % opts.num_banks)


def _add_inputs(opts, loss_type, start_step):
  """The next batch of the input pipeline (see get_train_dataset)."""
  with tf.device('/cpu:0'), tf.name_scope('create_inputs'):
    dataset = get_train_dataset(opts, loss_type,
                                skip_batches=start_step * opts.iter_size)
    return tf.data.make_one_shot_iterator(dataset).get_next()


def get_num_towers(num_gpu, loss_device=LOSS_DEVICE_SEPARATE):
  """How many network towers --num_gpu N gives on a task (see
  get_devices)."""
  if num_gpu > 1 and loss_device == LOSS_DEVICE_SEPARATE:
    return num_gpu - 1
  return num_gpu


def get_devices(opts, cluster=None):
  """The network towers' devices and the loss's device.

  Args:
    opts: TrainOptions (num_gpu, loss_device).
    cluster: a cluster_lib.Cluster, or None for this process only.

  Returns:
    (tower devices, loss device). In one process: ([None], None) for
    --num_gpu 1 (the default placement); else N device names
    (towers.get_tower_devices), the first N - 1 for the towers and the last
    for the loss, or with loss_device tower all N for the towers and the
    first for the loss. On a cluster the same holds for the N devices of
    every task (cluster_lib.tower_devices), the chief's first; the loss
    runs on a device of the chief.
  """
  if cluster is None and opts.num_gpu == 1:
    return [None], None
  if cluster is None:
    per_task = [towers.get_tower_devices(opts.num_gpu)]
  else:
    devices = cluster_lib.tower_devices(cluster, opts.num_gpu)
    per_task = [devices[i:i + opts.num_gpu]
                for i in range(0, len(devices), opts.num_gpu)]
  if opts.num_gpu > 1 and opts.loss_device == LOSS_DEVICE_SEPARATE:
    return [d for task in per_task for d in task[:-1]], per_task[0][-1]
  tower_devices = [d for task in per_task for d in task]
  return tower_devices, tower_devices[0]


def _add_towers(opts, images, depth, devices, output_device):
  """The network on images, the batch split over the tower devices.

  Args:
    opts: TrainOptions.
    images: [B, H, W, 3] float32.
    depth: The output's channels.
    devices: the towers' devices ([None]: one tower, default placement).
    output_device: where the towers' outputs are gathered.

  Returns:
    (output [B, h, w, depth], the variables the network created).
  """
  model_fn = models.get_model_fn(opts.model, opts.backbone,
                                 opts.width_multiplier, opts.backbone_variant,
                                 opts.bn_decay)
  variables_before = set(tf.global_variables())
  if len(devices) > 1:
    parts = towers.split_batch({image_reader.IMAGE: images}, devices)
    tower_outputs = model_fn([p[image_reader.IMAGE] for p in parts], depth,
                             opts.is_training, opts.use_global_status)
    with tf.device(output_device):
      output = tf.concat(tower_outputs, axis=0)
  else:
    with tf.device(devices[0]):
      output = model_fn(images, depth, opts.is_training,
                        opts.use_global_status)
  model_variables = [v for v in tf.global_variables()
                     if v not in variables_before]
  return output, model_variables


def _add_loss(opts, loss, batch, output):
  """The loss on the output, plus weight decay.

  The loss's channels are resized to the output's size first.

  Returns:
    (seg_loss, l2_loss) scalars.
  """
  out_size = get_output_size(opts.input_size)
  inputs = {key: resize_labels(batch[key], out_size)
            for key in loss.channels}
  seg_loss = loss.build(output, inputs, opts)
  l2_loss = losses.get_weight_decay_loss(opts.weight_decay,
                                         tf.trainable_variables())
  return seg_loss, l2_loss


def _add_train_ops(opts, total_loss, learning_rate, global_step):
  """SGD with momentum (the head at HEAD_LR_MULTIPLIER x the rate).

  With opts.iter_size > 1 the gradients of iter_size batches are averaged
  in local (never saved) accumulators, then applied once.

  Returns:
    (step_op, accumulate_op, zero_op); the last two are None when
    iter_size is 1, step_op then also runs the update ops.
  """
  trainable = tf.trainable_variables()
  scopes = models.get_extra_layer_scopes(opts.model)
  head_vars = [v for v in trainable if common.is_head_variable(v, scopes)]
  base_vars = [v for v in trainable
               if not common.is_head_variable(v, scopes)]
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
      return apply(grads), None, None
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
  return step_op, accumulate_op, zero_op


def _color_labels(labels, colormap):
  """[B, H, W, 1] int labels -> [B, H, W, 3] uint8 colours."""
  indices = tf.clip_by_value(tf.cast(labels[..., 0], tf.int32), 0,
                             colormap.shape[0] - 1)
  return tf.gather(tf.constant(colormap), indices)


def _embedding_picture(embedding, size, colormap):
  """[B, h, w, D] embeddings -> [B, H, W, 3] uint8 PCA colours."""
  del colormap  # PCA pictures need none.
  pca = vis_utils.embedding_to_pca_image(tf.stop_gradient(embedding))
  return tf.image.resize_nearest_neighbor(pca, size)


def _prediction_picture(logits, size, colormap):
  """[B, h, w, C] logits -> [B, H, W, 3] uint8 colours of the argmax."""
  prediction = tf.expand_dims(tf.argmax(logits, axis=3), 3)
  return _color_labels(tf.image.resize_nearest_neighbor(prediction, size),
                       colormap)


# The picture of the network's output, per kind of output (Loss.output).
_OUTPUT_PICTURES = {losses.EMBEDDING: _embedding_picture,
                    losses.LOGITS: _prediction_picture}


def _add_summaries(g, loss):
  """Scalars and one row of pictures per image: input | ground truth (when
  the loss reads labels) | output (embedding PCA or prediction).

  Args:
    g: A TrainGraph (summary_op not used).
    loss: Its losses.Loss.

  Returns:
    The merged summary op.
  """
  with tf.device('/cpu:0'):
    summaries = [tf.summary.scalar('seg_loss', g.seg_loss),
                 tf.summary.scalar('l2_loss', g.l2_loss),
                 tf.summary.scalar('total_loss', g.total_loss),
                 tf.summary.scalar('learning_rate', g.learning_rate)]
    images = g.batch[image_reader.IMAGE]
    size = images.get_shape().as_list()[1:3]
    colormap = colormaps.get_colormap()
    pictures = [tf.cast(tf.clip_by_value(
        images + image_reader.IMG_MEAN, 0, 255), tf.uint8)]
    if image_reader.LABEL in g.batch:
      pictures.append(_color_labels(g.batch[image_reader.LABEL], colormap))
    pictures.append(_OUTPUT_PICTURES[loss.output](g.output, size, colormap))
    summaries.append(tf.summary.image('images', tf.concat(pictures, axis=2),
                                      max_outputs=MAX_SUMMARY_IMAGES))
    return tf.summary.merge(summaries)


def build_train_graph(opts, loss_type, start_step=0, cluster=None):
  """Builds inputs, towers, loss, train ops and summaries into the graph.

  Args:
    opts: TrainOptions.
    loss_type: one of LOSS_TYPES.
    start_step: the step training resumes at (the input pipeline skips the
      batches of the steps before it).
    cluster: a cluster_lib.Cluster: the towers go to every task's devices
      (the caller places the rest on the chief); None: this process.

  Returns:
    A TrainGraph.
  """
  _check_options(opts, loss_type, cluster)
  loss = get_loss(loss_type)
  tf.set_random_seed(opts.random_seed)
  batch = _add_inputs(opts, loss_type, start_step)
  # Created before the loss: the memory banks draw their shuffle from it.
  global_step = tf.train.get_or_create_global_step()
  devices, loss_device = get_devices(opts, cluster)
  output, model_variables = _add_towers(
      opts, batch[image_reader.IMAGE], loss.get_output_depth(opts), devices,
      loss_device)
  with tf.device(loss_device), tf.name_scope('loss'):
    seg_loss, l2_loss = _add_loss(opts, loss, batch, output)
    total_loss = seg_loss + l2_loss
  learning_rate = get_poly_learning_rate(opts.learning_rate, global_step,
                                         opts.num_steps, opts.power)
  step_op, accumulate_op, zero_op = _add_train_ops(
      opts, total_loss, learning_rate, global_step)
  g = TrainGraph(
      batch=batch, output=output, seg_loss=seg_loss, l2_loss=l2_loss,
      total_loss=total_loss, learning_rate=learning_rate,
      global_step=global_step, step_op=step_op, accumulate_op=accumulate_op,
      zero_op=zero_op, summary_op=None, model_variables=model_variables,
      num_devices=opts.num_gpu,
      cpu_towers=loss_device is not None and
      tf.DeviceSpec.from_string(loss_device).device_type == 'CPU')
  g.summary_op = _add_summaries(g, loss)
  return g


def _run_micro_batch(sess, fetches):
  """One sess.run of the training loop (one batch)."""
  return sess.run(fetches)


def get_model_settings(opts, loss_type):
  """What SNAPSHOT_DIR/model.json says of the model opts train.

  See snapshot_folder.SETTINGS_NAME: the network's flags (and its output
  depth, embedding_dim or num_classes), and the other settings a resumed
  run must keep (num_classes when the loss reads labels, num_banks for the
  supervised SegSort loss's memory banks).
  """
  loss = get_loss(loss_type)
  training = []
  if image_reader.LABEL in loss.channels:
    training.append('num_classes')
  if loss_type == LOSS_SEGSORT:
    training.append('num_banks')
  return snapshot_folder.get_model_settings(
      dataclasses.asdict(opts), loss_type, loss.output,
      losses.OUTPUT_DEPTH_OPTIONS[loss.output], training)


def _prepare_snapshot_dir(opts, loss_type, config_args, log):
  """Checks the folder and the model flags; writes config and model.json.

  Returns:
    (start step, checkpoint to resume from or None, the config values).
  """
  step, checkpoint = checkpoints.find_resume_checkpoint(
      opts.snapshot_dir, log=log.warning)
  values = (vars(config_args) if config_args is not None and
            not isinstance(config_args, dict) else
            config_args if config_args is not None else
            dataclasses.asdict(opts))
  if checkpoint is not None:
    snapshot_folder.check_same_model(opts.snapshot_dir,
                                     dataclasses.asdict(opts))
    if step != (checkpoints.list_checkpoints(opts.snapshot_dir)[0][0]):
      log.warning('Falling back to %s.', checkpoint)
  config_snapshot.save_config(opts.snapshot_dir, values)
  snapshot_folder.save_model_settings(opts.snapshot_dir,
                                      get_model_settings(opts, loss_type))
  return step, checkpoint, values


def server_config(opts):
  """The ConfigProto of this process's server in a cluster: --num_gpu
  virtual CPU devices when the towers are CPUs."""
  cpu = not cluster_lib.use_gpus(opts.num_gpu)
  return towers.session_config(opts.num_gpu if cpu else 1)


def serve(opts, cluster):
  """What a task other than the chief runs: its server, until the chief is
  done (cluster_lib.serve).

  Returns:
    {'task': this task's name}.
  """
  server = cluster_lib.start_server(cluster, server_config(opts))
  cluster_lib.serve(cluster, server, opts.cluster_wait_seconds,
                    log=tqdm.write)
  return {'task': cluster.this_task.name}


def train(opts, loss_type, config_args=None, step_callback=None,
          cluster=None):
  """Trains to opts.num_steps, resuming from SNAPSHOT_DIR when possible.

  Only one run writes a snapshot folder (snapshot_folder.SnapshotLock). A
  run resumes from the newest intact, finite checkpoint of the folder's own
  files, after checking that the model flags equal those of the folder's
  model.json. SIGINT (Ctrl-C) and SIGTERM stop the run at the next step
  boundary, after a checkpoint is written. A checkpoint is also written
  every opts.save_pred_every steps and every opts.save_every_minutes.
  The state is checked after every step: NaN or infinite values, or a loss
  run_guards.DIVERGENCE_FACTOR x its first value, stop the run before
  anything is saved. The run is logged to SNAPSHOT_DIR/train.log and
  TensorBoard (seg_models/train_log.py). With opts.val_data_list, every
  opts.val_every steps a checkpoint is written and scored on the
  validation images as inference scores it; the best goes to
  SNAPSHOT_DIR/best/ (seg_models/validation.py).

  Args:
    opts: TrainOptions.
    loss_type: one of LOSS_TYPES.
    config_args: what to write to SNAPSHOT_DIR/config (the parsed flags);
      defaults to opts.
    step_callback: optional fn(step, loss) called after every update (a
      KeyboardInterrupt raised there is handled as Ctrl-C).
    cluster: a cluster_lib.Cluster whose chief this process is: it starts
      its server, waits for the other tasks (opts.cluster_wait_seconds),
      places the towers on all of them and tells them when it is done.
      None: this process only.

  Returns:
    A dict: {'step': last step, 'loss': last loss, 'checkpoint': path,
    'seconds': wall time of the loop}.

  Raises:
    KeyboardInterrupt: after SIGINT or SIGTERM (a checkpoint was written).
    TrainingError, snapshot_folder.SnapshotFolderError,
    checkpoints.RestoreError, image_reader.DataListError: with a message
      for the user.
    cluster_lib.ClusterError: a task of the cluster did not come up or
      went away (naming it); the checkpoints written so far are kept.
  """
  _check_options(opts, loss_type, cluster)
  # A bad validation list stops the run before anything is built.
  val_data = (validation.get_validation_data(opts, get_loss(loss_type).output)
              if opts.val_data_list else None)
  snapshot_folder.check_folder(opts.snapshot_dir)
  with snapshot_folder.SnapshotLock(opts.snapshot_dir, log=tqdm.write), \
      train_log.text_log(opts.snapshot_dir) as log:
    try:
      log.info('Training %s (%s) in %s', loss_type,
               os.path.basename(sys.argv[0]) or 'python',
               opts.snapshot_dir)
      start_step, checkpoint, values = _prepare_snapshot_dir(
          opts, loss_type, config_args, log)
      train_log.log_config(log, values)
      if opts.num_gpu > 1 or cluster is not None:
        # Where the work goes (virtual CPU devices when too few GPUs).
        tower_devices, loss_device = get_devices(opts, cluster)
        log.info('--num_gpu %d: the network on %s, the loss on %s.',
                 opts.num_gpu, ', '.join(tower_devices), loss_device)
      if cluster is None:
        return _train_locked(opts, loss_type, start_step, checkpoint,
                             step_callback, log, val_data)
      return _train_in_cluster(opts, loss_type, start_step, checkpoint,
                               step_callback, log, val_data, cluster)
    except errors.SegSortError as e:
      log.error('%s', e, extra={'console': False})
      raise
    except KeyboardInterrupt:
      raise
    except Exception:  # A bug: its traceback goes to train.log too.
      log.exception('Training failed', extra={'console': False})
      raise


def _train_in_cluster(opts, loss_type, start_step, checkpoint, step_callback,
                      log, val_data, cluster):
  """_train_locked on the chief's server, once every task answers; the
  serving tasks are released however it ends."""
  server = cluster_lib.start_server(cluster, server_config(opts))
  try:
    cluster_lib.wait_for_tasks(cluster, opts.cluster_wait_seconds,
                               log=log.info)
    return _train_locked(opts, loss_type, start_step, checkpoint,
                         step_callback, log, val_data, cluster, server)
  except cluster_lib.TASK_FAILURES as e:
    raise cluster_lib.describe_failure(cluster, e, opts.snapshot_dir)
  finally:
    cluster_lib.release_workers(cluster, server)


def _train_locked(opts, loss_type, start_step, resume_from, step_callback,
                  log, val_data=None, cluster=None, server=None):
  """The training loop of train, with the folder locked.

  With a cluster, every op the towers do not place goes to the chief (this
  process) and the session runs on its server.
  """
  graph = tf.Graph()
  with graph.as_default(), (
      tf.device(cluster.chief.name) if cluster is not None else
      contextlib.nullcontext()):
    g = build_train_graph(opts, loss_type, start_step=start_step,
                          cluster=cluster)
    saver = tf.train.Saver(var_list=tf.global_variables(), max_to_keep=10,
                           save_relative_paths=True)
    all_finite = tf.reduce_all(tf.stack(
        [tf.reduce_all(tf.is_finite(v)) for v in tf.global_variables()
         if v.dtype.base_dtype.is_floating]))
    init_ops = [tf.global_variables_initializer(),
                tf.local_variables_initializer()]
    config = towers.session_config(
        g.num_devices if g.cpu_towers and cluster is None else 1,
        xla=opts.xla)
    if cluster is not None and opts.run_timeout_seconds:
      config.operation_timeout_in_ms = int(1000 * opts.run_timeout_seconds)
    restorer = None
    if resume_from is None and opts.restore_from:
      restorer = checkpoints.get_restorer(
          opts.restore_from, g.model_variables,
          skip_head=opts.not_restore_classifier,
          head_scopes=models.get_extra_layer_scopes(opts.model))
    graph.finalize()
  if g.cpu_towers:
    log.warning(towers.describe_cpu_towers(opts.num_gpu))
  if val_data is not None:
    log.info('Validation every %d steps: %d image(s) of %s%s; the best '
             'checkpoint goes to %s.', opts.val_every,
             len(val_data.val_entries), opts.val_data_list,
             ', prototypes of %d training image(s)' %
             len(val_data.train_entries) if val_data.train_entries else '',
             os.path.join(opts.snapshot_dir, validation.BEST_SUBDIR))
  events = train_log.EventLog(opts.snapshot_dir, graph, start_step)

  target = server.target if server is not None else ''
  with tf.Session(target, graph=graph, config=config) as sess, \
      run_guards.deferred_interrupts() as interrupt:
    sess.run(init_ops)
    if resume_from is not None:
      saver.restore(sess, resume_from)
      log.info('Resumed from %s', resume_from)
    elif restorer is not None:
      checkpoint, _, restore = restorer
      restore(sess)
      log.info('Restored model parameters from %s', checkpoint)
    step = int(sess.run(g.global_step))
    log.info('Steps %d to %d, %d image(s) per step.', step, opts.num_steps,
             opts.batch_size * opts.iter_size)
    last = dict(step=step, loss=float('nan'), checkpoint=None, seconds=0.0)
    last_good = resume_from
    first_loss = None
    start = last_save_time = time.time()
    images_per_step = opts.batch_size * opts.iter_size
    tb_speed = train_log.SpeedMeter(step, images_per_step, time.time)
    log_speed = train_log.SpeedMeter(step, images_per_step, time.time)
    pbar = tqdm(total=opts.num_steps, initial=step, desc='train',
                disable=not opts.show_progress, dynamic_ncols=True)

    best = validation.read_best(opts.snapshot_dir)
    last_validation_end = time.time()

    def validate(step, checkpoint):
      nonlocal best, last_validation_end
      result = validation.validate(opts, checkpoint,
                                   get_loss(loss_type).output, val_data)
      share = result['seconds'] / max(time.time() - last_validation_end,
                                      1e-9)
      last_validation_end = time.time()
      miou = result['miou'] if result['miou'] is not None else float('nan')
      accuracy = (result['pixel_accuracy']
                  if result['pixel_accuracy'] is not None else float('nan'))
      events.add_scalars({'val/miou': miou, 'val/pixel_accuracy': accuracy,
                          'val/seconds': result['seconds']}, step)
      events.flush()
      if validation.is_better(result, best):
        path = validation.keep_best(opts.snapshot_dir, checkpoint, step,
                                    result, opts.val_data_list)
        best = dict(result, step=step)
        note = 'new best, kept as %s' % path
      else:
        note = 'best %.2f%% at step %s' % (best['miou'], best['step'])
      log.info('Validation at step %d: mIoU %.2f%%, pixel accuracy %.2f%% '
               '(%d images%s) in %.1f s (%.0f%% of the time since the last '
               'validation); %s.', step, miou, accuracy,
               result['num_images'],
               ', %d prototypes' % result['num_prototypes']
               if 'num_prototypes' in result else '', result['seconds'],
               100.0 * share, note)

    def save(step):
      nonlocal last_good, last_save_time
      last_good = run_guards.save_checkpoint(saver, sess, opts.snapshot_dir,
                                             step)
      last_save_time = time.time()
      log.info('Saved checkpoint %s', last_good, extra={'console': False})
      return last_good

    # False while a step with iter_size > 1 is half done: batch-norm
    # statistics and memory banks have seen some of its batches only.
    at_boundary = True
    try:
      while step < opts.num_steps and interrupt['signal'] is None:
        at_boundary = opts.iter_size == 1
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
          out = _run_micro_batch(sess, fetches)
          loss_sum += out['loss']
          if 'summary' in out:
            events.add_summary(out['summary'], step)
        if g.accumulate_op is not None:
          sess.run(g.step_op)
        step, lr, finite = sess.run([g.global_step, g.learning_rate,
                                     all_finite])
        step = int(step)
        at_boundary = True
        loss = loss_sum / opts.iter_size
        pbar.update(1)
        pbar.set_postfix(loss='%.4f' % loss, lr='%.2e' % lr)
        last.update(step=step, loss=loss)
        run_guards.check_finite_state(finite and np.isfinite(loss), step,
                                      last_good, opts.snapshot_dir)
        run_guards.check_divergence(loss, first_loss, step, last_good)
        if first_loss is None:
          first_loss = loss
        if step % opts.update_tb_every == 0 or step == opts.num_steps:
          speed = tb_speed.measure(step)
          if speed:
            events.add_scalars(speed, step)
          events.flush()
        if step % opts.log_every == 0 or step == opts.num_steps:
          speed = log_speed.measure(step)
          log.info('step %d loss %.4f lr %.3g %s', step, loss, lr,
                   ' '.join('%s %.3g' % item for item in
                            sorted(speed.items())) or '-',
                   extra={'console': False})
        timed = (opts.save_every_minutes and time.time() - last_save_time >=
                 60.0 * opts.save_every_minutes)
        if (step % opts.save_pred_every == 0 or step == opts.num_steps or
            timed):
          last['checkpoint'] = save(step)
          # Saving is not training: the speed is measured without it.
          tb_speed.restart(step)
          log_speed.restart(step)
        if val_data is not None and (step % opts.val_every == 0 or
                                     step == opts.num_steps):
          if last['checkpoint'] is None or not last['checkpoint'].endswith(
              '-%d' % step):
            last['checkpoint'] = save(step)
          validate(step, last['checkpoint'])
          tb_speed.restart(step)
          log_speed.restart(step)
        if step_callback is not None:
          step_callback(step, loss)
    except KeyboardInterrupt:
      interrupt['signal'] = interrupt['signal'] or signal.SIGINT
    finally:
      pbar.close()
      events.close()
    if interrupt['signal'] is not None and not at_boundary:
      log.warning('Interrupted in the middle of step %d: nothing saved; the '
                  'last checkpoint is %s.', step + 1, last_good)
      raise KeyboardInterrupt()
    if interrupt['signal'] is not None:
      if last['checkpoint'] is None or not last['checkpoint'].endswith(
          '-%d' % step):
        last['checkpoint'] = save(step)
      log.warning('Interrupted (%s) after step %d: saved %s; run the same '
                  'command to resume.',
                  signal.Signals(interrupt['signal']).name, step,
                  last['checkpoint'])
      raise KeyboardInterrupt()
    if last['checkpoint'] is None:
      last['checkpoint'] = save(step)
    last['seconds'] = time.time() - start
    log.info('Finished at step %d (loss %.4f) in %.0f s: %s', step,
             last['loss'], last['seconds'], last['checkpoint'])
  return last
