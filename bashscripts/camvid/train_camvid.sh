#!/bin/bash
# The CamVid recipe: supervised SegSort, unsupervised SegSort (segments from
# HED contours + OWT-UCM: pyscripts/tools/make_contours.py, then
# pyscripts/tools/make_oversegmentation.py) and the pixel-wise softmax
# baseline, each trained FROM SCRATCH at a small width that fits a CPU
# budget, then prototypes of train, kNN (or softmax) inference and mIoU on
# val. CamVid: 11 classes, 255 = ignore, 480x360 photos, 367 train / 101 val,
# in the VOC-style layout (DATAROOT/CamVid/{JPEGImages,segcls},
# DATAROOT/{train,val}.txt).
#
#   DATAROOT=/path/to/camvid bash bashscripts/camvid/train_camvid.sh
#
# Every method trains once per seed of SEEDS (default "1 2 3"; SEEDS=1 for a
# single run per method): --random_seed fixes the initialisation and the
# order and augmentation of the data, and the run folders end in -seedN. At
# the end pyscripts/benchmark/summarize_seeds.py reads every finished run
# (WORK_DIR/runs.txt) and writes the mean +- std table and
# WORK_DIR/seed_summary.json (SegSort - softmax paired by seed, unsupervised
# / supervised ratio of each kind of masks run so far: rows unsup_hed and
# unsup_gradient).
#
# DATAROOT may be read-only: the HED maps go to WORK_DIR/hed_contours, the
# oversegmentation masks to WORK_DIR/hed_owt_ucm (MASKS=gradient-ucm: the
# built-in colour-gradient masks, WORK_DIR/hed) and a 3-column list (image,
# label, mask) in WORK_DIR names them.
# The figures in README came from this script as it is (the commands are
# in README, CamVid).

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

DATAROOT=${DATAROOT:-../shared/data/camvid}
WORK_DIR=${WORK_DIR:-snapshots/camvid}
PYTHON=${PYTHON:-python3}

# Network: PSPNet on ResNet-50 at 1/8 width, from scratch (no ImageNet
# initialisation is available offline); --bn_decay 0.99 because the
# original 0.9997 needs far more steps than a CPU budget allows.
MODEL=pspnet
BACKBONE=resnet_v1_50
WIDTH_MULTIPLIER=0.125
BN_DECAY=0.99
NUM_CLASSES=11
EMBEDDING_DIM=32

# Training (random scale 0.5-2, mirror, random 224x224 crops); 2000 steps,
# the schedule of the seed table in README (about 15-20 min per run on 2
# cores).
BATCH_SIZE=8
TRAIN_INPUT_SIZE=224,224
LEARNING_RATE=0.03
WEIGHT_DECAY=5e-4
SEGSORT_STEPS=${SEGSORT_STEPS:-2000}
UNSUP_STEPS=${UNSUP_STEPS:-2000}
SOFTMAX_STEPS=${SOFTMAX_STEPS:-2000}

# SegSort.
CONCENTRATION=10
NUM_CLUSTERS=5
KMEANS_ITERATIONS=10
NUM_BANKS=2
K_IN_NEAREST_NEIGHBORS=15

# Inference on the whole 360x480 image.
INFERENCE_INPUT_SIZE=360,480

# Oversegmentation masks of the unsupervised model: hed-owt-ucm (HED
# contours, oriented watershed, UCM threshold measured on CamVid val, see
# README) or gradient-ucm (the built-in colour-gradient contours, plain
# watershed, no HED).
MASKS=${MASKS:-hed-owt-ucm}
OWT_UCM_THRESHOLD=0.2

# Test-time knobs of the study in README (CamVid): IS_TEST_KNOBS=1 runs, on
# each seed's finished SegSort run, inference with one test-time setting
# changed at a time (NAME:FLAG=VALUE; results/val_NAME/miou.json, rows
# segsort_NAME of the seed table).
IS_TEST_KNOBS=${IS_TEST_KNOBS:-0}
# (The k-means start, --kmeans_grid, is no knob here: inference on the
# whole 360x480 image makes the original's padded grid the image's grid.)

