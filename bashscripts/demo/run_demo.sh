#!/bin/bash
# The embedded end-to-end demo: synthetic data -> oversegmentation masks ->
# supervised SegSort -> prototypes -> single- and multi-scale kNN inference
# -> mIoU; the same for unsupervised SegSort (segments from the
# oversegmentation masks, no labels in training) and for the pixel-wise
# softmax baseline. Ends with a table of the mIoUs and the wall time of each
# stage, also written to $DEMO_DIR/results.json, and the pictures to look at.
#
#   bash bashscripts/demo/run_demo.sh            # from anywhere
#   SKIP_INSTALL=1 DEMO_DIR=/tmp/demo bash bashscripts/demo/run_demo.sh
#
# About 10 minutes on 2 CPU cores. Everything runs on the CPU (or a GPU when
# TensorFlow sees one). Relative paths are taken from the repository root.

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DEMO_DIR=${DEMO_DIR:-snapshots/demo}
PYTHON=${PYTHON:-python3}
SKIP_INSTALL=${SKIP_INSTALL:-0}

# Synthetic data: textured shapes on textured backgrounds, random colours
# per object (pyscripts/tools/make_synthetic_dataset.py).
NUM_TRAIN=400
NUM_VAL=60
IMAGE_SIZE=128
NUM_CLASSES=4
OBJECT_SIZE=0.25,0.45
MAX_OBJECTS=2
SEED=0

# A small network trained from scratch: same graph and variable names as
# PSPNet/ResNet, thinner. --bn_decay 0.99: the original 0.9997 needs tens of
# thousands of steps before the moving averages describe the network.
MODEL=pspnet
BACKBONE=resnet_v1_50
WIDTH_MULTIPLIER=0.125
BN_DECAY=0.99
EMBEDDING_DIM=32
INPUT_SIZE=${IMAGE_SIZE},${IMAGE_SIZE}

# Training.
BATCH_SIZE=8
LEARNING_RATE=0.03
SEGSORT_STEPS=2000
UNSUP_STEPS=1000
SOFTMAX_STEPS=1000

# SegSort.
CONCENTRATION=10
NUM_CLUSTERS=5
KMEANS_ITERATIONS=10
NUM_BANKS=2
K_IN_NEAREST_NEIGHBORS=15

# The pipeline (1 = run the stage).
IS_DATA=${IS_DATA:-1}
IS_SEGSORT=${IS_SEGSORT:-1}
IS_UNSUP=${IS_UNSUP:-1}
IS_SOFTMAX=${IS_SOFTMAX:-1}
IS_PICTURES=${IS_PICTURES:-1}

# SMOKE=1: the same stages on a handful of tiny images, a few steps each.
if [ "${SMOKE:-0}" = "1" ]; then
  NUM_TRAIN=8; NUM_VAL=3; IMAGE_SIZE=64; INPUT_SIZE=64,64
  WIDTH_MULTIPLIER=0.0625; EMBEDDING_DIM=8; BATCH_SIZE=2
  SEGSORT_STEPS=2; UNSUP_STEPS=2; SOFTMAX_STEPS=2
  NUM_CLUSTERS=2; KMEANS_ITERATIONS=2; K_IN_NEAREST_NEIGHBORS=3
fi

DATA_DIR=${DEMO_DIR}/data
TIMINGS=${DEMO_DIR}/timings.txt
mkdir -p "${DEMO_DIR}"
: > "${TIMINGS}"

# Runs "$@" as stage $STAGE and records its wall time.
stage() {
  local name=$1; shift
  local start=${SECONDS}
  echo; echo "=== ${name}"
  "$@"
  local took=$((SECONDS - start))
  echo "${name} ${took}" >> "${TIMINGS}"
  echo "=== ${name}: ${took} s"
}

NET="--model ${MODEL} --backbone ${BACKBONE} --width_multiplier ${WIDTH_MULTIPLIER} --num_classes ${NUM_CLASSES}"
SEG="--embedding_dim ${EMBEDDING_DIM} --num_clusters ${NUM_CLUSTERS} --kmeans_iterations ${KMEANS_ITERATIONS}"
TRAIN="--data_dir ${DATA_DIR} --data_list ${DATA_DIR}/train.txt --input_size ${INPUT_SIZE} --batch_size ${BATCH_SIZE} --is_training --learning_rate ${LEARNING_RATE} --iter_size 1 --random_mirror --bn_decay ${BN_DECAY} --update_tb_every 100"
VAL="--data_dir ${DATA_DIR} --data_list ${DATA_DIR}/val.txt --input_size ${INPUT_SIZE}"
KNN="--k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS}"
BENCH="--gt_dir ${DATA_DIR}/segcls --num_classes ${NUM_CLASSES} --class_names ${DATA_DIR}/classes.txt --allow_extra_gt"

if [ "${SKIP_INSTALL}" != "1" ]; then
  stage setup ${PYTHON} -m pip install -q -r requirements.txt
fi

