#!/usr/bin/env bash
# The grid behind everything in results/: one line per run, "EXPERIMENT MULTS TRAIN_OPTIONS...". The run folder is
# results/runs/EXPERIMENT/NAME, with NAME made by train.py from the options (python train.py OPTIONS --dry_run).
#
#   bash results/commands.sh --list          the grid, one run per line (line K is job K)
#   bash results/commands.sh --job K         line K: train it (or resume it), then score it with eval.py
#   bash results/commands.sh --workers N     every line, N at a time (--threads 1 each), then --plots
#   bash results/commands.sh --plots         the figures and tables of results/ from the finished runs
#
# A finished run (log.jsonl at --max_iters and eval.json there) is never touched again; an interrupted one (a
# ckpt.pt short of --max_iters) resumes from its checkpoint; a folder without a checkpoint starts afresh.
# On a SLURM cluster, the README's job-array script runs
# "--job $SLURM_ARRAY_TASK_ID" for K = 1..N (N from --list | wc -l).
set -euo pipefail
cd "$(dirname "$0")/.."
M=1,2,3,4,6,8   # test lengths, as multiples of --train_len (eval.py --mults)
M16=1,2,3,4     # at --train_len 16: 8x would need 128 distinct keys, and the runs have 64
RUNS=${RUNS:-results/runs}   # where run folders go (the tests point it elsewhere)

