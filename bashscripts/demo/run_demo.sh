#!/bin/bash
# The embedded end-to-end demo: synthetic data -> oversegmentation masks ->
# supervised SegSort -> prototypes -> single- and multi-scale kNN inference
# -> mIoU; the same for unsupervised SegSort (segments from the
# oversegmentation masks, no labels in training) and for the pixel-wise
# softmax baseline. Ends with a table of the mIoUs and the wall time of each
# stage, also written to $DEMO_DIR/results.json, and the pictures to look at.
# Beside each mIoU the table prints the reference: the mean and spread over
# seeds of the same demo, measured when its settings were chosen
# (bashscripts/demo/reference_seeds.json), i.e. what a rerun should expect.
#
#   bash bashscripts/demo/run_demo.sh            # from anywhere
#   SKIP_INSTALL=1 DEMO_DIR=/tmp/demo bash bashscripts/demo/run_demo.sh
#   SEEDS="1 2 3" bash bashscripts/demo/run_demo.sh   # every method per seed
#
# One seed (the default, SEEDS=1) takes under 10 minutes on 2 CPU cores.
# Everything runs on the CPU (or a GPU when TensorFlow sees one). Relative
# paths are taken from the repository root.

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# TensorFlow's oneDNN kernels unless the caller chose (TF turns them on by
# itself only on AVX-512-class CPUs): on x86 CPUs with AVX2 alone they make
# the demo's training step 1.3x faster (README, Demo). Either way the graph
# and the variables are the same; the numerics differ in the last bits
# (README, Every CPU).
if [ -z "${TF_ENABLE_ONEDNN_OPTS+set}" ] && [ "$(uname -m)" = "x86_64" ]; then
  export TF_ENABLE_ONEDNN_OPTS=1
fi

DEMO_DIR=${DEMO_DIR:-snapshots/demo}
PYTHON=${PYTHON:-python3}
SKIP_INSTALL=${SKIP_INSTALL:-0}

# Training seeds (--random_seed: initialisation and order of the data); each
# method trains once per seed into DEMO_DIR/seedN/.
SEEDS=${SEEDS:-1}

# Synthetic data: textured shapes on textured backgrounds, random colours
# per object (pyscripts/tools/make_synthetic_dataset.py); DATA_SEED fixes
# the data, the same for every training seed.
NUM_TRAIN=400
NUM_VAL=60
IMAGE_SIZE=112
NUM_CLASSES=4
OBJECT_SIZE=0.25,0.45
MAX_OBJECTS=2
DATA_SEED=0

# A small network trained from scratch: same graph and variable names as
# PSPNet/ResNet, at 1/8 width (at 1/16 SegSort swung between 91 and 61
# mIoU over two seeds and the baseline did not learn in 500 steps; README,
# Demo). --bn_decay 0.99: the original 0.9997 needs tens of thousands of
# steps before the moving averages describe the network.
MODEL=pspnet
BACKBONE=resnet_v1_50
WIDTH_MULTIPLIER=0.125
BN_DECAY=0.99
EMBEDDING_DIM=32
INPUT_SIZE=${IMAGE_SIZE},${IMAGE_SIZE}

# Training. SegSort needs its 2000 steps here (1000 steps gave 58 mIoU on
# seed 1, batch 4 gave 71); the softmax baseline and unsupervised SegSort
# get 500, which keeps one seed under 10 minutes but leaves them short of
# converged: the demo shows the pipeline, the CamVid seed table compares
# the methods at equal steps (README, Demo: the measurements behind these
# choices).
BATCH_SIZE=8
LEARNING_RATE=0.03
SEGSORT_STEPS=2000
UNSUP_STEPS=500
SOFTMAX_STEPS=500

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
RUNS=${DEMO_DIR}/runs.txt
REFERENCE=bashscripts/demo/reference_seeds.json
mkdir -p "${DEMO_DIR}"
: > "${TIMINGS}"
: > "${RUNS}"

# What the reference must share with this run for its spread to apply.
SETTINGS="data=${NUM_TRAIN}x${NUM_VAL}x${IMAGE_SIZE}/${NUM_CLASSES}/${OBJECT_SIZE}/${MAX_OBJECTS}/${DATA_SEED}"
SETTINGS="${SETTINGS} network=${MODEL}/${BACKBONE}/${WIDTH_MULTIPLIER}/${EMBEDDING_DIM}/${BN_DECAY}"
SETTINGS="${SETTINGS} training=${BATCH_SIZE}x${INPUT_SIZE}/${LEARNING_RATE}"
SETTINGS="${SETTINGS} steps=${SEGSORT_STEPS}/${UNSUP_STEPS}/${SOFTMAX_STEPS}"
SETTINGS="${SETTINGS} segsort=${CONCENTRATION}/${NUM_CLUSTERS}/${KMEANS_ITERATIONS}/${NUM_BANKS}/${K_IN_NEAREST_NEIGHBORS}"

