"""
Train a model on the composite task, with or without Delayed Attention Training (DAT).

    python train.py --dat --delay 5000     # the DAT hybrid: attention gated off (and frozen) for 5000 steps
    python train.py                        # its baseline: same hybrid, data and init, attention on throughout

The defaults are the main setting: S3, sequences of 1..8 steps (tests up to 8x), 64 keys, 8 queries, one LSTM
layer then two attention-only blocks (d_model 64, 2 heads, no position encoding), AdamW 3e-3 with warmup and cosine
decay. A run folder (runs.py) gets config.json, log.jsonl and ckpt.pt (enough to resume and to evaluate).

The DAT rule (--dat --delay D [--ramp R]): for steps 0..D-1 the attention gate is 0, so attention is skipped, and
the attention parameters are frozen (outside the optimizer, requires_grad off: no gradient, no step, no weight
decay, no moments), so at step D they are bit-identical to their initial values. Then they join the optimizer and
the gate becomes 1 (rising from 1/R to 1 over R steps with --ramp). Without --dat the same model, data and init
train with the gate at 1 from step 0: a paired comparison.
"""
import runs  # first: it answers Ctrl-C during the slow imports below with one line
import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, fields

import torch

from data import GROUPS, group_option, group_table, sample_batch, seq_width, target_masks, vocab_size
from eval import evaluate, extra_scores
from model import CORES, HYBRIDS, MODELS, TRANSITIONS, Model, ModelConfig, block_layout, default_pos
from runs import ArgParser, append_line, count, die, fraction, number, positive_int, run_script, unit, write_json

DEFAULT_DELAY = 5000  # --dat without --delay

def delay_option(text):
    return text if text == "auto" else count(text)

parser = ArgParser(description="Train an LSTM, Transformer or hybrid on the composite task, optionally with DAT.")
arg = parser.add_argument
arg("--model", default="lstm_attn", choices=MODELS, help="the model")
arg("--group", default="S3", type=group_option, help=f"state group: {GROUPS}")
arg("--train_len", type=positive_int, default=8, help="training sequences have 1..train_len steps")
arg("--num_keys", type=positive_int, default=64, help="key vocabulary K: at least the longest test length")
arg("--num_queries", type=positive_int, default=8, help="queries per sequence: min(n, num_queries)")
arg("--state_frac", type=fraction, default=1.0, help="keep each training state target with this probability")
arg("--d_model", type=positive_int, default=64, help="width of embeddings, LSTM and attention")
arg("--n_heads", type=positive_int, default=2, help="attention heads (d_model / n_heads must be even)")
arg("--n_lstm", type=positive_int, default=1, help="recurrent blocks (LSTM layers with the default core)")
arg("--n_attn", type=positive_int, default=2, help="attention blocks")
arg("--mlp", action="store_true", help="give each hybrid attention block an MLP (the transformer always has one)")
arg("--pos", choices=("rope", "none"), help="position encoding in attention (default: rope for the transformer, none)")
arg("--emb_skip", type=number(float, -100, 100), default=0.1, help="weight of the token embedding added to each "
    "recurrent block's output")
arg("--core", default="lstm", choices=tuple(CORES), help="what the recurrent blocks compute (model.py gives each "
    "one's update equation and paper)")
arg("--transitions", default="unit", choices=TRANSITIONS, help="the diagonal core's a_t: in [0, 1], in [-1, 1], or "
    "complex on the unit disc")
arg("--beta_max", type=int, default=1, choices=(1, 2), help="the delta core's beta_t lies in [0, beta_max] (2: "
    "reflections)")
arg("--householder", type=number(int, 1, 8), default=1, help="the delta core's Householder steps per token (1: "
    "DeltaNet, more: DeltaProduct)")
