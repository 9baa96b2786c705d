"""
Train a model on the composite task, with or without Delayed Attention Training (DAT).

    python train.py --dat --delay 5000     # the DAT hybrid: attention gated off (and frozen) for 5000 steps
    python train.py                        # its baseline: the same hybrid, same data and init, attention on throughout
    python train.py --bench                # steady-state speed of the main setting: ms/step, tokens/s, data share

The defaults are the main setting: S3, sequences of 1..8 steps (tests up to 8x), 64 keys, 8 queries, one LSTM
layer then two attention-only blocks (d_model 64, 2 heads, no position encoding), AdamW 3e-3 with warmup and cosine
decay.
A run folder gets config.json, log.jsonl (one JSON object per log line) and ckpt.pt (enough to resume and eval).

The DAT rule (--dat --delay D [--ramp R]): for steps 0..D-1 the attention gate is 0, so attention is skipped, and
the attention parameters are frozen (outside the optimizer, requires_grad off: no gradient, no step, no weight
decay, no moments), so at step D they are bit-identical to their initial values. At step D they join the
optimizer and the gate becomes 1 (rising linearly from 1/R to 1 over R steps with --ramp). Without --dat the
same model, data and initial weights train with the gate at 1 from step 0: a paired comparison.
"""
import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict

import torch

from data import (ArgParser, check_fits, die, group_table, pick_device, run_script, sample_batch, seq_width,
                  target_masks, vocab_size, write_file, write_text)
from eval import evaluate, load_checkpoint
from model import HYBRIDS, MODELS, Model, ModelConfig

parser = ArgParser(description="Train an LSTM, Transformer or hybrid on the composite task, optionally with DAT.")
arg = parser.add_argument
arg("--model", default="lstm_attn", help=f"one of {', '.join(MODELS)}")
arg("--group", default="S3", help="state group: Z<m> (m=2..64), S3, S4, S5, A4, A5 or D<m> (m=3..32)")
arg("--train_len", type=int, default=8, help="training sequences have 1..train_len steps (why 8: README, Results)")
arg("--num_keys", type=int, default=64, help="key vocabulary K; test lengths may not exceed it")
arg("--num_queries", type=int, default=8, help="queries per sequence: min(n, num_queries)")
arg("--state_frac", type=float, default=1.0, help="keep each training state target with this probability "
    "(the rest are not scored; recall targets always are)")
arg("--d_model", type=int, default=64, help="width of embeddings, LSTM and attention")
arg("--n_heads", type=int, default=2, help="attention heads")
arg("--n_lstm", type=int, default=1, help="LSTM layers")
arg("--n_attn", type=int, default=2, help="attention blocks")
arg("--mlp", action="store_true", help="give each hybrid attention block an MLP (the transformer always has one)")
arg("--pos", choices=("rope", "none"), help="position encoding in attention (default: rope for the transformer, "
    "none for hybrids, whose LSTM supplies order)")
arg("--emb_skip", type=float, default=0.1, help="weight of the token embedding added to each LSTM block's output")
arg("--batch_size", type=int, default=64, help="sequences per training step")
arg("--max_iters", type=int, default=8000, help="training steps")
arg("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, betas 0.9 0.98)")
arg("--warmup", type=int, default=100, help="linear warmup steps, then cosine decay to --min_lr_frac * lr")
arg("--min_lr_frac", type=float, default=0.1, help="where the cosine decay ends, as a fraction of --lr")
arg("--weight_decay", type=float, default=0.01, help="AdamW weight decay of matrices (none on biases and norms)")
arg("--grad_clip", type=float, default=1.0, help="clip the gradient's global norm to this")
arg("--dat", action="store_true", help="Delayed Attention Training: attention gated to 0 and frozen for --delay steps")
arg("--delay", help="steps before attention switches on (needs --dat; default 5000), or auto: once the state accuracy "
    "on training batches has stayed >= --auto_threshold for --auto_window log intervals")
