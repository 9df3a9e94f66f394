#!/bin/bash
# The multi-GPU VOC 2012 recipe (train_segsort_mgpu.sh) across N machines on
# TensorFlow's distributed runtime: every machine runs this same script; the
# chief (task 0) trains both stages with NUM_GPU towers on every machine
# (in-graph replication, seg_models/cluster.py) and alone writes the
# snapshots, then computes prototypes, predictions and mIoU on its own; the
# other machines serve the two training stages and stop.
#
# The cluster (README, "Training across machines"), first found of:
#   TF_CONFIG   the standard JSON (Kubernetes TFJob and the cloud trainers
#               set it): {"cluster": {"worker": ["host0:2222", ...]},
#               "task": {"type": "worker", "index": I}};
#   HOSTS       a comma-separated host:port list (below, or from the
#               environment) with TASK_INDEX this machine's place in it;
#   Slurm       under srun with one task per node, HOSTS from the step's
#               nodes (port PORT) and TASK_INDEX from SLURM_PROCID.
#
# Usage, on every machine (relative paths from the repository root, which
# every machine sees at the same path, e.g. a shared file system; DATAROOT
# and SNAPSHOT_ROOT matter on the chief only):
#
#   HOSTS=node0:2222,node1:2222 TASK_INDEX=0 DATAROOT=/path/to/datasets \
#     bash bashscripts/voc12/train_segsort_multinode.sh      # on node0
#   HOSTS=node0:2222,node1:2222 TASK_INDEX=1 DATAROOT=/path/to/datasets \
#     bash bashscripts/voc12/train_segsort_multinode.sh      # on node1
#
# BATCH_SIZE is the batch of all towers of all machines: every GPU of every
# machine runs a tower (--loss_device tower; the loss on the chief's first
# GPU), so with NUM_GPU=4 on each of 2 machines, 16 images are 2 per tower.
#
# SMOKE=1 runs the recipe on this machine with 2 worker processes on free
# localhost ports, a tiny synthetic dataset and a tiny network (one CPU
# tower per worker): both training stages on the 2 workers, then stage 2's
# prototypes, multi-scale inference and mIoU on the chief (stage 1's with
# IS_PROTOTYPE_1=1 IS_INFERENCE_1=1 IS_BENCHMARK_1=1). SMOKE_DIR, a new
# temporary folder by default, receives the data and every output:
#
#   SMOKE=1 [SMOKE_DIR=/tmp/segsort_smoke] \
#     bash bashscripts/voc12/train_segsort_multinode.sh

set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source bashscripts/voc12/common.sh

# The cluster when there is no TF_CONFIG: edit HOSTS here or set it.
HOSTS=${HOSTS:-}
TASK_INDEX=${TASK_INDEX:-${SLURM_PROCID:-}}
PORT=${PORT:-2222}
# How long the chief waits for the other machines to come up.
CLUSTER_WAIT_SECONDS=${CLUSTER_WAIT_SECONDS:-600}

DATAROOT=${DATAROOT:-/path/to/datasets}
LIST_DIR=${LIST_DIR:-dataset/voc12}
SNAPSHOT_ROOT=${SNAPSHOT_ROOT:-snapshots}
IMAGENET_CKPT=${IMAGENET_CKPT-snapshots/imagenet/trained/resnet_v1_101.ckpt}
PYTHON=${PYTHON:-python3}

# Network and recipe: those of train_segsort_mgpu.sh (see its comments),
# with the batch spread over the towers of every machine.
BACKBONE=resnet_v1_101
BACKBONE_VARIANT=original
WIDTH_MULTIPLIER=1.0
BATCH_SIZE=${BATCH_SIZE:-16}
TRAIN_INPUT_SIZE=480,480
WEIGHT_DECAY=5e-4
ITER_SIZE=1
NUM_STEPS_1=100000
NUM_STEPS_2=30000
SAVE_PRED_EVERY_2=10000
NUM_CLASSES=21
NUM_GPU=${NUM_GPU:-4}
LEARNING_RATE_1=2e-3
LEARNING_RATE_2=2e-4
UPDATE_TB_EVERY=50
INFERENCE_INPUT_SIZE=480,480
INFERENCE_STRIDES=320,320
SS_INPUT_SIZE=720,720
INFERENCE_SPLIT=val
COLORMAP=misc/colormapvoc.mat
CONCENTRATION=10
NUM_BANKS=2
EMBEDDING_DIM=32
NUM_CLUSTERS=5
KMEANS_ITERATIONS=10
K_IN_NEAREST_NEIGHBORS=21

