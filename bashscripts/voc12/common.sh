#!/bin/bash
# The steps the VOC 2012 pipelines in this folder share (train_segsort.sh,
# train_segsort_mgpu.sh, train_segsort_unsup.sh source this file).
#
# Functions only: sourcing defines them and does nothing else. Each script
# keeps its settings, smoke mode and stage toggles at its top and calls these
# from the repository root with what differs from one step to the next as
# arguments; the settings every step of a run shares (backbone, sizes,
# SegSort hyper-parameters, ...) they read from the script's variables, listed
# under "Reads" in each function's comment. None of them exits: a failure is
# a non-zero status, which stops the script (it runs under `set -e`).

# recipe_name
#   Prints the file name of the script that sourced this file (the bottom of
#   bash's source stack: right whether the script was run with bash or, in
#   the child bash it starts then, sourced).
recipe_name() {
  basename "${BASH_SOURCE[${#BASH_SOURCE[@]}-1]}"
}

# make_smoke_dataset
#   Writes a 6 + 3 image synthetic dataset in the VOC layout under
#   DATA_DIR/VOC2012, and LIST_DIR/{train,train+,val}.txt (train+ is train)
#   in the format make_voc_lists.py writes (paths relative to DATA_DIR).
#   Reads: PYTHON, DATA_DIR, LIST_DIR, NUM_CLASSES.
make_smoke_dataset() {
  "${PYTHON}" pyscripts/tools/make_synthetic_dataset.py \
    --output_dir "${DATA_DIR}/VOC2012" --num_train 6 --num_val 3 \
    --height 48 --width 64 --num_classes "${NUM_CLASSES}" --seed 0
  mkdir -p "${LIST_DIR}"
  local split
  for split in train val; do
    awk '{ for (i = 1; i <= NF; i++) $i = "VOC2012/" $i; print }' \
      "${DATA_DIR}/VOC2012/${split}.txt" > "${LIST_DIR}/${split}.txt"
  done
  cp "${LIST_DIR}/train.txt" "${LIST_DIR}/train+.txt"
}

# check_inputs CKPT_NEEDED GT_NEEDED SPLIT...
#   Returns 1 (so the script stops before any step runs) when an input of
#   the enabled steps is missing, naming each one and how to build it.
#   CKPT_NEEDED  1 when a step trains from IMAGENET_CKPT (an empty
#                IMAGENET_CKPT, as in smoke mode, means random initial
#                weights and needs nothing).
#   GT_NEEDED    1 when a step benchmarks against GT_DIR.
#   SPLIT...     the lists the steps read, LIST_DIR/SPLIT.txt.
#   Reads: DATA_DIR, LIST_DIR, GT_DIR, IMAGENET_CKPT.
check_inputs() {
  local ckpt_needed=$1 gt_needed=$2
  shift 2
  local missing=() split name
  [ -d "${DATA_DIR}" ] ||
    missing+=("VOCdevkit folder ${DATA_DIR} (set DATAROOT)")
  for split in "$@"; do
    [ -f "${LIST_DIR}/${split}.txt" ] ||
      missing+=("list file ${LIST_DIR}/${split}.txt")
  done
  if [ "${gt_needed}" = 1 ]; then
    [ -d "${GT_DIR}" ] || missing+=("ground-truth folder ${GT_DIR}")
  fi
  if [ "${ckpt_needed}" = 1 ] && [ -n "${IMAGENET_CKPT}" ] &&
     [ ! -e "${IMAGENET_CKPT}" ] && [ ! -e "${IMAGENET_CKPT}.index" ]; then
    missing+=("ImageNet checkpoint ${IMAGENET_CKPT} (see snapshots/README.md)")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    name=$(recipe_name)
    {
      echo "error: ${name}: nothing was run, missing:"
      printf '  - %s\n' "${missing[@]}"
      echo "Build the lists and VOC2012/segcls with"
      echo "  python pyscripts/tools/make_voc_lists.py" \
        "--data_dir \${DATAROOT}/VOCdevkit --sbd_dir \${DATAROOT}"
      echo "and see README.md (Data); or run" \
        "SMOKE=1 bash bashscripts/voc12/${name} for a synthetic check."
    } >&2
    return 1
  fi
}

