"""The trainer and the four training scripts, on tiny datasets."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from pyscripts import script_glue
from pyscripts.train import train as train_softmax_script
from pyscripts.train import train_segsort
from seg_models import image_reader
from seg_models import trainer
from tests import tiny_data

get_options = script_glue.options_from_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_read_checkpoint = tiny_data.read_checkpoint
_assert_same_variables = tiny_data.assert_same_variables


def _write_damped_checkpoint(source, target):
  """Copies a checkpoint with every residual branch's last BN scaled to 0.1.

  A residual network at random initialisation, with batch statistics over
  4-channel layers, is chaotic: a relative change of 1e-6 at its input
  moves its output by 1e-2, so float rounding alone (summing in another
  order over two towers) would hide any real difference. Damping the
  residual branches (as a "zero-init residual" would) makes the network
  well-conditioned (1e-6 -> 2e-5) without removing any layer from the test.
  """
  values = _read_checkpoint(source)
  for name in values:
    if name.endswith('conv3/BatchNorm/gamma'):
      values[name] = np.full_like(values[name], 0.1)
  with tf.Graph().as_default():
    created = [tf.Variable(value, name=name) for name, value in
               values.items()]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(created))
      tf.train.Saver(created).save(sess, target, write_meta_graph=False)
  return target


def _opts(data_dir, snapshot_dir, **kw):
  args = train_segsort.get_arguments(
      tiny_data.train_args(data_dir, snapshot_dir))
  kw.setdefault('show_progress', False)
  return get_options(trainer.TrainOptions, args, **kw)


def test_poly_learning_rate():
  step = tf.placeholder(tf.int64, [])
  lr = trainer.get_poly_learning_rate(0.01, step, 100, 0.9)
  with tf.Session() as sess:
    assert sess.run(lr, {step: 0}) == pytest.approx(0.01)
    assert sess.run(lr, {step: 50}) == pytest.approx(0.01 * 0.5**0.9)
    assert sess.run(lr, {step: 100}) == pytest.approx(0.0)


@pytest.mark.parametrize('loss_type,depth,channels', [
    (trainer.LOSS_SEGSORT, tiny_data.EMBEDDING_DIM, {
        image_reader.LABEL: 1, image_reader.CLUSTER_LABEL: 1,
        image_reader.LOCATION: 2}),
    (trainer.LOSS_SOFTMAX, tiny_data.NUM_CLASSES, {image_reader.LABEL: 1}),
])
def test_train_graph_exposes_batch_and_output(tiny_dataset, tmp_path,
                                              loss_type, depth, channels):
  """The batch and the network output the loss reads, by name."""
  opts = _opts(tiny_dataset, str(tmp_path / 'snap'), batch_size=2,
               input_size=(32, 40))
  g = trainer.build_train_graph(opts, loss_type)
  shapes = {key: tensor.get_shape().as_list()
            for key, tensor in g.batch.items()}
  expected = {key: [2, 32, 40, c] for key, c in channels.items()}
  expected.update({image_reader.IMAGE: [2, 32, 40, 3],
                   image_reader.NAME: [2]})
  assert shapes == expected
  assert g.output.get_shape().as_list() == [2, 4, 5, depth]
  assert '/block5/' in g.output.name
  # The loss depends on the output, and on the batch through it.
  assert tf.gradients(g.seg_loss, g.output)[0] is not None
  assert tf.gradients(g.output, g.batch[image_reader.IMAGE])[0] is not None


@pytest.mark.parametrize('script,extra', [
    ('train_segsort.py', []),
    ('train_segsort_mgpu.py', ['--num_gpu', '3']),
    ('train_segsort_unsup.py', []),
    ('train.py', []),
])
def test_scripts_write_checkpoints_config_events(tiny_dataset, tmp_path,
                                                 script, extra):
  snapshot_dir = str(tmp_path / 'snap')
  argv = tiny_data.train_args(tiny_dataset, snapshot_dir,
                              segsort=script != 'train.py',
                              kmeans=script != 'train_segsort_unsup.py') + extra
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'pyscripts', 'train', script)]
      + argv, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  for step in (2, 4):
    assert os.path.exists(os.path.join(snapshot_dir,
                                       'model.ckpt-%d.index' % step))
  config = open(os.path.join(snapshot_dir, 'config')).read()
  assert 'num_steps: 4' in config and 'snapshot_dir: ' + snapshot_dir in config
  assert glob.glob(os.path.join(snapshot_dir, 'events.out.tfevents.*'))
  tags = set()
  for path in glob.glob(os.path.join(snapshot_dir, 'events.out.tfevents.*')):
    for event in tf.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  assert {'seg_loss', 'total_loss', 'learning_rate'} <= tags
  assert any(t.startswith('images') for t in tags)


def test_bad_data_list_is_one_clear_line(tmp_path):
  data_dir = str(tmp_path)
  with open(os.path.join(data_dir, 'list.txt'), 'w') as f:
    f.write('JPEGImages/missing.jpg segcls/missing.png\n')
  argv = tiny_data.train_args(data_dir, str(tmp_path / 'snap'),
                              data_list=os.path.join(data_dir, 'list.txt'))
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'pyscripts', 'train',
                                    'train_segsort.py')] + argv,
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert 'missing.jpg' in result.stderr and 'Traceback' not in result.stderr


def test_segsort_loss_goes_down_on_a_fixed_batch(tiny_dataset, tmp_path):
  data_list = str(tmp_path / 'two.txt')
  with open(os.path.join(tiny_dataset, 'train.txt')) as f:
    lines = f.readlines()[:2]
  with open(data_list, 'w') as f:
    f.writelines(lines)
  losses = []
  opts = _opts(tiny_dataset, str(tmp_path / 'snap'), data_list=data_list,
               num_steps=30, save_pred_every=100, update_tb_every=100,
               learning_rate=0.02, weight_decay=0.0, num_banks=0)
  trainer.train(opts, trainer.LOSS_SEGSORT,
                step_callback=lambda step, loss: losses.append(loss))
  assert len(losses) == 30
  assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


def _op_devices(graph, op_type):
  """The devices of the ops of a type."""
  return {op.device for op in graph.get_operations() if op.type == op_type}


@pytest.mark.parametrize('num_gpu,loss_device,towers,loss_on', [
    # The original's meaning: N - 1 towers, the loss on the N-th device.
    (3, trainer.LOSS_DEVICE_SEPARATE, 2, 2),
    (2, trainer.LOSS_DEVICE_SEPARATE, 1, 1),
    # New here: every device a tower, the loss on the first.
    (2, trainer.LOSS_DEVICE_TOWER, 2, 0),
])
def test_num_gpu_counts_the_loss_device(tiny_dataset, tmp_path, num_gpu,
                                        loss_device, towers, loss_on):
  """--num_gpu N: towers on the first devices, the loss where it says.

  The original's train_segsort_mgpu.py split the batch over --num_gpu - 1
  towers and put the loss on GPU --num_gpu - 1 (its
  nn_mgpu.split(image_batch, args.num_gpu-1) and
  tf.device('/gpu:{:d}'.format(args.num_gpu-1))).
  """
  opts = _opts(tiny_dataset, str(tmp_path / 'snap'), batch_size=2,
               input_size=(32, 40), num_gpu=num_gpu, loss_device=loss_device)
  assert trainer.get_num_towers(num_gpu, loss_device) == towers
  tower_devices, loss_device_name = trainer.get_devices(opts)
  assert len(tower_devices) == towers
  with tf.Graph().as_default() as graph:
    g = trainer.build_train_graph(opts, trainer.LOSS_SEGSORT)
  assert g.num_devices == num_gpu and g.cpu_towers
  cpu = '/device:CPU:%d'
  assert loss_device_name == '/cpu:%d' % loss_on
  assert g.seg_loss.device == cpu % loss_on
  # The network's convolutions run on the towers' devices, and on no other.
  assert _op_devices(graph, 'Conv2D') == {cpu % i for i in range(towers)}


def test_num_gpu_batch_error_explains_the_loss_device(tiny_dataset,
                                                      tmp_path):
  opts = _opts(tiny_dataset, str(tmp_path / 'snap'), batch_size=3,
               num_gpu=3)
  with pytest.raises(trainer.TrainingError,
                     match=r'2 network towers of --num_gpu 3 \(N - 1: the '
                           r'last device computes the loss'):
    trainer.build_train_graph(opts, trainer.LOSS_SEGSORT)


def test_two_towers_equal_one_tower(tiny_dataset, tmp_path):
  """Same loss and same updated variables with 2 CPU towers as with 1.

  --num_gpu 3: two towers and a device for the loss; --num_gpu 2
  --loss_device tower: two towers, the loss on the first.
  """
  init = str(tmp_path / 'init')
  trainer.train(_opts(tiny_dataset, init, num_steps=1, learning_rate=1e-12,
                      batch_size=4),
                trainer.LOSS_SEGSORT)
  damped = _write_damped_checkpoint(os.path.join(init, 'model.ckpt-1'),
                                    str(tmp_path / 'damped' / 'model.ckpt'))
  results = {}
  for num_gpu, loss_device in ((1, trainer.LOSS_DEVICE_SEPARATE),
                               (3, trainer.LOSS_DEVICE_SEPARATE),
                               (2, trainer.LOSS_DEVICE_TOWER)):
    losses = []
    snap = str(tmp_path / ('gpus%d_%s' % (num_gpu, loss_device)))
    out = trainer.train(
        _opts(tiny_dataset, snap, num_steps=1, batch_size=4,
              num_gpu=num_gpu, loss_device=loss_device,
              restore_from=damped),
        trainer.LOSS_SEGSORT,
        step_callback=lambda step, loss: losses.append(loss))
    results[num_gpu] = (losses[0], _read_checkpoint(out['checkpoint']))
  for num_gpu in (2, 3):
    assert results[num_gpu][0] == pytest.approx(results[1][0], abs=1e-4)
    # Momentum slots (the raw gradients) are not compared here: k-means
    # makes discrete choices, and a pixel that changes cluster on a 1e-7
    # difference moves a few gradient entries by ~1e-3; scaled by the
    # learning rate the updated weights still agree within 1e-4, which is
    # what is asserted.
    _assert_same_variables(results[1][1], results[num_gpu][1], atol=1e-4,
                           slot_rtol=None)


def test_iter_size_accumulates_into_one_update(tmp_path):
  data_dir = str(tmp_path / 'data')
  # No ignore band, so every micro-batch has the same number of valid pixels
  # and the mean of two half-batch losses is the full-batch loss.
  from utils import synthetic_data
  synthetic_data.generate_dataset(
      data_dir, num_train=4, num_val=0, height=tiny_data.HEIGHT,
      width=tiny_data.WIDTH, num_classes=tiny_data.NUM_CLASSES, seed=1,
      border_width=0, show_progress=False)
  init = str(tmp_path / 'init')
  args = train_softmax_script.get_arguments(
      tiny_data.train_args(data_dir, init, segsort=False,
                           use_global_status=True))
  base = get_options(trainer.TrainOptions, args, show_progress=False)
  trainer.train(get_options(trainer.TrainOptions, args, show_progress=False,
                            num_steps=1, learning_rate=1e-12),
                trainer.LOSS_SOFTMAX)
  damped = _write_damped_checkpoint(os.path.join(init, 'model.ckpt-1'),
                                    str(tmp_path / 'damped' / 'model.ckpt'))
  results = {}
  for batch_size, iter_size in ((4, 1), (2, 2)):
    snap = str(tmp_path / ('b%d_i%d' % (batch_size, iter_size)))
    opts = get_options(
        trainer.TrainOptions, args, show_progress=False, num_steps=1,
        batch_size=batch_size, iter_size=iter_size, snapshot_dir=snap,
        learning_rate=0.05, restore_from=damped)
    results[(batch_size, iter_size)] = _read_checkpoint(
        trainer.train(opts, trainer.LOSS_SOFTMAX)['checkpoint'])
  before = _read_checkpoint(damped)
  moved = max(np.abs(results[(4, 1)][n] - before[n]).max()
              for n in before if n.endswith('weights'))
  assert moved > 1e-3  # The update is real, so equality below means much.
  _assert_same_variables(results[(4, 1)], results[(2, 2)], atol=1e-5)
  del base


def test_resume_matches_uninterrupted_run(tiny_dataset, tmp_path):
  common = dict(num_steps=20, save_pred_every=5, update_tb_every=100,
                num_banks=2)
  full = trainer.train(_opts(tiny_dataset, str(tmp_path / 'full'), **common),
                       trainer.LOSS_SEGSORT)

  def interrupt(step, loss):
    if step == 10:
      raise KeyboardInterrupt()

  snap = str(tmp_path / 'resumed')
  with pytest.raises(KeyboardInterrupt):
    trainer.train(_opts(tiny_dataset, snap, **common), trainer.LOSS_SEGSORT,
                  step_callback=interrupt)
  assert tf.train.latest_checkpoint(snap).endswith('model.ckpt-10')
  resumed = trainer.train(_opts(tiny_dataset, snap, **common),
                          trainer.LOSS_SEGSORT)
  assert resumed['step'] == 20
  a = _read_checkpoint(full['checkpoint'])
  b = _read_checkpoint(resumed['checkpoint'])
  assert any('segsort_memory_bank' in n for n in a)
  _assert_same_variables(a, b, atol=1e-5)