# Runs "$@" as stage $STAGE and records its wall time (a stage run once per
# seed adds up).
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
    --object_size ${OBJECT_SIZE} --max_objects ${MAX_OBJECTS} --seed ${DATA_SEED}
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

softmax_eval() {
  ${PYTHON} pyscripts/inference/inference.py ${NET} ${VAL} \
    --restore_from $1 --save_dir $1/results/val
  ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
    --pred_dir $1/results/val/gray --output_json $1/results/val/miou.json
}

for RANDOM_SEED in ${SEEDS}; do
  RUN=${DEMO_DIR}/seed${RANDOM_SEED}
  SEEDED="--random_seed ${RANDOM_SEED}"
  if [ "${IS_SEGSORT}" = "1" ]; then
    stage segsort_train ${PYTHON} pyscripts/train/train_segsort.py ${NET} ${SEG} ${TRAIN} ${SEEDED} \
      --concentration ${CONCENTRATION} --num_banks ${NUM_BANKS} \
      --num_steps ${SEGSORT_STEPS} --save_pred_every ${SEGSORT_STEPS} \
      --snapshot_dir ${RUN}/segsort
    stage segsort_eval segsort_eval ${RUN}/segsort ${RUN}/segsort/results 1
  fi

  if [ "${IS_UNSUP}" = "1" ]; then
    stage unsup_train ${PYTHON} pyscripts/train/train_segsort_unsup.py ${NET} ${TRAIN} ${SEEDED} \
      --embedding_dim ${EMBEDDING_DIM} --concentration ${CONCENTRATION} \
      --num_steps ${UNSUP_STEPS} --save_pred_every ${UNSUP_STEPS} \
      --snapshot_dir ${RUN}/unsup
    stage unsup_eval segsort_eval ${RUN}/unsup ${RUN}/unsup/results 0
  fi

  if [ "${IS_SOFTMAX}" = "1" ]; then
    stage softmax_train ${PYTHON} pyscripts/train/train.py ${NET} ${TRAIN} ${SEEDED} \
      --num_steps ${SOFTMAX_STEPS} --save_pred_every ${SOFTMAX_STEPS} \
      --snapshot_dir ${RUN}/softmax
    stage softmax_eval softmax_eval ${RUN}/softmax
  fi

  # This invocation's finished runs (table rows: METHOD SEED MIOU_JSON).
  for ROW in segsort:segsort/results/val segsort_msc:segsort/results/val_msc \
             unsupervised:unsup/results/val softmax:softmax/results/val; do
    if [ -f "${RUN}/${ROW#*:}/miou.json" ]; then
      echo "${ROW%%:*} ${RANDOM_SEED} seed${RANDOM_SEED}/${ROW#*:}/miou.json" >> "${RUNS}"
    fi
  done
done

# The pictures of the first seed's supervised model.
FIRST=${DEMO_DIR}/seed${SEEDS%% *}
if [ "${IS_PICTURES}" = "1" ]; then
  stage pictures ${PYTHON} pyscripts/tools/visualize_retrieval.py ${NET} ${SEG} ${VAL} ${KNN} \
    --restore_from ${FIRST}/segsort \
    --prototype_dir ${FIRST}/segsort/results/train/prototypes \
    --class_names ${DATA_DIR}/classes.txt --max_images 3 \
    --save_dir ${DEMO_DIR}/pictures
fi

if [ ! -s "${RUNS}" ]; then
  echo "error: no run finished (IS_SEGSORT, IS_UNSUP and IS_SOFTMAX all 0?)" >&2
  exit 1
fi
# Paired differences and the ratio, for the methods that ran.
PAIRS=""
has() { grep -q "^$1 " "${RUNS}"; }
if has segsort && has softmax; then PAIRS="--compare segsort-softmax"; fi
if has segsort && has segsort_msc; then PAIRS="${PAIRS} --compare segsort_msc-segsort"; fi
if has segsort && has unsupervised; then PAIRS="${PAIRS} --ratio unsupervised-segsort"; fi
${PYTHON} pyscripts/benchmark/summarize_seeds.py --runs ${RUNS} ${PAIRS} \
  $(for S in ${SETTINGS}; do echo "--setting ${S}"; done) \
  --output_json ${DEMO_DIR}/seed_summary.json > /dev/null

${PYTHON} pyscripts/tools/demo_report.py --demo_dir ${DEMO_DIR} --timings ${TIMINGS} \
  --seed_summary ${DEMO_DIR}/seed_summary.json \
  $([ -f "${REFERENCE}" ] && echo "--reference ${REFERENCE}") \
  --pictures "${DEMO_DIR}/pictures/retrieval/*.png" "${DEMO_DIR}/pictures/pca/*.png" \
             ${FIRST}/segsort/results/val/color ${FIRST}/segsort/results/val_msc/color
