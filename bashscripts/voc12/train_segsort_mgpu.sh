#!/bin/bash
# Trains, tests and benchmarks PSPNet/ResNet-101 with SegSort on PASCAL VOC
# 2012 on several GPUs (synchronised batch norm), in two stages (the
# original release's multi-GPU recipe):
#
#   stage 1  train on train+ (10,582 images) from the ImageNet checkpoint,
#            100k steps; prototypes of train+; single-scale inference on
#            val; mIoU.
#   stage 2  continue on train (1,464 images) from stage 1, 30k steps at a
#            10x lower learning rate; prototypes of train; multi-scale
#            inference on val; mIoU.
#
# Usage (relative paths are taken from the repository root):
#
#   DATAROOT=/path/to/datasets bash bashscripts/voc12/train_segsort_mgpu.sh
#
# or, from the repository root in bash, with DATAROOT set in the shell:
#
#   source bashscripts/voc12/train_segsort_mgpu.sh
#
# DATAROOT holds VOCdevkit/; pyscripts/tools/make_voc_lists.py builds
# VOCdevkit/VOC2012/segcls/ and dataset/voc12/{train+,train,val}.txt from
# it (README, "Data"). The ImageNet checkpoint goes to
# snapshots/imagenet/trained/resnet_v1_101.ckpt. The IS_* toggles may also be
# set from the environment, e.g. `IS_TRAIN_1=0 IS_TRAIN_2=0 bash ...` to
# redo only prototypes, inference and benchmarks.
#
# SMOKE=1 runs the same pipeline on a tiny synthetic dataset with a tiny
# network for 2 steps per stage on 2 CPU devices (CI runs it; SMOKE_DIR, a
# new temporary folder by default, receives the data and every output):
#
#   SMOKE=1 [SMOKE_DIR=/tmp/segsort_smoke] \
#     bash bashscripts/voc12/train_segsort_mgpu.sh

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

# Training hyper-parameters. NUM_GPU=5 as in the original: the 16 images
# split over 4 network towers of 4, the fifth GPU computes the loss
# (--num_gpu N: N - 1 towers; BATCH_SIZE is the whole batch, a multiple of
# N - 1). Stage 2 runs at a 10x lower learning rate.
BATCH_SIZE=16
TRAIN_INPUT_SIZE=480,480
WEIGHT_DECAY=5e-4
ITER_SIZE=1
NUM_STEPS_1=100000
NUM_STEPS_2=30000
SAVE_PRED_EVERY_2=10000
NUM_CLASSES=21
NUM_GPU=5
LEARNING_RATE_1=2e-3
LEARNING_RATE_2=2e-4
UPDATE_TB_EVERY=50

# Inference: prototypes and multi-scale inference slide an
# INFERENCE_INPUT_SIZE window; single-scale inference pads the whole image to
# SS_INPUT_SIZE. Predictions are painted with COLORMAP (the VOC palette).
INFERENCE_INPUT_SIZE=480,480
INFERENCE_STRIDES=320,320
SS_INPUT_SIZE=720,720
INFERENCE_SPLIT=val
COLORMAP=misc/colormapvoc.mat

# SegSort hyper-parameters.
CONCENTRATION=10
NUM_BANKS=2
EMBEDDING_DIM=32
NUM_CLUSTERS=5
KMEANS_ITERATIONS=10
K_IN_NEAREST_NEIGHBORS=21

# The pipeline (1 = run the step).
IS_TRAIN_1=${IS_TRAIN_1:-1}
IS_PROTOTYPE_1=${IS_PROTOTYPE_1:-1}
IS_INFERENCE_1=${IS_INFERENCE_1:-1}
IS_BENCHMARK_1=${IS_BENCHMARK_1:-1}
IS_TRAIN_2=${IS_TRAIN_2:-1}
IS_PROTOTYPE_2=${IS_PROTOTYPE_2:-1}
IS_INFERENCE_2=${IS_INFERENCE_2:-0}
IS_INFERENCE_MSC_2=${IS_INFERENCE_MSC_2:-1}
IS_BENCHMARK_2=${IS_BENCHMARK_2:-1}

# Smoke mode: only data, sizes and step counts change, the steps below run
# as they are. There is no ImageNet checkpoint for the tiny network, so
# stage 1 starts from random weights (stage 2 still restores stage 1).
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
  NUM_STEPS_1=2
  NUM_STEPS_2=2
  SAVE_PRED_EVERY_2=2
  NUM_CLASSES=4
  NUM_GPU=3
  # Summaries at every step: each new set of fetched ops costs TensorFlow
  # another graph optimisation, seconds for two steps.
  UPDATE_TB_EVERY=1
  INFERENCE_INPUT_SIZE=48,48
  INFERENCE_STRIDES=32,32
  SS_INPUT_SIZE=64,64
  EMBEDDING_DIM=8
  NUM_CLUSTERS=2
  KMEANS_ITERATIONS=2
  K_IN_NEAREST_NEIGHBORS=3
