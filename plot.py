"""
Figures from run folders: accuracy against test length, and training curves with the delay window marked.

    python plot.py out/lstm_attn-S3-dat5000-s0 out/lstm_attn-S3-plain-s0 --out fig.png
    python plot.py out/                      # every run folder inside out/
    python plot.py out/ --summary table.md   # also a markdown table: mean [min, max] over seeds per length
    python plot.py out/ --sweep delay        # accuracy at 3x against a numeric option of the runs

Runs are grouped by their config without the seed (not by folder name), labelled by options.run_name and drawn as
the mean over seeds with a band from the worst to the best seed. Length panels need eval.json; unfinished runs are
left out of tables and marked. The seeds of a group are compared at the test lengths all of them were scored at, with
a warning line where they were scored at different ones, or otherwise. The atlas: results/atlas.py.
"""
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, printable, run_script, write_file, write_text
import json
import os
import sys
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from eval import grid_scoring
from options import identity, run_name
from run_folder import RUN_FILES, checked_run, eval_problem, in_use, read_eval, read_log, run_state

def find_runs(paths):
    """Run folders (holding any of RUN_FILES) among paths and their direct subfolders, each once. One without
    config.json or log.jsonl is an error line, unless a trainer holds it (writing its first records: left out)."""
    runs = []
    for path in paths:
        for folder in [path] + sorted(os.path.join(path, d) for d in (os.listdir(path) if os.path.isdir(path) else [])):
            held = [f for f in RUN_FILES if os.path.exists(os.path.join(folder, f))]
            lacks = [f for f in RUN_FILES[:2] if not os.path.isfile(os.path.join(folder, f))]
            if held and lacks and not in_use(folder):
                die(f"{folder}: a run folder without {' and '.join(lacks)} (it holds {', '.join(held)}): "
                    "restore it or move the folder away")
            if held and lacks:
                print(f"warning: {folder}: a run starting (no {' and '.join(lacks)} yet): left out", file=sys.stderr)
            runs += [folder] * bool(held and not lacks)
    return list(dict.fromkeys(os.path.normpath(r) for r in runs))  # a folder named twice counts once

def load_run(run_dir):
    """A run folder's config, log, eval records and how they were scored (a plain list of records as the grid
    scores: eval.grid_scoring); a folder a crash or a hand left malformed is one error line."""
    config = checked_run(run_dir)
    log = read_log(os.path.join(run_dir, "log.jsonl"))
    eval_path = os.path.join(run_dir, "eval.json")
    scored, records = read_eval(eval_path) if os.path.isfile(eval_path) else (None, None)
    if records is not None and (problem := eval_problem(records, config)):
        die(f"{run_dir}: {problem}")
    if records is not None and scored is None:
        scored = grid_scoring(config["model"], [r["mult"] for r in records], config["max_iters"])
    finished = run_state(run_dir, log=log) == "finished"
    return {"dir": run_dir, "config": config, "log": log, "eval": records, "scored": scored, "finished": finished}

def load_runs(paths):
    """Every run folder among paths, loaded; two holding one config and seed (a copy) are an error; the finished
    seeds of a config scored differently (test lengths aside) are one warning line."""
    loaded = [load_run(r) for r in find_runs(paths)]
    for runs in group_by_config(loaded).values():  # in order of seed: a copy sits right after its run
        for run, copy in zip(runs, runs[1:]):
            if run["config"]["seed"] == copy["config"]["seed"]:
                die(f"{run['dir']} and {copy['dir']} hold the same run (config and seed): keep one")
    for label, runs in group_by_config(r for r in loaded if r["finished"]).items():
        how = [{k: v for k, v in run["scored"].items() if k != "mults"} for run in runs]
        differ = sorted({k for h in how for k in h if any(h.get(k) != other.get(k) for other in how)})
        warn_unlike(runs, label, lambda run: ", ".join(f"{k} {run['scored'].get(k)}" for k in differ),
                    "scored differently", "pooled as they are")
    return loaded

def group_by_config(runs):
    """{label: runs} for runs whose configs agree on everything but the seed; label: options.run_name."""
    groups = defaultdict(list)
    for run in runs:
        groups[json.dumps(identity(run["config"]), sort_keys=True)].append(run)
    return {run_name(rs[0]["config"]): sorted(rs, key=lambda r: r["config"]["seed"]) for rs in groups.values()}

def record(run, mult):
    """A run's eval.json record at mult times the training length, or None where it was not scored there."""
    return next((rec for rec in run["eval"] if rec["mult"] == mult), None)