arg("--batch_size", type=positive_int, default=64, help="sequences per training step")
arg("--max_iters", type=positive_int, default=8000, help="training steps")
arg("--lr", type=number(float, 0, 10, above=True), default=3e-3, help="peak learning rate (AdamW, betas 0.9 0.98)")
arg("--warmup", type=count, default=100, help="linear warmup steps, then cosine decay to --min_lr_frac * lr")
arg("--min_lr_frac", type=unit, default=0.1, help="where the cosine decay ends, as a fraction of --lr")
arg("--weight_decay", type=number(float, 0, 100), default=0.01, help="AdamW weight decay of matrices (not biases, "
    "norms)")
arg("--grad_clip", type=number(float, 0, above=True), default=1.0, help="clip the gradient's global norm to this")
arg("--dat", action="store_true", help="Delayed Attention Training: attention gated to 0 and frozen for --delay steps")
arg("--delay", type=delay_option, help=f"steps before attention switches on (needs --dat; default {DEFAULT_DELAY}), or "
    "auto: once the state accuracy on training batches has been at or above --auto_threshold for --auto_window checks")
arg("--dat_mode", default="gate", choices=("gate", "freeze", "lr"), help="during the delay: gate 0 and attention "
    "frozen (DAT), gate 1 and attention frozen at its init, or gate 1 and the attention's lr warmed up")
arg("--auto_threshold", type=unit, default=0.99, help="state accuracy that --delay auto waits for")
arg("--auto_window", type=positive_int, default=3, help="checks in a row at or above --auto_threshold that --delay "
    "auto waits for (3 checks of 100 steps by default)")
arg("--auto_interval", type=positive_int, default=100, help="--delay auto's check: the state accuracy over the last "
    "this many steps, every this many steps")
arg("--ramp", type=count, help="after the delay, raise the gate linearly to 1 over this many steps (needs --dat)")
arg("--seed", type=number(int, 0, 2**31 - 1), default=0, help="seeds the init and the training data")
arg("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="auto: cuda, else mps, else cpu; "
    "on cuda a run trains under bf16 autocast")
arg("--threads", type=number(int, 1, 1024), help="CPU threads (default: torch's; 1 per run for runs side by side)")
arg("--out_dir", help="run folder (default: OUT_ROOT/NAME-s<seed>, e.g. lstm_attn-S3-rope-len16-dat5000-s3)")
arg("--out_root", default="out", help="where the default run folder is made")
arg("--dry_run", action="store_true", help="print the run folder and its state (new, interrupted, trained, finished)")
arg("--log_interval", type=positive_int, default=100, help="steps between log lines")
arg("--eval_interval", type=positive_int, default=500, help="steps between evals at 1x and 3x and checkpoints")
arg("--n_eval_train", type=positive_int, default=500, help="sequences per length in the periodic evals")
arg("--resume", action="store_true", help="continue the run in --out_dir with its own options (only --threads, "
    "--log_interval and --eval_interval may change)")
arg("--compile", action="store_true", help="torch.compile the model (opt-in; not faster here: results/README.md)")

# options that do not change what a run computes: left out of its name. Every other option identifies the run. The
# device is in: on CUDA a run trains under bf16 autocast and draws its data from the GPU's generator.
NOT_IDENTITY = ("seed", "threads", "out_dir", "out_root", "dry_run", "log_interval", "eval_interval",
                "n_eval_train", "resume", "compile", "help")
IDENTITY = {a.dest: a.default for a in parser._actions if a.dest not in NOT_IDENTITY}
SAFE_ON_RESUME = ("threads", "log_interval", "eval_interval")  # what --resume may change: nothing it computes
# options a model or a core has no use for, keyed by (option, value): refused for it (a value would name a second,
# identical run). The model's entries come first: a transformer has no core, whichever core is named.
CORE_OPTIONS = {"diagonal": ("transitions",), "delta": ("beta_max", "householder")}  # the options of each core
ALL_CORE_OPTIONS = sum(CORE_OPTIONS.values(), ())
UNUSED_BY = {("model", "lstm"): ("n_attn", "n_heads", "pos", "mlp"),
             ("model", "transformer"): ("n_lstm", "emb_skip", "mlp", "core") + ALL_CORE_OPTIONS,
             **{("core", core): tuple(o for o in ALL_CORE_OPTIONS if o not in CORE_OPTIONS.get(core, ()))
                for core in CORES}}  # every core, a new one included: the other cores' options are refused for it

