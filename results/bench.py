"""
Steady-state speed of the kit's training step, in any setting train.py takes (README, Speed).

    python results/bench.py                                  # the main setting
    python results/bench.py --train_len 16 --threads 2       # any train.py option

Trains from scratch with train.py's own model, optimizer, data and step: --untimed then --timed steps
with attention off (frozen and skipped, as during a DAT delay), then the same with attention on. Prints mean and
median ms/step, tokens/s and the share of the step spent drawing data. Writes nothing. results/plain_torch.py is
the same hybrid written the plain torch way, to compare with. --sdpa times the kit's model with torch's fused
F.scaled_dot_product_attention in place of its written-out attention (model.py keeps the weights for pictures).
"""
import os
import sys
import time
from contextlib import nullcontext

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's modules
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import train  # noqa: E402
from data import ArgParser, die, sample_batch, seq_width  # noqa: E402
from model import Attention, rotary  # noqa: E402

def sdpa_forward(self, x, rope=None):
    """Attention.forward with torch's fused causal attention kernel instead of the written-out softmax."""
    B, T, C = x.shape
    q, k, v = self.qkv(self.ln(x)).view(B, T, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)
    if rope is not None:
        q, k = rotary(q, *rope), rotary(k, *rope)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.proj(y.transpose(1, 2).reshape(B, T, C))

def bench(args, model, optimizer, table, data_rng, autocast, untimed=200, timed=300):
    """Time real training steps: attention off, then on, each after `untimed` steps of training in that phase."""
    forward = torch.compile(model) if args.compile else model
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    width = seq_width(args.train_len, args.num_queries)
    sdpa = ", attention by F.scaled_dot_product_attention" if Attention.forward is sdpa_forward else ""
    print(f"bench: {args.model} on {args.group}, batch {args.batch_size} x {width} tokens, {args.device}, "
          f"{torch.get_num_threads()} threads{', compiled' if args.compile else ''}{sdpa}: training from scratch, "
          f"{untimed} untimed then {timed} timed steps with attention off, then the same with it on")
    for gate in (0.0, 1.0):
        if gate:
            train.add_attention(optimizer, model, args)
        model.gate = gate
        step_times, data_times = [], []
        for i in range(untimed + timed):
            sync()
            t0 = time.perf_counter()
            tokens, targets = sample_batch(table, args.batch_size, 1, args.train_len, args.num_keys,
                                           args.num_queries, data_rng)
            sync()
            t1 = time.perf_counter()
            train.train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
            sync()
            if i >= untimed:
                step_times.append(1000 * (time.perf_counter() - t0))
                data_times.append(1000 * (t1 - t0))
        mean, median = sum(step_times) / timed, sorted(step_times)[timed // 2]
        print(f"attention {'off (skipped)' if gate == 0 else 'on'}: {mean:.2f} ms/step mean, {median:.2f} median, "
              f"{args.batch_size * width / mean * 1000:,.0f} tokens/s, "
              f"data {100 * sum(data_times) / sum(step_times):.1f}%")

def main(argv=None):
    parser = ArgParser(allow_abbrev=False, description="Time the kit's training step once training has settled "
                       "(attention off, then on).", epilog="Every other option is train.py's (python train.py --help) and sets the "
                       "setting timed; the run options (--out_dir, --resume, --dry_run) are refused.")
    parser.add_argument("--untimed", type=int, default=200, help="steps trained before timing, in each phase")
    parser.add_argument("--timed", type=int, default=300, help="timed steps in each phase")
    parser.add_argument("--sdpa", action="store_true", help="attention by torch's F.scaled_dot_product_attention")
    args, train_argv = parser.parse_known_args(argv)
    for name in ("untimed", "timed"):
        if getattr(args, name) < (1 if name == "timed" else 0):
            die(f"--{name} must be at least {1 if name == 'timed' else 0}, not {getattr(args, name)}")
    if any(option.split("=")[0] in ("--out_dir", "--out_root", "--resume", "--dry_run") for option in train_argv):
        die("--out_dir, --out_root, --resume and --dry_run are for runs: the bench writes nothing")
    if args.sdpa:
        Attention.forward = sdpa_forward
    config = train.check_args(train.parser.parse_args(train_argv))
    model, _, _, table, data_rng = train.build(config, None)
    optimizer = train.make_optimizer(model, config, with_attention=False)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if config.device == "cuda" else nullcontext()
    bench(config, model, optimizer, table, data_rng, autocast, args.untimed, args.timed)

if __name__ == "__main__":
    main()