if [ "${IS_DATA}" = "1" ]; then
  stage data ${PYTHON} pyscripts/tools/make_synthetic_dataset.py \
    --output_dir ${DATA_DIR} --num_train ${NUM_TRAIN} --num_val ${NUM_VAL} \
    --height ${IMAGE_SIZE} --width ${IMAGE_SIZE} --num_classes ${NUM_CLASSES} \
    --object_size ${OBJECT_SIZE} --max_objects ${MAX_OBJECTS} --seed ${SEED}
  stage overseg ${PYTHON} pyscripts/tools/make_oversegmentation.py \
    --data_dir ${DATA_DIR} --data_list ${DATA_DIR}/train.txt --min_size 16
fi

# Prototypes of the training set, then kNN inference on val ($1 = model dir,
# $2 = results dir, $3 = 1 for multi-scale as well).
segsort_eval() {
  ${PYTHON} pyscripts/inference/extract_prototypes.py ${NET} ${SEG} \
    --data_dir ${DATA_DIR} --data_list ${DATA_DIR}/train.txt \
    --input_size ${INPUT_SIZE} --strides ${INPUT_SIZE} \
    --restore_from $1 --save_dir $2/train
  ${PYTHON} pyscripts/inference/inference_segsort.py ${NET} ${SEG} ${VAL} ${KNN} \
    --restore_from $1 --prototype_dir $2/train/prototypes --save_dir $2/val
  ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
    --pred_dir $2/val/gray --output_json $2/val/miou.json
  if [ "$3" = "1" ]; then
    ${PYTHON} pyscripts/inference/inference_segsort_msc.py ${NET} ${SEG} ${VAL} ${KNN} \
      --strides ${INPUT_SIZE} --scale_aug --flip_aug \
      --restore_from $1 --prototype_dir $2/train/prototypes --save_dir $2/val_msc
    ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
      --pred_dir $2/val_msc/gray --output_json $2/val_msc/miou.json
  fi
}

if [ "${IS_SEGSORT}" = "1" ]; then
  stage segsort_train ${PYTHON} pyscripts/train/train_segsort.py ${NET} ${SEG} ${TRAIN} \
    --concentration ${CONCENTRATION} --num_banks ${NUM_BANKS} \
    --num_steps ${SEGSORT_STEPS} --save_pred_every ${SEGSORT_STEPS} \
    --snapshot_dir ${DEMO_DIR}/segsort
  stage segsort_eval segsort_eval ${DEMO_DIR}/segsort ${DEMO_DIR}/segsort/results 1
fi

if [ "${IS_UNSUP}" = "1" ]; then
  stage unsup_train ${PYTHON} pyscripts/train/train_segsort_unsup.py ${NET} ${TRAIN} \
    --embedding_dim ${EMBEDDING_DIM} --concentration ${CONCENTRATION} \
    --num_steps ${UNSUP_STEPS} --save_pred_every ${UNSUP_STEPS} \
    --snapshot_dir ${DEMO_DIR}/unsup
  stage unsup_eval segsort_eval ${DEMO_DIR}/unsup ${DEMO_DIR}/unsup/results 0
fi

if [ "${IS_SOFTMAX}" = "1" ]; then
  stage softmax_train ${PYTHON} pyscripts/train/train.py ${NET} ${TRAIN} \
    --num_steps ${SOFTMAX_STEPS} --save_pred_every ${SOFTMAX_STEPS} \
    --snapshot_dir ${DEMO_DIR}/softmax
  softmax_eval() {
    ${PYTHON} pyscripts/inference/inference.py ${NET} ${VAL} \
      --restore_from ${DEMO_DIR}/softmax --save_dir ${DEMO_DIR}/softmax/results/val
    ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
      --pred_dir ${DEMO_DIR}/softmax/results/val/gray \
      --output_json ${DEMO_DIR}/softmax/results/val/miou.json
  }
  stage softmax_eval softmax_eval
fi

if [ "${IS_PICTURES}" = "1" ]; then
  stage pictures ${PYTHON} pyscripts/tools/visualize_retrieval.py ${NET} ${SEG} ${VAL} ${KNN} \
    --restore_from ${DEMO_DIR}/segsort \
    --prototype_dir ${DEMO_DIR}/segsort/results/train/prototypes \
    --class_names ${DATA_DIR}/classes.txt --max_images 3 \
    --save_dir ${DEMO_DIR}/pictures
fi

${PYTHON} pyscripts/tools/demo_report.py --demo_dir ${DEMO_DIR} --timings ${TIMINGS} \
  --miou segsort=${DEMO_DIR}/segsort/results/val/miou.json \
         segsort_msc=${DEMO_DIR}/segsort/results/val_msc/miou.json \
         unsupervised=${DEMO_DIR}/unsup/results/val/miou.json \
         softmax=${DEMO_DIR}/softmax/results/val/miou.json \
  --pictures "${DEMO_DIR}/pictures/retrieval/*.png" "${DEMO_DIR}/pictures/pca/*.png" \
             ${DEMO_DIR}/segsort/results/val/color ${DEMO_DIR}/segsort/results/val_msc/color
