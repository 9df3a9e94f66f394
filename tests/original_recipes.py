"""What the original release's VOC recipes pass, step by step, with sources.

Every value is cited as FILE:LINE of the original release's
bashscripts/voc12/FILE (train_segsort.sh and train_segsort_mgpu.sh as last
changed there, with their stage-2 LEARNING_RATE=2e-4), the line that sets
it: a variable at the top of the script, or the flag itself where the step
passes a literal. Variables are expanded; in paths,

  {data}   stands for ${DATAROOT}/VOCdevkit,
  {lists}  for dataset/voc12 (LIST_DIR here),
  {ckpt}   for snapshots/imagenet/trained/resnet_v1_101.ckpt (IMAGENET_CKPT),
  {snap}   for the recipe's SNAPSHOT_DIR (named differently here).

A value this repository changes on purpose carries what it passes instead
(`now`; None: the flag is left out) and the README entry that says why
("Differences from the original release").

RECIPES maps each recipe to the steps it runs by default, in order: a list
of (python script, {flag: Setting}). A Step whose script is None is new
here (no original counterpart).
"""
import collections

# `now` of a setting the recipe passes as the original did.
SAME = object()


class Setting(collections.namedtuple('Setting', 'original source now why')):
  """One flag of one step (see the module docstring)."""

  def differs(self, now, why):
    """This setting with the value passed here instead, and why."""
    return self._replace(now=now, why=why)

  @property
  def expected(self):
    return self.original if self.now is SAME else self.now


class _Original(object):
  """Cites lines of one original recipe file."""

  def __init__(self, name):
    self.name = name

  def var(self, line, assignment):
    """A variable set at line, e.g. var(11, 'BATCH_SIZE=8')."""
    return Setting(assignment.split('=', 1)[1],
                   '%s:%d %s' % (self.name, line, assignment), SAME, '')

  def arg(self, line, text):
    """A flag passed at line, e.g. arg(62, '--update_tb_every 50')."""
    parts = text.split(' ', 1)
    value = parts[1] if len(parts) == 2 else True
    return Setting(value, '%s:%d %s' % (self.name, line, text), SAME, '')


NUM_STEPS_WHY = ('README: --num_steps N ends at model.ckpt-N (the original '
                 'passed N+1 and saved at step N)')
MSC_DIR_WHY = ('README: multi-scale results go to their own folder (val_msc) '
               'instead of overwriting the single-scale ones')
STAGE2_HEAD_WHY = ('README: stage 2 of train_segsort.sh keeps the head '
                   'trained in stage 1')

# Flags new here that the recipes pass, with their values.
NEW_FLAGS = {
    'backbone': 'resnet_v1_101', 'backbone_variant': 'original',
    'width_multiplier': '1.0', 'allow_extra_gt': True,
    # Benchmark results as JSON next to the predictions.
    'output_json': '{save_dir}/miou.json',
}


def _segsort(o, lines, assignments):
  """--concentration ... --kmeans_iterations, those the step passes."""
  names = ('concentration', 'num_banks', 'embedding_dim', 'num_clusters',
           'kmeans_iterations')
  return {name: o.var(line, assignment) for name, line, assignment
          in zip(names, lines, assignments) if line}


