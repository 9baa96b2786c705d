"""
Train a model on the composite task, with or without Delayed Attention Training (DAT).

    python train.py --dat --delay 5000     # the DAT hybrid: attention gated off (and frozen) for 5000 steps
    python train.py                        # its baseline: same hybrid, data and init, attention on throughout

The defaults are the main setting (S3, 1..8 steps, one LSTM layer then two attention blocks); every option, its
bounds and default: options.py (`python train.py --help`). A run folder (run_folder.py) gets config.json, log.jsonl
and ckpt.pt (enough to resume and to evaluate).

The DAT rule (--dat --delay D [--ramp R]): for steps 0..D-1 the attention gate is 0, so attention is skipped, and
the attention parameters are frozen (outside the optimizer: no gradient, no step, no weight decay, no moments), so
at step D they are bit-identical to their init. Then they join the optimizer and the gate becomes 1 (from 1/R to 1
over R steps with --ramp). Without --dat the same model, data and init train with the gate at 1: a paired comparison.
"""
from runs import append_line, die, run_script, stop_code, write_json  # first: Ctrl-C during slow imports: one line
import json
import math
import os
import shlex
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict

import torch

import run_folder
from data import machine_of, sample_batch, target_masks
from eval import evaluate, extra_scores
from model import Model
from options import check_args, model_config_of, parser

