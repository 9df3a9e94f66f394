#!/bin/bash
# Trains, tests and benchmarks PSPNet/ResNet-101 with unsupervised SegSort on
# PASCAL VOC 2012 (the original release's recipe): segments come from
# oversegmentation masks (VOC2012/hed/), no label is used in training;
# prototypes of train+ (these do use its labels, to name the segments);
# multi-scale inference on val; mIoU.
#
# Usage (relative paths are taken from the repository root):
#
#   DATAROOT=/path/to/datasets bash bashscripts/voc12/train_segsort_unsup.sh
#
# or, from the repository root in bash, with DATAROOT set in the shell:
#
#   source bashscripts/voc12/train_segsort_unsup.sh
#
# DATAROOT holds VOCdevkit/; pyscripts/tools/make_voc_lists.py builds
# VOCdevkit/VOC2012/segcls/ and dataset/voc12/{train+,val}.txt from it
# (README, "Data"). The ImageNet checkpoint goes to
# snapshots/imagenet/trained/resnet_v1_101.ckpt. The original expected
# precomputed HED + OWT-UCM masks in VOC2012/hed/; with IS_OVERSEG=1 (the
# default) pyscripts/tools/make_contours.py writes HED contour maps to
# VOC2012/hed_contours/ and pyscripts/tools/make_oversegmentation.py turns
# them into HED-owt-ucm masks in VOC2012/hed/ (MASKS=gradient-ucm: masks from
# the built-in colour-gradient contours, no HED). Both keep what exists
# (e.g. the original release's masks): delete VOC2012/hed/ to remake the
# masks. The IS_* toggles may also be set from the environment.
#
# SMOKE=1 runs the same pipeline on a tiny synthetic dataset with a tiny
# network for 2 steps (CI runs it; SMOKE_DIR, a new temporary folder by
# default, receives the data and every output):
#
#   SMOKE=1 [SMOKE_DIR=/tmp/segsort_smoke] \
#     bash bashscripts/voc12/train_segsort_unsup.sh

# Sourced, the recipe runs in a child bash (see run_sourced.sh).
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/run_sourced.sh" || return
  return 0
fi

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# The steps (train_step, extract_prototypes, infer_*, benchmark_*, ...).
source bashscripts/voc12/common.sh

# Data, lists, checkpoints and the Python to run.
DATAROOT=${DATAROOT:-/path/to/datasets}
LIST_DIR=${LIST_DIR:-dataset/voc12}
SNAPSHOT_ROOT=${SNAPSHOT_ROOT:-snapshots}
IMAGENET_CKPT=${IMAGENET_CKPT-snapshots/imagenet/trained/resnet_v1_101.ckpt}
PYTHON=${PYTHON:-python3}

# Network. The ImageNet checkpoint was trained with TF-Slim's numerics (pool1
# padded SAME, batch-norm epsilon 1e-5), but the original release fine-tuned
# it with its own (pool1 padded one pixel on each side, epsilon 1e-3) and
# released its SegSort models in those. We keep 'original' so that results
# compare with the paper and the released checkpoints; BACKBONE_VARIANT=slim
# (--backbone_variant slim) would fine-tune in the ImageNet numerics instead.
# Every step below receives the same variant, as it must.
BACKBONE=resnet_v1_101
BACKBONE_VARIANT=original
WIDTH_MULTIPLIER=1.0

# Training hyper-parameters.
BATCH_SIZE=8
TRAIN_INPUT_SIZE=336,336
WEIGHT_DECAY=5e-4
ITER_SIZE=1
NUM_STEPS=10000
NUM_CLASSES=21
LEARNING_RATE=2e-3
UPDATE_TB_EVERY=50

# Inference: prototypes and multi-scale inference slide an
# INFERENCE_INPUT_SIZE window. Predictions are painted with COLORMAP (the VOC
# palette).
INFERENCE_INPUT_SIZE=480,480
INFERENCE_STRIDES=320,320
INFERENCE_SPLIT=val
COLORMAP=misc/colormapvoc.mat

# Oversegmentation masks: hed-owt-ucm (HED contours, oriented watershed,
# UCM threshold measured on CamVid val, README) or gradient-ucm.
MASKS=${MASKS:-hed-owt-ucm}
OWT_UCM_THRESHOLD=0.2

# SegSort hyper-parameters (training has no k-means and no memory banks:
# the oversegmentation gives the segments).
CONCENTRATION=10
EMBEDDING_DIM=32
NUM_CLUSTERS=5
KMEANS_ITERATIONS=10
K_IN_NEAREST_NEIGHBORS=15

# The pipeline (1 = run the step).
IS_OVERSEG=${IS_OVERSEG:-1}
IS_TRAIN=${IS_TRAIN:-1}
IS_PROTOTYPE=${IS_PROTOTYPE:-1}
IS_INFERENCE_MSC=${IS_INFERENCE_MSC:-1}
IS_BENCHMARK=${IS_BENCHMARK:-1}

