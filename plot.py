"""
Figures from run folders: accuracy against test length, and training curves with the delay window marked.

    python plot.py out/lstm_attn-S3-dat5000-s0 out/lstm_attn-S3-plain-s0 --out fig.png
    python plot.py out/                      # every run folder inside out/
    python plot.py out/ --summary table.md   # also a markdown table: mean [min, max] over seeds per length
    python plot.py out/ --sweep delay        # accuracy at 3x against a numeric option of the runs
    python plot.py --attn out/RUN            # attention weights of one sequence at 3x, every block and head

    python plot.py RUNS... --atlas results/atlas --schedules plain,dat5000   # failure rates per setting
    python plot.py RUNS... --atlas results/width_rates --sweep d_model       # the same, drawn against d_model

Runs are grouped by their config without the seed (not by folder name) and labelled by the options that differ
from the defaults (train.run_name): a group is drawn as the mean over seeds with a band from the worst to the
best seed. Length panels need eval.json (python eval.py RUN --attn_off). A run is finished when its log reaches
--max_iters and eval.json is there; unfinished runs are left out of tables and marked.
"""
import json
import math
import os
import re
from collections import defaultdict

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from data import ArgParser, die, eval_batch, group_table, run_script, token_names, write_file, write_text
from eval import CONFIG_KEYS, EVAL_SEED, load_checkpoint, model_from_checkpoint
from train import SCHEDULE, identity, parser as train_parser, read_log, run_name, run_state, schedule_name, setting_name

RECORD_KEYS = {"n", "mult", "state_acc", "recall_acc", "token_acc", "seq_acc"}

def find_runs(paths):
    """Run folders (holding config.json and log.jsonl) among paths and their direct subfolders, each once."""
    runs = []
    for path in paths:
        candidates = [path] + sorted(os.path.join(path, d) for d in (os.listdir(path) if os.path.isdir(path) else []))
        runs += [c for c in candidates if os.path.isfile(os.path.join(c, "config.json"))
                 and os.path.isfile(os.path.join(c, "log.jsonl"))]
    return list(dict.fromkeys(os.path.normpath(r) for r in runs))  # a folder named twice counts once

def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die(f"cannot read {path}: {e}")

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
    if problems:
        die(f"{run_dir}: {problems[0]}")
    finished = run_state(run_dir, config["max_iters"], log) == "finished"
    return {"dir": run_dir, "config": config, "log": log, "eval": records, "finished": finished}

def group_by_config(runs):
    """{label: runs} for runs whose configs agree on everything but the seed; label: train.run_name."""
    groups = defaultdict(list)
    for run in runs:
        groups[json.dumps(identity(run["config"]), sort_keys=True)].append(run)
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

def plot_attention(run_dir, out, mult=3):
    """The attention weights of every block and head on one eval sequence at mult x the training length."""
    ckpt = load_checkpoint(os.path.join(run_dir, "ckpt.pt"))
    config = ckpt["config"]
    model = model_from_checkpoint(ckpt, "cpu")
    if "attn" not in model.layout:
        die(f"{run_dir} holds a {config['model']}, which has no attention")
    n = mult * config["train_len"]
    if n > config["num_keys"]:
        die(f"test length {n} ({mult}x) is above --num_keys {config['num_keys']}")
    table = group_table(config["group"])
    tokens, _ = eval_batch(table, n, config["num_keys"], config["num_queries"], 1, EVAL_SEED)
    attention = [block.attn for block in model.blocks if hasattr(block, "attn")]
    for module in attention:
        module.keep_weights = True
    with torch.no_grad():
        model(tokens)
    names = token_names(tokens[0], config["group"])
    heads = attention[0].kept_weights.shape[1]
    fig, axes = plt.subplots(len(attention), heads, figsize=(6 * heads, 6 * len(attention)), squeeze=False)
    for b, module in enumerate(attention):
        for h in range(heads):
            ax = axes[b, h]
            ax.imshow(module.kept_weights[0, h].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
            ax.set_yticks(range(len(names)), names, fontsize=5)
            ax.set(title=f"attention block {b + 1}, head {h + 1}", xlabel="attends to", ylabel="position")
    fig.suptitle(f"{run_dir}: one sequence of {n} steps ({mult}x); rows q.. are the recall lookups")
    fig.tight_layout()
    save_figure(fig, out)
    print(f"wrote {out}")

# -----------------------------------------------------------------------------
# the atlas: how often each setting fails to length-generalize, per schedule (rule: results/README.md)

FAIL_BELOW = 0.80  # a run fails if its sequence accuracy at 3x is below this (pre-registered)
STATE_OK = 0.98    # a failure is a state failure if its state accuracy at 3x is below this, else a recall failure

def wilson(k, n, z=1.959964):
    """The 95% Wilson score interval of the rate k/n."""
    if n == 0:
        return [0.0, 1.0]
    p, z2 = k / n, z * z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]