grid() {
  # --- runs of the first sessions (all finished) ---
  for s in 0 1 2 3 4; do   # headline: lstm_attn on S3, plain vs DAT
    echo "headline $M --seed $s"; echo "headline $M --seed $s --dat --delay 5000"; done
  for s in 0 1 2; do       # baselines: LSTM alone, Transformer alone (RoPE, MLPs)
    echo "baselines $M --seed $s --model lstm"; echo "baselines $M --seed $s --model transformer"; done
  for s in 0 1 2; do       # designs: attention first (A A L L), interleaved (L A L A)
    for m in attn_lstm interleaved; do
      echo "designs $M --seed $s --model $m --n_lstm 2"; echo "designs $M --seed $s --model $m --n_lstm 2 --dat"; done
  done
  for s in 0 1 2; do       # second groups: A5 (not learned at this size), Z5
    echo "group $M --seed $s --group A5"; echo "group $M --seed $s --group A5 --dat"; done
  for s in 0 1 2; do echo "group $M --seed $s --group Z5"; echo "group $M --seed $s --group Z5 --dat"; done
  for s in 0 1 2; do       # delay sweep (delay 0 and 5000 are the headline runs)
    for d in 250 500 1000 2000 4000; do echo "delay $M --seed $s --dat --delay $d"; done; done
  for s in 0 1 2; do       # which half of DAT matters: a ramp, and attention learning-rate warmup only
    echo "modes $M --seed $s --dat --ramp 1000"; echo "modes $M --seed $s --dat --dat_mode lr"; done
  for s in 0 1 2; do       # a delay that needs no tuning
    echo "auto $M --seed $s --dat --delay auto"; echo "auto $M --seed $s --group A5 --dat --delay auto"; done
  echo "mlp $M --seed 0 --mlp"; echo "mlp $M --seed 0 --mlp --dat"   # attention blocks with MLPs
  # explore: the first sessions' --train_len 16 runs, before the default became 8 (the first two were trained
  # before model.py wrote attention out, so rerunning them agrees only up to float rounding)
  echo "explore $M16 --train_len 16 --dat"; echo "explore $M16 --train_len 16"
  echo "explore $M16 --train_len 16 --pos rope"

  # --- the shortcut atlas, in the order it runs (results/README.md, Atlas, says why) ---
  for s in 5 6 7 8 9; do echo "headline $M --seed $s"; echo "headline $M --seed $s --dat"; done
  for s in 0 1 2 3 4 5 6 7 8 9; do
    echo "atlas $M --seed $s --pos rope"; echo "atlas $M --seed $s --pos rope --dat"; done
  for s in 0 1 2 3 4; do   # freeze reruns (the attention .grad no longer piles up), ramp and lr to 5 seeds
    echo "modes $M --seed $s --dat --dat_mode freeze"; done
  for s in 3 4; do echo "modes $M --seed $s --dat --ramp 1000"; echo "modes $M --seed $s --dat --dat_mode lr"; done
  for lr in 0.003 0.001; do   # A5: can an LSTM alone learn it at 2x width and 2x steps?
    echo "a5 $M --seed 0 --model lstm --group A5 --d_model 128 --max_iters 16000 --lr $lr"; done
  for s in 3 4; do echo "group $M --seed $s --group Z5"; echo "group $M --seed $s --group Z5 --dat"; done
  for s in 0 1 2 3 4; do
    echo "atlas $M --seed $s --group Z5 --pos rope"; echo "atlas $M --seed $s --group Z5 --pos rope --dat"; done
  for s in 0 1 2 3 4; do
    for pos in none rope; do
      echo "atlas $M --seed $s --group A4 --pos $pos"; echo "atlas $M --seed $s --group A4 --pos $pos --dat"; done
  done
  for s in 3 4; do
    echo "designs $M --seed $s --model interleaved --n_lstm 2"
    echo "designs $M --seed $s --model interleaved --n_lstm 2 --dat"
  done
  for s in 0 1 2 3 4; do
    echo "atlas $M --seed $s --model interleaved --n_lstm 2 --pos rope"
    echo "atlas $M --seed $s --model interleaved --n_lstm 2 --pos rope --dat"; done
  for s in 0 1 2 3 4; do   # A5 at the setting where an LSTM alone learns it (results/README.md, A5)
    A5="--group A5 --d_model 128 --max_iters 16000"
    echo "atlas $M --seed $s $A5"; echo "atlas $M --seed $s $A5 --dat --delay 10000"; done
  for s in 0 1 2 3 4; do
    for pos in none rope; do echo "atlas $M16 --seed $s --train_len 16 --pos $pos"
      echo "atlas $M16 --seed $s --train_len 16 --pos $pos --dat"; done; done
  # then more seeds: the headline cell to 20 (its test of DAT against plain)
  for s in $(seq 10 19); do echo "headline $M --seed $s"; echo "headline $M --seed $s --dat"; done
  # the headline cell on a CUDA GPU (bf16 autocast, data drawn on the GPU: other runs than the CPU's); a machine
  # without CUDA skips these lines
  for s in $(seq 0 19); do echo "gpu $M --seed $s --device cuda --dat"; echo "gpu $M --seed $s --device cuda"; done
  # the atlas's cells to 10 seeds, one seed of every cell at a time: Z5, A4, interleaved, then --train_len 16
  for s in 5 6 7 8 9; do
    for dat in "" " --dat"; do
      echo "group $M --seed $s --group Z5$dat"; echo "atlas $M --seed $s --group Z5 --pos rope$dat"
      for pos in none rope; do echo "atlas $M --seed $s --group A4 --pos $pos$dat"; done
      echo "designs $M --seed $s --model interleaved --n_lstm 2$dat"
      echo "atlas $M --seed $s --model interleaved --n_lstm 2 --pos rope$dat"; done; done
  for s in 5 6 7 8 9; do
    for pos in none rope; do echo "atlas $M16 --seed $s --train_len 16 --pos $pos"
      echo "atlas $M16 --seed $s --train_len 16 --pos $pos --dat"; done; done
  # seeds 10-19 of the cells that ended near p = 0.09 (len16, interleaved RoPE) and of S3 RoPE, one seed at a time
  for s in $(seq 10 19); do
    for dat in "" " --dat"; do echo "atlas $M16 --seed $s --train_len 16 --pos none$dat"; done
    for dat in "" " --dat"; do echo "atlas $M --seed $s --model interleaved --n_lstm 2 --pos rope$dat"; done
    for dat in "" " --dat"; do echo "atlas $M --seed $s --pos rope$dat"; done; done
  # to the floor of 10 seeds: the DAT modes, then the A5 cell
  for s in 5 6 7 8 9; do
    echo "modes $M --seed $s --dat --dat_mode freeze"; echo "modes $M --seed $s --dat --dat_mode lr"
    echo "modes $M --seed $s --dat --ramp 1000"; done
  for s in 5 6 7 8 9; do
    A5="--group A5 --d_model 128 --max_iters 16000"
    echo "atlas $M --seed $s $A5"; echo "atlas $M --seed $s $A5 --dat --delay 10000"; done
  for s in 3 4 5 6 7 8 9; do   # the delay sweep to 10 seeds a delay
    for d in 250 500 1000 2000 4000; do echo "delay $M --seed $s --dat --delay $d"; done; done
  for s in $(seq 10 19); do   # the A5 cell to 20 seeds, the one cell left near p = 0.09 at 10
    A5="--group A5 --d_model 128 --max_iters 16000"
    echo "atlas $M --seed $s $A5"; echo "atlas $M --seed $s $A5 --dat --delay 10000"; done
  for s in $(seq 1 9); do   # MLP blocks and --delay auto to 10 seeds (results/README.md, Atlas: pre-registration)
    echo "mlp $M --seed $s --mlp"; echo "mlp $M --seed $s --mlp --dat"
    [ "$s" -lt 3 ] || echo "auto $M --seed $s --dat --delay auto"; done
  for s in $(seq 10 19); do   # interleaved without position encoding to 20 seeds (its "no effect" claim)
    echo "designs $M --seed $s --model interleaved --n_lstm 2"
    echo "designs $M --seed $s --model interleaved --n_lstm 2 --dat"; done
  for s in $(seq 3 9); do   # the baselines and the attention-first design to 10 seeds
    echo "baselines $M --seed $s --model lstm"; echo "baselines $M --seed $s --model transformer"
    for dat in "" " --dat"; do echo "designs $M --seed $s --model attn_lstm --n_lstm 2$dat"; done
  done
  for s in $(seq 0 9); do   # S3 at twice the width: does the plain hybrid's failure rate depend on its size?
    echo "atlas $M --seed $s --d_model 128"; echo "atlas $M --seed $s --d_model 128 --dat"; done
  for s in $(seq 0 9); do   # S3 trained twice as long: is the plain hybrid's failure a short budget's?
    echo "atlas $M --seed $s --max_iters 16000"; echo "atlas $M --seed $s --max_iters 16000 --dat"; done
  for dat in "" " --dat"; do   # Z5 at twice the width, plain then DAT: is the width's cure S3's alone?
    for s in $(seq 0 9); do echo "atlas $M --seed $s --group Z5 --d_model 128$dat"; done; done
  for s in $(seq 0 9); do   # A4 at twice the width, then S3 at widths 32 and 96: which groups, how gradual?
    for dat in "" " --dat"; do echo "atlas $M --seed $s --group A4 --d_model 128$dat"; done; done
  for s in $(seq 0 9); do
    for d in 32 96; do for dat in "" " --dat"; do echo "atlas $M --seed $s --d_model $d$dat"; done; done; done
  for s in $(seq 0 9); do   # Z6: abelian, the order of S3; at d_model 128, does it fail like Z5 or not like S3?
    for d in 128 64; do for dat in "" " --dat"; do echo "atlas $M --seed $s --group Z6 --d_model $d$dat"; done; done
  done
  for d in 128 64; do   # D4 (not abelian, its counts fix 2 of its 3 bits) against Z8: commutativity or counting?
    for s in $(seq 0 9); do
      for g in D4 Z8; do for dat in "" " --dat"; do echo "atlas $M --seed $s --group $g --d_model $d$dat"; done; done
    done
  done
  for s in $(seq 10 19); do   # D4 against Z8 at d_model 128, plain only: 2 of 10 against 8 of 10 at seeds 0-9
    for g in D4 Z8; do echo "atlas $M --seed $s --group $g --d_model 128"; done; done
  for s in $(seq 0 9); do   # A4 at d_model 256: cured by more width? (6 of 10 plain fails at 128 then)
    for dat in "" " --dat"; do echo "atlas $M --seed $s --group A4 --d_model 256$dat"; done; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group A4 --d_model 128"; done   # its 128 rate, tighter
  for s in 0 1; do echo "atlas $M --seed $s --group A4 --d_model 256 --lr 0.001"; done   # pilot: is it the lr?
  for s in $(seq 0 9); do   # the pilot as a cell: A4 at d_model 256 and --lr 0.001 (plain seeds 0-1 are above)
    [ "$s" -lt 2 ] || echo "atlas $M --seed $s --group A4 --d_model 256 --lr 0.001"
    echo "atlas $M --seed $s --group A4 --d_model 256 --lr 0.001 --dat --delay 5000"; done
  for s in $(seq 0 9); do echo "atlas $M --seed $s --group A4 --lr 0.001"; done   # control: the lr at d_model 64
  for s in $(seq 0 9); do echo "atlas $M --seed $s --group A4 --lr 0.001 --dat --delay 5000"; done   # its DAT side
  for s in $(seq 0 9); do echo "atlas $M --seed $s --group A4 --lr 0.001 --max_iters 24000"; done   # one that learns
  for s in $(seq 0 9); do   # RoPE: is DAT's recall failure the 3000 steps its attention trains after the delay?
    echo "atlas $M --seed $s --pos rope --dat --delay 1000"
    for dat in "" " --dat"; do echo "atlas $M --seed $s --pos rope --max_iters 16000$dat"; done; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --pos rope --dat --delay 1000"; done
  for s in $(seq 0 9); do   # and the interleaved design with RoPE, where DAT 5000 is also worse than plain
    echo "atlas $M --seed $s --model interleaved --n_lstm 2 --pos rope --dat --delay 1000"; done
  for s in $(seq 0 9); do   # a short delay under RoPE on Z5 and A4 (2000: after their LSTMs have the state)
    for g in Z5 A4; do echo "atlas $M --seed $s --group $g --pos rope --dat --delay 2000"; done; done
  for s in $(seq 0 9); do   # S3 RoPE with the short delay and twice the steps: does recall reach further?
    echo "atlas $M --seed $s --pos rope --dat --delay 1000 --max_iters 16000"; done
  for s in $(seq 0 9); do echo "atlas $M16 --seed $s --train_len 16 --pos rope --dat --delay 1000"; done   # and at 16
  for s in $(seq 0 9); do   # the 2000-step delay without position encoding on Z5 and A4: does it cost anything?
    for g in Z5 A4; do echo "atlas $M --seed $s --group $g --dat --delay 2000"; done; done
  for s in $(seq 0 9); do echo "atlas $M --seed $s --pos rope --dat --delay 2000"; done   # and S3 RoPE at 2000
  for s in $(seq 0 9); do echo "atlas $M --seed $s --pos rope --dat --delay auto"; done   # and S3 RoPE, auto
  for s in $(seq 0 9); do   # --delay auto under RoPE on Z5 and A4
    for g in Z5 A4; do echo "atlas $M --seed $s --group $g --pos rope --dat --delay auto"; done; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --pos rope --dat --delay auto"; done   # S3 RoPE auto to 20 seeds
  for s in $(seq 0 9); do   # and --delay auto without position encoding on Z5 and A4
    for g in Z5 A4; do echo "atlas $M --seed $s --group $g --dat --delay auto"; done; done
  for s in $(seq 0 9); do   # train_len 16 with RoPE: the short delay and twice the steps
    echo "atlas $M16 --seed $s --train_len 16 --pos rope --dat --delay 1000 --max_iters 16000"; done
  for s in $(seq 10 19); do   # A4 RoPE --delay auto to 20 seeds
    echo "atlas $M --seed $s --group A4 --pos rope --dat --delay auto"; done
  for s in $(seq 0 9); do   # A4 with RoPE at twice the steps: is the attention's training time what it lacks?
    for d in auto 5000; do echo "atlas $M --seed $s --group A4 --pos rope --max_iters 16000 --dat --delay $d"; done
  done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group Z5 --pos rope --dat --delay auto"; done   # Z5 to 20
  for s in $(seq 10 19); do   # A4 RoPE --delay auto at 16000 steps to 20 seeds
    echo "atlas $M --seed $s --group A4 --pos rope --dat --delay auto --max_iters 16000"; done
  for s in $(seq 0 9); do echo "atlas $M --seed $s --group A4 --pos rope --max_iters 16000"; done   # and plain
  for s in $(seq 0 9); do   # plain at 16000 steps: A4 RoPE to 20 seeds, and A4 without position encoding
    echo "atlas $M --seed $((s + 10)) --group A4 --pos rope --max_iters 16000"
    echo "atlas $M --seed $s --group A4 --max_iters 16000"; done
  for s in $(seq 0 9); do echo "atlas $M --seed $s --group A4 --max_iters 16000 --dat --delay 5000"; done   # its DAT
  for s in $(seq 10 19); do   # A4 RoPE, DAT 5000 at 16000 steps to 20 seeds
    echo "atlas $M --seed $s --group A4 --pos rope --max_iters 16000 --dat --delay 5000"; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group A4 --pos rope"; done   # plain A4 RoPE to 20 seeds
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group D4 --d_model 128 --dat"; done   # D4 d128 DAT to 20
  for s in $(seq 10 19); do   # S3 RoPE at 16000 steps, plain and DAT 5000 to 20 seeds
    for dat in "" " --dat"; do echo "atlas $M --seed $s --pos rope --max_iters 16000$dat"; done; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --pos rope --max_iters 16000 --dat --delay 1000"; done   # and 1000
  for s in $(seq 20 24); do   # D4 at d_model 128 beyond 20 seeds: does p = 0.047 hold?
    for dat in "" " --dat"; do echo "atlas $M --seed $s --group D4 --d_model 128$dat"; done; done
  for s in $(seq 10 19); do   # S3 at 16000 steps, plain and DAT 5000 to 20 seeds: more training, same shortcut?
    echo "atlas $M --seed $s --max_iters 16000"; echo "atlas $M --seed $s --max_iters 16000 --dat"; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --pos rope --dat --delay 2000"; done   # S3 RoPE 2000 to 20
  for s in $(seq 10 19); do   # S3 at d_model 96 and 128, plain to 20 seeds: is the shortcut a small model's?
    for d in 96 128; do echo "atlas $M --seed $s --d_model $d"; done; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group Z5 --d_model 128 --dat"; done   # DAT's own Z5 d128 rate
  for s in $(seq 10 19); do echo "atlas $M --seed $s --d_model 96 --dat"; done   # S3 d96 DAT to 20 seeds
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group Z6 --d_model 128 --dat"; done   # DAT's own Z6 d128 rate
  for s in $(seq 10 19); do echo "atlas $M --seed $s --group Z8 --d_model 128 --dat"; done   # and Z8's
  for s in $(seq 10 19); do echo "atlas $M --seed $s --d_model 128 --dat"; done   # S3 d128 DAT to 20 seeds
  for s in $(seq 0 9); do echo "atlas $M --seed $s --d_model 128 --dat --delay auto"; done   # S3 d128 auto
  for group in Z5 Z6 Z8 A4 D4; do   # the other groups at d_model 128 with --delay auto
    for s in $(seq 0 9); do echo "atlas $M --seed $s --group $group --d_model 128 --dat --delay auto"; done; done
  for s in $(seq 0 9); do   # train_len 16 with RoPE: --delay auto, then plain at 16000 steps (DAT 1000's comparison)
    echo "atlas $M16 --seed $s --train_len 16 --pos rope --dat --delay auto"; done
  for s in $(seq 0 9); do echo "atlas $M16 --seed $s --train_len 16 --pos rope --max_iters 16000"; done
  for s in $(seq 10 19); do echo "atlas $M --seed $s --d_model 128 --dat --delay auto"; done   # S3 d128 auto to 20
  for group in D4 Z8 Z6; do   # --delay auto at d_model 64 on the groups it had not met there
    for s in $(seq 0 9); do echo "atlas $M --seed $s --group $group --dat --delay auto"; done; done
  for s in $(seq 0 19); do   # A5 at the size it is learned, with --delay auto (DAT 10000 fails in 13 of 20)
    echo "atlas $M --seed $s --group A5 --d_model 128 --max_iters 16000 --dat --delay auto"; done
  for s in $(seq 0 19); do echo "atlas $M16 --seed $s --train_len 16 --dat --delay auto"; done   # len16, no PE
  # A5: how far an LSTM alone holds the state, as a rate (seed 0 is the a5 line above), then with twice the steps
  A5="--model lstm --group A5 --d_model 128"
  for s in $(seq 1 19); do echo "a5 $M --seed $s $A5 --max_iters 16000"; done
  for s in $(seq 0 19); do echo "a5 $M --seed $s $A5 --max_iters 32000"; done
  for s in $(seq 0 19); do   # the hybrid with --delay auto given those 32000 steps too
    echo "a5 $M --seed $s --group A5 --d_model 128 --max_iters 32000 --dat --delay auto"; done
  for s in $(seq 0 19); do echo "a5 $M --seed $s --group A5 --d_model 128 --max_iters 32000"; done   # and plain
}