# train_step TRAIN_PY SNAPSHOT_DIR RESTORE_FROM SPLIT LEARNING_RATE NUM_STEPS
#            SAVE_PRED_EVERY [FLAG...]
#   Trains with TRAIN_PY (a pyscripts/train/train_segsort*.py entry point)
#   on LIST_DIR/SPLIT.txt, randomly mirrored, scaled and cropped.
#   SNAPSHOT_DIR     receives model.ckpt-N every SAVE_PRED_EVERY steps (the
#                    last one is model.ckpt-NUM_STEPS), summaries and config.
#   RESTORE_FROM     the checkpoint to start from; empty for random weights.
#   LEARNING_RATE, NUM_STEPS, SAVE_PRED_EVERY  the flags of those names.
#   FLAG...          passed on as they are: --not_restore_classifier to
#                    initialise the head (block5) anew, --num_gpu N, and for
#                    the supervised loss --num_banks, --num_clusters and
#                    --kmeans_iterations.
#   Reads: PYTHON, DATA_DIR, LIST_DIR, BACKBONE, BACKBONE_VARIANT,
#   WIDTH_MULTIPLIER, BATCH_SIZE, UPDATE_TB_EVERY, TRAIN_INPUT_SIZE,
#   WEIGHT_DECAY, ITER_SIZE, NUM_CLASSES, CONCENTRATION, EMBEDDING_DIM.
train_step() {
  local train_py=$1 snapshot_dir=$2 restore_from=$3 split=$4
  local learning_rate=$5 num_steps=$6 save_pred_every=$7
  shift 7
  "${PYTHON}" "${train_py}" \
    --snapshot_dir "${snapshot_dir}" \
    --restore_from "${restore_from}" \
    --data_list "${LIST_DIR}/${split}.txt" \
    --data_dir "${DATA_DIR}/" \
    --backbone "${BACKBONE}" \
    --backbone_variant "${BACKBONE_VARIANT}" \
    --width_multiplier "${WIDTH_MULTIPLIER}" \
    --batch_size "${BATCH_SIZE}" \
    --save_pred_every "${save_pred_every}" \
    --update_tb_every "${UPDATE_TB_EVERY}" \
    --input_size "${TRAIN_INPUT_SIZE}" \
    --learning_rate "${learning_rate}" \
    --weight_decay "${WEIGHT_DECAY}" \
    --iter_size "${ITER_SIZE}" \
    --num_classes "${NUM_CLASSES}" \
    --num_steps "${num_steps}" \
    --concentration "${CONCENTRATION}" \
    --embedding_dim "${EMBEDDING_DIM}" \
    "$@" \
    --random_mirror \
    --random_scale \
    --random_crop \
    --is_training
}

# extract_prototypes CHECKPOINT SPLIT SAVE_DIR
#   Prototypes of LIST_DIR/SPLIT.txt (the k-means segments of each image,
#   named by its labels) computed by CHECKPOINT, written to
#   SAVE_DIR/prototypes/; the images are read through an
#   INFERENCE_INPUT_SIZE window slid by INFERENCE_STRIDES.
#   Reads: PYTHON, DATA_DIR, LIST_DIR, BACKBONE, BACKBONE_VARIANT,
#   WIDTH_MULTIPLIER, INFERENCE_INPUT_SIZE, INFERENCE_STRIDES, NUM_CLASSES,
#   EMBEDDING_DIM, NUM_CLUSTERS, KMEANS_ITERATIONS.
extract_prototypes() {
  local checkpoint=$1 split=$2 save_dir=$3
  "${PYTHON}" pyscripts/inference/extract_prototypes.py \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/${split}.txt" \
    --restore_from "${checkpoint}" \
    --backbone "${BACKBONE}" \
    --backbone_variant "${BACKBONE_VARIANT}" \
    --width_multiplier "${WIDTH_MULTIPLIER}" \
    --input_size "${INFERENCE_INPUT_SIZE}" \
    --strides "${INFERENCE_STRIDES}" \
    --num_classes "${NUM_CLASSES}" \
    --ignore_label 255 \
    --embedding_dim "${EMBEDDING_DIM}" \
    --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --save_dir "${save_dir}"
}