# Training knobs of the study (IS_TRAIN_KNOBS=1): each NAME:FLAG=VALUE
# (or NAME:FLAG=VALUE,FLAG=VALUE,... for several flags at once)
# trains SegSort once per seed with that flag given after the recipe's own
# (argparse keeps the last), into segsort_NAME_pspnet_... (the folder keeps
# the recipe's tag; the flag overrides it), evaluates it as the recipe's
# SegSort run (a network flag, --width_multiplier or --embedding_dim, goes
# to the evaluation too, since the checkpoint fixes it; test-time k-means
# keeps the recipe's settings) and adds row segsort_NAME to the seed table,
# paired with segsort.
IS_TRAIN_KNOBS=${IS_TRAIN_KNOBS:-0}
TRAIN_KNOBS=${TRAIN_KNOBS:-"banks0:--num_banks=0 conc20:--concentration=20 clusters10:--num_clusters=10 dim64:--embedding_dim=64 width4:--width_multiplier=0.25 steps4000:--num_steps=4000"}
TEST_KNOBS="knn5:--k_in_nearest_neighbors=5 knn30:--k_in_nearest_neighbors=30"

# Random seeds: each method trains once per seed.
SEEDS_GIVEN=${SEEDS:-}
SEEDS=${SEEDS:-1 2 3}

# Stages (1 = run).
IS_OVERSEG=${IS_OVERSEG:-1}
IS_SEGSORT=${IS_SEGSORT:-1}
IS_UNSUP=${IS_UNSUP:-1}
IS_SOFTMAX=${IS_SOFTMAX:-1}

if [ "${SMOKE:-0}" = "1" ]; then
  BATCH_SIZE=2; TRAIN_INPUT_SIZE=64,64; WIDTH_MULTIPLIER=0.0625
  EMBEDDING_DIM=8; SEGSORT_STEPS=2; UNSUP_STEPS=2; SOFTMAX_STEPS=2
  NUM_CLUSTERS=2; KMEANS_ITERATIONS=2; K_IN_NEAREST_NEIGHBORS=3
  # One seed unless SEEDS is given.
  if [ -z "${SEEDS_GIVEN}" ]; then SEEDS=1; fi
  # HED costs seconds per photo plus its start-up; the smoke run checks the
  # stages, not the masks.
  MASKS=gradient-ucm
fi
case "${MASKS}" in
  hed-owt-ucm) MASK_FOLDER=hed_owt_ucm ;;
  gradient-ucm) MASK_FOLDER=hed ;;
  *) echo "error: MASKS must be hed-owt-ucm or gradient-ucm, got ${MASKS}" >&2
     exit 1 ;;
esac

for f in "${DATAROOT}/train.txt" "${DATAROOT}/val.txt"; do
  if [ ! -f "$f" ]; then
    echo "error: $f not found: set DATAROOT to the CamVid folder (README, CamVid)." >&2
    exit 1
  fi
done
mkdir -p "${WORK_DIR}"
TIMINGS=${WORK_DIR}/timings.txt
: > "${TIMINGS}"
stage() {
  local name=$1; shift
  local start=${SECONDS}
  echo; echo "=== ${name}"
  "$@"
  echo "${name} $((SECONDS - start))" >> "${TIMINGS}"
  echo "=== ${name}: $((SECONDS - start)) s"
}