def _train_segsort_sh():
  o = _Original('train_segsort.sh')
  batch = o.var(11, 'BATCH_SIZE=8')
  size = o.var(12, 'TRAIN_INPUT_SIZE=336,336')
  weight_decay = o.var(13, 'WEIGHT_DECAY=5e-4')
  iter_size = o.var(14, 'ITER_SIZE=1')
  steps = o.var(15, 'NUM_STEPS=30000')
  classes = o.var(16, 'NUM_CLASSES=21')
  window = o.var(20, 'INFERENCE_INPUT_SIZE=480,480')
  strides = o.var(21, 'INFERENCE_STRIDES=320,320')
  segsort = _segsort(o, (25, 26, 27, 28, 29), (
      'CONCENTRATION=10', 'NUM_BANKS=2', 'EMBEDDING_DIM=32', 'NUM_CLUSTERS=5',
      'KMEANS_ITERATIONS=10'))
  no_banks = {k: v for k, v in segsort.items()
              if k not in ('concentration', 'num_banks')}
  k = o.var(30, 'K_IN_NEAREST_NEIGHBORS=15')
  ckpt1 = '{snap}/stage1/model.ckpt-30000'
  ckpt2 = '{snap}/stage2/model.ckpt-30000'

  def train(first, stage, restore, split, lr):
    return dict(segsort, **{
        'snapshot_dir': o.arg(first + 1, '--snapshot_dir {snap}/' + stage),
        'restore_from': o.arg(first + 2, '--restore_from ' + restore),
        'data_list': o.arg(first + 3, '--data_list {lists}/%s.txt' % split),
        'data_dir': o.arg(first + 4, '--data_dir {data}/'),
        'batch_size': batch, 'save_pred_every': steps,
        'update_tb_every': o.arg(first + 7, '--update_tb_every 50'),
        'input_size': size, 'learning_rate': lr,
        'weight_decay': weight_decay, 'iter_size': iter_size,
        'num_classes': classes,
        'num_steps': o.arg(first + 13, '--num_steps 30001').differs(
            '30000', NUM_STEPS_WHY),
        'random_mirror': o.arg(first + 19, '--random_mirror'),
        'random_scale': o.arg(first + 20, '--random_scale'),
        'random_crop': o.arg(first + 21, '--random_crop'),
        'not_restore_classifier': o.arg(first + 22,
                                        '--not_restore_classifier'),
        'is_training': o.arg(first + 23, '--is_training'),
    })

  def prototypes(first, split, restore, save_dir):
    return dict(no_banks, **{
        'data_dir': o.arg(first + 1, '--data_dir {data}/'),
        'data_list': o.arg(first + 2, '--data_list {lists}/%s.txt' % split),
        'restore_from': o.arg(first + 3, '--restore_from ' + restore),
        'input_size': window, 'strides': strides, 'num_classes': classes,
        'ignore_label': o.arg(first + 7, '--ignore_label 255'),
        'save_dir': o.arg(first + 11, '--save_dir ' + save_dir),
    })

  def single_scale(first, restore, save_dir, prototype_dir):
    return dict(no_banks, **{
        'data_dir': o.arg(first + 1, '--data_dir {data}/'),
        'data_list': o.arg(first + 2, '--data_list {lists}/val.txt'),
        'input_size': o.arg(first + 3, '--input_size 720,720'),
        'strides': strides,
        'restore_from': o.arg(first + 5, '--restore_from ' + restore),
        'colormap': o.arg(first + 6, '--colormap misc/colormapvoc.mat'),
        'num_classes': classes,
        'ignore_label': o.arg(first + 8, '--ignore_label 255'),
        'k_in_nearest_neighbors': k,
        'save_dir': o.arg(first + 13, '--save_dir ' + save_dir),
        'prototype_dir': o.arg(first + 14, '--prototype_dir ' + prototype_dir),
    })

  def benchmark(first, pred_dir):
    return {
        'pred_dir': o.arg(first + 1, '--pred_dir ' + pred_dir),
        'gt_dir': o.arg(first + 2, '--gt_dir {data}/VOC2012/segcls/'),
        'num_classes': classes,
    }

  train2 = train(149, 'stage2', ckpt1, 'train',
                 o.var(146, 'LEARNING_RATE=2e-4'))
  train2['not_restore_classifier'] = train2['not_restore_classifier'].differs(
      None, STAGE2_HEAD_WHY)
  msc2 = dict(no_banks, **{
      'data_dir': o.arg(213, '--data_dir {data}/'),
      'data_list': o.arg(214, '--data_list {lists}/val.txt'),
      'input_size': window, 'strides': strides,
      'restore_from': o.arg(217, '--restore_from ' + ckpt2),
      'colormap': o.arg(218, '--colormap misc/colormapvoc.mat'),
      'num_classes': classes,
      'ignore_label': o.arg(220, '--ignore_label 255'),
      'flip_aug': o.arg(221, '--flip_aug'),
      'scale_aug': o.arg(222, '--scale_aug'),
      'k_in_nearest_neighbors': k,
      'save_dir': o.arg(227, '--save_dir {snap}/stage2/results/val').differs(
          '{snap}/stage2/results/val_msc', MSC_DIR_WHY),
      'prototype_dir': o.arg(228, '--prototype_dir '
                             '{snap}/stage2/results/train/prototypes'),
  })
  benchmark_msc = benchmark(233, '{snap}/stage2/results/val/gray/')
  benchmark_msc['pred_dir'] = benchmark_msc['pred_dir'].differs(
      '{snap}/stage2/results/val_msc/gray/', MSC_DIR_WHY)
  return [
      ('train_segsort.py', train(55, 'stage1', '{ckpt}', 'train+',
                                 o.var(17, 'LEARNING_RATE=2e-3'))),
      ('extract_prototypes.py', prototypes(
          83, 'train+', ckpt1, '{snap}/stage1/results/train+')),
      ('inference_segsort.py', single_scale(
          99, ckpt1, '{snap}/stage1/results/val',
          '{snap}/stage1/results/train+/prototypes')),
      ('benchmark_by_mIoU.py',
       benchmark(139, '{snap}/stage1/results/val/gray/')),
      ('train_segsort.py', train2),
      ('extract_prototypes.py', prototypes(
          177, 'train', ckpt2, '{snap}/stage2/results/train')),
      ('inference_segsort.py', single_scale(
          193, ckpt2, '{snap}/stage2/results/val',
          '{snap}/stage2/results/train/prototypes')),
      ('inference_segsort_msc.py', msc2),
      ('benchmark_by_mIoU.py',
       benchmark(233, '{snap}/stage2/results/val/gray/')),
      # The original benchmarked one folder, holding whichever inference
      # ran last; here each has its own.
      ('benchmark_by_mIoU.py', benchmark_msc),
  ]


