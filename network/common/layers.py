"""Layers of the SegSort networks: conv, atrous conv, batch norm, pooling.

Every layer takes either one tensor or a list of tensors, one per tower
(multi-GPU / multi-device training). With a list, the layer's variables are
created once and shared, each tower's computation is placed on the device of
that tower's input, and batch norm computes its batch statistics over the
pixels of ALL towers (synchronised batch norm). A single tensor is simply a
list of one tower, so there is one implementation of every layer.

Variable names follow TF-Slim (`weights`, `biases`, `BatchNorm/gamma`,
`BatchNorm/beta`, `BatchNorm/moving_mean`, `BatchNorm/moving_variance`) so
that TF-Slim's ImageNet checkpoints and the original release's SegSort
checkpoints restore with no renaming.
"""
import functools
import os

import numpy as np
import tensorflow.compat.v1 as tf

# Batch-norm epsilon of the original release (and of its released
# checkpoints); TF-Slim's ResNet uses 1e-5 (see resnet_v1.VARIANTS).
BN_EPSILON = 1e-3


def _as_towers(x):
  """Returns (list of tensors, whether the input was a list)."""
  if isinstance(x, (list, tuple)):
    if not x:
      raise ValueError('A layer received an empty list of towers.')
    return list(x), True
  return [x], False


def _from_towers(xs, was_list):
  return xs if was_list else xs[0]


def map_towers(fn, x):
  """Applies fn to every tower on the device of that tower's input.

  Args:
    fn: a function of one tensor that creates no variables.
    x: a tensor or a list of tensors (one per tower).

  Returns:
    fn(x), or [fn(x_i)] for a list, each placed with its input.
  """
  xs, was_list = _as_towers(x)
  outs = []
  for t in xs:
    with tf.device(t.device):
      outs.append(fn(t))
  return _from_towers(outs, was_list)


# How a dilated (atrous) stride-1 convolution is computed; see atrous_path.
ATROUS_PATH_ENV = 'SEGSORT_ATROUS_CONV'
ATROUS_PATHS = ('auto', 'native', 'portable')


def _device_type(device):
  """'GPU' or 'CPU' for a device string ('' = where TensorFlow would put it)."""
  spec = tf.DeviceSpec.from_string(device or '')
  if spec.device_type:
    return spec.device_type.upper()
  return 'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'


@functools.lru_cache(maxsize=None)
def native_dilated_conv_trains(device_type):
  """Whether this machine has a gradient kernel for dilated conv2d.

  GPUs (cuDNN) have one. On CPUs it exists only where TensorFlow runs its
  oneDNN kernels, which it turns on by default only on CPUs with
  AVX-512-class features (TF_ENABLE_ONEDNN_OPTS overrides that); the plain
  CPU kernels raise "Current CPU implementations do not yet support
  dilation rates larger than 1" when the gradient runs. So on a CPU this
  runs the gradient of a tiny dilated conv once per process and reports
  whether it worked, rather than guessing from flags.
  """
  if device_type == 'GPU':
    return True
  graph = tf.Graph()
  with graph.as_default(), tf.device('/cpu:0'):
    x = tf.constant(np.ones([1, 5, 5, 1], np.float32))
    k = tf.constant(np.ones([3, 3, 1, 1], np.float32))
    y = tf.nn.conv2d(x, k, [1, 1, 1, 1], 'SAME', dilations=[1, 2, 2, 1])
    grads = tf.gradients(tf.reduce_sum(y), [x, k])
  config = tf.ConfigProto(device_count={'GPU': 0})
  try:
    with tf.Session(graph=graph, config=config) as sess:
      sess.run(grads)
  except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
    return False
  return True


def atrous_path(device=''):
  """'native' or 'portable': how a dilated conv on `device` is built.

  native: tf.nn.conv2d with dilations (cuDNN on GPUs, oneDNN on CPUs);
  portable: tf.nn.atrous_conv2d, which rearranges the input with
  space_to_batch so that an ordinary conv does the work; it has forward and
  backward kernels on every device and gives the same numbers. 'auto'
  (default) takes native where its gradient exists (GPUs, CPUs with
  oneDNN), where it is also the faster of the two, and portable elsewhere.
  The environment variable SEGSORT_ATROUS_CONV=native|portable|auto
  overrides the choice (benchmarks and tests compare the two).
  """
  choice = os.environ.get(ATROUS_PATH_ENV, 'auto').strip().lower() or 'auto'
  if choice not in ATROUS_PATHS:
    raise ValueError('%s=%r: expected one of %s.'
                     % (ATROUS_PATH_ENV, choice, ', '.join(ATROUS_PATHS)))
  if choice != 'auto':
    return choice
  if native_dilated_conv_trains(_device_type(device)):
    return 'native'
  return 'portable'