def fisher_exact(k1, n1, k2, n2):
    """Two-sided Fisher exact test of k1/n1 against k2/n2: the summed probability (margins fixed) of every
    table no more likely than the one seen."""
    hits = k1 + k2
    prob = lambda a: math.comb(n1, a) * math.comb(n2, hits - a) / math.comb(n1 + n2, hits)
    tables = range(max(0, hits - n2), min(n1, hits) + 1)
    return min(1.0, sum(prob(a) for a in tables if prob(a) <= prob(k1) * (1 + 1e-9)))

def spread(values):
    return None if not values or None in values else [float(np.mean(values)), min(values), max(values)]

def atlas_entry(runs, schedule):
    done = [r for r in runs if r["finished"]]
    at = lambda run, mult: next((rec for rec in run["eval"] if rec["mult"] == mult), {})
    fails = [r for r in done if at(r, 3)["seq_acc"] < FAIL_BELOW]
    config = runs[0]["config"]
    setting = {k: v for k, v in identity(config).items() if k not in SCHEDULE}
    changed = {k: v for k, v in setting.items()
               if k in ("model", "group", "pos", "device") or v != train_parser.get_default(k)}
    entry = {"setting": setting_name(config), "schedule": schedule, "config": changed,
             "seeds": [r["config"]["seed"] for r in done], "n": len(done), "n_fail": len(fails),
             "n_state_fail": sum(at(r, 3)["state_acc"] < STATE_OK for r in fails),
             "n_fail_1x": sum(at(r, 1).get("seq_acc", 1.0) < FAIL_BELOW for r in fails),  # not learned at all
             "fail_rate": len(fails) / len(done) if done else None, "ci95": wilson(len(fails), len(done)),
             "unfinished_seeds": [r["config"]["seed"] for r in runs if not r["finished"]]}
    for mult in (3, 8):
        for metric in ("state_acc", "recall_acc", "token_acc", "seq_acc"):
            entry[f"{metric}_{mult}x"] = spread([at(r, mult).get(metric) for r in done])
    entry["attn_off_state_3x"] = spread([at(r, 3).get("attn_off", {}).get("state_acc") for r in done])
    entry["probe_3x"] = spread([at(r, 3).get("probe_state_acc") for r in done])
    entry["seq_acc_3x_by_seed"] = [at(r, 3)["seq_acc"] for r in done]
    if config.get("delay") == "auto":  # the step each seed's attention switched on at (None: never)
        entry["attn_on_step_by_seed"] = [r["config"].get("attn_on_step") for r in done]
    longest = [max(r["eval"], key=lambda rec: rec["mult"]) for r in done]
    if longest and all("recall_by_age" in rec for rec in longest):  # every run scored with eval.py --by_age
        entry["longest_mult"] = longest[0]["mult"]
        entry["recall_by_age_longest"] = [float(np.mean(band)) for band in zip(*(r["recall_by_age"] for r in longest))]
    return entry

def atlas(runs, schedules):
    """One entry per setting and schedule; every schedule after the first is tested against the first."""
    groups = defaultdict(list)
    for run in runs:
        if schedule_name(run["config"]) in schedules:
            groups[(setting_name(run["config"]), schedule_name(run["config"]))].append(run)
    by_name = lambda name: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]  # d32 < d128
    entries = [atlas_entry(sorted(rs, key=lambda r: r["config"]["seed"]), schedule) for (_, schedule), rs in
               sorted(groups.items(), key=lambda kv: (by_name(kv[0][0]), schedules.index(kv[0][1])))]
    first = {e["setting"]: e for e in entries if e["schedule"] == schedules[0]}
    for e in entries:
        base = first.get(e["setting"])
        if base is not None and e is not base and base["n"] and e["n"]:
            e[f"fisher_p_vs_{schedules[0]}"] = fisher_exact(e["n_fail"], e["n"], base["n_fail"], base["n"])
    return {"rule": f"a run fails to length-generalize if its sequence accuracy at 3x the training length is below "
                    f"{FAIL_BELOW}; a failure is a state failure if its state accuracy at 3x is below {STATE_OK}, "
                    f"else a recall failure; failures whose sequence accuracy is below {FAIL_BELOW} already at 1x are "
                    "counted apart (they did not learn the task at the training length)", "cells": entries}