def warn_unlike(runs, name, how, what, then):
    """One warning line if runs (seeds of the cell name) differ in how(run), a text; then: what is done."""
    seeds = defaultdict(list)
    for run in runs:
        seeds[how(run)].append(str(run["config"]["seed"]))
    if len(seeds) > 1:
        print(f"warning: {name}: its seeds were {what} (" + "; ".join(f"{h}: seed {','.join(s)}" for h, s in
                                                                     seeds.items()) + f"); {then}", file=sys.stderr)

def shared_lengths(runs, name):
    """The test lengths (eval.json's mult) every one of runs (the seeds of the cell name) was scored at, ascending."""
    scored = [tuple(sorted(rec["mult"] for rec in run["eval"])) for run in runs]
    shared = sorted(set(scored[0]).intersection(*scored)) if scored else []
    show = lambda mults: ",".join(map(str, mults)) + "x" if mults else "none"
    warn_unlike(runs, name, lambda run: show(sorted(rec["mult"] for rec in run["eval"])),
                "scored at different test lengths", f"only those all share are used: {show(shared)}")
    return shared

def scored_lengths(runs_by_label):
    """{label: the test lengths all its finished runs were scored at (shared_lengths)}."""
    return {label: shared_lengths([r for r in runs if r["finished"]], label)
            for label, runs in sorted(runs_by_label.items())}

def save_figure(fig, out):
    fig.tight_layout()
    write_file(out, lambda tmp: fig.savefig(tmp, dpi=110, format=os.path.splitext(out)[1][1:].lower()))
    plt.close(fig)

def band(ax, x, ys, color, label, style="o-"):
    """Mean over seeds as a line, min..max as a shaded band."""
    ys = np.array(ys)
    ax.plot(x, ys.mean(axis=0), style, color=color, label=f"{label} ({len(ys)} seed{'s' * (len(ys) > 1)})")
    if len(ys) > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2)

def recurrent_part(cores):
    """What a table calls the recurrent part of runs of these --core values: LSTM, the one core they share, or core."""
    cores = set(cores)
    return "LSTM" if cores <= {"lstm"} else f"{cores.pop()} core" if len(cores) == 1 else "core"

def cores_of(runs):
    return {identity(r["config"])["core"] for r in runs}

