"""
The atlas: how often each setting fails to length-generalize, per schedule, with 95% Wilson intervals and Fisher's
exact test against the first schedule. The failure rule is pre-registered (results/PREREGISTRATION.md).

    python results/atlas.py RUNS... --out results/atlas --schedules plain,dat5000      # PREFIX.md, .json, .png
    python results/atlas.py RUNS... --out results/width_rates --sweep d_model          # the figure against d_model

RUNS are run folders or folders holding them. Runs are grouped by their config without the seed (plot.load_runs
refuses a copied folder); unfinished runs are counted apart. A run's 3x record must be in its eval.json.
"""
import math
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script, write_json, write_text

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from model import block_layout
from plot import check_out, load_runs, record, recurrent_part, save_figure, shared_lengths
from options import IDENTITY, SCHEDULE, identity, model_config_of, schedule_name, setting_name

FAIL_BELOW = 0.80  # a run fails if its sequence accuracy at 3x is below this (pre-registered)
STATE_OK = 0.98    # a failure is a state failure if its state accuracy at 3x is below this, else a recall failure

def layout_of(config):
    """A run's blocks in order, e.g. ['rnn', 'attn', 'attn'] (model.block_layout)."""
    return block_layout(model_config_of(config))

def probed_after_attention(config):
    """Whether the block eval.py --probe reads (the last recurrent one) sees attention's output (interleaved,
    attn_lstm): its probe then measures a state attention may have helped to build."""
    layout = layout_of(config)
    recurrent = [i for i, kind in enumerate(layout) if kind == "rnn"]
    return bool(recurrent) and "attn" in layout[:recurrent[-1]]

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
    at = lambda run, mult: record(run, mult) or {}
    for run in done:
        if not at(run, 3):
            die(f"{os.path.join(run['dir'], 'eval.json')} has no 3x record: score it with eval.py --mults 1,3,...")
    fails = [r for r in done if at(r, 3)["seq_acc"] < FAIL_BELOW]
    config = runs[0]["config"]
    setting = {k: v for k, v in identity(config).items() if k not in SCHEDULE}
    changed = {k: v for k, v in setting.items()
               if k in ("model", "group", "pos", "device") or v != IDENTITY[k]}
    entry = {"setting": setting_name(config), "schedule": schedule, "config": changed,
             "seeds": [r["config"]["seed"] for r in done], "n": len(done), "n_fail": len(fails),
             "n_state_fail": sum(at(r, 3)["state_acc"] < STATE_OK for r in fails),
             "n_fail_1x": sum(at(r, 1).get("seq_acc", 1.0) < FAIL_BELOW for r in fails),  # not learned at all
             "fail_rate": len(fails) / len(done) if done else None, "ci95": wilson(len(fails), len(done)),
             "unfinished_seeds": [r["config"]["seed"] for r in runs if not r["finished"]]}
    for mult in (3, 8):
        for metric in ("state_acc", "recall_acc", "token_acc", "seq_acc"):
            entry[f"{metric}_{mult}x"] = spread([at(r, mult).get(metric) for r in done])
    # the two measures of where the state is (results/mechanism.py): None where a run was scored without them
    for key, get in (("n_probe_holds", lambda rec: rec.get("probe_state_acc")),
                     ("n_reads_without_attention", lambda rec: rec.get("attn_off", {}).get("state_acc"))):
        values = [get(at(r, 3)) for r in done]
        entry[key] = None if None in values else sum(a >= STATE_OK for a in values)
    entry["probe_after_attention"] = probed_after_attention(config)
    entry["attn_off_state_3x"] = spread([at(r, 3).get("attn_off", {}).get("state_acc") for r in done])
    entry["probe_3x"] = spread([at(r, 3).get("probe_state_acc") for r in done])
    entry["seq_acc_3x_by_seed"] = [at(r, 3)["seq_acc"] for r in done]
    if config.get("delay") == "auto":  # the step each seed's attention switched on at (None: never)
        entry["attn_on_step_by_seed"] = [r["config"].get("attn_on_step") for r in done]
    mults = shared_lengths(done, f"{entry['setting']} {schedule}")  # those of every seed: 3x at least
    longest = [at(r, mults[-1]) for r in done] if done else []
    if longest and all("recall_by_age" in rec for rec in longest):  # every run scored with eval.py --by_age
        entry["longest_mult"] = mults[-1]
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

