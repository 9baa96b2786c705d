#!/usr/bin/env bash
# The GPU runs of results/runs/gpu and the runs/hour by process count in results/README.md, GPU: on a machine with
# one CUDA GPU and 16 cores, the GPU bench, then the grid's gpu lines (--list --only '^gpu/') in batches run 1, 4, 8,
# 16 and 10 at a time, each batch timed (finished runs per hour of wall time); BUDGET: seconds for all the batches.
# Output (and $OUT, where the finished run folders are packed) as results/gpu_runs.log shows.
#   BUDGET=500 OUT=/tmp/out bash results/gpu_runs.sh
set -u
export PYTHONUNBUFFERED=1
if ! command -v python >/dev/null; then  # the GPU image has python3 only
  mkdir -p /tmp/bin; ln -sf "$(command -v python3)" /tmp/bin/python; export PATH=/tmp/bin:$PATH; fi
START=$SECONDS; DEADLINE=$((START + ${BUDGET:-520}))
nvidia-smi -L; nproc; python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
mkdir -p $OUT; nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > $OUT/gpu_util.csv 2>&1 &
timeout 40 python results/bench.py
timeout 40 python results/bench.py --train_len 16
batch() {  # P A B: the A-th to B-th gpu lines of the grid, P at a time
  local left=$((DEADLINE - SECONDS)) t0 t1 n0 n1
  [ $left -gt 30 ] || { echo "batch P=$1 $2-$3: no time left"; return; }
  n0=$(ls -d results/runs/gpu/*/eval.json 2>/dev/null | wc -l); t0=$(date +%s.%N)
  timeout $left bash -c "bash results/commands.sh --list --only '^gpu/' | sed -n '$2,$3p' | cut -f1 |
    xargs -P $1 -I{} bash results/commands.sh --job {}"
  t1=$(date +%s.%N); n1=$(ls -d results/runs/gpu/*/eval.json 2>/dev/null | wc -l)
  python -c "w=$t1-$t0; n=$n1-$n0
print(f'BATCH processes=$1 lines=$2-$3 finished={n} wall={w:.1f}s runs/hour={3600*n/w:.0f}')"
}
batch 1 1 2
batch 4 3 6
batch 8 7 14
batch 16 15 30
batch 10 31 40
tar czf $OUT/gpu_runs.tgz --exclude=ckpt.pt results/runs/gpu
ls results/runs/gpu | head -50
echo "total $((SECONDS - START)) s"
