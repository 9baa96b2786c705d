#!/usr/bin/env bash
# The CPU speed table of README.md, Speed: back to back, 2 threads, on otherwise idle cores, twice:
# the plain torch hybrid (results/plain_torch.py), the kit's real training loop (ms/step that a 700-step run logs
# for steps 101-600, attention on, and with attention off: a delay of 650), and the kit's steady-state bench.
#   bash results/speed.sh | tee results/speed_cpu.log
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(mktemp -d)
real() {  # L [options]: the mean ms/step logged for steps 101-600 of a real run at --train_len L
  local L=$1; shift; rm -rf "$run/run"
  python train.py --train_len "$L" --max_iters 700 --eval_interval 700 --threads 2 --out_dir "$run/run" "$@" > /dev/null
  python - "$run/run/log.jsonl" "$L $*" <<'PY'
import json, sys
log = {e["step"]: e["ms_per_step"] for e in map(json.loads, open(sys.argv[1]))}
ms = [log[step] for step in range(200, 601, 100)]
print(f"kit real run, train_len {sys.argv[2]}: {sum(ms) / len(ms):.2f} ms/step mean of steps 101-600 "
      f"(steps 1-100: {log[100]:.2f}, 501-600: {log[600]:.2f})")
PY
}
for rep in 1 2; do
  for L in 8 16; do
    python results/plain_torch.py --train_len "$L" --steps 600 --threads 2
    real "$L"
    real "$L" --dat --delay 650
    python results/bench.py --train_len "$L" --threads 2 | tail -2
  done
done
rm -rf "$run"
