"""Model settings travel with the checkpoint (SNAPSHOT_DIR/model.json).

The tiny snapshots of conftest.py (ResNet-50 at 1/16 width, 8-d embedding,
4 classes) are restored without their model flags; a flag given with
another value stops the script naming it.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from pyscripts import checkpoint_settings
from pyscripts import flags
from pyscripts import train_main
from pyscripts.inference import extract_prototypes
from pyscripts.inference import inference
from pyscripts.inference import inference_segsort
from pyscripts.train import train as train_softmax
from pyscripts.train import train_segsort
from seg_models import checkpoints
from seg_models import prototype_sets
from seg_models import snapshot_folder
from seg_models import trainer
from tests import tiny_data
from utils import config_snapshot

BACKBONE = 'resnet_v1_50'  # As conftest's tiny snapshots.
WINDOW = ['--input_size', '64,80', '--strides', '64,80']


def _data_flags(tiny_dataset, split, save_dir):
  return ['--data_dir', tiny_dataset,
          '--data_list', os.path.join(tiny_dataset, split + '.txt'),
          '--save_dir', save_dir]


def _error_of(main, argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(argv)
  assert exit_info.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith('error: ') and err.count('\n') == 1, err
  assert 'Traceback' not in err
  return err


def test_training_writes_model_json(tiny_segsort_snapshot,
                                    tiny_softmax_snapshot):
  with open(os.path.join(tiny_segsort_snapshot, 'model.json')) as f:
    segsort = json.load(f)
  assert segsort == {
      'format': 1, 'loss': 'segsort', 'output': 'embedding',
      'network': {'model': 'pspnet', 'backbone': BACKBONE,
                  'backbone_variant': 'original',
                  'width_multiplier': tiny_data.WIDTH_MULTIPLIER,
                  'embedding_dim': tiny_data.EMBEDDING_DIM},
      'training': {'num_classes': tiny_data.NUM_CLASSES, 'num_banks': 2}}
  with open(os.path.join(tiny_softmax_snapshot, 'model.json')) as f:
    softmax = json.load(f)
  assert softmax['loss'] == 'softmax' and softmax['output'] == 'logits'
  assert softmax['network']['num_classes'] == tiny_data.NUM_CLASSES
  assert 'embedding_dim' not in softmax['network']
  assert softmax['training'] == {}
  # The human-readable record stays, without bookkeeping attributes.
  config = open(os.path.join(tiny_segsort_snapshot, 'config')).read()
  assert 'backbone: ' + BACKBONE in config
  assert flags.EXPLICIT_ATTR not in config


def test_explicit_flags_are_told_apart_from_defaults():
  args = inference_segsort.get_arguments(
      ['--data_list', 'l.txt', '--backbone=resnet_v1_50', '--emb', '8',
       '--num_classes', '21'])
  explicit = flags.get_explicit_flags(args)
  assert {'data_list', 'backbone', 'embedding_dim', 'num_classes'} <= explicit
  assert 'width_multiplier' not in explicit and 'model' not in explicit
  # Given with the default's value still counts as given.
  assert flags.is_explicit(args, 'num_classes')
  # The defaults stay the original release's.
  assert args.num_classes == 21 and args.backbone == 'resnet_v1_50'
  # A Namespace not made by flags.parse: every flag counts as given.
  assert flags.is_explicit(type(args)(), 'backbone')


def test_inference_reads_the_settings(tiny_dataset, tiny_segsort_snapshot,
                                      tiny_softmax_snapshot, tmp_path,
                                      capsys):
  """No model flag on the command line: the checkpoint's are used."""
  train_dir = str(tmp_path / 'train')
  extract_prototypes.main(
      _data_flags(tiny_dataset, 'train', train_dir) + WINDOW +
      ['--restore_from', tiny_segsort_snapshot, '--num_clusters', '3'])
  out = capsys.readouterr().out
  assert 'Model settings from %s' % os.path.join(
      tiny_segsort_snapshot, 'model.json') in out
  assert '--backbone %s' % BACKBONE in out
  prototypes = prototype_sets.load_prototypes(
      os.path.join(train_dir, 'prototypes'), tiny_data.EMBEDDING_DIM,
      tiny_data.NUM_CLASSES)
  assert len(prototypes) > 0

  # A checkpoint prefix finds the model.json of its folder.
  prefix = checkpoints.list_checkpoints(tiny_segsort_snapshot)[0][1]
  names = inference_segsort.main(
      _data_flags(tiny_dataset, 'val', str(tmp_path / 'val')) + WINDOW +
      ['--restore_from', prefix, '--num_clusters', '3',
       '--prototype_dir', os.path.join(train_dir, 'prototypes')])
  assert len(names) == 4

  names = inference.main(
      _data_flags(tiny_dataset, 'val', str(tmp_path / 'softmax')) + WINDOW +
      ['--restore_from', tiny_softmax_snapshot])
  assert len(names) == 4