def atlas_overview(result, schedules):
    """One row per setting and schedule after the first: the README's table of failure rates, base against it."""
    if len(schedules) < 2:
        return []
    base, rows = schedules[0], []
    fails = lambda e: "-" if e is None or not e["n"] else (
        f"{e['n_fail']} of {e['n']} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
        + (f" ({e['n_state_fail']} state, {e['n_fail'] - e['n_state_fail']} recall" if e["n_fail"] else "")
        + (f"; {e['n_fail_1x']} already at 1x" if e["n_fail_1x"] else "") + (")" if e["n_fail"] else ""))
    seq = lambda e: "-" if e is None or not e["n"] else f"{e['seq_acc_3x'][0]:.2f}"
    cells = {(e["setting"], e["schedule"]): e for e in result["cells"]}
    for setting in dict.fromkeys(e["setting"] for e in result["cells"]):
        for schedule in [s for s in schedules[1:] if (setting, s) in cells] or [schedules[1]]:
            e, b = cells.get((setting, schedule)), cells.get((setting, base))
            p = None if e is None else e.get(f"fisher_p_vs_{base}")
            label = setting + (f" ({schedule})" if schedule != schedules[1] else "")
            rows.append(f"| {label} | {fails(b)} | {fails(e)} | {'-' if p is None else f'{p:.2g}'} | "
                        f"{seq(b)} / {seq(e)} |")
    return [f"| setting | {base} fails | {schedules[1]} (or the schedule named) fails | Fisher p | "
            f"sequence accuracy at 3x, mean: {base} / other |", "| --- | --- | --- | --- | --- |"] + rows + [""]

def atlas_markdown(result, schedules):
    fmt = lambda s: "-" if s is None else f"{s[0]:.3f} [{s[1]:.3f}, {s[2]:.3f}]"
    rates = ["| setting | schedule | n | fail (state / recall / already at 1x) | rate [95% CI] | Fisher p | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    accuracy = ["| setting | schedule | state 3x | recall 3x | token 3x | seq 3x | state 8x | recall 8x | token 8x "
                "| seq 8x | state, attention off, 3x | LSTM probe 3x |", "| --- " * 12 + "|"]
    for e in result["cells"]:
        rate = "-" if not e["n"] else f"{e['fail_rate']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
        p = e.get(f"fisher_p_vs_{schedules[0]}")
        seeds = ",".join(map(str, e["seeds"])) + (f" (unfinished: {','.join(map(str, e['unfinished_seeds']))})"
                                                   if e["unfinished_seeds"] else "")
        rates.append(f"| {e['setting']} | {e['schedule']} | {e['n']} | {e['n_fail']} ({e['n_state_fail']} / "
                     f"{e['n_fail'] - e['n_state_fail']} / {e['n_fail_1x']}) | {rate} | "
                     f"{'-' if p is None else f'{p:.3g}'} | {seeds} |")
        keys = [f"{m}_acc_{x}x" for x in (3, 8) for m in ("state", "recall", "token", "seq")]
        accuracy.append(f"| {e['setting']} | {e['schedule']} | " + " | ".join(
            fmt(e[k]) for k in keys + ["attn_off_state_3x", "probe_3x"]) + " |")
    by_seed = [f"- {e['setting']} {e['schedule']}: " + ", ".join(
        f"s{s} {a:.3f}" for s, a in zip(e["seeds"], e["seq_acc_3x_by_seed"])) for e in result["cells"]]
    switched = [f"- {e['setting']} {e['schedule']}: " + ", ".join(
        f"s{s} {'never' if on is None else on}" for s, on in zip(e["seeds"], e["attn_on_step_by_seed"]))
        for e in result["cells"] if "attn_on_step_by_seed" in e]
    switched = ["", "Under --delay auto, the step at which attention switched on (the gate is 1 from that step; "
                "never: the state was not learned), seed by seed:", ""] + switched if switched else []
    return "\n".join([f"Rule: {result['rule']}. Fisher p: two-sided exact test against {schedules[0]} in the "
                      "same setting. Accuracies: mean [min, max] over the finished seeds.", ""] +
                     atlas_overview(result, schedules) + rates + [""] + accuracy + by_age_table(result["cells"]) +
                     ["", "Sequence accuracy at 3x, seed by seed:", ""] + by_seed + switched) + "\n"

