"""
Steady-state training speed of a setting: real training steps, attention off (as during a delay) and then on, each
timed only after the warm-up steps of that phase; mean and median ms/step, tokens/s and the data share.

    python results/bench.py                          # the main setting; any of train.py's options may be given
    python results/bench.py --train_len 16 --threads 2

Writes nothing. Used by results/speed.sh (results/README.md, Speed).
"""
import os
import sys
import time
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
import runs  # first: it answers Ctrl-C during the slow imports below with one line

import torch

import train
from data import sample_batch, seq_width
from runs import run_script

def bench(args, model, forward, optimizer, table, data_rng, autocast, warm=200, timed=300):
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    width = seq_width(args.train_len, args.num_queries)
    print(f"bench: {args.model} on {args.group}, batch {args.batch_size} x {width} tokens, {args.device}, "
          f"{torch.get_num_threads()} threads{', compiled' if args.compile else ''}: training from scratch, "
          f"{warm} untimed then {timed} timed steps with attention off, then the same with it on")
    for gate in (0.0, 1.0):
        if gate:
            train.add_attention(optimizer, model, args)
        model.gate, step_ms, data_ms = gate, [], []
        for i in range(warm + timed):
            sync()
            t0 = time.perf_counter()
            tokens, targets = sample_batch(table, args.batch_size, 1, args.train_len, args.num_keys,
                                           args.num_queries, data_rng)
            sync()
            t1 = time.perf_counter()
            train.train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
            sync()
            if i >= warm:
                step_ms.append(1000 * (time.perf_counter() - t0))
                data_ms.append(1000 * (t1 - t0))
        mean, median = sum(step_ms) / timed, sorted(step_ms)[timed // 2]
        print(f"attention {'off (skipped)' if gate == 0 else 'on'}: {mean:.2f} ms/step mean, {median:.2f} median, "
              f"{args.batch_size * width / mean * 1000:,.0f} tokens/s, data {100 * sum(data_ms) / sum(step_ms):.1f}%")

def main(argv=None):
    args = train.check_args(train.parser.parse_args(argv))
    model, _, _, table, data_rng = train.build(args, None)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else nullcontext()
    bench(args, model, forward, train.make_optimizer(model, args, with_attention=False), table, data_rng, autocast)

if __name__ == "__main__":
    run_script(main)
