"""
Figures from run folders: accuracy against test length, and training curves with the delay window marked.

    python plot.py out/lstm_attn-S3-dat5000-s0 out/lstm_attn-S3-plain-s0 --out fig.png
    python plot.py out/                      # every run folder inside out/
    python plot.py out/ --summary table.md   # also a markdown table: mean [min, max] over seeds per length
    python plot.py out/ --sweep delay        # accuracy at 3x against a numeric option of the runs

Runs are grouped by their config without the seed (not by folder name) and labelled by the options that differ
from the defaults (runs.run_name): a group is drawn as the mean over seeds with a band from the worst to the
best seed. Length panels need eval.json (python eval.py RUN --attn_off). A run is finished when its log reaches
--max_iters and eval.json is there; unfinished runs are left out of tables and marked. Failure rates per setting
and schedule (the atlas) are the study's own analysis: results/atlas.py.
"""
import json
import math
import os
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from runs import (CONFIG_KEYS, ArgParser, die, identity, read_json, read_log, run_script, run_state,
                  write_file, write_text)
from train import IDENTITY, run_name

RECORD_KEYS = {"n", "mult", "state_acc", "recall_acc", "token_acc", "seq_acc"}

def find_runs(paths):
    """Run folders (holding config.json and log.jsonl) among paths and their direct subfolders, each once."""
    runs = []
    for path in paths:
        candidates = [path] + sorted(os.path.join(path, d) for d in (os.listdir(path) if os.path.isdir(path) else []))
        runs += [c for c in candidates if os.path.isfile(os.path.join(c, "config.json"))
                 and os.path.isfile(os.path.join(c, "log.jsonl"))]
    return list(dict.fromkeys(os.path.normpath(r) for r in runs))  # a folder named twice counts once

def load_run(run_dir):
    """A run folder's config, log and eval records; a folder a crash or a hand left malformed is one error line."""
    config, log = read_json(os.path.join(run_dir, "config.json")), read_log(os.path.join(run_dir, "log.jsonl"))
    eval_path = os.path.join(run_dir, "eval.json")
    records = read_json(eval_path) if os.path.isfile(eval_path) else None
    problems = [f"config.json lacks {k}" for k in CONFIG_KEYS if not isinstance(config, dict) or k not in config]
    problems += [f"log.jsonl line {i + 1} lacks step" for i, e in enumerate(log)
                 if not isinstance(e, dict) or "step" not in e]
    if records is not None and not (isinstance(records, list) and all(isinstance(r, dict) and RECORD_KEYS <= r.keys()
                                                                      for r in records)):
        problems.append(f"eval.json is not a list of eval.py records (with {', '.join(sorted(RECORD_KEYS))})")
    elif records is not None and not all(isinstance(v, (int, float)) and math.isfinite(v) for r in records
                                         for k, v in r.items() if k.endswith("_acc")):
        problems.append("eval.json holds an accuracy that is not a finite number")
    if problems:
        die(f"{run_dir}: {problems[0]}")
    finished = run_state(run_dir, log=log) == "finished"
    return {"dir": run_dir, "config": config, "log": log, "eval": records, "finished": finished}

def load_runs(paths):
    """Every run folder among paths, loaded; two folders holding one config and seed (a copy) are an error."""
    loaded, seen = [load_run(r) for r in find_runs(paths)], {}
    for run in loaded:
        key = json.dumps({**identity(run["config"], IDENTITY), "seed": run["config"]["seed"]}, sort_keys=True)
        if key in seen:
            die(f"{seen[key]} and {run['dir']} hold the same run (config and seed): keep one")
        seen[key] = run["dir"]
    return loaded

def group_by_config(runs):
    """{label: runs} for runs whose configs agree on everything but the seed; label: train.run_name."""
    groups = defaultdict(list)
    for run in runs:
        groups[json.dumps(identity(run["config"], IDENTITY), sort_keys=True)].append(run)
    return {run_name(rs[0]["config"]): sorted(rs, key=lambda r: r["config"]["seed"]) for rs in groups.values()}