# The training list with a third column: where the masks are (or will be).
TRAIN_LIST=${WORK_DIR}/train_overseg_${MASKS}.txt
# The masks' column is relative to DATAROOT, as the list's other paths: a
# path starting with '/' is read as DATAROOT + path (utils/data_lists.py),
# which put the masks under DATAROOT instead of WORK_DIR.
HED_DIR=$(realpath --relative-to="${DATAROOT}" "$(cd "${WORK_DIR}" && pwd)")/${MASK_FOLDER}
CONTOUR_DIR=${WORK_DIR}/hed_contours
VAL_LIST=${WORK_DIR}/val.txt
LIMIT=cat
if [ "${SMOKE:-0}" = "1" ]; then LIMIT="head -n 4"; fi
${LIMIT} "${DATAROOT}/train.txt" | awk -v hed="${HED_DIR}" '{n=$1;
  sub(/.*\//, "", n); sub(/\.[^.]*$/, "", n); print $1, $2, hed "/" n ".png"}' \
  > "${TRAIN_LIST}"
${LIMIT} "${DATAROOT}/val.txt" > "${VAL_LIST}"

NET="--model ${MODEL} --backbone ${BACKBONE} --width_multiplier ${WIDTH_MULTIPLIER} --num_classes ${NUM_CLASSES}"
SEG="--embedding_dim ${EMBEDDING_DIM} --num_clusters ${NUM_CLUSTERS} --kmeans_iterations ${KMEANS_ITERATIONS}"
TRAIN="--data_dir ${DATAROOT} --data_list ${TRAIN_LIST} --input_size ${TRAIN_INPUT_SIZE} --batch_size ${BATCH_SIZE} --is_training --learning_rate ${LEARNING_RATE} --weight_decay ${WEIGHT_DECAY} --iter_size 1 --random_mirror --random_scale --random_crop --bn_decay ${BN_DECAY} --update_tb_every 200"
VAL="--data_dir ${DATAROOT} --data_list ${VAL_LIST} --input_size ${INFERENCE_INPUT_SIZE}"
BENCH="--gt_dir ${DATAROOT}/CamVid/segcls --num_classes ${NUM_CLASSES} --allow_extra_gt --class_names misc/camvid_classes.txt"

if [ "${IS_OVERSEG}" = "1" ] && [ "${MASKS}" = "hed-owt-ucm" ]; then
  stage contours ${PYTHON} pyscripts/tools/make_contours.py \
    --data_dir ${DATAROOT} --data_list ${TRAIN_LIST} --contour_dir ${CONTOUR_DIR}
  stage overseg ${PYTHON} pyscripts/tools/make_oversegmentation.py \
    --data_dir ${DATAROOT} --data_list ${TRAIN_LIST} \
    --contour_dir ${CONTOUR_DIR} --watershed oriented \
    --threshold ${OWT_UCM_THRESHOLD}
elif [ "${IS_OVERSEG}" = "1" ]; then
  stage overseg ${PYTHON} pyscripts/tools/make_oversegmentation.py \
    --data_dir ${DATAROOT} --data_list ${TRAIN_LIST}
fi

# $1 run folder; then (optional) the network flags FLAG=VALUE of a
# training knob.
segsort_eval() {
  ${PYTHON} pyscripts/inference/extract_prototypes.py ${NET} ${SEG} "${@:2}" \
    --data_dir ${DATAROOT} --data_list ${TRAIN_LIST} \
    --input_size ${INFERENCE_INPUT_SIZE} --strides ${INFERENCE_INPUT_SIZE} \
    --restore_from $1 --save_dir $1/results/train
  ${PYTHON} pyscripts/inference/inference_segsort.py ${NET} ${SEG} "${@:2}" ${VAL} \
    --k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS} --restore_from $1 \
    --prototype_dir $1/results/train/prototypes --save_dir $1/results/val
  ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
    --pred_dir $1/results/val/gray --output_json $1/results/val/miou.json
}

# One test-time knob on a SegSort run: $1 run folder, $2 name, $3 FLAG=VALUE
# (given after the recipe's own value, so it wins).
knob_eval() {
  ${PYTHON} pyscripts/inference/inference_segsort.py ${NET} ${SEG} ${VAL} \
    --k_in_nearest_neighbors ${K_IN_NEAREST_NEIGHBORS} "$3" --restore_from $1 \
    --prototype_dir $1/results/train/prototypes --save_dir $1/results/val_$2
  ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
    --pred_dir $1/results/val_$2/gray --output_json $1/results/val_$2/miou.json
}