def plot_runs(runs_by_label, out, lengths):
    """The figure of plot.py; lengths: scored_lengths(runs_by_label), the test lengths drawn per label."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    part = recurrent_part(cores_of(r for runs in runs_by_label.values() for r in runs))
    length = "test length (multiple of the training length)"
    panels = [(length, "accuracy", "token accuracy"), (length, "accuracy", "sequence accuracy"),
              (length, "accuracy", f"state: attention gated off (solid), linear probe of the {part} (dashed)"),
              ("training step", "token accuracy at 3x", "training: token accuracy at 3x (shaded: attention delayed)")]
    for i, (label, runs) in enumerate(sorted(runs_by_label.items())):
        color = f"C{i % 10}"
        evaluated = [r for r in runs if r["finished"]]  # unfinished runs: training curves only, counted in the label
        unfinished, mults = len(runs) - len(evaluated), lengths[label]
        label += f" (+{unfinished} unfinished)" if unfinished else ""
        rows = lambda get: [[get(record(r, m)) for m in mults] for r in evaluated]  # per seed, per test length
        everywhere = lambda key: all(key in record(r, m) for r in evaluated for m in mults)  # scored alike
        if mults:
            band(axes[0, 0], mults, rows(lambda rec: rec["token_acc"]), color, label)
            band(axes[0, 1], mults, rows(lambda rec: rec["seq_acc"]), color, label)
        if mults and everywhere("attn_off"):
            band(axes[1, 0], mults, rows(lambda rec: rec["attn_off"]["state_acc"]), color, label)
        if mults and everywhere("probe_state_acc"):
            band(axes[1, 0], mults, rows(lambda rec: rec["probe_state_acc"]), color, label + " probe", "s--")
        # training curve: periodic token accuracy at 3x the training length, at the steps every seed was scored at
        curves = [{e["step"]: e["token_acc_3x"] for e in r["log"] if "token_acc_3x" in e} for r in runs]
        steps = sorted(set(curves[0]).intersection(*curves))
        if steps:
            band(axes[1, 1], steps, [[c[s] for s in steps] for c in curves], color, label)
        config = runs[0]["config"]
        if config.get("dat"):  # the first seed's delay (--delay auto differs between seeds); never switched: all
            on = config.get("attn_on_step", config["delay"])
            on = config["max_iters"] if on is None else on
            axes[1, 1].axvspan(0, on, color=color, alpha=0.08)
            axes[1, 1].axvline(on + config.get("ramp", 0), color=color, ls=":", lw=1)
    for ax, (xlabel, ylabel, title) in zip(axes.flat, panels):
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    save_figure(fig, out)

def plot_sweep(runs, key, out, mult=3):
    """Accuracy at mult x the training length against a numeric option (e.g. --delay) over the finished seeds; a run
    not scored at mult x is left out, in one warning line."""
    swept = [r for r in runs if r["finished"] and isinstance(r["config"].get(key), (int, float))]
    unscored = [r["dir"] for r in swept if record(r, mult) is None]
    by_value = defaultdict(list)
    for r in swept:
        if record(r, mult) is not None:
            by_value[r["config"][key]].append(record(r, mult))
    if unscored:
        print(f"warning: --sweep {key}: {len(unscored)} finished run(s) have no {mult}x record and are left out: "
              f"{', '.join(unscored)}", file=sys.stderr)
    if not by_value:
        die(f"no finished run has a numeric {key} and a {mult}x record")
    x = sorted(by_value)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    metrics = [("token_acc", "token"), ("seq_acc", "sequence"),
               ("probe_state_acc", f"probe of the {recurrent_part(cores_of(runs))} state")]
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
    save_figure(fig, out)
    print(f"wrote {out}: {len(runs)} runs, {len(x)} values of {key}")

def summary_table(runs_by_label, lengths):
    """Markdown: per label and test length (scored_lengths), mean [min, max] over the finished seeds of each score."""
    cell = lambda xs: f"{np.mean(xs):.3f} [{min(xs):.3f}, {max(xs):.3f}]"
    part = recurrent_part(cores_of(r for runs in runs_by_label.values() for r in runs))
    lines = [f"| run (seeds) | mult | state | recall | token | sequence | state, attention off | state, {part} probe |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, runs in sorted(runs_by_label.items()):  # a label without finished runs has no test lengths: no row
        evaluated = [r for r in runs if r["finished"]]
        unfinished = [str(r["config"]["seed"]) for r in runs if not r["finished"]]
        seeds = ",".join(str(r["config"]["seed"]) for r in evaluated)
        seeds += f"; unfinished: {','.join(unfinished)}" if unfinished else ""
        for mult in lengths[label]:
            column = lambda get: cell([get(record(r, mult)) for r in evaluated])
            everywhere = lambda key: all(key in record(r, mult) for r in evaluated)  # runs may be scored differently
            cells = [column(lambda rec: rec[k]) for k in ("state_acc", "recall_acc", "token_acc", "seq_acc")]
            cells.append(column(lambda rec: rec["attn_off"]["state_acc"]) if everywhere("attn_off") else "-")
            cells.append(column(lambda rec: rec["probe_state_acc"]) if everywhere("probe_state_acc") else "-")
            lines.append(f"| {label} ({seeds}) | {mult}x | {' | '.join(cells)} |")
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
    if args.summary is not None:
        if args.sweep:
            die("--summary tables accuracy against test length: not with --sweep")
        if not args.summary.endswith(".md"):
            die(f"--summary {args.summary!r}: the file name must end in .md")
        outside_runs(args.summary, "--summary")
    runs = load_runs(args.runs)
    if not runs:
        die(f"no run folders (with config.json and log.jsonl) in {' '.join(args.runs)}")
    if args.sweep:
        return plot_sweep(runs, args.sweep, args.out)
    runs_by_label = group_by_config(runs)
    lengths = scored_lengths(runs_by_label)
    plot_runs(runs_by_label, args.out, lengths)
    print(f"wrote {args.out}: {len(runs)} runs, {len(runs_by_label)} labels")
    if args.summary:
        write_text(args.summary, summary_table(runs_by_label, lengths))
        print(f"wrote {args.summary}")

def check_out(path, option="--out"):
    """A figure's name ends in a format matplotlib writes, in any case (fig.PNG is a png), and is outside_runs."""
    outside_runs(path, option)
    formats = plt.Figure().canvas.get_supported_filetypes()
    if os.path.splitext(path)[1][1:].lower() not in formats:
        die(f"{option} {path!r}: the file name must end in one of .{', .'.join(sorted(formats))}")

def outside_runs(path, option="--out"):
    """An output (a figure or table) never lands in a run folder, beside or on its records; its name must print."""
    printable(path, option)
    folder = os.path.dirname(path) or "."
    if os.path.basename(path) in RUN_FILES or any(os.path.exists(os.path.join(folder, f)) for f in RUN_FILES):
        die(f"{option} {path!r}: inside a run folder, beside its {', '.join(RUN_FILES)}: write it elsewhere")

if __name__ == "__main__":
    run_script(main)