# Smoke mode: only data, sizes and step counts change, the steps below run
# as they are. There is no ImageNet checkpoint for the tiny network, so
# training starts from random weights.
SMOKE=${SMOKE:-0}
if [ "${SMOKE}" = 1 ]; then
  SMOKE_DIR=${SMOKE_DIR:-$(mktemp -d -t segsort_smoke.XXXXXX)}
  DATAROOT=${SMOKE_DIR}/data
  LIST_DIR=${SMOKE_DIR}/lists
  SNAPSHOT_ROOT=${SMOKE_DIR}/snapshots
  IMAGENET_CKPT=
  BACKBONE=resnet_v1_50
  WIDTH_MULTIPLIER=0.0625
  BATCH_SIZE=2
  TRAIN_INPUT_SIZE=48,64
  NUM_STEPS=2
  NUM_CLASSES=4
  # Summaries at every step: each new set of fetched ops costs TensorFlow
  # another graph optimisation, seconds for two steps.
  UPDATE_TB_EVERY=1
  INFERENCE_INPUT_SIZE=48,48
  INFERENCE_STRIDES=32,32
  EMBEDDING_DIM=8
  NUM_CLUSTERS=2
  KMEANS_ITERATIONS=2
  K_IN_NEAREST_NEIGHBORS=3
  # HED's start-up alone would double the smoke run: the fast detector.
  MASKS=gradient-ucm
fi
case "${MASKS}" in
  hed-owt-ucm|gradient-ucm) ;;
  *) echo "error: MASKS must be hed-owt-ucm or gradient-ucm, got ${MASKS}" >&2
     exit 1 ;;
esac

# Named for what it is: method, model, backbone, GPUs x batch, steps,
# dataset, crop.
SNAPSHOT_DIR=${SNAPSHOT_ROOT}/voc12/unsup_segsort/unsup_segsort_pspnet
SNAPSHOT_DIR+=_${BACKBONE}_1xb${BATCH_SIZE}-${NUM_STEPS}it
SNAPSHOT_DIR+=_voc12-${TRAIN_INPUT_SIZE/,/x}
DATA_DIR=${DATAROOT}/VOCdevkit
GT_DIR=${DATA_DIR}/VOC2012/segcls
export PYTHONPATH=$(pwd)${PYTHONPATH:+:${PYTHONPATH}}

if [ "${SMOKE}" = 1 ]; then
  echo "SMOKE=1: synthetic data and outputs in ${SMOKE_DIR}"
  make_smoke_dataset
fi
# Stop before any training when an input of the enabled steps is missing.
check_inputs "${IS_TRAIN}" "${IS_BENCHMARK}" train+ ${INFERENCE_SPLIT}

# Oversegmentation masks VOC2012/hed/NAME.png of train+ (the path the reader
# derives from each label path); existing contour maps and masks are kept.
if [ "${IS_OVERSEG}" = 1 ] && [ "${MASKS}" = hed-owt-ucm ]; then
  "${PYTHON}" pyscripts/tools/make_contours.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/train+.txt" \
    --contour_dir "${DATA_DIR}/VOC2012/hed_contours"
  "${PYTHON}" pyscripts/tools/make_oversegmentation.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/train+.txt" \
    --contour_dir "${DATA_DIR}/VOC2012/hed_contours" \
    --watershed oriented --threshold "${OWT_UCM_THRESHOLD}"
elif [ "${IS_OVERSEG}" = 1 ]; then
  "${PYTHON}" pyscripts/tools/make_oversegmentation.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/train+.txt"
fi

# Train on train+ from ImageNet, the head (block5) initialised anew; no
# k-means and no memory banks. --num_steps N ends with model.ckpt-N here
# (the original passed N+1: its loop counted from 0, and it also ended at
# model.ckpt-N).
if [ "${IS_TRAIN}" = 1 ]; then
  train_step pyscripts/train/train_segsort_unsup.py "${SNAPSHOT_DIR}" \
    "${IMAGENET_CKPT}" train+ "${LEARNING_RATE}" "${NUM_STEPS}" "${NUM_STEPS}" \
    --not_restore_classifier
fi

# Prototypes of train+.
if [ "${IS_PROTOTYPE}" = 1 ]; then
  extract_prototypes "${SNAPSHOT_DIR}/model.ckpt-${NUM_STEPS}" train+ \
    "${SNAPSHOT_DIR}/results/train+"
fi

# Multi-scale inference (scales 0.5 to 1.75 and flips).
if [ "${IS_INFERENCE_MSC}" = 1 ]; then
  infer_multi_scale "${SNAPSHOT_DIR}/model.ckpt-${NUM_STEPS}" \
    "${SNAPSHOT_DIR}/results/train+/prototypes" \
    "${SNAPSHOT_DIR}/results/${INFERENCE_SPLIT}"
fi

# mIoU (VOC2012/segcls holds every split's labels, hence --allow_extra_gt).
if [ "${IS_BENCHMARK}" = 1 ]; then
  benchmark_miou "${SNAPSHOT_DIR}/results/${INFERENCE_SPLIT}"
fi
