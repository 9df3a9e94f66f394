"""Tower placement for multi-device training.

The model functions know nothing of devices: every layer places a tower's
work on the device of that tower's input (network.common.layers). The
trainer only splits the batch and puts each split on its tower's device
with these helpers. GPUs are used when present; otherwise the towers are
virtual CPU devices, so that multi-tower code runs (and is tested) on a CPU
machine.
"""
import os

import tensorflow as tf2
import tensorflow.compat.v1 as tf


def num_available_gpus():
  """Number of GPUs TensorFlow can see."""
  return len(tf2.config.list_physical_devices('GPU'))


def get_tower_devices(num_towers, use_gpu=None):
  """Device names for num_towers devices.

  Args:
    num_towers: number of devices (--num_gpu: the trainer puts its network
      towers and its loss on them).
    use_gpu: True / False, or None to use GPUs when enough are present.

  Returns:
    ['/gpu:0', ...] or ['/cpu:0', ...] (the CPU ones need session_config).
  """
  if num_towers < 1:
    raise ValueError('at least one tower is needed, got %d.' % num_towers)
  gpus = num_available_gpus()
  if use_gpu is None:
    use_gpu = gpus >= num_towers
  if use_gpu:
    if gpus < num_towers:
      raise ValueError('%d towers requested but only %d GPU(s) visible.'
                       % (num_towers, gpus))
    return ['/gpu:%d' % i for i in range(num_towers)]
  return ['/cpu:%d' % i for i in range(num_towers)]


def describe_cpu_towers(num_towers, num_gpus=None):
  """What training does when --num_gpu N towers run on CPU devices.

  The one message for --num_gpu above the visible GPUs (kept in this one
  function: the semantics of --num_gpu are also being worked on elsewhere).

  Args:
    num_towers: --num_gpu.
    num_gpus: the visible GPUs (None: count them).

  Returns:
    A message for the log, naming the flag and what happens.
  """
  if num_gpus is None:
    num_gpus = num_available_gpus()
  if num_gpus == 0:
    return ('--num_gpu %d: no GPU is visible, so the %d towers run on %d '
            'virtual CPU devices sharing the CPU (same results as %d GPUs, '
            'no speed-up).' % (num_towers, num_towers, num_towers,
                               num_towers))
  return ('--num_gpu %d but only %d GPU(s) are visible: the %d towers run '
          'on %d virtual CPU devices, NOT on the GPU(s) (same results, much '
          'slower). Pass --num_gpu %d (or fewer) to train on the GPU(s), or '
          'make more GPUs visible (CUDA_VISIBLE_DEVICES).' % (
              num_towers, num_gpus, num_towers, num_towers, num_gpus))


# XLA clusters ops placed on a CPU only with this TF_XLA_FLAGS flag, which
# TensorFlow reads when the first session starts.
XLA_CPU_JIT_FLAG = '--tf_xla_cpu_global_jit'


def enable_xla_on_cpu():
  """Adds XLA_CPU_JIT_FLAG to TF_XLA_FLAGS (in effect before any session)."""
  current = os.environ.get('TF_XLA_FLAGS', '')
  if XLA_CPU_JIT_FLAG not in current.split():
    os.environ['TF_XLA_FLAGS'] = (current + ' ' + XLA_CPU_JIT_FLAG).strip()


def session_config(num_cpu_devices=1, allow_soft_placement=True, xla=False):
  """A ConfigProto exposing num_cpu_devices virtual CPU devices.

  With xla, the session JIT-compiles the graph with XLA: its global JIT
  level (graph_options.optimizer_options.global_jit_level) groups the
  compilable ops into clusters, each compiled for its input shapes (a new
  shape compiles again).
  """
  config = tf.ConfigProto(allow_soft_placement=allow_soft_placement,
                          device_count={'CPU': max(1, num_cpu_devices)})
  config.gpu_options.allow_growth = True
  if xla:
    enable_xla_on_cpu()
    config.graph_options.optimizer_options.global_jit_level = (
        tf.OptimizerOptions.ON_1)
  return config


def split_batch(tensors, devices):
  """Splits every tensor of a dict along axis 0 into one part per device.

  Args:
    tensors: dict of tensors with a static batch size divisible by
      len(devices).
    devices: tower device names.

  Returns:
    A list (per tower) of dicts of tensors, each placed on its device.
  """
  num = len(devices)
  towers = [dict() for _ in devices]
  for key, value in tensors.items():
    batch = value.get_shape().as_list()[0]
    if batch is None or batch % num:
      raise ValueError('The batch size (%s) must be a multiple of the number '
                       'of towers (%d).' % (batch, num))
    size = batch // num
    for i, device in enumerate(devices):
      with tf.device(device):
        towers[i][key] = tf.identity(value[i * size:(i + 1) * size])
  return towers
