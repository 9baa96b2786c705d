#!/usr/bin/env bash
# The grid behind everything in results/: the runs and figures of the table of contents results/grid.py, one run a
# line "EXPERIMENT MULTS TRAIN_OPTIONS...", in the run folder results/runs/EXPERIMENT/NAME-s<SEED>.
#
#   bash results/commands.sh --list [--only REGEX]      number, run folder and options of each line
#   bash results/commands.sh --status [--only REGEX]    per experiment: finished, interrupted, trained, new
#   bash results/commands.sh --job K                    line K: train it (or resume it), then score it with eval.py
#   bash results/commands.sh --workers N [--only REGEX] the lines not finished, N at a time, then their --plots
#   bash results/commands.sh --plots [--only REGEX]     the figures and tables of results/ from the finished runs
#   bash results/slurm.sh [--only REGEX]                the lines not finished, as a SLURM job array
#
# REGEX is searched in EXPERIMENT/NAME-s<SEED>, e.g. --only 'headline/.*-S3-'. A finished run (log.jsonl at
# --max_iters, or a checkpoint there, and an eval.json holding every test length of its line, scored as the launcher
# scores) is never touched again; an interrupted one (a ckpt.pt short of --max_iters) resumes from its checkpoint; a
# folder without a checkpoint or an eval.json starts afresh. A line or figure that cannot work is one error line
# before anything runs; a figure that fails makes the exit code 1.
# RUNS=folder puts the run folders elsewhere (a relative path is from the current folder), and the figures and
# tables with them (results/X is written as folder/X); GRID=file.py reads another table of contents (a relative path
# is from the kit's folder; results/launch.py says more).
set -euo pipefail
exec python "$(dirname "$0")/launch.py" "$@"
