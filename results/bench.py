"""
Steady-state training speed of a setting: real training steps, attention off (as during a delay) and then on, each
timed only after the warm-up steps of that phase; mean and median ms/step, tokens/s and the data share.

    python results/bench.py                          # the main setting; any of train.py's options may be given
    python results/bench.py --train_len 16 --threads 2
    python results/bench.py --each_core --threads 2  # every core of the cores ladder alone, beside the LSTM

Writes nothing. Used by results/speed.sh (results/README.md, Speed).
"""
import os
import sys
import time
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import run_script

import torch

import options
import train
from data import sample_batch, seq_width
from grid import CORES

def bench(args, model, forward, optimizer, task, data_rng, autocast, warm=200, timed=300, gates=(0.0, 1.0)):
    """Print the timings of each phase (gate); the median ms/step of each."""
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    width = seq_width(args.train_len, args.num_queries)
    core = "" if args.core == "lstm" else f" ({args.core} core)"
    print(f"bench: {args.model}{core} on {args.group}, batch {args.batch_size} x {width} tokens, {args.device}, "
          f"{torch.get_num_threads()} threads{', compiled' if args.compile else ''}: training from scratch, "
          f"{warm} untimed then {timed} timed steps with attention off, then the same with it on")
    medians = {}
    for gate in gates:
        if gate:
            train.add_attention(optimizer, model, args)
        model.gate, step_ms, data_ms = gate, [], []
        for i in range(warm + timed):
            sync()
            t0 = time.perf_counter()
            tokens, targets = sample_batch(task, args.batch_size, 1, args.train_len, args.num_keys,
                                           args.num_queries, data_rng)
            sync()
            t1 = time.perf_counter()
            train.train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
            sync()
            if i >= warm:
                step_ms.append(1000 * (time.perf_counter() - t0))
                data_ms.append(1000 * (t1 - t0))
        mean, median = sum(step_ms) / timed, sorted(step_ms)[timed // 2]
        medians[gate] = median
        print(f"attention {'off (skipped)' if gate == 0 else 'on'}: {mean:.2f} ms/step mean, {median:.2f} median, "
              f"{args.batch_size * width / mean * 1000:,.0f} tokens/s, data {100 * sum(data_ms) / sum(step_ms):.1f}%")
    return medians

def run(argv, gates=(0.0, 1.0)):
    args = options.check_args(options.parser.parse_args(argv))
    model, _, _, task, data_rng = train.build(args, None)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else nullcontext()
    optimizer = train.make_optimizer(model, args, with_attention=False)
    return bench(args, model, forward, optimizer, task, data_rng, autocast, gates=gates)

def each_core(argv):
    """Every core of the cores ladder (results/grid.py) alone, one after another; a table of median ms/step, each
    beside the LSTM's."""
    lstm, rows = None, []
    for core in CORES:
        median = run(["--model", "lstm", *core.split(), *argv], gates=(0.0,))[0.0]
        lstm = lstm or median
        rows.append(f"| {core or '--core lstm'} | {median:.2f} | {median / lstm:.2f}x |")
    print("\n".join(["", "| core (--model lstm) | ms/step, median | against the LSTM |", "| --- | --- | --- |"] + rows))

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    each_core(argv[1:]) if argv[:1] == ["--each_core"] else run(argv)

if __name__ == "__main__":
    run_script(main)