def _train_segsort_mgpu_sh():
  o = _Original('train_segsort_mgpu.sh')
  batch = o.var(11, 'BATCH_SIZE=16')
  size = o.var(12, 'TRAIN_INPUT_SIZE=480,480')
  weight_decay = o.var(13, 'WEIGHT_DECAY=5e-4')
  iter_size = o.var(14, 'ITER_SIZE=1')
  classes = o.var(17, 'NUM_CLASSES=21')
  num_gpu = o.var(18, 'NUM_GPU=5')
  window = o.var(22, 'INFERENCE_INPUT_SIZE=480,480')
  strides = o.var(23, 'INFERENCE_STRIDES=320,320')
  segsort = _segsort(o, (27, 28, 29, 30, 31), (
      'CONCENTRATION=10', 'NUM_BANKS=2', 'EMBEDDING_DIM=32', 'NUM_CLUSTERS=5',
      'KMEANS_ITERATIONS=10'))
  no_banks = {k: v for k, v in segsort.items()
              if k not in ('concentration', 'num_banks')}
  k = o.var(32, 'K_IN_NEAREST_NEIGHBORS=21')
  ckpt1 = '{snap}/stage1/model.ckpt-100000'
  ckpt2 = '{snap}/stage2/model.ckpt-30000'

  def common_train(data_dir_line, tb_line, switches_line):
    return dict(segsort, **{
        'data_dir': o.arg(data_dir_line, '--data_dir {data}/'),
        'batch_size': batch,
        'update_tb_every': o.arg(tb_line, '--update_tb_every 50'),
        'input_size': size, 'weight_decay': weight_decay,
        'iter_size': iter_size, 'num_classes': classes, 'num_gpu': num_gpu,
        'random_mirror': o.arg(switches_line, '--random_mirror'),
        'random_scale': o.arg(switches_line + 1, '--random_scale'),
        'random_crop': o.arg(switches_line + 2, '--random_crop'),
    })

  train1 = dict(common_train(60, 63, 76), **{
      'snapshot_dir': o.arg(57, '--snapshot_dir {snap}/stage1'),
      'restore_from': o.arg(58, '--restore_from {ckpt}'),
      'data_list': o.arg(59, '--data_list {lists}/train+.txt'),
      'save_pred_every': o.var(15, 'NUM_STEPS1=100000'),
      'learning_rate': o.var(19, 'LEARNING_RATE=2e-3'),
      'num_steps': o.arg(69, '--num_steps 100001').differs(
          '100000', NUM_STEPS_WHY),
      'not_restore_classifier': o.arg(79, '--not_restore_classifier'),
      'is_training': o.arg(80, '--is_training'),
  })
  train2 = dict(common_train(134, 137, 150), **{
      'snapshot_dir': o.arg(131, '--snapshot_dir {snap}/stage2'),
      'restore_from': o.arg(132, '--restore_from ' + ckpt1),
      'data_list': o.arg(133, '--data_list {lists}/train.txt'),
      'save_pred_every': o.arg(136, '--save_pred_every 10000'),
      'learning_rate': o.var(127, 'LEARNING_RATE=2e-4'),
      'num_steps': o.arg(143, '--num_steps 30001').differs(
          '30000', NUM_STEPS_WHY),
      'is_training': o.arg(153, '--is_training'),
  })

  def prototypes(data_dir_line, data_list_line, restore_line, ignore_line,
                 save_line, split, restore, save_dir):
    return dict(no_banks, **{
        'data_dir': o.arg(data_dir_line, '--data_dir {data}/'),
        'data_list': o.arg(data_list_line,
                           '--data_list {lists}/%s.txt' % split),
        'restore_from': o.arg(restore_line, '--restore_from ' + restore),
        'input_size': window, 'strides': strides, 'num_classes': classes,
        'ignore_label': o.arg(ignore_line, '--ignore_label 255'),
        'save_dir': o.arg(save_line, '--save_dir ' + save_dir),
    })

  single1 = dict(no_banks, **{
      'data_dir': o.arg(102, '--data_dir {data}/'),
      'data_list': o.arg(103, '--data_list {lists}/val.txt'),
      'input_size': o.arg(104, '--input_size 720,720'),
      'strides': strides,
      'restore_from': o.arg(106, '--restore_from ' + ckpt1),
      'colormap': o.arg(107, '--colormap misc/colormapvoc.mat'),
      'num_classes': classes,
      'ignore_label': o.arg(109, '--ignore_label 255'),
      'k_in_nearest_neighbors': k,
      'save_dir': o.arg(114, '--save_dir {snap}/stage1/results/val'),
      'prototype_dir': o.arg(115, '--prototype_dir '
                             '{snap}/stage1/results/train+/prototypes'),
  })
  msc2 = dict(no_banks, **{
      'data_dir': o.arg(194, '--data_dir {data}/'),
      'data_list': o.arg(195, '--data_list {lists}/val.txt'),
      'input_size': window, 'strides': strides,
      'restore_from': o.arg(198, '--restore_from ' + ckpt2),
      'colormap': o.arg(199, '--colormap misc/colormapvoc.mat'),
      'num_classes': classes,
      'ignore_label': o.arg(201, '--ignore_label 255'),
      'k_in_nearest_neighbors': k,
      'flip_aug': o.arg(206, '--flip_aug'),
      'scale_aug': o.arg(207, '--scale_aug'),
      'save_dir': o.arg(208, '--save_dir {snap}/stage2/results/val').differs(
          '{snap}/stage2/results/val_msc', MSC_DIR_WHY),
      'prototype_dir': o.arg(209, '--prototype_dir '
                             '{snap}/stage2/results/train/prototypes'),
  })
  benchmark2 = {
      'pred_dir': o.arg(215, '--pred_dir {snap}/stage2/results/val/gray/')
                  .differs('{snap}/stage2/results/val_msc/gray/',
                           MSC_DIR_WHY),
      'gt_dir': o.arg(216, '--gt_dir {data}/VOC2012/segcls/'),
      'num_classes': classes,
  }
  return [
      ('train_segsort_mgpu.py', train1),
      ('extract_prototypes.py', prototypes(
          86, 87, 88, 92, 96, 'train+', ckpt1,
          '{snap}/stage1/results/train+')),
      ('inference_segsort.py', single1),
      ('benchmark_by_mIoU.py', {
          'pred_dir': o.arg(121, '--pred_dir {snap}/stage1/results/val/gray/'),
          'gt_dir': o.arg(122, '--gt_dir {data}/VOC2012/segcls/'),
          'num_classes': classes,
      }),
      ('train_segsort_mgpu.py', train2),
      ('extract_prototypes.py', prototypes(
          159, 160, 163, 165, 169, 'train', ckpt2,
          '{snap}/stage2/results/train')),
      # IS_INFERENCE_2=0 (train_segsort_mgpu.sh:44): no single scale.
      ('inference_segsort_msc.py', msc2),
      ('benchmark_by_mIoU.py', benchmark2),
  ]