def main(argv=None):
    # 1. options: a new run, or the run in --out_dir to resume (held by this process before it is read)
    resuming = "--resume" in (sys.argv[1:] if argv is None else argv)
    args, ckpt = run_folder.resumed(argv) if resuming else (check_args(parser.parse_args(argv)), None)
    if args.dry_run:
        return print(args.out_dir, run_folder.folder_state(args))
    if os.path.isdir(os.path.join(args.out_dir, "eval.json")):
        die(f"cannot write {args.out_dir}/eval.json: a folder is in the way")
    if args.compile and args.device == "cpu" and not any(map(shutil.which, ("c++", "g++", "clang++"))):
        die("--compile needs a C++ compiler on the CPU (torch.compile builds its kernels with one): none is here")
    if not resuming:
        run_folder.lock(args.out_dir)
        if (state := run_folder.folder_state(args)) != "new":  # only a run stopped before its first checkpoint restarts
            die(f"{args.out_dir} already holds a run ({state}): pass --resume to continue it, or choose another "
                f"--out_dir")
    else:
        run_folder.checked_run(args.out_dir, ckpt)
    model, model_config, optimizer, task, data_rng = build(args, ckpt)
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if args.device == "cuda" else nullcontext()

    # 2. the run folder: config.json, log.jsonl up to the checkpoint's step, no stale eval.json or eval.txt
    step, streak = (ckpt["step"], ckpt["streak"]) if ckpt else (0, 0)  # streak: --delay auto's checks passed in a row
    config_path, log_path, ckpt_path = (os.path.join(args.out_dir, f) for f in ("config.json", "log.jsonl", "ckpt.pt"))
    write_config = lambda: write_json(config_path, {**vars(args), "model_config": asdict(model_config)},
                                      new_folder=False)
    if step >= args.max_iters:
        run_folder.start_log(log_path, ckpt)  # restores the checkpoint's log line, if a stop lost it
        return print(f"{args.out_dir} is finished: step {step} of --max_iters {args.max_iters}; nothing to do")
    if ckpt and os.path.exists(log_path):
        run_folder.read_log(log_path)  # a damaged log is refused before anything is written
    if ckpt and ckpt["config"].get("out_dir") != args.out_dir:  # a moved folder: its checkpoint says where it is now
        ckpt["config"] = {**ckpt["config"], "out_dir": args.out_dir}
        run_folder.save_checkpoint(ckpt_path, **{k: v for k, v in ckpt.items() if k != "kit"})
    write_config()  # first: an unwritable folder stops the run before anything else is written
    run_folder.start_log(log_path, ckpt)
    for name in ("eval.json", "eval.txt"):  # they score an earlier step
        if os.path.isfile(os.path.join(args.out_dir, name)):
            os.remove(os.path.join(args.out_dir, name))
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
            tokens, targets = sample_batch(task, args.batch_size, 1, args.train_len, args.num_keys,
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
                streak = streak + 1 if entry["train_state_acc"] >= args.auto_threshold else 0
                if streak >= args.auto_window:
                    args.attn_on_step = step
                    write_config()
                    print(f"step {step}: state learned: attention switches on now", flush=True)
            is_eval_step = step % args.eval_interval == 0 or step == args.max_iters
            if not (is_eval_step or step % args.log_interval == 0):
                continue

            # log line (and checkpoint), into the folder this process holds
            run_folder.still_held(args.out_dir)
            mean_loss, ms_per_step = sums[0].item() / steps_timed, 1000 * (time.time() - t_log) / steps_timed
            if not math.isfinite(mean_loss):
                die(f"loss is {mean_loss} at step {step}: stopped; " + kept(args, saved_step))
            entry.update(loss=mean_loss, lr=lr, gate=model.gate, ms_per_step=ms_per_step)
            line = f"step {step}/{args.max_iters} | loss {mean_loss:.4f} | gate {model.gate:.2f} | " \
                   f"{ms_per_step:.1f} ms/step"

            # eval and checkpoint
            if is_eval_step:
                model.eval()
                for record, _ in evaluate(model, vars(args), (1, 3), args.n_eval_train):  # its four accuracies
                    entry.update({f"{k}_{record['mult']}x": v for k, v in record.items() if k.endswith("_acc")})
                model.train()
                line += f" | token acc 1x {entry['token_acc_1x']:.3f} 3x {entry['token_acc_3x']:.3f}"
                run_folder.save_checkpoint(ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(),
                                           config=vars(args), entry=entry, model_config=asdict(model_config),
                                           step=step, gate=model.gate, streak=streak,
                                           auto_counts=sums[1:].tolist(), data_rng=data_rng.get_state())
                saved_step = step
            append_line(log_path, json.dumps(entry))  # before the print: a reader gone from stdout loses nothing
            seconds_left = ms_per_step * (args.max_iters - step) / 1000
            print(f"{line} | {seconds_left // 60:.0f}m{seconds_left % 60:02.0f}s left", flush=True)
            sums[0], t_log, steps_timed = 0, time.time(), 0
    except KeyboardInterrupt as e:
        die(f"interrupted at step {step}; " + kept(args, saved_step), code=stop_code(e))
    fits = [m for m in (1, 2, 3, 4) if m * args.train_len <= args.num_keys]  # eval.py's lengths, where keys suffice
    mults = "" if len(fits) == 4 else f" --mults {','.join(map(str, fits))}"
    print(f"done: {args.out_dir}/ckpt.pt; next: python eval.py {shlex.quote(args.out_dir)}{mults} "
          + " ".join(extra_scores(args.model)))

def kept(args, saved_step):
    resume = f"python train.py --resume --out_dir {shlex.quote(args.out_dir)}"
    return f"{args.out_dir}/ckpt.pt holds step {saved_step}: {resume}" if saved_step is not None else \
        "no checkpoint was written yet"

# -----------------------------------------------------------------------------
# the DAT rule and the learning rate

def gate_at(step, args):
    """The DAT gate: 0 before the delay, then linear from 1/R to 1 over R steps (--ramp R), then 1."""
    if not args.dat or args.dat_mode != "gate":
        return 1.0
    if args.attn_on_step is None or step < args.attn_on_step:
        return 0.0
    return min(1.0, (step - args.attn_on_step + 1) / args.ramp) if args.ramp else 1.0

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
    """Under DAT the attention parameters are frozen until the delay and only then join the optimizer (the DAT rule)."""
    for p in model.attention_parameters():
        p.requires_grad_(False)
    rest = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel per step on a GPU, where many small launches, not arithmetic, set the pace
    optimizer = torch.optim.AdamW(param_groups(rest, args, "rest"), lr=args.lr, betas=(0.9, 0.98),
                                  fused=args.device == "cuda")
    if with_attention:
        add_attention(optimizer, model, args)
    return optimizer

def add_attention(optimizer, model, args):
    for p in model.attention_parameters():
        p.requires_grad_(True)
    for group in param_groups(model.attention_parameters(), args, "attention"):
        optimizer.add_param_group(group)

def set_gate_and_lr(step, args, model, optimizer):
    """Attention joins the optimizer at the step it switches on; the gate and both learning rates of this step."""
    if args.dat and args.dat_mode != "lr" and step == args.attn_on_step:
        add_attention(optimizer, model, args)
    model.gate, lr = gate_at(step, args), lr_at(step, args)
    # --dat_mode lr: the attention learns at a rate warmed up linearly over the delay
    attention_lr = lr * min(1.0, (step + 1) / args.attn_on_step) if args.dat and args.dat_mode == "lr" else lr
    for group in optimizer.param_groups:
        group["lr"] = attention_lr if group["name"].startswith("attention") else lr
    return lr

# -----------------------------------------------------------------------------
# building the run, and one training step

def build(args, ckpt):
    """The model, its optimizer and the data generator, from scratch or from the checkpoint."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # very sharp softmaxes make denormal floats, which are slow on CPUs
    torch.manual_seed(args.seed)
    task = machine_of(args.group).to(args.device)
    model = Model(model_config_of(vars(args))).to(args.device)
    data_rng = torch.Generator(device=args.device).manual_seed(args.seed + 1)
    # attention trains throughout, or joins the optimizer after step attn_on_step (the loop adds it at that step)
    joined = ckpt is not None and args.attn_on_step is not None and ckpt["step"] > args.attn_on_step
    optimizer = make_optimizer(model, args, with_attention=not args.dat or args.dat_mode == "lr" or joined)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        data_rng.set_state(ckpt["data_rng"])
    return model, model.cfg, optimizer, task, data_rng

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