def run_name(config):
    return runs.run_name(config, IDENTITY)

# The model of a run's options: each ModelConfig field is the option of the same name, except these derived ones.
DERIVED = {"vocab_size": lambda o, g: vocab_size(g, o["num_keys"]), "n_classes": lambda o, g: g,
           "delay_attention": lambda o, g: o["dat"]}

def model_config_of(options):
    """The ModelConfig of a run's options (a dict; options newer than it take their defaults)."""
    options, g = {**IDENTITY, **options}, len(group_table(options["group"]))
    options["pos"] = options["pos"] or default_pos(options["model"])
    return ModelConfig(**{f.name: DERIVED[f.name](options, g) if f.name in DERIVED else options.get(f.name, f.default)
                          for f in fields(ModelConfig)})

def checked_run(folder, ckpt=None):
    """The run in folder: its config.json held to the options' meaning and in agreement with its model_config and
    its checkpoint, if it has one (runs.check_agreement, runs.check_weights); one error line where they differ."""
    where = os.path.join(folder, "config.json")
    if not os.path.isfile(where):
        die(f"{folder} has no config.json")
    config = runs.checked_config(parser, runs.read_json(where), where)
    for key in runs.CONFIG_KEYS + ("model_config",):
        if key not in config:
            die(f"{where} lacks {key}")
    model_config = model_config_of(config)
    if ckpt is None and os.path.isfile(os.path.join(folder, "ckpt.pt")):
        ckpt = runs.load_checkpoint(os.path.join(folder, "ckpt.pt"))
    if ckpt is not None:
        runs.checked_config(parser, ckpt["config"], os.path.join(folder, "ckpt.pt"))
    runs.check_agreement(folder, config, asdict(model_config), IDENTITY, ckpt, may_differ=SAFE_ON_RESUME)
    if ckpt is not None:
        with torch.device("meta"):  # shapes only: no memory, no draw from the random generator
            runs.check_weights(ckpt["model"], Model(model_config), os.path.join(folder, "ckpt.pt"))
    return config

# ----------------------------------------------------------------------------- checks that involve several options