arg("--dat_mode", default="gate", choices=("gate", "freeze", "lr"), help="what the delay does: gate (DAT: gate 0 and "
    "attention frozen), freeze (gate 1, attention frozen at its init: a fixed random mixer), lr (gate 1, attention "
    "trained with its learning rate warmed up linearly over the delay)")
arg("--auto_threshold", type=float, default=0.99, help="state accuracy that --delay auto waits for")
arg("--auto_window", type=int, default=3, help="log intervals in a row that --delay auto needs above the threshold")
arg("--ramp", type=int, help="after the delay, raise the gate linearly to 1 over this many steps (needs --dat)")
arg("--seed", type=int, default=0, help="seeds the init and the training data")
arg("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="auto: cuda, else mps, else cpu; "
    "on cuda a run trains under bf16 autocast")
arg("--threads", type=int, help="CPU threads (default: torch's choice; use 1 per run when running runs side by side)")
arg("--out_dir", help="run folder (default: OUT_ROOT/NAME-s<seed>, NAME: model, group, every option that differs from "
    "its default, schedule; e.g. lstm_attn-S3-rope-len16-dat5000-s3)")
arg("--out_root", default="out", help="where the default run folder is made")
arg("--dry_run", action="store_true", help="check the options, print the run folder and its state (new, interrupted, "
    "trained or finished) and exit; write nothing")
arg("--log_interval", type=int, default=100, help="steps between log lines")
arg("--eval_interval", type=int, default=500, help="steps between evals at 1x and 3x and checkpoints")
arg("--n_eval_train", type=int, default=500, help="sequences per length in the periodic evals")
arg("--resume", action="store_true", help="continue the run in --out_dir from its ckpt.pt, with its own options; "
    "only --max_iters, --threads, --log_interval and --eval_interval may change")
arg("--compile", action="store_true", help="torch.compile the model (opt-in; it has not been faster here: "
    "results/README.md, Speed)")
arg("--bench", action="store_true", help="time training steps of this setting once training has settled "
    "(attention off, then on): mean and median ms/step; writes nothing")

# -----------------------------------------------------------------------------

POSITIVE = ("train_len", "num_queries", "d_model", "n_heads", "batch_size", "max_iters", "log_interval",
            "eval_interval", "n_eval_train", "auto_window")
SAFE_ON_RESUME = ("max_iters", "threads", "log_interval", "eval_interval")  # what --resume may change