# The run folder of a method (segsort, segsort_KNOB, unsup, softmax) and
# seed; unsup: of the masks $3 (default MASKS).
SIZE_TAG=${TRAIN_INPUT_SIZE/,/x}
run_dir() {
  local steps
  case "$1" in
    segsort) steps=${SEGSORT_STEPS}; echo -n "${WORK_DIR}/segsort_pspnet" ;;
    segsort_*) steps=${SEGSORT_STEPS}; echo -n "${WORK_DIR}/$1_pspnet" ;;
    unsup) steps=${UNSUP_STEPS}; echo -n "${WORK_DIR}/unsup_segsort_${3:-${MASKS}}_pspnet" ;;
    softmax) steps=${SOFTMAX_STEPS}; echo -n "${WORK_DIR}/softmax_pspnet" ;;
  esac
  echo "_${BACKBONE}_w${WIDTH_MULTIPLIER}_1xb${BATCH_SIZE}-${steps}it_camvid-${SIZE_TAG}-seed$2"
}

softmax_eval() {
  ${PYTHON} pyscripts/inference/inference.py ${NET} ${VAL} \
    --restore_from $1 --save_dir $1/results/val
  ${PYTHON} pyscripts/benchmark/benchmark_by_mIoU.py ${BENCH} \
    --pred_dir $1/results/val/gray --output_json $1/results/val/miou.json
}

for SEED in ${SEEDS}; do
  if [ "${IS_SEGSORT}" = "1" ]; then
    D=$(run_dir segsort ${SEED})
    stage segsort_train_seed${SEED} ${PYTHON} pyscripts/train/train_segsort.py ${NET} ${SEG} ${TRAIN} \
      --concentration ${CONCENTRATION} --num_banks ${NUM_BANKS} --random_seed ${SEED} \
      --num_steps ${SEGSORT_STEPS} --save_pred_every 1000 --snapshot_dir ${D}
    stage segsort_eval_seed${SEED} segsort_eval ${D}
  fi

  if [ "${IS_TEST_KNOBS}" = "1" ]; then
    D=$(run_dir segsort ${SEED})
    if [ ! -d "${D}/results/train/prototypes" ]; then
      echo "error: IS_TEST_KNOBS=1 needs the SegSort run of seed ${SEED} with its prototypes: ${D}/results/train/prototypes not found (train it with IS_SEGSORT=1)." >&2
      exit 1
    fi
    for KNOB in ${TEST_KNOBS}; do
      stage segsort_${KNOB%%:*}_seed${SEED} knob_eval ${D} ${KNOB%%:*} ${KNOB#*:}
    done
  fi

  if [ "${IS_TRAIN_KNOBS}" = "1" ]; then
    for KNOB in ${TRAIN_KNOBS}; do
      NAME=${KNOB%%:*}; IFS=, read -r -a FLAGS <<< "${KNOB#*:}"; EVAL_FLAGS=()
      for FLAG in "${FLAGS[@]}"; do
        case "${FLAG}" in
          --width_multiplier=*|--embedding_dim=*) EVAL_FLAGS+=("${FLAG}") ;;
        esac
      done
      D=$(run_dir segsort_${NAME} ${SEED})
      stage segsort_${NAME}_train_seed${SEED} ${PYTHON} pyscripts/train/train_segsort.py ${NET} ${SEG} ${TRAIN} \
        --concentration ${CONCENTRATION} --num_banks ${NUM_BANKS} --random_seed ${SEED} \
        --num_steps ${SEGSORT_STEPS} --save_pred_every 1000 "${FLAGS[@]}" --snapshot_dir ${D}
      stage segsort_${NAME}_eval_seed${SEED} segsort_eval ${D} "${EVAL_FLAGS[@]}"
    done
  fi

  if [ "${IS_UNSUP}" = "1" ]; then
    D=$(run_dir unsup ${SEED})
    stage unsup_train_seed${SEED} ${PYTHON} pyscripts/train/train_segsort_unsup.py ${NET} ${TRAIN} \
      --embedding_dim ${EMBEDDING_DIM} --concentration ${CONCENTRATION} --random_seed ${SEED} \
      --num_steps ${UNSUP_STEPS} --save_pred_every 1000 --snapshot_dir ${D}
    stage unsup_eval_seed${SEED} segsort_eval ${D}
  fi

  if [ "${IS_SOFTMAX}" = "1" ]; then
    D=$(run_dir softmax ${SEED})
    stage softmax_train_seed${SEED} ${PYTHON} pyscripts/train/train.py ${NET} ${TRAIN} \
      --random_seed ${SEED} --num_steps ${SOFTMAX_STEPS} --save_pred_every 1000 --snapshot_dir ${D}
    stage softmax_eval_seed${SEED} softmax_eval ${D}
  fi