SMOKE=${SMOKE:-0}
# The chief's evaluation of stage 1 is the single-machine code that the
# other recipes' smoke runs cover: SMOKE=1 leaves it out unless asked
# (IS_PROTOTYPE_1=1 ...), which halves the process start-ups after training.
STAGE1_EVAL=$([ "${SMOKE}" = 1 ] && echo 0 || echo 1)

IS_TRAIN_1=${IS_TRAIN_1:-1}
IS_PROTOTYPE_1=${IS_PROTOTYPE_1:-${STAGE1_EVAL}}
IS_INFERENCE_1=${IS_INFERENCE_1:-${STAGE1_EVAL}}
IS_BENCHMARK_1=${IS_BENCHMARK_1:-${STAGE1_EVAL}}
IS_TRAIN_2=${IS_TRAIN_2:-1}
IS_PROTOTYPE_2=${IS_PROTOTYPE_2:-1}
IS_INFERENCE_2=${IS_INFERENCE_2:-0}
IS_INFERENCE_MSC_2=${IS_INFERENCE_MSC_2:-1}
IS_BENCHMARK_2=${IS_BENCHMARK_2:-1}

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
  NUM_GPU=1
  UPDATE_TB_EVERY=1
  INFERENCE_INPUT_SIZE=48,48
  INFERENCE_STRIDES=32,32
  SS_INPUT_SIZE=64,64
  EMBEDDING_DIM=8
  NUM_CLUSTERS=2
  KMEANS_ITERATIONS=2
  K_IN_NEAREST_NEIGHBORS=3
  CLUSTER_WAIT_SECONDS=120
  unset TF_CONFIG
  HOSTS=$("${PYTHON}" -c 'import socket
s = [socket.socket() for _ in range(2)]
[x.bind(("localhost", 0)) for x in s]
print(",".join("localhost:%d" % x.getsockname()[1] for x in s))')
  TASK_INDEX=0
fi

# Slurm (under srun): one task per node, the nodes of the step (else of the
# job) in order; srun's task I (SLURM_PROCID) is on the I-th of them.
SLURM_NODES=${SLURM_STEP_NODELIST:-${SLURM_JOB_NODELIST:-}}
SLURM_TASKS=${SLURM_STEP_NUM_TASKS:-${SLURM_NTASKS:-}}
if [ -z "${TF_CONFIG}" ] && [ -z "${HOSTS}" ] && [ -n "${SLURM_NODES}" ]; then
  HOSTS=$(scontrol show hostnames "${SLURM_NODES}" |
          sed "s/\$/:${PORT}/" | paste -sd, -)
  if [ -z "${HOSTS}" ]; then
    echo "error: $(recipe_name): \`scontrol show hostnames ${SLURM_NODES}\`" \
      "listed no node; set HOSTS and TASK_INDEX instead." >&2
    exit 1
  fi
  NUM_HOSTS=$(( $(echo "${HOSTS}" | tr , '\n' | wc -l) ))
  if [ -n "${SLURM_TASKS}" ] && [ "${SLURM_TASKS}" != "${NUM_HOSTS}" ]; then
    echo "error: $(recipe_name): Slurm runs ${SLURM_TASKS} tasks on" \
      "${NUM_HOSTS} node(s) (${SLURM_NODES}); run one task per node:" \
      "srun --ntasks-per-node=1 (a node's towers are NUM_GPU)." >&2
    exit 1
  fi
fi
if [ -n "${TF_CONFIG}" ]; then
  CLUSTER_FLAGS=()
  IS_CHIEF=$("${PYTHON}" -c 'import json, os
c = json.loads(os.environ["TF_CONFIG"])
t = c["task"]
chief = ("chief", 0) if "chief" in c["cluster"] else ("worker", 0)
print(int((t["type"], int(t["index"])) == chief))')
elif [ -n "${HOSTS}" ] && [ -n "${TASK_INDEX}" ]; then
  CLUSTER_FLAGS=(--cluster_spec "${HOSTS}" --task_index "${TASK_INDEX}")
  IS_CHIEF=$([ "${TASK_INDEX}" = 0 ] && echo 1 || echo 0)
else
  echo "error: $(recipe_name): no cluster: set TF_CONFIG, or HOSTS and" \
    "TASK_INDEX, or run under srun (see the top of the script)." >&2
  exit 1
fi
CLUSTER_FLAGS+=(--cluster_wait_seconds "${CLUSTER_WAIT_SECONDS}")

SNAPSHOT_DIR=${SNAPSHOT_ROOT}/voc12/segsort/segsort_pspnet_${BACKBONE}
SNAPSHOT_DIR+=_multinode_${NUM_GPU}gpu_b${BATCH_SIZE}
SNAPSHOT_DIR+=-${NUM_STEPS_1}+${NUM_STEPS_2}it_voc12-${TRAIN_INPUT_SIZE/,/x}
DATA_DIR=${DATAROOT}/VOCdevkit
GT_DIR=${DATA_DIR}/VOC2012/segcls
export PYTHONPATH=$(pwd)${PYTHONPATH:+:${PYTHONPATH}}

if [ "${SMOKE}" = 1 ]; then
  echo "SMOKE=1: 2 workers at ${HOSTS}; data and outputs in ${SMOKE_DIR}"
  make_smoke_dataset
fi
if [ "${IS_CHIEF}" = 1 ]; then
  LISTS=(train+ ${INFERENCE_SPLIT})
  if [ "${IS_TRAIN_2}" = 1 ] || [ "${IS_PROTOTYPE_2}" = 1 ]; then
    LISTS+=(train)
  fi
  NEED_GT=0
  if [ "${IS_BENCHMARK_1}" = 1 ] || [ "${IS_BENCHMARK_2}" = 1 ]; then
    NEED_GT=1
  fi
  check_inputs "${IS_TRAIN_1}" "${NEED_GT}" "${LISTS[@]}"
fi

# cluster_train_step: train_step's arguments, run as this machine's task
# (with SMOKE=1, task 1 is started here in the background first).
cluster_train_step() {
  local worker_pid=
  if [ "${SMOKE}" = 1 ]; then
    train_step "$@" --cluster_spec "${HOSTS}" --task_index 1 \
      --cluster_wait_seconds "${CLUSTER_WAIT_SECONDS}" &
    worker_pid=$!
  fi
  train_step "$@" "${CLUSTER_FLAGS[@]}"
  if [ -n "${worker_pid}" ]; then
    wait "${worker_pid}"
  fi
}

if [ "${IS_TRAIN_1}" = 1 ]; then
  cluster_train_step pyscripts/train/train_segsort_mgpu.py \
    "${SNAPSHOT_DIR}/stage1" "${IMAGENET_CKPT}" train+ \
    "${LEARNING_RATE_1}" "${NUM_STEPS_1}" "${NUM_STEPS_1}" \
    --num_banks "${NUM_BANKS}" --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" --num_gpu "${NUM_GPU}" \
    --loss_device tower --not_restore_classifier
fi
if [ "${IS_TRAIN_2}" = 1 ]; then
  cluster_train_step pyscripts/train/train_segsort_mgpu.py \
    "${SNAPSHOT_DIR}/stage2" "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    train "${LEARNING_RATE_2}" "${NUM_STEPS_2}" "${SAVE_PRED_EVERY_2}" \
    --num_banks "${NUM_BANKS}" --num_clusters "${NUM_CLUSTERS}" \
    --kmeans_iterations "${KMEANS_ITERATIONS}" --num_gpu "${NUM_GPU}" \
    --loss_device tower
fi
# The rest runs on the chief alone, as in train_segsort_mgpu.sh.
if [ "${IS_CHIEF}" != 1 ]; then
  exit 0
fi
if [ "${IS_PROTOTYPE_1}" = 1 ]; then
  extract_prototypes "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" train+ \
    "${SNAPSHOT_DIR}/stage1/results/train+"
fi
if [ "${IS_INFERENCE_1}" = 1 ]; then
  infer_single_scale "${SNAPSHOT_DIR}/stage1/model.ckpt-${NUM_STEPS_1}" \
    "${SNAPSHOT_DIR}/stage1/results/train+/prototypes" \
    "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}"
fi
if [ "${IS_BENCHMARK_1}" = 1 ]; then
  benchmark_existing "${SNAPSHOT_DIR}/stage1/results/${INFERENCE_SPLIT}"
fi
if [ "${IS_PROTOTYPE_2}" = 1 ]; then
  extract_prototypes "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" train \
    "${SNAPSHOT_DIR}/stage2/results/train"
fi
if [ "${IS_INFERENCE_2}" = 1 ]; then
  infer_single_scale "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    "${SNAPSHOT_DIR}/stage2/results/train/prototypes" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}"
fi
if [ "${IS_INFERENCE_MSC_2}" = 1 ]; then
  infer_multi_scale "${SNAPSHOT_DIR}/stage2/model.ckpt-${NUM_STEPS_2}" \
    "${SNAPSHOT_DIR}/stage2/results/train/prototypes" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc"
fi
if [ "${IS_BENCHMARK_2}" = 1 ]; then
  benchmark_existing "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}" \
    "${SNAPSHOT_DIR}/stage2/results/${INFERENCE_SPLIT}_msc"
fi