def check_args(args):
    """Every bad input is one clear line and exit code 2, before anything is written. Idempotent: a run's saved
    config passes again (resume checks it with the options changed)."""
    if args.model not in MODELS:
        die(f"unknown model {args.model!r}: use one of {', '.join(MODELS)}")
    try:
        group_table(args.group)
    except ValueError as e:
        die(str(e))
    for name in POSITIVE:
        if getattr(args, name) < 1:
            die(f"--{name} must be at least 1, not {getattr(args, name)}")
    # (name, lowest, highest, whether the lowest is allowed); every float must also be finite
    for name, low, high, low_ok in (("lr", 0, math.inf, False), ("grad_clip", 0, math.inf, False),
                                    ("state_frac", 0, 1, False), ("weight_decay", 0, math.inf, True),
                                    ("min_lr_frac", 0, 1, True), ("auto_threshold", 0, 1, True),
                                    ("warmup", 0, math.inf, True), ("emb_skip", -math.inf, math.inf, True)):
        value = getattr(args, name)
        if not (math.isfinite(value) and (low <= value if low_ok else low < value) and value <= high):
            bounds = f"{'at least' if low_ok else 'above'} {low}" + (f" and at most {high}" if high < math.inf else "")
            die(f"--{name} must be a finite number{'' if low == -math.inf else ' ' + bounds}, not {value}")
    if args.threads is not None and args.threads < 1:
        die(f"--threads must be at least 1, not {args.threads}")
    needs = {"lstm": "lstm" in args.model or args.model == "interleaved", "attn": args.model != "lstm"}
    for kind, count in (("lstm", args.n_lstm), ("attn", args.n_attn)):
        if count < 0 or (needs[kind] and count == 0):
            die(f"--n_{kind} {count}: a {args.model} needs {'at least 1' if needs[kind] else 'a count >= 0'}")
    check_schedule(args)
    if 3 * args.train_len > args.num_keys:
        die(f"test length {3 * args.train_len} (3x, evaluated during training) is above --num_keys {args.num_keys}")
    if args.d_model % args.n_heads or (args.d_model // args.n_heads) % 2:
        die("--d_model must be a multiple of --n_heads with an even head size")
    args.pos = args.pos or ("rope" if args.model == "transformer" else "none")
    args.device = pick_device(args.device)
    check_memory(args)
    if args.out_dir is None:
        args.out_dir = os.path.join(args.out_root, f"{run_name(vars(args))}-s{args.seed}")
    if not args.out_dir.strip():
        die("--out_dir is empty")
    return args

def check_schedule(args):
    """--dat, --delay, --ramp and --dat_mode; sets delay and attn_on_step (the step attention switches on; under
    --delay auto, None until the state is learned)."""
    if args.ramp not in (None, 0) and not args.dat:
        die("--ramp needs --dat")
    if args.delay not in (None, 0) and not args.dat:
        die("--delay needs --dat")
    if args.dat_mode != "gate" and not args.dat:
        die("--dat_mode needs --dat")
    if args.dat and args.model not in HYBRIDS:
        die(f"--dat needs a hybrid model ({', '.join(HYBRIDS)}), not {args.model}")
    args.delay = (5000 if args.delay is None else args.delay) if args.dat else 0
    args.ramp = args.ramp or 0
    if args.delay != "auto":
        try:
            args.delay = args.attn_on_step = int(args.delay)
        except ValueError:
            die(f"--delay must be a number of steps or auto, not {args.delay!r}")
        if not 0 <= args.delay < args.max_iters:
            die(f"--delay {args.delay} must be at least 0 and below --max_iters {args.max_iters}")
    elif args.dat_mode != "gate":
        die("--delay auto needs --dat_mode gate: it watches the state accuracy with attention off")
    else:
        args.attn_on_step = getattr(args, "attn_on_step", None)  # a resumed run keeps its decision
    if args.ramp < 0:
        die("--ramp must be at least 0")

def check_memory(args):
    """Refuse sizes that cannot fit, with an estimate, instead of running out of memory halfway."""
    model = dict(d_model=args.d_model, blocks=args.n_lstm + args.n_attn, n_heads=args.n_heads)
    check_fits("batch", args.batch_size, seq_width(args.train_len, args.num_queries), args.device, args.num_keys,
               training=True, **model)
    check_fits("--n_eval_train", args.n_eval_train, seq_width(3 * args.train_len, args.num_queries), args.device,
               args.num_keys, **model)  # the periodic evals at 3x

# options that do not change what a run computes: left out of its name and of the config that identifies it. The
# device is in: on CUDA a run trains under bf16 autocast and draws its data from the GPU's generator.
NOT_IDENTITY = ("seed", "threads", "out_dir", "out_root", "dry_run", "log_interval", "eval_interval",
                "n_eval_train", "resume", "compile", "bench", "attn_on_step", "model_config")
SHORT = {"train_len": "len", "num_keys": "keys", "num_queries": "q", "state_frac": "sf", "d_model": "d",
         "n_heads": "h", "n_lstm": "nlstm", "n_attn": "nattn", "emb_skip": "skip", "batch_size": "bs",
         "max_iters": "iters", "lr": "lr", "warmup": "warmup", "min_lr_frac": "minlr", "weight_decay": "wd",
         "grad_clip": "clip"}

def identity(config):
    """The options of a checked config (a dict, e.g. a run's config.json) that decide what the run computes,
    seed excluded; options newer than the config take their defaults."""
    options = [a.dest for a in parser._actions if a.dest != "help" and a.dest not in NOT_IDENTITY]
    return {name: config.get(name, parser.get_default(name)) for name in options}

SCHEDULE = ("dat", "delay", "ramp", "dat_mode", "auto_threshold", "auto_window")  # the options of the schedule

def schedule_name(config):
    """plain, dat5000, dat5000r1000, freeze5000, lr5000 or datauto."""
    c = identity(config)
    if not c["dat"]:
        return "plain"
    name = {"gate": "dat", "freeze": "freeze", "lr": "lr"}[c["dat_mode"]] + str(c["delay"])
    name += f"r{c['ramp']}" if c["ramp"] else ""
    if c["delay"] == "auto":
        name += "".join(f"-{short}{c[k]:g}" for k, short in (("auto_threshold", "thr"), ("auto_window", "win"))
                        if c[k] != parser.get_default(k))
    return name

def setting_name(config):
    """model-group[-options that differ from their defaults][-cuda], schedule and seed aside: e.g.
    lstm_attn-S3-rope-len16."""
    c = identity(config)
    tags = [c["model"], c["group"]]
    if c["pos"] != ("rope" if c["model"] == "transformer" else "none"):
        tags.append(c["pos"])
    if c["device"] not in ("cpu", "auto"):
        tags.append(c["device"])
    tags += [f"{short}{c[name]:g}" for name, short in SHORT.items() if c[name] != parser.get_default(name)]
    return "-".join(tags + ["mlp"] * c["mlp"])

def run_name(config):
    """setting-schedule, e.g. lstm_attn-S3-rope-len16-dat5000: runs that differ in anything but the seed get
    different names."""
    return f"{setting_name(config)}-{schedule_name(config)}"

def gate_at(step, args):
    """The DAT gate: 0 before the delay, then linear from 1/R to 1 over R steps (--ramp R), then 1."""
    on = args.attn_on_step
    if not args.dat or args.dat_mode != "gate":
        return 1.0
    if on is None or step < on:
        return 0.0
    return min(1.0, (step - on + 1) / args.ramp) if args.ramp else 1.0

def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.max_iters - args.warmup)
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress)))