fi

# Named for what it is: method, model, backbone, towers x images per tower
# (NUM_GPU - 1 towers), steps of the two stages, dataset, crop.
SNAPSHOT_DIR=${SNAPSHOT_ROOT}/voc12/segsort/segsort_pspnet_${BACKBONE}
SNAPSHOT_DIR+=_$((NUM_GPU - 1))xb$((BATCH_SIZE / (NUM_GPU - 1)))
SNAPSHOT_DIR+=-${NUM_STEPS_1}+${NUM_STEPS_2}it_voc12-${TRAIN_INPUT_SIZE/,/x}
DATA_DIR=${DATAROOT}/VOCdevkit
GT_DIR=${DATA_DIR}/VOC2012/segcls
export PYTHONPATH=$(pwd)${PYTHONPATH:+:${PYTHONPATH}}

if [ "${SMOKE}" = 1 ]; then
  echo "SMOKE=1: synthetic data and outputs in ${SMOKE_DIR}"
  make_smoke_dataset
fi
# Stop before any training when an input of the enabled steps is missing.
LISTS=(train+ ${INFERENCE_SPLIT})
if [ "${IS_TRAIN_2}" = 1 ] || [ "${IS_PROTOTYPE_2}" = 1 ]; then
  LISTS+=(train)
fi
NEED_GT=0
if [ "${IS_BENCHMARK_1}" = 1 ] || [ "${IS_BENCHMARK_2}" = 1 ]; then
  NEED_GT=1
fi
check_inputs "${IS_TRAIN_1}" "${NEED_GT}" "${LISTS[@]}"

# Stage 1: train on train+ from ImageNet, the head (block5) initialised anew.
# --num_steps N ends with model.ckpt-N here (the original passed N+1: its
# loop counted from 0, and it also ended at model.ckpt-N).
if [ "${IS_TRAIN_1}" = 1 ]; then
  train_step pyscripts/train/train_segsort_mgpu.py "${SNAPSHOT_DIR}/stage1" \
    "${IMAGENET_CKPT}" train+ \
    "${LEARNING_RATE_1}" "${NUM_STEPS_1}" "${NUM_STEPS_1}" \
    --num_banks "${NUM_BANKS}" --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" --num_gpu "${NUM_GPU}" \
    --not_restore_classifier
fi

# Stage 1: prototypes of train+.
if [ "${IS_PROTOTYPE_1}" = 1 ]; then
  extract_prototypes "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" train+ \
    "${SNAPSHOT_DIR}/stage1/results/train+"
fi

# Stage 1: single-scale inference.
if [ "${IS_INFERENCE_1}" = 1 ]; then
  infer_single_scale "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    "${SNAPSHOT_DIR}/stage1/results/train+/prototypes" \
    "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}"
fi

# Stage 1: mIoU.
if [ "${IS_BENCHMARK_1}" = 1 ]; then
  benchmark_existing "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}"
fi

# Stage 2: continue on train from stage 1, head included.
if [ "${IS_TRAIN_2}" = 1 ]; then
  train_step pyscripts/train/train_segsort_mgpu.py "${SNAPSHOT_DIR}/stage2" \
    "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" train \
    "${LEARNING_RATE_2}" "${NUM_STEPS_2}" "${SAVE_PRED_EVERY_2}" \
    --num_banks "${NUM_BANKS}" --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" --num_gpu "${NUM_GPU}"
fi

# Stage 2: prototypes of train.
if [ "${IS_PROTOTYPE_2}" = 1 ]; then
  extract_prototypes "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" train \
    "${SNAPSHOT_DIR}/stage2/results/train"
fi

# Stage 2: single-scale inference.
if [ "${IS_INFERENCE_2}" = 1 ]; then
  infer_single_scale "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    "${SNAPSHOT_DIR}/stage2/results/train/prototypes" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}"
fi

# Stage 2: multi-scale inference (scales 0.5 to 1.75 and flips), into its
# own folder so that it never overwrites single-scale predictions.
if [ "${IS_INFERENCE_MSC_2}" = 1 ]; then
  infer_multi_scale "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    "${SNAPSHOT_DIR}/stage2/results/train/prototypes" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc"
fi

# Stage 2: mIoU.
if [ "${IS_BENCHMARK_2}" = 1 ]; then
  benchmark_existing "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc"
fi
