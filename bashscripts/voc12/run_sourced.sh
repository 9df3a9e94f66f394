#!/bin/bash
# Sourced by a recipe of this folder when the recipe itself was sourced
# (`source bashscripts/voc12/train_segsort.sh`, the original README's
# usage): runs that recipe again in a child bash and returns its status.
# Failing fast, `set -e` and `cd` then stay in the child; the caller's shell
# keeps its options, directory, variables and functions. The settings the
# recipes read from the environment are exported on the way (in a subshell,
# so not in the caller's shell), which lets plain shell variables of the
# caller reach the recipe. Defines nothing.
#
# Usage, at the top of a recipe:
#   if [ "${BASH_SOURCE[0]}" != "$0" ]; then
#     source "$(dirname "${BASH_SOURCE[0]}")/run_sourced.sh" || return
#     return 0
#   fi
(
  export DATAROOT LIST_DIR SNAPSHOT_ROOT IMAGENET_CKPT PYTHON SMOKE SMOKE_DIR \
    ${!IS_*}
  exec bash "${BASH_SOURCE[1]}"
)
