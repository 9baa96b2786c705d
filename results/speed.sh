#!/usr/bin/env bash
# The CPU speed table of README.md, Speed: back to back, 2 threads, on otherwise idle cores, twice:
# the plain torch hybrid (results/plain_torch.py), the kit's real training loop (ms/step that a 700-step run logs
# for steps 101-600, attention on, and with attention off: a delay of 650), and the kit's steady-state bench.
#   bash results/speed.sh | tee results/speed_cpu.log
#   bash results/speed.sh sdpa | tee results/speed_sdpa.log   # only: the kit's bench, its attention written out
#                                                            # against torch's fused F.scaled_dot_product_attention
set -euo pipefail
cd "$(dirname "$0")/.."
sdpa_bench() {  # L: python results/bench.py --train_len L with model.py's attention through the fused kernel
  python - "$1" <<'PY'
import sys
import torch, torch.nn.functional as F
import model
sys.path.insert(0, "results")
import bench

def sdpa_forward(self, x, rope=None):  # Attention.forward, the softmax by torch's fused causal kernel
    B, T, C = x.shape
    q, k, v = self.qkv(self.ln(x)).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
    if rope is not None:
        q, k = model.rotary(q, *rope), model.rotary(k, *rope)
    return self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C))

for pos in ("none", "rope"):  # first: the two compute the same thing
    m, x = model.Model(model.ModelConfig(pos=pos)), torch.randn(4, 25, 64)
    assert torch.allclose(m.blocks[1].attn(x, m.rope(25, "cpu")), sdpa_forward(m.blocks[1].attn, x, m.rope(25, "cpu")),
                          atol=1e-5)
model.Attention.forward = sdpa_forward
print("attention by F.scaled_dot_product_attention (outputs checked equal to the written-out attention's):")
bench.main(["--train_len", sys.argv[1], "--threads", "2"])
PY
}
if [ "${1:-}" = sdpa ]; then
  for rep in 1 2; do for L in 8 16; do python results/bench.py --train_len $L --threads 2; sdpa_bench $L; done; done
  exit
fi
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
