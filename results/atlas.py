"""
The shortcut atlas: how often each setting fails to length-generalize, per training schedule.

    python results/atlas.py results/runs/headline results/runs/atlas --out results/atlas --schedules plain,dat5000

Runs (folders or folders of folders, as plot.py takes them) are grouped into cells by their setting (every
option but the schedule and the seed: train.setting_name) and schedule (train.schedule_name). Per cell: n
finished seeds, k failures by the rule below (fixed before the runs: results/README.md, Atlas, pre-registration),
the rate with its 95% Wilson interval, Fisher's exact test of every schedule against the first in the same
setting, and mean [min, max] accuracies at 3x and 8x. Writes PREFIX.md (the overview table the README copies,
then the full tables), PREFIX.json (the same as data) and PREFIX.png (the rates with their intervals).
Unfinished runs are listed, never counted.
"""
import json
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's modules
import numpy as np  # noqa: E402

from data import ArgParser, die, write_text  # noqa: E402
from plot import find_runs, load_run, plt, save_figure  # noqa: E402  (plot.py picks matplotlib's file backend)
from train import SCHEDULE, identity, parser as train_parser, schedule_name, setting_name  # noqa: E402

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
             "fail_rate": len(fails) / len(done) if done else None, "ci95": wilson(len(fails), len(done)),
             "unfinished_seeds": [r["config"]["seed"] for r in runs if not r["finished"]]}
    for mult in (3, 8):
        for metric in ("state_acc", "recall_acc", "token_acc", "seq_acc"):
            entry[f"{metric}_{mult}x"] = spread([at(r, mult).get(metric) for r in done])
    entry["attn_off_state_3x"] = spread([at(r, 3).get("attn_off", {}).get("state_acc") for r in done])
    entry["probe_3x"] = spread([at(r, 3).get("probe_state_acc") for r in done])
    entry["seq_acc_3x_by_seed"] = [at(r, 3)["seq_acc"] for r in done]
    return entry

def atlas(runs, schedules):
    """One entry per setting and schedule; every schedule after the first is tested against the first."""
    groups = defaultdict(list)
    for run in runs:
        if schedule_name(run["config"]) in schedules:
            groups[(setting_name(run["config"]), schedule_name(run["config"]))].append(run)
    entries = [atlas_entry(sorted(rs, key=lambda r: r["config"]["seed"]), schedule)
               for (_, schedule), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], schedules.index(kv[0][1])))]
    first = {e["setting"]: e for e in entries if e["schedule"] == schedules[0]}
    for e in entries:
        base = first.get(e["setting"])
        if base is not None and e is not base and base["n"] and e["n"]:
            e[f"fisher_p_vs_{schedules[0]}"] = fisher_exact(e["n_fail"], e["n"], base["n_fail"], base["n"])
    return {"rule": f"a run fails to length-generalize if its sequence accuracy at 3x the training length is below "
                    f"{FAIL_BELOW}; a failure is a state failure if its state accuracy at 3x is below {STATE_OK}, "
                    f"else a recall failure", "cells": entries}