def count(cell, key):
    """k of n runs of a cell that meet a measure (n_probe_holds, n_reads_without_attention), with its interval."""
    if cell[key] is None or not cell["n"]:
        return "-"
    low, high = wilson(cell[key], cell["n"])
    return f"{cell[key]} of {cell['n']} [{low:.2f}, {high:.2f}]"

MEASURES = (("n_probe_holds", "{part} holds the state (probe)"),
            ("n_reads_without_attention", "the model reads the state without attention (attention off)"))

def held_pooled(cells, schedules, part):
    """Both measures, pooled over the cells of each schedule and position encoding."""
    lines = []
    for schedule in schedules:
        for pos in ("none", "rope"):
            pool = [e for e in cells if e["schedule"] == schedule and e["config"]["pos"] == pos and e["n"]]
            parts = []
            for key, name in MEASURES:
                scored = [e for e in pool if e[key] is not None]
                if scored:
                    total = {key: sum(e[key] for e in scored), "n": sum(e["n"] for e in scored)}
                    parts.append(f"{name.format(part=part)} {count(total, key)} over {len(scored)} cells")
            if parts:
                lines.append(f"- {schedule}, position encoding {pos}: " + "; ".join(parts))
    return ["Where the state is at 3x, pooled over the cells above:", ""] + lines + [""] if lines else []

def atlas_markdown(result, schedules):
    fmt = lambda s: "-" if s is None else f"{s[0]:.3f} [{s[1]:.3f}, {s[2]:.3f}]"
    part = recurrent_part(e["config"].get("core", "lstm") for e in result["cells"])  # "LSTM" in every committed table
    rates = ["| setting | schedule | n | fail (state / recall / already at 1x) | rate [95% CI] | Fisher p | "
             + " | ".join(name.format(part=part) for _, name in MEASURES) + " | seeds |", "| --- " * 9 + "|"]
    accuracy = ["| setting | schedule | state 3x | recall 3x | token 3x | seq 3x | state 8x | recall 8x | token 8x "
                f"| seq 8x | state, attention off, 3x | {part} probe 3x |", "| --- " * 12 + "|"]
    for e in result["cells"]:
        rate = "-" if not e["n"] else f"{e['fail_rate']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
        p = e.get(f"fisher_p_vs_{schedules[0]}")
        seeds = ",".join(map(str, e["seeds"])) + (f" (unfinished: {','.join(map(str, e['unfinished_seeds']))})"
                                                   if e["unfinished_seeds"] else "")
        rates.append(f"| {e['setting']} | {e['schedule']} | {e['n']} | {e['n_fail']} ({e['n_state_fail']} / "
                     f"{e['n_fail'] - e['n_state_fail']} / {e['n_fail_1x']}) | {rate} | "
                     f"{'-' if p is None else f'{p:.3g}'} | {count(e, 'n_probe_holds')}"
                     f"{' (after attention)' * e['probe_after_attention']} | "
                     f"{count(e, 'n_reads_without_attention')} | {seeds} |")
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
                      f"same setting. Two measures of where the state is, each a count of runs reaching {STATE_OK} at "
                      f"3x: the {part} holds the state if a linear probe of its last recurrent block (eval.py --probe, "
                      "fit on a 1x set of its own) reads it; the model reads the state without attention if the head "
                      "gives it with attention gated off (eval.py --attn_off; the head was trained on the stream after "
                      "attention, so this measures the read-out, not where the state is); after attention: the probed "
                      "block sees attention's output. Accuracies: mean [min, max] over the finished seeds.",
                      ""] +
                     atlas_overview(result, schedules) + held_pooled(result["cells"], schedules, part) + rates + [""] +
                     accuracy + by_age_table(result["cells"]) +
                     ["", "Sequence accuracy at 3x, seed by seed:", ""] + by_seed + switched) + "\n"