@pytest.mark.parametrize('flag,value', [
    ('--backbone', 'resnet_v1_101'),
    ('--backbone_variant', 'slim'),
    ('--width_multiplier', '0.125'),
    ('--embedding_dim', '16'),
    ('--model', 'deeplab'),
])
def test_a_contradicting_flag_is_named(tiny_dataset, tiny_segsort_snapshot,
                                       tmp_path, capsys, flag, value):
  err = _error_of(extract_prototypes.main,
                  _data_flags(tiny_dataset, 'train', str(tmp_path / 'o')) +
                  ['--restore_from', tiny_segsort_snapshot, flag, value],
                  capsys)
  assert '%s %s contradicts --restore_from' % (flag, value) in err
  assert 'model.json' in err and 'Leave %s out' % flag in err
  assert not os.path.exists(str(tmp_path / 'o' / 'prototypes'))


def test_the_same_value_given_is_accepted(tiny_segsort_snapshot):
  args = inference_segsort.get_arguments(
      ['--data_list', 'l.txt', '--restore_from', tiny_segsort_snapshot,
       '--backbone', BACKBONE, '--width_multiplier', '0.0625',
       '--num_classes', '21'])
  notes = []
  checkpoint_settings.apply(args, args.restore_from, 'embedding',
                            log=notes.append)
  assert args.backbone == BACKBONE
  assert args.embedding_dim == tiny_data.EMBEDDING_DIM
  # Inference may name other classes (the prototypes' labels decide): a
  # note, not an error.
  assert args.num_classes == 21
  assert any('--num_classes 21 differs' in n for n in notes)


def test_a_model_of_the_other_kind_is_refused(
    tiny_dataset, tiny_segsort_snapshot, tiny_softmax_snapshot, tmp_path,
    capsys):
  err = _error_of(inference.main,
                  _data_flags(tiny_dataset, 'val', str(tmp_path / 'o')) +
                  ['--restore_from', tiny_segsort_snapshot], capsys)
  assert 'outputs embedding' in err and 'outputs logits' in err
  err = _error_of(extract_prototypes.main,
                  _data_flags(tiny_dataset, 'train', str(tmp_path / 'o')) +
                  ['--restore_from', tiny_softmax_snapshot], capsys)
  assert 'use inference.py' in err


def test_without_model_json_the_flags_stay(tiny_segsort_snapshot, tmp_path):
  folder = str(tmp_path / 'old')
  shutil.copytree(tiny_segsort_snapshot, folder)
  os.remove(os.path.join(folder, 'model.json'))
  args = inference_segsort.get_arguments(['--data_list', 'l.txt',
                                          '--restore_from', folder])
  assert checkpoint_settings.apply(args, folder, 'embedding') is None
  assert args.backbone == 'resnet_v1_101' and args.embedding_dim == 32


def test_broken_model_json_is_one_clear_error(tiny_segsort_snapshot,
                                              tmp_path):
  folder = str(tmp_path / 'broken')
  os.makedirs(folder)
  with open(os.path.join(folder, 'model.json'), 'w') as f:
    f.write('{"network": ')
  args = inference_segsort.get_arguments(['--data_list', 'l.txt'])
  with pytest.raises(snapshot_folder.SnapshotFolderError,
                     match='model.json'):
    checkpoint_settings.apply(args, folder, 'embedding')


