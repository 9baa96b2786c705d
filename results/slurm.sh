#!/bin/bash
#SBATCH --job-name=dat-kit
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
# The grid as a SLURM job array, one task per line that is not finished:
#
#   bash results/slurm.sh [--only REGEX]     (from anywhere; RUNS and GRID are passed on to the tasks)
#
# submits itself with --array set to those lines' numbers (at most 16 tasks at a time); each task runs
# "bash results/commands.sh --job $SLURM_ARRAY_TASK_ID" in the kit's folder. Line numbers go up to the grid's
# length, so the cluster's MaxArraySize must be above it (--list prints the numbers). A selection with a line or
# figure that cannot work submits nothing (its error lines, exit code 1). Then --plots, once the tasks end.
set -euo pipefail
if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then  # a task: sbatch ran a copy of this file in the submit folder
  exec bash results/commands.sh --job "$SLURM_ARRAY_TASK_ID"
fi
[ -z "${RUNS:-}" ] || export RUNS="$(realpath -m -- "$RUNS")"  # a relative RUNS is from the current folder
cd "$(dirname "$0")/.."
lines=$(bash results/commands.sh --array "$@")
[ -n "$lines" ] || { echo "nothing to run: every selected line is finished"; exit 0; }
exec sbatch --array="$lines%16" results/slurm.sh