def by_age_table(cells):
    """Recall at the longest test length per band of steps back to the key, for the cells scored with --by_age."""
    aged = [e for e in cells if "recall_by_age_longest" in e]
    if not aged:
        return []
    bands = max(len(e["recall_by_age_longest"]) for e in aged)
    lines = ["", "Recall accuracy at the longest test length by how far back the key was bookmarked (eval.py "
             "--by_age; band b: b to b+1 training lengths back, band 0 the ages training shows), mean over seeds:",
             "", "| setting | schedule | n | length | " + " | ".join(f"band {b}" for b in range(bands)) + " |",
             "| --- " * (bands + 4) + "|"]
    for e in aged:
        values = [f"{a:.3f}" for a in e["recall_by_age_longest"]] + ["-"] * (bands - len(e["recall_by_age_longest"]))
        lines.append(f"| {e['setting']} | {e['schedule']} | {e['n']} | {e['longest_mult']}x | {' | '.join(values)} |")
    return lines

def error_bar(cell):
    """How far a cell's 95% interval reaches below and above its failure rate."""
    return max(0.0, cell["fail_rate"] - cell["ci95"][0]), max(0.0, cell["ci95"][1] - cell["fail_rate"])

def k_of_n(cell):
    return f"{cell['n_fail']}/{cell['n']}" + ("*" if cell["unfinished_seeds"] else "")

def plot_atlas(result, schedules, out):
    """A row per setting (first at the top), a point and 95% interval per schedule, k/n beside it."""
    settings = list(dict.fromkeys(e["setting"] for e in result["cells"]))
    fig, ax = plt.subplots(figsize=(8, max(3, 0.42 * len(settings) + 1.2)))
    height = 0.8 / len(schedules)
    for i, schedule in enumerate(schedules):
        for e in (e for e in result["cells"] if e["schedule"] == schedule and e["n"]):
            y = settings.index(e["setting"]) + (i - (len(schedules) - 1) / 2) * height
            ax.errorbar(e["fail_rate"], y, xerr=np.array([error_bar(e)]).T,
                        fmt="o", color=f"C{i}", capsize=3, label=schedule)
            ax.annotate(k_of_n(e), (e["ci95"][1], y), textcoords="offset points", xytext=(4, -3), fontsize=7)
    handles = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(handles.values(), handles.keys(), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=len(handles))
    ax.set_yticks(range(len(settings)), settings, fontsize=8)
    ax.set(xlim=(-0.05, 1.15), ylim=(len(settings) - 0.5, -0.5), xlabel="failure rate (95% Wilson interval)")
    fig.suptitle(f"runs failing to length-generalize (sequence accuracy at 3x < {FAIL_BELOW})\n"
                 "k/n beside each interval; * = some seeds of the cell unfinished", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out)

def plot_atlas_sweep(result, schedules, key, out):
    """Failure rate against a numeric option (e.g. d_model): a panel per schedule, a line per setting without
    that option (cells at its default value included)."""
    default = train_parser.get_default(key)
    lines = defaultdict(list)
    for e in result["cells"]:
        value = e["config"].get(key, default)
        if e["n"]:
            lines[(setting_name({**e["config"], key: default}), e["schedule"])].append((value, e))
    if not lines:
        die(f"--sweep {key}: no cell has a finished run")
    labels = list(dict.fromkeys(label for label, _ in lines))
    values = sorted({value for points in lines.values() for value, _ in points})
    fig, axes = plt.subplots(1, len(schedules), figsize=(5 * len(schedules), 4.5), sharey=True, squeeze=False)
    for ax, schedule in zip(axes[0], schedules):
        for i, label in enumerate(labels):
            points = sorted(lines.get((label, schedule), []), key=lambda p: p[0])
            if not points:
                continue
            shift = 0.04 * (i - (len(labels) - 1) / 2)  # side by side, not on top of each other
            x = [values.index(value) + shift for value, _ in points]
            ax.errorbar(x, [e["fail_rate"] for _, e in points], np.array([error_bar(e) for _, e in points]).T,
                        fmt="o-", color=f"C{i}", capsize=3, label=label)
            for xi, (_, e) in zip(x, points):
                ax.annotate(k_of_n(e), (xi, e["fail_rate"]), textcoords="offset points", xytext=(4, 3 - 10 * (i % 2)),
                            fontsize=6, color=f"C{i}")
        ax.set_xticks(range(len(values)), [f"{v:g}" for v in values])
        ax.set(xlabel=f"{key} (evenly spaced)", ylim=(-0.05, 1.05), title=schedule)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("failure rate (95% Wilson interval)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"runs failing to length-generalize (sequence accuracy at 3x < {FAIL_BELOW}) against {key}; "
                 "k/n beside each point, * = some seeds unfinished", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)