job() {  # K: train line K of the grid (or resume it), then score it
  local line exp mults options dir state extra
  line=$(grid | sed -n "${1}p")
  [ -n "$line" ] || { echo "error: no job $1: the grid has lines 1..$(grid | wc -l)" >&2; exit 2; }
  read -r exp mults options <<< "$line"
  if [[ " $options " == *" --device cuda "* ]] &&
     ! python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "job $1: skipped: needs a CUDA GPU"; return; fi
  read -r dir state <<< "$(python train.py $options --out_root "$RUNS/$exp" --dry_run)"
  case $state in
    finished) echo "job $1: $dir is finished"; return ;;
    interrupted) python train.py --resume --out_dir "$dir" > /dev/null ;;
    new) python train.py $options --out_dir "$dir" --threads 1 > /dev/null ;;
  esac  # trained: only the eval is left
  case " $options " in  # what eval.py can score: --attn_off needs a hybrid, --probe an LSTM
    *" --model transformer "*) extra= ;; *" --model lstm "*) extra=--probe ;; *) extra="--attn_off --probe" ;;
  esac
  python eval.py "$dir" --mults "$mults" $extra --by_age --mistakes 2 --threads 1 > "$dir/eval.txt"
  echo "job $1: $dir done"
}

plots() {  # every figure and table of results/ from the finished runs; a figure whose runs are missing is skipped
  local atlas_runs="results/runs/headline results/runs/atlas results/runs/group/lstm_attn-Z5-*
                    results/runs/designs/interleaved-* results/runs/gpu"
  # the delays besides 5000: 10000 for A5, 1000, 2000 and auto under RoPE
  rates $atlas_runs --out results/atlas --schedules plain,dat5000,dat10000,dat1000,dat2000,datauto
  # the width cells beside their d_model 64 ones, the figure against d_model
  rates results/runs/headline results/runs/group/lstm_attn-Z5-* \
    results/runs/atlas/lstm_attn-{A4,Z6,D4,Z8}-{plain,dat5000}-s* \
    results/runs/atlas/lstm_attn-{S3,A4,Z5,Z6,D4,Z8}-d[0-9]* results/runs/atlas/lstm_attn-A4-lr* \
    --out results/width_rates --sweep d_model
  # recall by how far back its key was bookmarked (eval.py --by_age): the RoPE budget cells, and the DAT 5000 runs
  # retrained for it (tenth session's second addendum), and the short delays under RoPE since
  rates results/runs/headline/lstm_attn-S3-dat5000-s[5-9] results/runs/atlas/lstm_attn-S3-rope-dat5000-s[0-4] \
    results/runs/atlas/lstm_attn-S3-rope-{dat1000,iters16000,len16-dat1000,len16-datauto,len16-iters16000-dat1000}-* \
    results/runs/atlas/interleaved-S3-rope-nlstm2-dat1000-* \
    results/runs/atlas/lstm_attn-{S3,Z5,A4}-rope-{dat2000,datauto}-* \
    results/runs/atlas/lstm_attn-A4-rope-iters16000-dat* \
    --out results/recall_by_age --schedules dat5000,dat1000,dat2000,datauto,plain
  rates results/runs/headline results/runs/modes --out results/modes_rates \
    --schedules plain,dat5000,freeze5000,lr5000,dat5000r1000
  rates results/runs/headline results/runs/delay --out results/delay_rates \
    --schedules plain,dat250,dat500,dat1000,dat2000,dat4000,dat5000
  rates results/runs/mlp --out results/mlp_rates --schedules plain,dat5000
  rates results/runs/headline results/runs/auto/lstm_attn-S3-* --out results/auto_rates \
    --schedules plain,datauto,dat5000
  rates results/runs/baselines --out results/baseline_rates --schedules plain
  rates results/runs/designs/attn_lstm-* --out results/design_rates --schedules plain,dat5000
  draw results/runs/headline --out results/headline.png
  draw results/runs/headline/*-s[0-2] results/runs/baselines --out results/baselines.png
  draw results/runs/designs --out results/designs.png
  draw results/runs/group --out results/groups.png
  draw results/runs/delay results/runs/headline/*-s[0-9] --sweep delay --out results/delay_sweep.png
  draw results/runs/modes results/runs/headline/*-s[0-9] --out results/modes.png --summary results/modes_summary.md
  draw results/runs/auto results/runs/group/*-s[0-2] --out results/auto.png
  draw results/runs/mlp --out results/mlp.png
  draw results/runs/explore --out results/explore_len16.png
  draw results/runs/a5/*-s0 --out results/a5.png
  rates results/runs/a5/lstm-A5-d128-iters{16000,32000}-plain-s* --out results/a5_lstm_rates --schedules plain
  rates results/runs/atlas/lstm_attn-A5-d128-iters16000-* results/runs/a5/lstm_attn-* --out results/a5_hybrid_rates \
    --schedules plain,datauto
  # attention pictures need the checkpoints, which are not committed: made where the runs were trained
  for schedule in dat5000 plain; do
    draw --attn results/runs/headline/lstm_attn-S3-$schedule-s0 --out results/attention_${schedule%5000}.png; done
  draw results/runs/* --out /tmp/all.png --summary results/summary.md
}

draw() { python plot.py "$@" || echo "skipped: python plot.py $*" >&2; }
rates() { python results/atlas.py "$@" || echo "skipped: python results/atlas.py $*" >&2; }

main() {
  case "${1:-}" in
    --list) grid ;;
    --job)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --job needs a line number K >= 1" >&2; exit 2; }
      job "$2" ;;
    --workers)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "error: --workers needs a number N >= 1" >&2; exit 2; }
      seq "$(grid | wc -l)" | xargs -P "$2" -I{} bash "$0" --job {} || echo "some jobs failed: run again to retry them"
      plots ;;
    --plots) plots ;;
    *) echo "usage: bash results/commands.sh --list | --job K | --workers N | --plots" >&2; exit 2 ;;
  esac
}

main "$@"; exit  # on one line: bash has read the whole script before it runs, so editing it mid-grid is safe