def param_groups(params, args, name):
    """AdamW groups: weight decay on matrices, none on biases and norms."""
    return [{"name": name, "params": [p for p in params if p.dim() >= 2], "weight_decay": args.weight_decay},
            {"name": name + " (no decay)", "params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]

def make_optimizer(model, args, with_attention):
    """Under DAT the attention parameters join the optimizer only at the delay. Until then they are frozen
    (requires_grad False): no gradient, no gradient step, no weight decay and no optimizer moments."""
    attention = {id(p) for p in model.attention_parameters()}
    rest = [p for p in model.parameters() if id(p) not in attention]
    # fused: one kernel per step on a GPU, where many small launches, not arithmetic, set the pace
    optimizer = torch.optim.AdamW(param_groups(rest, args, "rest"), lr=args.lr, betas=(0.9, 0.98),
                                  fused=args.device == "cuda")
    for p in model.attention_parameters():
        p.requires_grad_(False)
    if with_attention:
        add_attention(optimizer, model, args)
    return optimizer

def trains_attention(optimizer):
    return any(group["name"] == "attention" for group in optimizer.param_groups)

def add_attention(optimizer, model, args):
    for p in model.attention_parameters():
        p.requires_grad_(True)
    for group in param_groups(model.attention_parameters(), args, "attention"):
        optimizer.add_param_group(group)

def train_step(model, forward, optimizer, tokens, targets, autocast, grad_clip):
    with autocast:
        logits, loss = forward(tokens, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # frozen parameters have no gradient to count
    optimizer.step()
    model.zero_grad(set_to_none=True)
    return loss.detach(), logits.detach()

def bench(args, model, forward, optimizer, table, data_rng, autocast, warm=200, timed=300):
    """Steady-state speed: real training steps of this setting, attention off (as during a delay) and then on, each
    timed only after `warm` steps of training in that phase; mean and median ms/step, tokens/s and data share."""
    sync = torch.cuda.synchronize if args.device == "cuda" else lambda: None
    width = seq_width(args.train_len, args.num_queries)
    print(f"bench: {args.model} on {args.group}, batch {args.batch_size} x {width} tokens, {args.device}, "
          f"{torch.get_num_threads()} threads{', compiled' if args.compile else ''}: training from scratch, "
          f"{warm} untimed then {timed} timed steps with attention off, then the same with it on")
    for gate in (0.0, 1.0):
        if gate:
            add_attention(optimizer, model, args)
        model.gate = gate
        step_times, data_times = [], []
        for i in range(warm + timed):
            sync()
            t0 = time.perf_counter()
            tokens, targets = sample_batch(table, args.batch_size, 1, args.train_len, args.num_keys,
                                           args.num_queries, data_rng)
            sync()
            t1 = time.perf_counter()
            train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
            sync()
            if i >= warm:
                step_times.append(1000 * (time.perf_counter() - t0))
                data_times.append(1000 * (t1 - t0))
        mean, median = sum(step_times) / timed, sorted(step_times)[timed // 2]
        print(f"attention {'off (skipped)' if gate == 0 else 'on'}: {mean:.2f} ms/step mean, {median:.2f} median, "
              f"{args.batch_size * width / mean * 1000:,.0f} tokens/s, "
              f"data {100 * sum(data_times) / sum(step_times):.1f}%")

def read_log(path):
    """The entries of a log.jsonl, without a last line that a crash cut short (said on stderr)."""
    with open(path) as f:
        lines = f.read().splitlines()
    log = []
    for i, line in enumerate(lines):
        try:
            log.append(json.loads(line))
        except ValueError:
            if i < len(lines) - 1:
                die(f"{path}: line {i + 1} is not JSON")
            print(f"warning: {path}: dropped a partial last line", file=sys.stderr)
    return log

def run_state(out_dir, max_iters, log=None):
    """new, interrupted (a checkpoint short of max_iters), trained (a checkpoint, the log at max_iters, no
    eval.json yet) or finished (the log at max_iters and eval.json: a committed run folder has no checkpoint).
    log: the folder's log entries, if the caller has read them already."""
    log_path = os.path.join(out_dir, "log.jsonl")
    if log is None:
        log = read_log(log_path) if os.path.isfile(log_path) else []
    at_end = bool(log) and log[-1]["step"] == max_iters
    if at_end and os.path.isfile(os.path.join(out_dir, "eval.json")):
        return "finished"
    if not os.path.isfile(os.path.join(out_dir, "ckpt.pt")):
        return "new"
    return "trained" if at_end else "interrupted"

def save_checkpoint(path, **state):
    write_file(path, lambda tmp: torch.save({"kit": "dat-kit", **state}, tmp))

def given_options(argv):
    """The options typed on the command line, with their values (an option left at its default is not given)."""
    unset = object()
    namespace = argparse.Namespace(**{action.dest: unset for action in parser._actions})
    return {k: v for k, v in vars(parser.parse_args(argv, namespace)).items() if v is not unset}

def resumed_args(argv):
    """The options of the run in --out_dir, with the few that --resume may change applied; (args, checkpoint)."""
    given = given_options(argv)
    if given.get("out_dir") is None:
        die("--resume needs --out_dir, the run folder to continue")
    if given.get("bench") or given.get("dry_run"):
        die("--bench and --dry_run start no run: not with --resume")
    ckpt = load_checkpoint(os.path.join(given["out_dir"], "ckpt.pt"), for_resume=True)
    run = dict(ckpt["config"])
    # the run folder is the one passed, wherever the run was made; options newer than the run take their defaults
    args = parser.parse_args([], argparse.Namespace(**{**run, **given}))
    check_args(args)
    for name in given:
        if name not in SAFE_ON_RESUME + ("resume", "out_dir") and getattr(args, name) != run.get(name):
            die(f"--{name} {getattr(args, name)} differs from the run's {run.get(name)}: a resumed run keeps its "
                f"options; only {', '.join('--' + s for s in SAFE_ON_RESUME)} may change")
    if args.max_iters < ckpt["step"]:
        die(f"--max_iters {args.max_iters} is below the run's step {ckpt['step']}")
    return args, ckpt

def build(args, ckpt):
    """The model, its optimizer and the data generator, from scratch or from the checkpoint."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # very sharp softmaxes make denormal floats, which are slow on CPUs
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    table = group_table(args.group, device)
    g = table.shape[0]
    model_config = ModelConfig(model=args.model, vocab_size=vocab_size(g, args.num_keys), n_classes=g,
                               d_model=args.d_model, n_heads=args.n_heads, n_lstm=args.n_lstm, n_attn=args.n_attn,
                               mlp=args.mlp, pos=args.pos, emb_skip=args.emb_skip, delay_attention=args.dat)
    model = Model(model_config).to(device)
    data_rng = torch.Generator(device=device).manual_seed(args.seed + 1)
    optimizer = make_optimizer(model, args, with_attention=not args.dat or args.dat_mode == "lr")
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        # attention joins the optimizer at step attn_on_step: the loop does that when resuming exactly there
        if not trains_attention(optimizer) and args.attn_on_step is not None and ckpt["step"] > args.attn_on_step:
            add_attention(optimizer, model, args)
        optimizer.load_state_dict(ckpt["optimizer"])
        data_rng.set_state(ckpt["data_rng"])
    return model, model_config, optimizer, table, data_rng

# -----------------------------------------------------------------------------

def main(argv=None):
    # 1. options: a new run, or the run in --out_dir to resume
    if "--resume" in (sys.argv[1:] if argv is None else argv):
        args, ckpt = resumed_args(argv)
        if ckpt["step"] >= args.max_iters:
            return print(f"{args.out_dir} is finished: step {ckpt['step']} of --max_iters {args.max_iters}; "
                         f"nothing to do (pass a larger --max_iters to extend it)")
    else:
        args, ckpt = check_args(parser.parse_args(argv)), None
        if args.dry_run:
            return print(args.out_dir, run_state(args.out_dir, args.max_iters))
        if not args.bench and os.path.exists(os.path.join(args.out_dir, "ckpt.pt")):
            die(f"{args.out_dir} already holds a run: pass --resume to continue it, or choose another --out_dir")

    # 2. setup: model, optimizer, data; the run folder's config and log
    model, model_config, optimizer, table, data_rng = build(args, ckpt)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else nullcontext()
    if args.bench:  # nothing is written
        return bench(args, model, forward, make_optimizer(model, args, with_attention=False), table, data_rng, autocast)
    config_path, log_path = os.path.join(args.out_dir, "config.json"), os.path.join(args.out_dir, "log.jsonl")
    write_config = lambda: write_text(config_path, json.dumps({**vars(args), "model_config": asdict(model_config)},
                                                              indent=1))
    write_config()  # first, so that an unwritable folder stops the run before anything else is written
    step, streak = (ckpt["step"], ckpt["streak"]) if ckpt else (0, 0)  # streak: see --auto_window
    saved_step = ckpt["step"] if ckpt else None  # the step of the checkpoint in out_dir
    log = [e for e in read_log(log_path) if e["step"] <= step] if ckpt and os.path.exists(log_path) else []
    write_log = lambda: write_text(log_path, "".join(json.dumps(entry) + "\n" for entry in log))
    write_log()  # lines written after the checkpoint are dropped: they will be written again
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.out_dir}: {args.model} on {args.group}, {n_params / 1e3:.1f}k parameters, {args.device}, "
          f"{'DAT delay %s ramp %d' % (args.delay, args.ramp) if args.dat else 'no delay'}, "
          f"{'resuming at step %d' % step if step else 'from scratch'}")

    # 3. the training loop: schedule, batch, step; every log_interval a log line, every eval_interval an eval and a
    # checkpoint (and a log line with it)
    device = torch.device(args.device)
    loss_sum, t_log, steps_timed = torch.zeros((), device=device), time.time(), 0
    state_hits, state_total = torch.zeros((), device=device), torch.zeros((), device=device)
    while step < args.max_iters:
        if args.dat and step == args.attn_on_step and not trains_attention(optimizer):
            add_attention(optimizer, model, args)
        model.gate = gate_at(step, args)
        lr = lr_at(step, args)
        # --dat_mode lr: the attention groups learn at a rate warmed up over the delay
        attention_lr = lr * min(1.0, (step + 1) / args.attn_on_step) if args.dat and args.dat_mode == "lr" else lr
        for group in optimizer.param_groups:
            group["lr"] = attention_lr if group["name"].startswith("attention") else lr
        tokens, targets = sample_batch(table, args.batch_size, 1, args.train_len, args.num_keys, args.num_queries,
                                       data_rng, args.state_frac)
        loss, logits = train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
        loss_sum += loss
        if args.dat and args.attn_on_step is None:  # --delay auto: state accuracy on the training batches
            is_state = target_masks(tokens, targets)[0]
            state_hits += ((logits.argmax(dim=-1) == targets) & is_state).sum()
            state_total += is_state.sum()
        step += 1
        steps_timed += 1

        is_eval_step = step % args.eval_interval == 0 or step == args.max_iters
        if not (is_eval_step or step % args.log_interval == 0):
            continue
        mean_loss = loss_sum.item() / steps_timed  # the only host sync, once per log line
        ms_per_step = 1000 * (time.time() - t_log) / steps_timed
        if not math.isfinite(mean_loss):
            die(f"loss is {mean_loss} at step {step}: stopped; " + (
                f"{args.out_dir}/ckpt.pt holds the last good state (step {saved_step})" if saved_step is not None
                else "no checkpoint was written yet"))
        entry = {"step": step, "loss": mean_loss, "lr": lr, "gate": model.gate, "ms_per_step": ms_per_step}
        line = (f"step {step}/{args.max_iters} | loss {mean_loss:.4f} | gate {model.gate:.2f} | "
                f"{ms_per_step:.1f} ms/step")
        if args.dat and args.attn_on_step is None:
            entry["train_state_acc"] = (state_hits / state_total).item()
            streak = streak + 1 if entry["train_state_acc"] >= args.auto_threshold else 0
            state_hits.zero_(), state_total.zero_()
            if streak >= args.auto_window:
                args.attn_on_step = step
                write_config()
                line += " | state learned: attention switches on now"
        if is_eval_step:
            model.eval()
            for record, _ in evaluate(model, vars(args), (1, 3), args.n_eval_train):
                for k in ("state_acc", "recall_acc", "token_acc", "seq_acc"):
                    entry[f"{k}_{record['mult']}x"] = record[k]
            model.train()
            line += f" | token acc 1x {entry['token_acc_1x']:.3f} 3x {entry['token_acc_3x']:.3f}"
            save_checkpoint(os.path.join(args.out_dir, "ckpt.pt"), model=model.state_dict(),
                            optimizer=optimizer.state_dict(), config=vars(args), model_config=asdict(model_config),
                            step=step, gate=model.gate, streak=streak, data_rng=data_rng.get_state())
            saved_step = step
        log.append(entry)
        write_log()  # before the print, so a reader gone from stdout (see data.run_script) loses no log line
        seconds_left = ms_per_step * (args.max_iters - step) / 1000
        print(f"{line} | {seconds_left // 60:.0f}m{seconds_left % 60:02.0f}s left", flush=True)
        loss_sum, t_log, steps_timed = torch.zeros((), device=device), time.time(), 0
    print(f"done: {args.out_dir}/ckpt.pt; next: python eval.py {args.out_dir} --attn_off")

if __name__ == "__main__":
    run_script(main)