def by_age_table(cells):
    """Recall at the longest test length all seeds of a cell were scored at, per band of steps back to the key, for
    the cells scored with --by_age."""
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
    """One labelled row per cell (setting, schedule), settings in shaded bands: every interval sits on its own
    label, with k/n at the right edge."""
    cells = [e for e in result["cells"] if e["n"]]
    settings = list(dict.fromkeys(e["setting"] for e in cells))
    fig, ax = plt.subplots(figsize=(8, 0.24 * len(cells) + 1.4))
    for y, e in enumerate(cells):
        color = f"C{schedules.index(e['schedule'])}"
        ax.errorbar(e["fail_rate"], y, xerr=np.array([error_bar(e)]).T, fmt="o", color=color, capsize=3, ms=4)
        ax.text(1.04, y, k_of_n(e), va="center", fontsize=7, color=color)
        if settings.index(e["setting"]) % 2:
            ax.axhspan(y - 0.5, y + 0.5, color="0.92", zorder=0)
    ax.set_yticks(range(len(cells)), [f"{e['setting']}  {e['schedule']}" for e in cells], fontsize=7)
    for label, e in zip(ax.get_yticklabels(), cells):
        label.set_color(f"C{schedules.index(e['schedule'])}")
    ax.set(xlim=(-0.05, 1.14), ylim=(len(cells) - 0.5, -0.5), xlabel="failure rate (95% Wilson interval)")
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"runs failing to length-generalize (sequence accuracy at 3x < {FAIL_BELOW}); k/n at the right"
                 + ("; * = some seeds unfinished" if any(e["unfinished_seeds"] for e in cells) else ""), fontsize=9)
    save_figure(fig, out)

def plot_atlas_sweep(result, schedules, key, out):
    """Failure rate against a numeric option (e.g. d_model): a panel per schedule, a line per setting without
    that option (cells at its default value included)."""
    default = IDENTITY[key]
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
    save_figure(fig, out)


def main(argv=None):
    parser = ArgParser(description="Failure rates per setting and schedule (the atlas) from run folders.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding run folders")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX.md, PREFIX.json and PREFIX.png")
    parser.add_argument("--schedules", default="plain,dat5000", help="the schedules compared, named as in run folders "
                        "(plain, dat5000, datauto, ...); the others are tested against the first")
    parser.add_argument("--sweep", metavar="OPTION", help="draw the failure rates against this numeric option of the "
                        "setting (d_model, train_len, ...) instead of a row per cell")
    args = parser.parse_args(argv)
    if not os.path.basename(args.out) or "." in os.path.basename(args.out):
        die(f"--out {args.out!r}: give a path without extension (.md, .json and .png are added)")
    check_out(args.out + ".png")
    default = IDENTITY.get(args.sweep)
    if args.sweep and (args.sweep in SCHEDULE or args.sweep not in IDENTITY or isinstance(default, bool)
                       or not isinstance(default, (int, float))):
        die(f"--sweep {args.sweep!r}: give a numeric option of the setting (d_model, train_len, ...)")
    runs = load_runs(args.runs)
    if not runs:
        die(f"no run folders (with config.json and log.jsonl) in {' '.join(args.runs)}")
    schedules = list(dict.fromkeys(args.schedules.split(",")))  # a repeated name counts once
    found = {schedule_name(r["config"]) for r in runs}
    missing = [s for s in schedules if s not in found]
    if missing:
        die(f"--schedules: no run has schedule {missing[0]!r} (the runs have {', '.join(sorted(found))})")
    result = atlas(runs, schedules)
    if not any(e["n"] for e in result["cells"]):
        unfinished = sum(len(e["unfinished_seeds"]) for e in result["cells"])
        die(f"no run of --schedules {','.join(schedules)} is finished ({unfinished} unfinished; finished: log.jsonl at "
            "--max_iters and eval.json): no rates to give")
    if args.sweep:
        plot_atlas_sweep(result, schedules, args.sweep, args.out + ".png")
    else:
        plot_atlas(result, schedules, args.out + ".png")
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", atlas_markdown(result, schedules))
    print(f"wrote {args.out}.md, .json, .png: {len(runs)} runs, {len(result['cells'])} cells")

if __name__ == "__main__":
    run_script(main)