def main(argv=None):
    parser = ArgParser(description="Plot accuracy vs test length and training curves of run folders.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--attn", action="store_true", help="instead, draw the attention weights of one sequence at "
                        "3x for the (single) run folder given")
    parser.add_argument("--out", default="fig.png", help="where to write the figure (.png, .pdf, .svg, ...)")
    parser.add_argument("--sweep", metavar="OPTION", help="instead, plot accuracy at 3x against this numeric option "
                        "of the runs (e.g. delay); with --atlas, PREFIX.png shows the failure rates against it")
    parser.add_argument("--summary", help="also write a markdown table of mean [min, max] over seeds to this file")
    parser.add_argument("--atlas", metavar="PREFIX", help="instead, write failure rates per setting and schedule to "
                        "PREFIX.md, PREFIX.json and PREFIX.png")
    parser.add_argument("--schedules", default="plain,dat5000", help="the schedules --atlas compares, named as in "
                        "run folders (plain, dat5000, datauto, ...); the others are tested against the first")
    args = parser.parse_args(argv)
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if os.path.splitext(args.out)[1][1:] not in formats:
        die(f"--out {args.out!r}: the file name must end in one of .{', .'.join(sorted(formats))}")
    if args.summary is not None and not args.summary.endswith(".md"):
        die(f"--summary {args.summary!r}: the file name must end in .md")
    if args.atlas is not None and (not os.path.basename(args.atlas) or "." in os.path.basename(args.atlas)):
        die(f"--atlas {args.atlas!r}: give a path without extension (.md, .json and .png are added)")
    default = train_parser.get_default(args.sweep) if args.sweep else None
    if args.atlas and args.sweep and (args.sweep in SCHEDULE or args.sweep not in identity({})
                                      or isinstance(default, bool) or not isinstance(default, (int, float))):
        die(f"--sweep {args.sweep!r}: with --atlas, give a numeric option of the setting (d_model, train_len, ...)")
    if args.attn:
        if len(args.runs) != 1:
            die("--attn draws one run folder")
        return plot_attention(args.runs[0], args.out)
    runs = find_runs(args.runs)
    if not runs:
        die(f"no run folders (with config.json and log.jsonl) in {' '.join(args.runs)}")
    if args.sweep and not args.atlas:
        return plot_sweep([load_run(r) for r in runs], args.sweep, args.out)
    if args.atlas:
        loaded = [load_run(r) for r in runs]
        schedules = list(dict.fromkeys(args.schedules.split(",")))  # a repeated name counts once
        found = {schedule_name(r["config"]) for r in loaded}
        missing = [s for s in schedules if s not in found]
        if missing:
            die(f"--schedules: no run has schedule {missing[0]!r} (the runs have {', '.join(sorted(found))})")
        result = atlas(loaded, schedules)
        if args.sweep:
            plot_atlas_sweep(result, schedules, args.sweep, args.atlas + ".png")
        else:
            plot_atlas(result, schedules, args.atlas + ".png")
        write_text(args.atlas + ".json", json.dumps(result, indent=1))
        write_text(args.atlas + ".md", atlas_markdown(result, schedules))
        return print(f"wrote {args.atlas}.md, .json, .png: {len(runs)} runs, {len(result['cells'])} cells")
    runs_by_label = group_by_config([load_run(r) for r in runs])
    plot_runs(runs_by_label, args.out)
    print(f"wrote {args.out}: {len(runs)} runs, {len(runs_by_label)} labels")
    if args.summary:
        write_text(args.summary, summary_table(runs_by_label))
        print(f"wrote {args.summary}")

if __name__ == "__main__":
    run_script(main)
