#!/bin/bash
# Trains, tests and benchmarks PSPNet/ResNet-101 with SegSort on PASCAL VOC
# 2012 on several GPUs (synchronised batch norm), in two stages (the
# original release's multi-GPU recipe):
#
#   stage 1  train on train+ (10,582 images) from the ImageNet checkpoint,
#            100k steps; prototypes of train+; single-scale inference on
#            val; mIoU.
#   stage 2  continue on train (1,464 images) from stage 1, 30k steps;
#            prototypes of train; multi-scale inference on val; mIoU.
#
# Usage (relative paths are taken from the repository root):
#
#   DATAROOT=/path/to/datasets bash bashscripts/voc12/train_segsort_mgpu.sh
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
#   SMOKE=1 [SMOKE_DIR=/tmp/segsort_smoke] bash bashscripts/voc12/train_segsort_mgpu.sh

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

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

# Training hyper-parameters. The original ran 5 GPUs: 4 towers of 4 images
# and a fifth GPU for the loss. The loss here runs on the first tower's
# device, so NUM_GPU counts towers, and 16 images split over 4 of them as
# they did; BATCH_SIZE is the whole batch (a multiple of NUM_GPU). Both
# stages use the same learning rate, as the original did.
BATCH_SIZE=16
TRAIN_INPUT_SIZE=480,480
WEIGHT_DECAY=5e-4
ITER_SIZE=1
NUM_STEPS_1=100000
NUM_STEPS_2=30000
SAVE_PRED_EVERY_2=10000
NUM_CLASSES=21
NUM_GPU=4
LEARNING_RATE_1=2e-3
LEARNING_RATE_2=2e-3
UPDATE_TB_EVERY=50

# Inference: prototypes and multi-scale inference slide an
# INFERENCE_INPUT_SIZE window; single-scale inference pads the whole image to
# SS_INPUT_SIZE.
INFERENCE_INPUT_SIZE=480,480
INFERENCE_STRIDES=320,320
SS_INPUT_SIZE=720,720
INFERENCE_SPLIT=val

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
  NUM_GPU=2
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

# Named for what it is: method, model, backbone, GPUs x images per GPU,
# steps of the two stages, dataset, crop.
SNAPSHOT_DIR=${SNAPSHOT_ROOT}/voc12/segsort/segsort_pspnet_${BACKBONE}_${NUM_GPU}xb$((BATCH_SIZE / NUM_GPU))-${NUM_STEPS_1}+${NUM_STEPS_2}it_voc12-${TRAIN_INPUT_SIZE/,/x}
DATA_DIR=${DATAROOT}/VOCdevkit
GT_DIR=${DATA_DIR}/VOC2012/segcls
export PYTHONPATH=$(pwd)${PYTHONPATH:+:${PYTHONPATH}}

# Writes a 6 + 3 image synthetic dataset in the VOC layout, and list files
# in the format make_voc_lists.py writes (paths relative to DATA_DIR).
make_smoke_dataset() {
  "${PYTHON}" pyscripts/tools/make_synthetic_dataset.py \
    --output_dir "${DATA_DIR}/VOC2012" --num_train 6 --num_val 3 \
    --height 48 --width 64 --num_classes "${NUM_CLASSES}" --seed 0
  mkdir -p "${LIST_DIR}"
  for split in train val; do
    awk '{ for (i = 1; i <= NF; i++) $i = "VOC2012/" $i; print }' \
      "${DATA_DIR}/VOC2012/${split}.txt" > "${LIST_DIR}/${split}.txt"
  done
  cp "${LIST_DIR}/train.txt" "${LIST_DIR}/train+.txt"
}