def _train_segsort_unsup_sh():
  o = _Original('train_segsort_unsup.sh')
  classes = o.var(16, 'NUM_CLASSES=21')
  window = o.var(20, 'INFERENCE_INPUT_SIZE=480,480')
  strides = o.var(21, 'INFERENCE_STRIDES=320,320')
  dim = o.var(26, 'EMBEDDING_DIM=32')
  clusters = o.var(27, 'NUM_CLUSTERS=5')
  iterations = o.var(28, 'KMEANS_ITERATIONS=10')
  ckpt = '{snap}/model.ckpt-10000'
  train = {
      'snapshot_dir': o.arg(49, '--snapshot_dir {snap}'),
      'restore_from': o.arg(50, '--restore_from {ckpt}'),
      'data_list': o.arg(51, '--data_list {lists}/train+.txt'),
      'data_dir': o.arg(52, '--data_dir {data}/'),
      'batch_size': o.var(11, 'BATCH_SIZE=8'),
      'save_pred_every': o.var(15, 'NUM_STEPS=10000'),
      'update_tb_every': o.arg(55, '--update_tb_every 50'),
      'input_size': o.var(12, 'TRAIN_INPUT_SIZE=336,336'),
      'learning_rate': o.var(17, 'LEARNING_RATE=2e-3'),
      'weight_decay': o.var(13, 'WEIGHT_DECAY=5e-4'),
      'iter_size': o.var(14, 'ITER_SIZE=1'),
      'num_classes': classes,
      'num_steps': o.arg(61, '--num_steps 10001').differs(
          '10000', NUM_STEPS_WHY),
      'concentration': o.var(25, 'CONCENTRATION=10'),
      'embedding_dim': dim,
      'random_mirror': o.arg(64, '--random_mirror'),
      'random_scale': o.arg(65, '--random_scale'),
      'random_crop': o.arg(66, '--random_crop'),
      'not_restore_classifier': o.arg(67, '--not_restore_classifier'),
      'is_training': o.arg(68, '--is_training'),
  }
  prototypes = {
      'data_dir': o.arg(74, '--data_dir {data}/'),
      'data_list': o.arg(75, '--data_list {lists}/train+.txt'),
      'input_size': window, 'strides': strides,
      'restore_from': o.arg(78, '--restore_from ' + ckpt),
      'num_classes': classes,
      'ignore_label': o.arg(80, '--ignore_label 255'),
      'embedding_dim': dim, 'num_clusters': clusters,
      'kmeans_iterations': iterations,
      'save_dir': o.arg(84, '--save_dir {snap}/results/train+'),
  }
  msc = {
      'data_dir': o.arg(90, '--data_dir {data}/'),
      'data_list': o.arg(91, '--data_list {lists}/val.txt'),
      'input_size': window, 'strides': strides,
      'restore_from': o.arg(94, '--restore_from ' + ckpt),
      'colormap': o.arg(95, '--colormap misc/colormapvoc.mat'),
      'num_classes': classes,
      'ignore_label': o.arg(97, '--ignore_label 255'),
      'save_dir': o.arg(98, '--save_dir {snap}/results/val'),
      'flip_aug': o.arg(99, '--flip_aug'),
      'scale_aug': o.arg(100, '--scale_aug'),
      'embedding_dim': dim, 'num_clusters': clusters,
      'kmeans_iterations': iterations,
      'k_in_nearest_neighbors': o.var(29, 'K_IN_NEAREST_NEIGHBORS=15'),
      'prototype_dir': o.arg(105, '--prototype_dir '
                             '{snap}/results/train+/prototypes'),
  }
  return [
      # The original expected the masks to exist (README, oversegmentation):
      # HED contours, then the HED-owt-ucm masks, are steps new here.
      (None, {}),
      (None, {}),
      ('train_segsort_unsup.py', train),
      ('extract_prototypes.py', prototypes),
      ('inference_segsort_msc.py', msc),
      ('benchmark_by_mIoU.py', {
          'pred_dir': o.arg(111, '--pred_dir {snap}/results/val/gray/'),
          'gt_dir': o.arg(112, '--gt_dir {data}/VOC2012/segcls/'),
          'num_classes': classes,
      }),
  ]


RECIPES = {
    'train_segsort.sh': _train_segsort_sh(),
    'train_segsort_mgpu.sh': _train_segsort_mgpu_sh(),
    'train_segsort_unsup.sh': _train_segsort_unsup_sh(),
}