done

# Every finished run of these settings (also from earlier invocations with
# other IS_* stages), then the seed table.
RUNS=${WORK_DIR}/runs.txt
: > "${RUNS}"
# Unsupervised runs of either kind of masks: rows unsup_hed, unsup_gradient.
for SEED in ${SEEDS}; do
  for METHOD in segsort unsup:hed-owt-ucm unsup:gradient-ucm softmax; do
    D=$(run_dir ${METHOD%%:*} ${SEED} ${METHOD#*:})
    ROW=${METHOD%%:*}
    if [ "${ROW}" = "unsup" ]; then ROW=unsup_${METHOD#*:}; ROW=${ROW%%-*}; fi
    if [ -f "${D}/results/val/miou.json" ]; then
      echo "${ROW} ${SEED} ${D#${WORK_DIR}/}/results/val/miou.json" >> "${RUNS}"
    fi
  done
  D=$(run_dir segsort ${SEED})
  for KNOB in ${TEST_KNOBS}; do
    if [ -f "${D}/results/val_${KNOB%%:*}/miou.json" ]; then
      echo "segsort_${KNOB%%:*} ${SEED} ${D#${WORK_DIR}/}/results/val_${KNOB%%:*}/miou.json" >> "${RUNS}"
    fi
  done
  for KNOB in ${TRAIN_KNOBS}; do
    D=$(run_dir segsort_${KNOB%%:*} ${SEED})
    if [ -f "${D}/results/val/miou.json" ]; then
      echo "segsort_${KNOB%%:*} ${SEED} ${D#${WORK_DIR}/}/results/val/miou.json" >> "${RUNS}"
    fi
  done
done
if [ -s "${RUNS}" ]; then
  SUMMARY_PAIRS=""
  if grep -q '^segsort ' "${RUNS}" && grep -q '^softmax ' "${RUNS}"; then
    SUMMARY_PAIRS="--compare segsort-softmax"
  fi
  for ROW in unsup_hed unsup_gradient; do
    if grep -q '^segsort ' "${RUNS}" && grep -q "^${ROW} " "${RUNS}"; then
      SUMMARY_PAIRS="${SUMMARY_PAIRS} --ratio ${ROW}-segsort"
    fi
  done
  for KNOB in ${TEST_KNOBS} ${TRAIN_KNOBS}; do
    if grep -q '^segsort ' "${RUNS}" && grep -q "^segsort_${KNOB%%:*} " "${RUNS}"; then
      SUMMARY_PAIRS="${SUMMARY_PAIRS} --compare segsort_${KNOB%%:*}-segsort"
    fi
  done
  stage summary ${PYTHON} pyscripts/benchmark/summarize_seeds.py \
    --runs ${RUNS} ${SUMMARY_PAIRS} --output_json ${WORK_DIR}/seed_summary.json
fi

echo; echo "Stage wall times (s):"; cat "${TIMINGS}"