# Stops before any training when an input of the enabled steps is missing.
check_inputs() {
  local missing=() split
  [ -d "${DATA_DIR}" ] || missing+=("VOCdevkit folder ${DATA_DIR} (set DATAROOT)")
  for split in "$@"; do
    [ -f "${LIST_DIR}/${split}.txt" ] || missing+=("list file ${LIST_DIR}/${split}.txt")
  done
  if [ "${IS_BENCHMARK_1}" = 1 ] || [ "${IS_BENCHMARK_2}" = 1 ]; then
    [ -d "${GT_DIR}" ] || missing+=("ground-truth folder ${GT_DIR}")
  fi
  # An empty IMAGENET_CKPT (smoke mode) means random initial weights.
  if [ "${IS_TRAIN_1}" = 1 ] && [ -n "${IMAGENET_CKPT}" ] &&
     [ ! -e "${IMAGENET_CKPT}" ] && [ ! -e "${IMAGENET_CKPT}.index" ]; then
    missing+=("ImageNet checkpoint ${IMAGENET_CKPT} (see snapshots/README.md)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    {
      echo "error: $(basename "$0"): nothing was run, missing:"
      printf '  - %s\n' "${missing[@]}"
      echo "Build the lists and VOC2012/segcls with"
      echo "  python pyscripts/tools/make_voc_lists.py --data_dir \${DATAROOT}/VOCdevkit --sbd_dir \${DATAROOT}"
      echo "and see README.md (Data); or run SMOKE=1 bash bashscripts/voc12/$(basename "$0") for a synthetic check."
    } >&2
    exit 1
  fi
}

# Benchmarks every prediction folder of one stage (single-, multi-scale).
benchmark() {
  local found=0 save_dir
  for save_dir in "$@"; do
    if [ -d "${save_dir}/gray" ]; then
      found=1
      echo "mIoU of ${save_dir}:"
      "${PYTHON}" pyscripts/benchmark/benchmark_by_mIoU.py \
        --pred_dir "${save_dir}/gray/" \
        --gt_dir "${GT_DIR}/" \
        --num_classes ${NUM_CLASSES} \
        --allow_extra_gt \
        --output_json "${save_dir}/miou.json"
    fi
  done
  if [ ${found} = 0 ]; then
    echo "error: no predictions to benchmark in: $*" >&2
    exit 1
  fi
}

if [ "${SMOKE}" = 1 ]; then
  echo "SMOKE=1: synthetic data and outputs in ${SMOKE_DIR}"
  make_smoke_dataset
fi
LISTS=(train+ ${INFERENCE_SPLIT})
if [ "${IS_TRAIN_2}" = 1 ] || [ "${IS_PROTOTYPE_2}" = 1 ]; then
  LISTS+=(train)
fi
check_inputs "${LISTS[@]}"

# Stage 1: train on train+ from ImageNet, the head (block5) initialised anew.
# --num_steps N ends with model.ckpt-N here (the original passed N+1: its
# loop counted from 0, and it also ended at model.ckpt-N).
if [ "${IS_TRAIN_1}" = 1 ]; then
  "${PYTHON}" pyscripts/train/train_segsort_mgpu.py \
    --snapshot_dir "${SNAPSHOT_DIR}/stage1" \
    --restore_from "${IMAGENET_CKPT}" \
    --data_list "${LIST_DIR}/train+.txt" \
    --data_dir "${DATA_DIR}/" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --batch_size ${BATCH_SIZE} \
    --save_pred_every ${NUM_STEPS_1} \
    --update_tb_every ${UPDATE_TB_EVERY} \
    --input_size ${TRAIN_INPUT_SIZE} \
    --learning_rate ${LEARNING_RATE_1} \
    --weight_decay ${WEIGHT_DECAY} \
    --iter_size ${ITER_SIZE} \
    --num_classes ${NUM_CLASSES} \
    --num_steps ${NUM_STEPS_1} \
    --concentration ${CONCENTRATION} \
    --num_banks ${NUM_BANKS} \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --num_gpu ${NUM_GPU} \
    --random_mirror \
    --random_scale \
    --random_crop \
    --not_restore_classifier \
    --is_training
fi

# Stage 1: prototypes of train+.
if [ "${IS_PROTOTYPE_1}" = 1 ]; then
  "${PYTHON}" pyscripts/inference/extract_prototypes.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/train+.txt" \
    --restore_from "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --input_size ${INFERENCE_INPUT_SIZE} \
    --strides ${INFERENCE_STRIDES} \
    --num_classes ${NUM_CLASSES} \
    --ignore_label 255 \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --save_dir "${SNAPSHOT_DIR}/stage1/results/train+"
fi

