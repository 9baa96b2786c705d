#!/usr/bin/env bash
# The commands that made everything in results/. Runs go two at a time with --threads 1 each (2-core CPU).
# Each line below is one run: EXPERIMENT NAME EVAL_MULTS TRAIN_OPTIONS...; every run is then scored by eval.py.
set -euo pipefail
cd "$(dirname "$0")/.."
M=1,2,3,4,6,8
# results/runs/explore: three runs at the issue's first main setting (--train_len 16), made by hand before the
# default changed to 8 (the first two before attention was written out in model.py, so their digits differ):
#   python train.py --train_len 16 --dat --delay 5000 --threads 1; python train.py --train_len 16 --threads 1
#   python train.py --train_len 16 --pos rope --threads 1;  each then: python eval.py RUN --attn_off
jobs() {
  for s in 0 1 2 3 4; do   # 1. headline: lstm_attn, baseline vs DAT, main setting
    echo "headline lstm_attn-S3-plain-s$s $M --seed $s"
    echo "headline lstm_attn-S3-dat5000-s$s $M --seed $s --dat --delay 5000"; done
  for s in 0 1 2; do       # 3. baselines: LSTM alone, Transformer alone (RoPE, MLPs)
    echo "baselines lstm-S3-plain-s$s $M --seed $s --model lstm"
    echo "baselines transformer-S3-plain-s$s $M --seed $s --model transformer"; done
  for s in 0 1 2; do       # 2. designs: attention first (A A L L), interleaved (L A L A)
    for m in attn_lstm interleaved; do
      echo "designs $m-S3-plain-s$s $M --seed $s --model $m --n_lstm 2"
      echo "designs $m-S3-dat5000-s$s $M --seed $s --model $m --n_lstm 2 --dat --delay 5000"; done; done
  for s in 0 1 2; do       # 4. second group: A5, then Z5
    echo "group lstm_attn-A5-plain-s$s $M --seed $s --group A5"
    echo "group lstm_attn-A5-dat5000-s$s $M --seed $s --group A5 --dat --delay 5000"; done
  for s in 0 1 2; do
    echo "group lstm_attn-Z5-plain-s$s $M --seed $s --group Z5"
    echo "group lstm_attn-Z5-dat5000-s$s $M --seed $s --group Z5 --dat --delay 5000"; done
  for s in 0 1 2; do       # beyond the paper: delay sweep (delay 0 and 5000 are the headline runs)
    for d in 250 500 1000 2000 4000; do echo "delay lstm_attn-S3-dat$d-s$s $M --seed $s --dat --delay $d"; done; done
  for s in 0 1 2; do       # which half of DAT matters: ramp, freeze only, learning-rate warmup only
    echo "modes lstm_attn-S3-dat5000r1000-s$s $M --seed $s --dat --delay 5000 --ramp 1000"
    echo "modes lstm_attn-S3-freeze5000-s$s $M --seed $s --dat --delay 5000 --dat_mode freeze"
    echo "modes lstm_attn-S3-lr5000-s$s $M --seed $s --dat --delay 5000 --dat_mode lr"; done
  for s in 0 1 2; do       # a delay that needs no tuning
    echo "auto lstm_attn-S3-datauto-s$s $M --seed $s --dat --delay auto"
    echo "auto lstm_attn-A5-datauto-s$s $M --seed $s --group A5 --dat --delay auto"; done
  echo "mlp lstm_attn-S3-mlp-plain-s0 $M --seed 0 --mlp"   # attention blocks with MLPs
  echo "mlp lstm_attn-S3-mlp-dat5000-s0 $M --seed 0 --mlp --dat --delay 5000"
}
run() {
  exp=$1; name=$2; mults=$3; shift 3
  python train.py "$@" --threads 1 --out_dir results/runs/$exp/$name > /dev/null
  extra="--attn_off --probe"; case $name in transformer*) extra=;; lstm-*) extra=--probe;; esac
  python eval.py results/runs/$exp/$name --mults $mults $extra --mistakes 2 > results/runs/$exp/$name/eval.txt
}
export -f run
[ "${1:-}" = "--plots-only" ] || jobs | xargs -P 2 -L 1 bash -c 'run "$@"' _

# figures and the summary table
python plot.py results/runs/headline --out results/headline.png
python plot.py results/runs/headline results/runs/baselines --out results/baselines.png
python plot.py results/runs/designs --out results/designs.png
python plot.py results/runs/group --out results/groups.png
python plot.py results/runs/delay results/runs/headline/*-s[0-2] --sweep delay --out results/delay_sweep.png
python plot.py results/runs/modes results/runs/headline/*-s[0-2] --out results/modes.png
python plot.py results/runs/auto results/runs/group --out results/auto.png
python plot.py results/runs/mlp --out results/mlp.png
python plot.py results/runs/explore --out results/explore_len16.png
python plot.py --attn results/runs/headline/lstm_attn-S3-dat5000-s0 --out results/attention_dat.png
python plot.py --attn results/runs/headline/lstm_attn-S3-plain-s0 --out results/attention_plain.png
python plot.py results/runs/* --out /tmp/all.png --summary results/summary.md