def onednn_enabled():
  """Whether TensorFlow runs its oneDNN CPU kernels here (None: unknown)."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):
    return None


def describe_conv_paths(device=''):
  """Which kernels run the convolutions here, for benchmark reports."""
  return {'onednn': onednn_enabled(),
          'atrous_conv': atrous_path(device),
          'atrous_conv_env': os.environ.get(ATROUS_PATH_ENV, 'auto'),
          'native_dilated_conv_trains': native_dilated_conv_trains(
              _device_type(device))}


def _dilated_conv(x, kernel, dilation, padding):
  """Stride-1 dilated conv of x with kernel, by the path atrous_path picks."""
  if atrous_path(x.device) == 'native':
    return tf.nn.conv2d(x, kernel, [1, 1, 1, 1], padding,
                        dilations=[1, dilation, dilation, 1])
  return tf.nn.atrous_conv2d(x, kernel, dilation, padding)


def _fixed_padding(x, kernel_size, dilation):
  """Pads symmetrically for a VALID conv, as TF-Slim's conv2d_same does.

  TF's own SAME padding of a strided conv puts the extra pixel after the
  data; TF-Slim pads (k_eff - 1) // 2 before and the rest after, so strided
  layers see the same pixels whatever the input size is even or odd.
  """
  k_eff = kernel_size + (kernel_size - 1) * (dilation - 1)
  pad_total = k_eff - 1
  pad_beg = pad_total // 2
  pad_end = pad_total - pad_beg
  return tf.pad(x, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end], [0, 0]])


def batch_norm(x,
               name,
               activation_fn=None,
               decay=0.9997,
               is_training=True,
               use_global_status=False,
               epsilon=BN_EPSILON):
  """Batch normalisation with TF-Slim's variable names.

  y = gamma * (x - mean) / sqrt(var + epsilon) + beta, where (mean, var) are
  the batch statistics over [batch, height, width] of all towers when
  training with use_global_status=False, and the moving averages otherwise.
  In the first case the moving averages are updated by
  moving <- decay * moving + (1 - decay) * batch_statistic; the update ops
  go to tf.GraphKeys.UPDATE_OPS (once, however many towers). With
  use_global_status the whole layer is frozen: gamma and beta are created
  non-trainable and the moving averages are left as they are.

  Args:
    x: a tensor [N, H, W, C] or a list of such tensors, one per tower.
    name: the variable scope (usually 'BatchNorm').
    activation_fn: optional function applied after normalisation.
    decay: moving-average decay.
    is_training: whether gamma and beta are trainable (unless
      use_global_status).
    use_global_status: use the moving averages instead of batch statistics
      and keep gamma and beta fixed.
    epsilon: added to the variance.

  Returns:
    The normalised tensor, or list of tensors, shaped like x.
  """
  xs, was_list = _as_towers(x)
  channels = xs[0].get_shape().as_list()[-1]
  trainable = is_training and not use_global_status
  with tf.variable_scope(name):
    # TF-Slim creates beta before gamma; the order does not affect restoring
    # but keeps tf.global_variables() in slim's order.
    beta = tf.get_variable('beta', [channels],
                           initializer=tf.zeros_initializer(),
                           trainable=trainable)
    gamma = tf.get_variable('gamma', [channels],
                            initializer=tf.ones_initializer(),
                            trainable=trainable)
    moving_mean = tf.get_variable('moving_mean', [channels],
                                  initializer=tf.zeros_initializer(),
                                  trainable=False)
    moving_variance = tf.get_variable('moving_variance', [channels],
                                      initializer=tf.ones_initializer(),
                                      trainable=False)

    if is_training and not use_global_status:
      mean, variance = _cross_tower_moments(xs)
      with tf.name_scope('moving_average_update'):
        update_mean = tf.assign_sub(
            moving_mean, (1.0 - decay) * (moving_mean - mean))
        update_variance = tf.assign_sub(
            moving_variance, (1.0 - decay) * (moving_variance - variance))
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update_mean)
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update_variance)
    else:
      mean, variance = moving_mean, moving_variance

    def _normalize(t):
      y = tf.nn.batch_normalization(t, mean, variance, beta, gamma, epsilon)
      return activation_fn(y) if activation_fn is not None else y

    return _from_towers(map_towers(_normalize, xs), was_list)


def _cross_tower_moments(xs):
  """Mean and (biased) variance per channel over the pixels of all towers.

  Two passes, each tower reducing on its own device: the global mean from
  the towers' sums, then the variance from the towers' sums of squared
  deviations from that mean. For one tower this equals tf.nn.moments.
  """
  if len(xs) == 1:
    return tf.nn.moments(xs[0], axes=[0, 1, 2])
  sums, counts = [], []
  for t in xs:
    with tf.device(t.device):
      sums.append(tf.reduce_sum(t, axis=[0, 1, 2]))
      shape = tf.shape(t)
      counts.append(tf.cast(shape[0] * shape[1] * shape[2], t.dtype))
  count = tf.add_n(counts)
  mean = tf.add_n(sums) / count
  squares = []
  for t in xs:
    with tf.device(t.device):
      squares.append(tf.reduce_sum(tf.square(t - mean), axis=[0, 1, 2]))
  variance = tf.add_n(squares) / count
  return mean, variance


def conv(x,
         name,
         filters,
         kernel_size,
         strides=1,
         padding='SAME',
         relu=True,
         biased=False,
         bn=True,
         dilation=1,
         decay=0.9997,
         is_training=True,
         use_global_status=False,
         epsilon=BN_EPSILON):
  """Convolution (+ batch norm) (+ ReLU) with TF-Slim's names and padding.

  A strided conv with padding 'SAME' pads symmetrically and then runs VALID
  (TF-Slim's conv2d_same), see _fixed_padding.

  Args:
    x: a tensor [N, H, W, C_in] or a list of them (towers).
    name: variable scope of the layer, e.g. 'conv1'.
    filters: output channels.
    kernel_size: square kernel size.
    strides: stride (same along both axes).
    padding: 'SAME' or 'VALID'.
    relu: apply ReLU at the end.
    biased: add a bias (`biases`), used by layers without batch norm.
      Weights and biases start Glorot-uniform (limit
      sqrt(6 / (fan_in + fan_out)); fan_in = fan_out = filters for biases).
    bn: batch norm (scope `BatchNorm`) after the convolution.
    dilation: atrous rate (stride 1 only); see atrous_path for how it is
      computed on each device.
    decay, is_training, use_global_status, epsilon: see batch_norm.

  Returns:
    A tensor [N, H', W', filters] (or a list of them).
  """
  xs, was_list = _as_towers(x)
  if strides > 1 and dilation > 1:
    raise ValueError('conv %r: a convolution is either strided (%d) or '
                     'dilated (%d), not both.' % (name, strides, dilation))
  in_channels = xs[0].get_shape().as_list()[-1]
  if in_channels is None:
    raise ValueError('conv %r needs a static number of input channels.' % name)
  with tf.variable_scope(name):
    # Glorot-uniform for weights and biases: TensorFlow's default for
    # tf.get_variable. A 1-D bias counts fan_in = fan_out = filters.
    kernel = tf.get_variable(
        'weights', [kernel_size, kernel_size, in_channels, filters],
        initializer=tf.glorot_uniform_initializer(),
        trainable=is_training)
    bias = None
    if biased:
      bias = tf.get_variable('biases', [filters],
                             initializer=tf.glorot_uniform_initializer(),
                             trainable=is_training)

    def _conv(t):
      if strides > 1 and padding == 'SAME':
        t = _fixed_padding(t, kernel_size, dilation)
        pad_mode = 'VALID'
      else:
        pad_mode = padding
      if dilation > 1:
        y = _dilated_conv(t, kernel, dilation, pad_mode)
      else:
        y = tf.nn.conv2d(t, kernel, [1, strides, strides, 1], pad_mode)
      if bias is not None:
        y = tf.nn.bias_add(y, bias)
      return y

    ys = map_towers(_conv, xs)
    if bn:
      ys = batch_norm(ys, 'BatchNorm', decay=decay, is_training=is_training,
                      use_global_status=use_global_status, epsilon=epsilon)
    if relu:
      ys = map_towers(tf.nn.relu, ys)
  return _from_towers(ys, was_list)


def _pool(pool_fn, x, name, kernel_size, strides, padding):
  def _apply(t):
    return pool_fn(t, ksize=[1, kernel_size, kernel_size, 1],
                   strides=[1, strides, strides, 1], padding=padding,
                   name=name)
  return map_towers(_apply, x)


def max_pool(x, name, kernel_size, strides, padding='SAME'):
  """Max pooling over square windows (tensor or towers)."""
  return _pool(tf.nn.max_pool, x, name, kernel_size, strides, padding)


def avg_pool(x, name, kernel_size, strides, padding='SAME'):
  """Average pooling over square windows (tensor or towers)."""
  return _pool(tf.nn.avg_pool, x, name, kernel_size, strides, padding)


def adaptive_avg_pool(x, bins):
  """Average pooling of a map into bins x bins cells, for any map size.

  Cell (i, j) averages rows [floor(i*H/bins), ceil((i+1)*H/bins)) and the
  same for columns (as PyTorch's adaptive pooling). When H and W are
  multiples of bins this is avg_pool with kernel = stride = H / bins, which
  is what the original PSPNet ran on its square inputs divisible by 48.

  Args:
    x: a tensor [N, H, W, C] with static H and W.
    bins: cells per axis.

  Returns:
    A tensor [N, bins, bins, C].
  """
  height, width = x.get_shape().as_list()[1:3]
  if height is None or width is None:
    raise ValueError('adaptive_avg_pool needs a static spatial size.')
  if height % bins == 0 and width % bins == 0:
    kh, kw = height // bins, width // bins
    return tf.nn.avg_pool(x, [1, kh, kw, 1], [1, kh, kw, 1], 'VALID')
  rows = []
  for i in range(bins):
    y0, y1 = (i * height) // bins, -(-((i + 1) * height) // bins)
    cols = []
    for j in range(bins):
      x0, x1 = (j * width) // bins, -(-((j + 1) * width) // bins)
      cols.append(tf.reduce_mean(x[:, y0:y1, x0:x1, :], axis=[1, 2],
                                 keepdims=True))
    rows.append(tf.concat(cols, axis=2))
  return tf.concat(rows, axis=1)