def check_args(args):
    """Cross-option checks and resolved defaults, before anything is written; a saved config passes again."""
    for (option, value), unused in UNUSED_BY.items():  # an option ignored would name a different, identical run
        for name in unused if getattr(args, option) == value else ():
            if getattr(args, name) not in (IDENTITY[name], default_pos(args.model) if name == "pos" else None):
                user = args.model if option == "model" else f"{value} core"
                die(f"--{name}: a {user} has no use for it (it would only change the run's name)")
    for name in ("delay", "ramp", "dat_mode", "auto_threshold", "auto_window", "auto_interval"):
        if getattr(args, name) not in (None, 0, IDENTITY[name]) and not args.dat:
            die(f"--{name} needs --dat")
    if args.dat and args.model not in HYBRIDS:
        die(f"--dat needs a hybrid model ({', '.join(HYBRIDS)}), not {args.model}")
    args.delay = (DEFAULT_DELAY if args.delay is None else args.delay) if args.dat else 0
    args.ramp = args.ramp or 0
    if args.dat and args.delay == 0:
        die("--dat --delay 0 is the plain run (attention on from step 0): leave out --dat, or delay it 1 step or more")
    if args.ramp == 1:
        die("--ramp 1 is no ramp (the gate is 1 at once, as with 0): use 0, or 2 or more steps")
    if args.ramp and args.dat_mode != "gate":
        die(f"--ramp raises the gate: --dat_mode {args.dat_mode} keeps it at 1")
    layout = block_layout(args)
    for other in MODELS[:MODELS.index(args.model)]:  # e.g. interleaved with 1 LSTM layer is lstm_attn
        if block_layout(argparse.Namespace(**{**vars(args), "model": other})) == layout:
            die(f"--model {args.model} with these block counts is a {other} (the same blocks in the same order): "
                f"use --model {other}")
    if args.delay == "auto":
        if args.dat_mode != "gate":
            die("--delay auto needs --dat_mode gate: it watches the state accuracy with attention off")
        args.attn_on_step = getattr(args, "attn_on_step", None)  # None until the state is learned; resume keeps it
    else:
        for name in ("auto_threshold", "auto_window", "auto_interval"):
            if getattr(args, name) != IDENTITY[name]:
                die(f"--{name} needs --delay auto")
        if args.delay >= args.max_iters:
            die(f"--delay {args.delay} must be below --max_iters {args.max_iters}")
        args.attn_on_step = args.delay
    if 3 * args.train_len > args.num_keys:
        die(f"test length {3 * args.train_len} (3x, evaluated during training) is above --num_keys {args.num_keys}")
    if "attn" in layout and (args.d_model % args.n_heads or (args.d_model // args.n_heads) % 2):
        die("--d_model must be a multiple of --n_heads with an even head size")
    args.pos = args.pos or default_pos(args.model)
    args.device = runs.pick_device(args.device)
    blocks = dict(d_model=args.d_model, blocks=args.n_lstm + args.n_attn, n_heads=args.n_heads)
    runs.check_fits("batch", args.batch_size, seq_width(args.train_len, args.num_queries), args.device,
                    args.num_keys, training=True, **blocks)
    runs.check_fits("--n_eval_train", args.n_eval_train, seq_width(3 * args.train_len, args.num_queries),
                    args.device, args.num_keys, **blocks)  # the periodic evals at 3x
    if args.out_dir is None:
        args.out_dir = os.path.join(args.out_root, f"{run_name(vars(args))}-s{args.seed}")
    if not args.out_dir.strip():
        die("--out_dir is empty")
    return args

# -----------------------------------------------------------------------------

def main(argv=None):
    # 1. options: a new run, or the run in --out_dir to resume (held by this process before it is read)
    resuming = "--resume" in (sys.argv[1:] if argv is None else argv)
    args, ckpt = runs.resumed(parser, argv, SAFE_ON_RESUME, check_args) if resuming else \
        (check_args(parser.parse_args(argv)), None)
    if args.dry_run:
        return print(args.out_dir, folder_state(args))
    if os.path.isdir(os.path.join(args.out_dir, "eval.json")):
        die(f"cannot write {args.out_dir}/eval.json: a folder is in the way")
    if args.compile and args.device == "cpu" and not any(map(shutil.which, ("c++", "g++", "clang++"))):
        die("--compile needs a C++ compiler on the CPU (torch.compile builds its kernels with one): none is here")
    if not resuming:
        runs.lock(args.out_dir)
        if (state := folder_state(args)) != "new":  # only a run stopped before its first checkpoint starts again
            die(f"{args.out_dir} already holds a run ({state}): pass --resume to continue it, or choose another "
                f"--out_dir")
    else:
        checked_run(args.out_dir, ckpt)
    model, model_config, optimizer, table, data_rng = build(args, ckpt)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else nullcontext()

    # 2. the run folder: config.json, log.jsonl up to the checkpoint's step, no stale eval.json
    step, streak = (ckpt["step"], ckpt["streak"]) if ckpt else (0, 0)  # streak: see state_learned
    config_path, log_path = os.path.join(args.out_dir, "config.json"), os.path.join(args.out_dir, "log.jsonl")
    write_config = lambda: write_json(config_path, {**vars(args), "model_config": asdict(model_config)})
    if step >= args.max_iters:
        runs.start_log(log_path, ckpt)  # restores the checkpoint's log line, if a stop lost it
        return print(f"{args.out_dir} is finished: step {step} of --max_iters {args.max_iters}; nothing to do")
    if ckpt and os.path.exists(log_path):
        runs.read_log(log_path)  # a damaged log is refused before anything is written
    if ckpt and ckpt["config"].get("out_dir") != args.out_dir:  # a moved folder: its checkpoint says where it is now
        ckpt["config"] = {**ckpt["config"], "out_dir": args.out_dir}
        runs.save_checkpoint(os.path.join(args.out_dir, "ckpt.pt"), **{k: v for k, v in ckpt.items() if k != "kit"})
    write_config()  # first: an unwritable folder stops the run before anything else is written
    runs.start_log(log_path, ckpt)
    if os.path.exists(os.path.join(args.out_dir, "eval.json")):
        os.remove(os.path.join(args.out_dir, "eval.json"))  # it scores an earlier step
    print(f"{args.out_dir}: {args.model} on {args.group}, {sum(p.numel() for p in model.parameters()) / 1e3:.1f}k "
          f"parameters, {args.device}, {'DAT delay %s ramp %d' % (args.delay, args.ramp) if args.dat else 'no delay'}"
          f", {'resuming at step %d' % step if step else 'from scratch'}")

    # 3. the loop: gate and learning rate, batch, step; every log_interval a log line, every eval_interval an eval
    # and a checkpoint; under --delay auto a check of the state accuracy every auto_interval steps. The loss and the
    # state counts sum on the device: one sync per log line or check.
    saved_step = ckpt["step"] if ckpt else None  # the step of the checkpoint in out_dir
    sums, t_log, steps_timed = torch.zeros(3, device=args.device), time.time(), 0  # loss, state hits, state total
    sums[1:] = torch.tensor(ckpt.get("auto_counts", [0, 0]) if ckpt else [0, 0])  # a check's steps before the stop
    watching = lambda: args.dat and args.attn_on_step is None  # --delay auto, attention still off
    try:
        while step < args.max_iters:
            lr = set_gate_and_lr(step, args, model, optimizer)
            tokens, targets = sample_batch(table, args.batch_size, 1, args.train_len, args.num_keys,
                                           args.num_queries, data_rng, args.state_frac)
            loss, logits = train_step(model, forward, optimizer, tokens, targets, autocast, args.grad_clip)
            sums[0] += loss
            if watching():  # --delay auto: the state accuracy on training batches
                is_state = target_masks(tokens, targets)[0]
                sums[1] += ((logits.argmax(dim=-1) == targets) & is_state).sum()
                sums[2] += is_state.sum()
            step, steps_timed = step + 1, steps_timed + 1
            entry = {"step": step}

            # --delay auto's check: over its own interval of steps, whatever the log and eval intervals
            if watching() and step % args.auto_interval == 0:
                entry["train_state_acc"] = (sums[1] / sums[2]).item()
                sums[1:] = 0
                streak, learned = state_learned(args, entry, streak)
                if learned:
                    args.attn_on_step = step
                    write_config()
                    print(f"step {step}: state learned: attention switches on now", flush=True)
            is_eval_step = step % args.eval_interval == 0 or step == args.max_iters
            if not (is_eval_step or step % args.log_interval == 0):
                continue

            # log line
            mean_loss, ms_per_step = sums[0].item() / steps_timed, 1000 * (time.time() - t_log) / steps_timed
            if not math.isfinite(mean_loss):
                die(f"loss is {mean_loss} at step {step}: stopped; " + kept(args, saved_step))
            entry.update(loss=mean_loss, lr=lr, gate=model.gate, ms_per_step=ms_per_step)
            line = f"step {step}/{args.max_iters} | loss {mean_loss:.4f} | gate {model.gate:.2f} | " \
                   f"{ms_per_step:.1f} ms/step"

            # eval and checkpoint
            if is_eval_step:
                model.eval()
                for record, _ in evaluate(model, vars(args), (1, 3), args.n_eval_train):
                    entry.update({f"{k}_{record['mult']}x": record[k]
                                  for k in ("state_acc", "recall_acc", "token_acc", "seq_acc")})
                model.train()
                line += f" | token acc 1x {entry['token_acc_1x']:.3f} 3x {entry['token_acc_3x']:.3f}"
                runs.save_checkpoint(os.path.join(args.out_dir, "ckpt.pt"), model=model.state_dict(),
                                     optimizer=optimizer.state_dict(), config=vars(args), entry=entry,
                                     model_config=asdict(model_config), step=step, gate=model.gate, streak=streak,
                                     auto_counts=sums[1:].tolist(), data_rng=data_rng.get_state())
                saved_step = step
            append_line(log_path, json.dumps(entry))  # before the print: a reader gone from stdout loses nothing
            seconds_left = ms_per_step * (args.max_iters - step) / 1000
            print(f"{line} | {seconds_left // 60:.0f}m{seconds_left % 60:02.0f}s left", flush=True)
            sums[0] = 0
            t_log, steps_timed = time.time(), 0
    except KeyboardInterrupt as e:
        die(f"interrupted at step {step}; " + kept(args, saved_step), code=runs.stop_code(e))
    fits = [m for m in (1, 2, 3, 4) if m * args.train_len <= args.num_keys]  # eval.py's lengths, where keys suffice
    mults = "" if len(fits) == 4 else f" --mults {','.join(map(str, fits))}"
    print(f"done: {args.out_dir}/ckpt.pt; next: python eval.py {shlex.quote(args.out_dir)}{mults} "
          + " ".join(extra_scores(args.model)))

def folder_state(args):
    """The state of the folder args.out_dir (runs.run_state: judged by the folder's own config), which must hold this
    run if it holds any: a folder whose identifying options or seed differ is one error line."""
    state = runs.run_state(args.out_dir)
    if os.path.isfile(os.path.join(args.out_dir, "config.json")):
        theirs = checked_run(args.out_dir)
        for key in list(IDENTITY) + ["seed"]:
            if theirs.get(key, IDENTITY.get(key)) != getattr(args, key):
                die(f"{args.out_dir} holds another run: its {key} is {theirs.get(key, IDENTITY.get(key))!r}, not "
                    f"{getattr(args, key)!r}; choose another --out_dir")
    return state

def kept(args, saved_step):
    resume = f"python train.py --resume --out_dir {shlex.quote(args.out_dir)}"
    return f"{args.out_dir}/ckpt.pt holds step {saved_step}: {resume}" if saved_step is not None else \
        "no checkpoint was written yet"

# -----------------------------------------------------------------------------
# the DAT rule and the learning rate

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

def set_gate_and_lr(step, args, model, optimizer):
    """Attention joins the optimizer at the step it switches on; the gate and both learning rates of this step."""
    if args.dat and step == args.attn_on_step and not trains_attention(optimizer):
        add_attention(optimizer, model, args)
    model.gate = gate_at(step, args)
    lr = lr_at(step, args)
    # --dat_mode lr: the attention learns at a rate warmed up linearly over the delay
    attention_lr = lr * min(1.0, (step + 1) / args.attn_on_step) if args.dat and args.dat_mode == "lr" else lr
    for group in optimizer.param_groups:
        group["lr"] = attention_lr if group["name"].startswith("attention") else lr
    return lr

def state_learned(args, entry, streak):
    """--delay auto: the streak of checks (each over --auto_interval steps) with the training state accuracy at or
    above the threshold, and whether attention switches on now."""
    streak = streak + 1 if entry["train_state_acc"] >= args.auto_threshold else 0
    return streak, streak >= args.auto_window

# -----------------------------------------------------------------------------

def build(args, ckpt):
    """The model, its optimizer and the data generator, from scratch or from the checkpoint."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # very sharp softmaxes make denormal floats, which are slow on CPUs
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    table = group_table(args.group, device)
    model_config = model_config_of(vars(args))
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

def train_step(model, forward, optimizer, tokens, targets, autocast, grad_clip):
    with autocast:
        logits, loss = forward(tokens, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # frozen parameters have no gradient to count
    optimizer.step()
    model.zero_grad(set_to_none=True)
    return loss.detach(), logits.detach()

if __name__ == "__main__":
    run_script(main)