def test_resume_takes_and_checks_the_folder_settings(tiny_dataset,
                                                     tiny_segsort_snapshot):
  """A resumed run may leave the model flags out, not change them."""
  argv = ['--is_training', '--data_dir', tiny_dataset, '--data_list',
          os.path.join(tiny_dataset, 'train.txt'), '--snapshot_dir',
          tiny_segsort_snapshot]
  args = train_segsort.get_arguments(argv)
  train_main.apply_resume_settings(args, trainer.LOSS_SEGSORT)
  assert (args.backbone, args.width_multiplier, args.embedding_dim,
          args.num_classes) == (BACKBONE, tiny_data.WIDTH_MULTIPLIER,
                                tiny_data.EMBEDDING_DIM,
                                tiny_data.NUM_CLASSES)
  opts = train_main.script_glue.options_from_args(trainer.TrainOptions, args)
  snapshot_folder.check_same_model(tiny_segsort_snapshot,
                                   vars(opts))  # Agrees with the trainer.

  for extra, flag in ((['--backbone', 'resnet_v1_101'], '--backbone'),
                      (['--num_classes', '21'], '--num_classes'),
                      (['--num_banks', '0'], '--num_banks')):
    args = train_segsort.get_arguments(argv + extra)
    with pytest.raises(checkpoint_settings.ModelSettingsError, match=flag):
      train_main.apply_resume_settings(args, trainer.LOSS_SEGSORT)

  # The softmax trainer on a SegSort folder.
  args = train_softmax.get_arguments(argv)
  with pytest.raises(checkpoint_settings.ModelSettingsError,
                     match='outputs embedding'):
    train_main.apply_resume_settings(args, trainer.LOSS_SOFTMAX)


def test_a_new_run_keeps_its_flags(tiny_dataset, tmp_path):
  """Only a folder with checkpoints is resumed: a model.json alone (a run
  stopped before its first checkpoint) does not set the flags."""
  folder = str(tmp_path / 'new')
  os.makedirs(folder)
  snapshot_folder.save_model_settings(folder, {
      'format': 1, 'loss': 'segsort', 'output': 'embedding',
      'network': {'backbone': 'resnet_v1_50'}, 'training': {}})
  args = train_segsort.get_arguments(
      ['--is_training', '--data_list', 'l.txt', '--snapshot_dir', folder])
  assert train_main.apply_resume_settings(args, trainer.LOSS_SEGSORT) is None
  assert args.backbone == 'resnet_v1_101'


def test_resume_check_falls_back_to_the_config_text(tmp_path):
  """Folders written before model.json are checked against their config."""
  folder = str(tmp_path / 'old')
  config_snapshot.save_config(folder, {'backbone': 'resnet_v1_50',
                                       'embedding_dim': 8})
  snapshot_folder.check_same_model(folder, {'backbone': 'resnet_v1_50',
                                            'embedding_dim': 8})
  with pytest.raises(snapshot_folder.SnapshotFolderError,
                     match='--backbone: resnet_v1_50 in the folder'):
    snapshot_folder.check_same_model(folder, {'backbone': 'resnet_v1_101',
                                              'embedding_dim': 8})


def _write_checkpoint(prefix, values):
  with tf.Graph().as_default():
    created = [tf.Variable(v, name=n) for n, v in values.items()]
    with tf.Session() as sess:
      sess.run(tf.variables_initializer(created))
      tf.train.Saver(created).save(sess, prefix, write_meta_graph=False)


def test_mismatch_hint_names_the_backbone_and_width(tmp_path):
  """Without model.json, the error points to the flag to fix."""
  prefix = str(tmp_path / 'model.ckpt-1')
  _write_checkpoint(prefix, {
      'resnet_v1_50/conv1/weights': np.zeros([7, 7, 3, 4], np.float32),
      'resnet_v1_50/block5/w': np.zeros([2], np.float32)})
  model_vars = [tf.get_variable('resnet_v1_101/conv1/weights', [7, 7, 3, 4]),
                tf.get_variable('resnet_v1_101/block5/w', [2])]
  with pytest.raises(checkpoints.RestoreError) as err:
    checkpoints.check_variables(prefix, model_vars, ['block5'])
  message = str(err.value)
  assert 'pass --backbone resnet_v1_50' in message
  assert '--not_restore_classifier' not in message

  tf.reset_default_graph()
  model_vars = [tf.get_variable('resnet_v1_50/conv1/weights', [7, 7, 3, 64]),
                tf.get_variable('resnet_v1_50/block5/w', [2])]
  with pytest.raises(checkpoints.RestoreError,
                     match='pass --width_multiplier 0.0625'):
    checkpoints.check_variables(prefix, model_vars, ['block5'])