def atlas_overview(result, schedules):
    """One row per setting and schedule after the first: the README's table of failure rates, base against it."""
    if len(schedules) < 2:
        return []
    base, rows = schedules[0], []
    fails = lambda e: "-" if e is None or not e["n"] else (
        f"{e['n_fail']} of {e['n']} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
        + (f" ({e['n_state_fail']} state, {e['n_fail'] - e['n_state_fail']} recall)" if e["n_fail"] else ""))
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
    rates = ["| setting | schedule | n | fail (state / recall) | rate [95% CI] | Fisher p | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    accuracy = ["| setting | schedule | state 3x | recall 3x | token 3x | seq 3x | state 8x | recall 8x | token 8x "
                "| seq 8x | state, attention off, 3x | LSTM probe 3x |", "| --- " * 12 + "|"]
    for e in result["cells"]:
        rate = "-" if not e["n"] else f"{e['fail_rate']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
        p = e.get(f"fisher_p_vs_{schedules[0]}")
        seeds = ",".join(map(str, e["seeds"])) + (f" (unfinished: {','.join(map(str, e['unfinished_seeds']))})"
                                                   if e["unfinished_seeds"] else "")
        rates.append(f"| {e['setting']} | {e['schedule']} | {e['n']} | {e['n_fail']} ({e['n_state_fail']} / "
                     f"{e['n_fail'] - e['n_state_fail']}) | {rate} | {'-' if p is None else f'{p:.3g}'} | {seeds} |")
        keys = [f"{m}_acc_{x}x" for x in (3, 8) for m in ("state", "recall", "token", "seq")]
        accuracy.append(f"| {e['setting']} | {e['schedule']} | " + " | ".join(
            fmt(e[k]) for k in keys + ["attn_off_state_3x", "probe_3x"]) + " |")
    by_seed = [f"- {e['setting']} {e['schedule']}: " + ", ".join(
        f"s{s} {a:.3f}" for s, a in zip(e["seeds"], e["seq_acc_3x_by_seed"])) for e in result["cells"]]
    return "\n".join([f"Rule: {result['rule']}. Fisher p: two-sided exact test against {schedules[0]} in the "
                      "same setting. Accuracies: mean [min, max] over the finished seeds.", ""] +
                     atlas_overview(result, schedules) + rates +
                     [""] + accuracy + ["", "Sequence accuracy at 3x, seed by seed:", ""] + by_seed) + "\n"

def plot_atlas(result, schedules, out):
    settings = list(dict.fromkeys(e["setting"] for e in result["cells"]))
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(settings)), 5))
    width = 0.8 / len(schedules)
    for i, schedule in enumerate(schedules):
        for e in (e for e in result["cells"] if e["schedule"] == schedule and e["n"]):
            x = settings.index(e["setting"]) + (i - (len(schedules) - 1) / 2) * width
            below, above = max(0.0, e["fail_rate"] - e["ci95"][0]), max(0.0, e["ci95"][1] - e["fail_rate"])
            ax.errorbar(x, e["fail_rate"], [[below], [above]],
                        fmt="o", color=f"C{i}", capsize=4, label=schedule)
            ax.annotate(f"{e['n_fail']}/{e['n']}" + ("*" if e["unfinished_seeds"] else ""), (x, e["ci95"][1]),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
    handles = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(handles.values(), handles.keys(), fontsize=8)
    ax.set_xticks(range(len(settings)), settings, rotation=20, ha="right", fontsize=8)
    ax.set(ylim=(-0.05, 1.1), ylabel="failure rate (95% Wilson interval)",
           title=f"runs failing to length-generalize (sequence accuracy at 3x < {FAIL_BELOW})\n"
                 "k/n above each interval; * = some seeds of the cell unfinished")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out)

def main(argv=None):
    parser = ArgParser(description="Failure rates per setting and schedule over run folders (the shortcut atlas).")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX.md, PREFIX.json and PREFIX.png")
    parser.add_argument("--schedules", default="plain,dat5000", help="the schedules to compare, the first being the "
                        "one the others are tested against")
    args = parser.parse_args(argv)
    if not os.path.basename(args.out) or "." in os.path.basename(args.out):
        die(f"--out {args.out!r}: give a path without extension (.md, .json and .png are added)")
    runs = find_runs(args.runs)
    if not runs:
        die(f"no run folders (with config.json and log.jsonl) in {' '.join(args.runs)}")
    schedules = args.schedules.split(",")
    result = atlas([load_run(r) for r in runs], schedules)
    write_text(args.out + ".json", json.dumps(result, indent=1))
    write_text(args.out + ".md", atlas_markdown(result, schedules))
    plot_atlas(result, schedules, args.out + ".png")
    print(f"wrote {args.out}.md, .json, .png: {len(runs)} runs, {len(result['cells'])} cells")

if __name__ == "__main__":
    main()