# Stage 1: single-scale inference (VOC colours are the default colormap).
if [ "${IS_INFERENCE_1}" = 1 ]; then
  "${PYTHON}" pyscripts/inference/inference_segsort.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/${INFERENCE_SPLIT}.txt" \
    --input_size ${SS_INPUT_SIZE} \
    --strides ${INFERENCE_STRIDES} \
    --restore_from "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --num_classes ${NUM_CLASSES} \
    --ignore_label 255 \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS} \
    --save_dir "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}" \
    --prototype_dir "${SNAPSHOT_DIR}/stage1/results/train+/prototypes"
fi

# Stage 1: mIoU.
if [ "${IS_BENCHMARK_1}" = 1 ]; then
  benchmark "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}"
fi

# Stage 2: continue on train from stage 1, head included.
if [ "${IS_TRAIN_2}" = 1 ]; then
  "${PYTHON}" pyscripts/train/train_segsort_mgpu.py \
    --snapshot_dir "${SNAPSHOT_DIR}/stage2" \
    --restore_from "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    --data_list "${LIST_DIR}/train.txt" \
    --data_dir "${DATA_DIR}/" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --batch_size ${BATCH_SIZE} \
    --save_pred_every ${SAVE_PRED_EVERY_2} \
    --update_tb_every ${UPDATE_TB_EVERY} \
    --input_size ${TRAIN_INPUT_SIZE} \
    --learning_rate ${LEARNING_RATE_2} \
    --weight_decay ${WEIGHT_DECAY} \
    --iter_size ${ITER_SIZE} \
    --num_classes ${NUM_CLASSES} \
    --num_steps ${NUM_STEPS_2} \
    --concentration ${CONCENTRATION} \
    --num_banks ${NUM_BANKS} \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --num_gpu ${NUM_GPU} \
    --random_mirror \
    --random_scale \
    --random_crop \
    --is_training
fi

# Stage 2: prototypes of train.
if [ "${IS_PROTOTYPE_2}" = 1 ]; then
  "${PYTHON}" pyscripts/inference/extract_prototypes.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/train.txt" \
    --restore_from "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --input_size ${INFERENCE_INPUT_SIZE} \
    --strides ${INFERENCE_STRIDES} \
    --num_classes ${NUM_CLASSES} \
    --ignore_label 255 \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --save_dir "${SNAPSHOT_DIR}/stage2/results/train"
fi

# Stage 2: single-scale inference.
if [ "${IS_INFERENCE_2}" = 1 ]; then
  "${PYTHON}" pyscripts/inference/inference_segsort.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/${INFERENCE_SPLIT}.txt" \
    --input_size ${SS_INPUT_SIZE} \
    --strides ${INFERENCE_STRIDES} \
    --restore_from "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --num_classes ${NUM_CLASSES} \
    --ignore_label 255 \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS} \
    --save_dir "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}" \
    --prototype_dir "${SNAPSHOT_DIR}/stage2/results/train/prototypes"
fi

# Stage 2: multi-scale inference (scales 0.5 to 1.75 and flips), into its
# own folder so that it never overwrites single-scale predictions.
if [ "${IS_INFERENCE_MSC_2}" = 1 ]; then
  "${PYTHON}" pyscripts/inference/inference_segsort_msc.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/${INFERENCE_SPLIT}.txt" \
    --input_size ${INFERENCE_INPUT_SIZE} \
    --strides ${INFERENCE_STRIDES} \
    --restore_from "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    --backbone ${BACKBONE} \
    --backbone_variant ${BACKBONE_VARIANT} \
    --width_multiplier ${WIDTH_MULTIPLIER} \
    --num_classes ${NUM_CLASSES} \
    --ignore_label 255 \
    --flip_aug \
    --scale_aug \
    --embedding_dim ${EMBEDDING_DIM} \
    --num_clusters ${NUM_CLUSTERS} \
    --kmeans_iterations ${KMEANS_ITERATIONS} \
    --k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS} \
    --save_dir "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc" \
    --prototype_dir "${SNAPSHOT_DIR}/stage2/results/train/prototypes"
fi

# Stage 2: mIoU.
if [ "${IS_BENCHMARK_2}" = 1 ]; then
  benchmark "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc"
fi