def save_figure(fig, out):
    write_file(out, lambda tmp: fig.savefig(tmp, dpi=110, format=os.path.splitext(out)[1][1:]))
    plt.close(fig)

def band(ax, x, ys, color, label, style="o-"):
    """Mean over seeds as a line, min..max as a shaded band."""
    ys = np.array(ys)
    ax.plot(x, ys.mean(axis=0), style, color=color, label=f"{label} ({len(ys)} seed{'s' * (len(ys) > 1)})")
    if len(ys) > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2)

def plot_runs(runs_by_label, out):
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    panels = [(axes[0, 0], "token_acc", "token accuracy"), (axes[0, 1], "seq_acc", "sequence accuracy"),
              (axes[1, 0], "attn_off", "state: attention gated off (solid), linear probe of the LSTM (dashed)")]
    for i, (label, runs) in enumerate(sorted(runs_by_label.items())):
        color = f"C{i % 10}"
        evaluated = [r for r in runs if r["finished"]]  # unfinished runs: training curves only, counted in the label
        unfinished = len(runs) - len(evaluated)
        label += f" (+{unfinished} unfinished)" if unfinished else ""
        if evaluated:
            mults = [rec["mult"] for rec in evaluated[0]["eval"]]
            usable = [r for r in evaluated if [rec["mult"] for rec in r["eval"]] == mults]
            for ax, key, _ in panels:
                if key == "attn_off":
                    if all("attn_off" in rec for r in usable for rec in r["eval"]):
                        band(ax, mults, [[rec["attn_off"]["state_acc"] for rec in r["eval"]] for r in usable],
                             color, label)
                    if all("probe_state_acc" in rec for r in usable for rec in r["eval"]):
                        band(ax, mults, [[rec["probe_state_acc"] for rec in r["eval"]] for r in usable], color,
                             label + " probe", "s--")
                else:
                    band(ax, mults, [[rec[key] for rec in r["eval"]] for r in usable], color, label)
        # training curve: periodic token accuracy at 3x the training length
        curves = [[(e["step"], e["token_acc_3x"]) for e in r["log"] if "token_acc_3x" in e] for r in runs]
        length = min(len(c) for c in curves)
        if length:
            steps = [s for s, _ in curves[0][:length]]
            band(axes[1, 1], steps, [[a for _, a in c[:length]] for c in curves], color, label)
        config = runs[0]["config"]
        if config.get("dat"):  # the first seed's delay (--delay auto differs between seeds); never switched: all
            on = config.get("attn_on_step", config["delay"])
            on = config["max_iters"] if on is None else on
            axes[1, 1].axvspan(0, on, color=color, alpha=0.08)
            axes[1, 1].axvline(on + config.get("ramp", 0), color=color, ls=":", lw=1)
    for ax, _, title in panels:
        ax.set(xlabel="test length (multiple of the training length)", ylabel="accuracy", title=title,
               ylim=(-0.02, 1.02))
    axes[1, 1].set(xlabel="training step", ylabel="token accuracy at 3x", ylim=(-0.02, 1.02),
                   title="training: token accuracy at 3x (shaded: attention delayed)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out)

def plot_sweep(runs, key, out, mult=3):
    """Accuracy at mult x the training length against a numeric option (e.g. --delay), mean and band over seeds."""
    by_value = defaultdict(list)
    for r in runs:
        record = next((rec for rec in r["eval"] or [] if rec["mult"] == mult), None)
        if record is not None and isinstance(r["config"].get(key), (int, float)):
            by_value[r["config"][key]].append(record)
    if not by_value:
        die(f"no evaluated run has a numeric {key} and a {mult}x record")
    x = sorted(by_value)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    metrics = [("token_acc", "token"), ("seq_acc", "sequence"), ("probe_state_acc", "probe of the LSTM state")]
    for i, (metric, name) in enumerate(metrics):
        if all(metric in rec for v in x for rec in by_value[v]):
            ys = [[rec[metric] for rec in by_value[v]] for v in x]
            ax.plot(x, [np.mean(y) for y in ys], "o-", color=f"C{i}", label=f"{name} accuracy at {mult}x")
            ax.fill_between(x, [min(y) for y in ys], [max(y) for y in ys], color=f"C{i}", alpha=0.2)
    seeds = sorted({len(by_value[v]) for v in x})
    ax.set(xlabel=key, ylabel="accuracy", ylim=(-0.02, 1.02), title=f"accuracy at {mult}x against {key} "
           f"({'/'.join(map(str, seeds))} seeds per point; band: min to max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
    print(f"wrote {out}: {len(runs)} runs, {len(x)} values of {key}")

def summary_table(runs_by_label):
    """Markdown: per label and test length, mean [min, max] over the finished seeds of each accuracy."""
    cell = lambda xs: f"{np.mean(xs):.3f} [{min(xs):.3f}, {max(xs):.3f}]"
    lines = ["| run (seeds) | mult | state | recall | token | sequence | state, attention off | state, LSTM probe |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, runs in sorted(runs_by_label.items()):
        evaluated = [r for r in runs if r["finished"]]
        if not evaluated:
            continue
        unfinished = [str(r["config"]["seed"]) for r in runs if not r["finished"]]
        seeds = ",".join(str(r["config"]["seed"]) for r in evaluated)
        seeds += f"; unfinished: {','.join(unfinished)}" if unfinished else ""
        for i, record in enumerate(evaluated[0]["eval"]):
            column = lambda get: cell([get(r["eval"][i]) for r in evaluated])
            everywhere = lambda key: all(key in r["eval"][i] for r in evaluated)  # runs may be scored differently
            off = column(lambda rec: rec["attn_off"]["state_acc"]) if everywhere("attn_off") else "-"
            probe = column(lambda rec: rec["probe_state_acc"]) if everywhere("probe_state_acc") else "-"
            lines.append(f"| {label} ({seeds}) | {record['mult']}x | " + " | ".join(
                column(lambda rec: rec[k]) for k in ("state_acc", "recall_acc", "token_acc", "seq_acc"))
                + f" | {off} | {probe} |")
    return "\n".join(lines) + "\n"

def main(argv=None):
    parser = ArgParser(description="Plot accuracy vs test length and training curves of run folders.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", default="fig.png", help="where to write the figure (.png, .pdf, .svg, ...)")
    parser.add_argument("--sweep", metavar="OPTION", help="instead, plot accuracy at 3x against this numeric option "
                        "of the runs (e.g. delay)")
    parser.add_argument("--summary", help="also write a markdown table of mean [min, max] over seeds to this file")
    args = parser.parse_args(argv)
    check_out(args.out)
    if args.summary is not None and not args.summary.endswith(".md"):
        die(f"--summary {args.summary!r}: the file name must end in .md")
    runs = load_runs(args.runs)
    if not runs:
        die(f"no run folders (with config.json and log.jsonl) in {' '.join(args.runs)}")
    if args.sweep:
        return plot_sweep(runs, args.sweep, args.out)
    runs_by_label = group_by_config(runs)
    plot_runs(runs_by_label, args.out)
    print(f"wrote {args.out}: {len(runs)} runs, {len(runs_by_label)} labels")
    if args.summary:
        write_text(args.summary, summary_table(runs_by_label))
        print(f"wrote {args.summary}")

def check_out(path):
    """A figure's file name must end in a format matplotlib writes."""
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if os.path.splitext(path)[1][1:] not in formats:
        die(f"--out {path!r}: the file name must end in one of .{', .'.join(sorted(formats))}")

if __name__ == "__main__":
    run_script(main)