# infer_single_scale CHECKPOINT PROTOTYPE_DIR SAVE_DIR
#   Single-scale inference on LIST_DIR/INFERENCE_SPLIT.txt, each image padded
#   to SS_INPUT_SIZE (see _infer).
#   Reads: SS_INPUT_SIZE and what _infer reads.
infer_single_scale() {
  _infer pyscripts/inference/inference_segsort.py "${SS_INPUT_SIZE}" "$@"
}

# infer_multi_scale CHECKPOINT PROTOTYPE_DIR SAVE_DIR
#   Multi-scale inference on LIST_DIR/INFERENCE_SPLIT.txt: scales 0.5 to
#   1.75 and flips, an INFERENCE_INPUT_SIZE window slid over each (see
#   _infer).
#   Reads: INFERENCE_INPUT_SIZE and what _infer reads.
infer_multi_scale() {
  _infer pyscripts/inference/inference_segsort_msc.py \
    "${INFERENCE_INPUT_SIZE}" "$@" --flip_aug --scale_aug
}

# _infer INFERENCE_PY INPUT_SIZE CHECKPOINT PROTOTYPE_DIR SAVE_DIR [FLAG...]
#   Runs INFERENCE_PY (--input_size INPUT_SIZE, FLAG... passed on) with
#   CHECKPOINT on LIST_DIR/INFERENCE_SPLIT.txt; each pixel takes the label
#   of its segment's K_IN_NEAREST_NEIGHBORS nearest prototypes in
#   PROTOTYPE_DIR. Writes SAVE_DIR/gray/ (label PNGs) and SAVE_DIR/color/
#   (painted with COLORMAP).
#   Reads: PYTHON, DATA_DIR, LIST_DIR, INFERENCE_SPLIT, INFERENCE_STRIDES,
#   COLORMAP, BACKBONE, BACKBONE_VARIANT, WIDTH_MULTIPLIER, NUM_CLASSES,
#   EMBEDDING_DIM, NUM_CLUSTERS, KMEANS_ITERATIONS, K_IN_NEAREST_NEIGHBORS.
_infer() {
  local inference_py=$1 input_size=$2 checkpoint=$3 prototype_dir=$4
  local save_dir=$5
  shift 5
  "${PYTHON}" "${inference_py}" \
    --data_dir "${DATA_DIR}/" \
    --data_list "${LIST_DIR}/${INFERENCE_SPLIT}.txt" \
    --input_size "${input_size}" \
    --strides "${INFERENCE_STRIDES}" \
    --restore_from "${checkpoint}" \
    --colormap "${COLORMAP}" \
    --backbone "${BACKBONE}" \
    --backbone_variant "${BACKBONE_VARIANT}" \
    --width_multiplier "${WIDTH_MULTIPLIER}" \
    --num_classes "${NUM_CLASSES}" \
    --ignore_label 255 \
    "$@" \
    --embedding_dim "${EMBEDDING_DIM}" \
    --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" \
    --k_in_nearest_neighbors "${K_IN_NEAREST_NEIGHBORS}" \
    --save_dir "${save_dir}" \
    --prototype_dir "${prototype_dir}"
}

# benchmark_miou SAVE_DIR
#   mIoU of the predictions in SAVE_DIR/gray/ against GT_DIR, written to
#   SAVE_DIR/miou.json. GT_DIR (VOC2012/segcls) holds every split's labels,
#   hence --allow_extra_gt.
#   Reads: PYTHON, GT_DIR, NUM_CLASSES.
benchmark_miou() {
  local save_dir=$1
  "${PYTHON}" pyscripts/benchmark/benchmark_by_mIoU.py \
    --pred_dir "${save_dir}/gray/" \
    --gt_dir "${GT_DIR}/" \
    --num_classes "${NUM_CLASSES}" \
    --allow_extra_gt \
    --output_json "${save_dir}/miou.json"
}

# benchmark_existing SAVE_DIR...
#   benchmark_miou for each SAVE_DIR that holds predictions (a stage's
#   single- and multi-scale folders, whichever ran); returns 1 when none
#   does.
#   Reads: what benchmark_miou reads.
benchmark_existing() {
  local found=0 save_dir
  for save_dir in "$@"; do
    if [ -d "${save_dir}/gray" ]; then
      found=1
      echo "mIoU of ${save_dir}:"
      benchmark_miou "${save_dir}"
    fi
  done
  if [ ${found} = 0 ]; then
    echo "error: $(recipe_name): no predictions to benchmark in: $*" >&2
    return 1
  fi
}
