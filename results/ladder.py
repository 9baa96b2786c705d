"""
The cores ladder: each recurrent core alone (`--model lstm --core ...`, no attention) on a group. Per core and group,
how many runs learn the group at the training length and extend it to 3x and 8x (state accuracy of the model's head at
least 0.98 at that length, eval.json), k of n with 95% Wilson intervals, beside what the theory of each core predicts
(results/PREREGISTRATION.md: entry 66 for the groups, entries 70 and 71 for the automata) and whether that held;
beside them, the same counts by the linear probe of the
core (eval.py --probe: whether the core holds the state, whatever its head reads).

    python results/ladder.py results/runs/cores results/runs/baselines --out results/cores_ladder   # .md .json .png
    python results/ladder.py results/runs/automata_cores --theory automata --out results/automata_ladder

Only runs of the default setting but for the core, its sub-options and the group, of a core the ladder holds, are
counted (a run of another setting, e.g. the Transformer of baselines/, is left out and said so).
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script, write_json, write_text

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from atlas import STATE_OK, wilson
from plot import check_out, load_runs, record, save_figure
from options import ALL_CORE_OPTIONS, IDENTITY, SCHEDULE, identity, is_default, schedule_name

NAMES_A_CORE = ("core",) + ALL_CORE_OPTIONS  # a run's core and its sub-options; the group names the task
LENGTHS = (1, 3, 8)
FLOOR = 10  # seeds a cell needs before its prediction is judged

def core_name(config):
    """The core of a run as the ladder names it, e.g. gru, diagonal signed, delta beta 2 x2."""
    c = identity(config)
    if c["core"] == "diagonal":
        return f"diagonal {c['transitions']}"
    if c["core"] == "delta":
        return f"delta beta {c['beta_max']}" + (f" x{c['householder']}" if c["householder"] > 1 else "")
    return c["core"]

# What one recurrent layer of each core can express at any length (entries 66 and 70 give the papers), per theory:
# its groups (or automata), the ones each core can track, and the cells theory does not settle. The prediction for a
# cell it can track: at least half its seeds extend to 3x; for one it cannot: no seed extends to 8x; an unsettled cell
# has none.
LINEAR = ("diagonal unit", "diagonal signed", "diagonal complex", "delta beta 2", "delta beta 2 x2")
THEORIES = {"groups": (("Z2", "Z5", "S3"), {"lstm": ("Z2", "Z5", "S3"), "gru": ("Z2", "Z5", "S3"), "diagonal unit": (),
                                            "diagonal signed": ("Z2",), "diagonal complex": ("Z2", "Z5"),
                                            "delta beta 2": ("Z2",), "delta beta 2 x2": ("Z2", "Z5", "S3")}, {}),
            "automata": (("F2", "G4", "R5"), {"lstm": ("F2", "G4", "R5"), "gru": ("F2", "G4", "R5"),
                                              "diagonal unit": ("F2",), "diagonal signed": ("F2",),
                                              "diagonal complex": ("F2", "R5"), "delta beta 2": ("F2",),
                                              "delta beta 2 x2": ("F2", "R5")}, {core: ("G4",) for core in LINEAR})}
GROUPS, TRACKS, _ = THEORIES["groups"]  # the groups' theory, which the hybrids of results/cores_hybrid.py follow

def core_cell(config, groups=GROUPS):
    """(core, group) of a run of the default setting but for its model, core, group and schedule, with a core the
    ladder holds and one of groups; None for any other run (e.g. delta beta 1, or a run at d_model 128)."""
    c = identity(config)
    other = [k for k in IDENTITY if k not in NAMES_A_CORE + SCHEDULE + ("group", "model")
             and not is_default(k, c[k], c)]
    return None if other or c["group"] not in groups or core_name(config) not in TRACKS else \
        (core_name(config), c["group"])

def counts(cell_runs, key="state_acc"):
    """{mult: k} runs whose state accuracy (key: the head's, or probe_state_acc) at mult x the training length is at
    least STATE_OK."""
    return {m: sum((record(r, m) or {}).get(key, 0.0) >= STATE_OK for r in cell_runs) for m in LENGTHS}

def ladder(all_runs, theory="groups"):
    groups, tracks, unsettled = THEORIES[theory]
    cells, left_out = defaultdict(list), []
    for run in all_runs:
        where = core_cell(run["config"], groups)
        if where is None or run["config"]["model"] != "lstm" or schedule_name(run["config"]) != "plain":
            left_out.append(run["dir"])
        elif run["finished"]:
            cells[where].append(run)
    entries = []
    for core in tracks:
        for group in groups:
            done = cells.get((core, group), [])
            k, probe, n = counts(done), counts(done, "probe_state_acc"), len(done)
            can, settled = group in tracks[core], group not in unsettled.get(core, ())
            held = None if n < FLOOR or not settled else (2 * k[3] >= n if can else k[8] == 0)
            predicted = "extends" if can else "cannot" if settled else "not settled"
            entries.append({"core": core, "group": group, "n": n, "predicted": predicted,
                            "held": held, "seeds": sorted(r["config"]["seed"] for r in done),
                            **{f"k_{m}x": k[m] for m in LENGTHS}, **{f"ci95_{m}x": wilson(k[m], n) for m in LENGTHS},
                            **{f"k_probe_{m}x": probe[m] for m in LENGTHS}})
    return {"rule": f"a run learns a group at 1x, or extends it to 3x or 8x, if its state accuracy there (the model's "
                    f"head) is at least {STATE_OK}; the probe's counts: the same with the linear probe of the core "
                    f"(eval.py --probe) in place of the head; prediction held: for a group the core can track, at "
                    "least half the seeds extend to 3x; for one it cannot, no seed extends to 8x",
            "cells": entries, "left_out": len(left_out)}

def groups_of(result):
    """The groups (or automata) of a ladder, in its order."""
    return list(dict.fromkeys(e["group"] for e in result["cells"]))

def overview(result):
    """Core by group, each cell: the seeds that learn the group at 1x / extend it to 3x / to 8x, of n, by the head and
    (after "probe") by the linear probe of the core."""
    cells, groups = {(e["core"], e["group"]): e for e in result["cells"]}, groups_of(result)
    cell = lambda e: "-" if not e["n"] else \
        f"{e['k_1x']} / {e['k_3x']} / {e['k_8x']} of {e['n']}; probe {e['k_probe_1x']} / {e['k_probe_3x']} / " \
        f"{e['k_probe_8x']} ({ {'extends': 'can'}.get(e['predicted'], e['predicted'])})"
    return [f"| core | {' | '.join(groups)} |", "| --- " * (len(groups) + 1) + "|"] + [
        f"| {core} | " + " | ".join(cell(cells[(core, group)]) for group in groups) + " |" for core in TRACKS]

NONLINEAR = ("lstm", "gru")  # the recurrences theory gives every finite group; the others are linear in the state

def pooled(result):
    """The cells pooled by kind: what no layer of the core can express, and what a linear or a nonlinear core can."""
    kinds = [("cells no layer of the core can express", lambda e: e["predicted"] == "cannot"),
             ("linear cores, cells they can express", lambda e: e["predicted"] == "extends"
              and e["core"] not in NONLINEAR),
             ("the LSTM and GRU", lambda e: e["core"] in NONLINEAR),
             ("cells theory does not settle", lambda e: e["predicted"] == "not settled")]
    lines = []
    for label, kind in kinds:
        cells = [e for e in result["cells"] if kind(e) and e["n"]]
        if not cells and label.startswith("cells theory"):  # a theory that settles every cell
            continue
        n = sum(e["n"] for e in cells)
        counts = lambda key: " / ".join(str(sum(e[f"{key}_{m}x"] for e in cells)) for m in LENGTHS)
        lines.append(f"- {label} ({len(cells)} cells): {counts('k')} of {n}; probe {counts('k_probe')}")
    return ["Pooled, seeds that learn at 1x / extend to 3x / to 8x (by the head; then by the probe):", ""] + lines

def markdown(result):
    rate = lambda e, m: "-" if not e["n"] else \
        f"{e[f'k_{m}x']} of {e['n']} [{e[f'ci95_{m}x'][0]:.2f}, {e[f'ci95_{m}x'][1]:.2f}]"
    lines = [f"Rule: {result['rule']}. Intervals: 95% Wilson.", "",
             "Seeds that learn the group at 1x / extend it to 3x / to 8x, of n, by the head; then the same by the "
             "linear probe of the core (can, cannot: what theory says one layer of the core can track):", "",
             *overview(result), "", *pooled(result), "",
             "| core | group | predicted | learns at 1x | extends to 3x | extends to 8x | prediction |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in result["cells"]:
        verdict = {None: f"to be judged at {FLOOR} seeds", True: "held", False: "did not hold"}[e["held"]]
        lines.append(f"| {e['core']} | {e['group']} | {e['predicted']} | {rate(e, 1)} | {rate(e, 3)} | {rate(e, 8)} "
                     f"| {verdict} |")
    return "\n".join(lines) + "\n"

def plot_ladder(result, out):
    """A panel per group: per core, the share of runs that learn it at 1x, extend it to 3x and to 8x."""
    cores, groups = list(TRACKS), groups_of(result)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4.5), sharey=True)
    for ax, group in zip(axes, groups):
        cells = {e["core"]: e for e in result["cells"] if e["group"] == group}
        for j, m in enumerate(LENGTHS):
            x = np.arange(len(cores)) + 0.27 * (j - 1)
            rate = [cells[c][f"k_{m}x"] / cells[c]["n"] if cells[c]["n"] else np.nan for c in cores]
            low = [max(0, r - cells[c][f"ci95_{m}x"][0]) if cells[c]["n"] else 0 for r, c in zip(rate, cores)]
            high = [max(0, cells[c][f"ci95_{m}x"][1] - r) if cells[c]["n"] else 0 for r, c in zip(rate, cores)]
            ax.bar(x, rate, 0.27, yerr=[low, high], capsize=2, color=f"C{j}", label=f"{m}x")
        for i, c in enumerate(cores):  # the prediction: shaded where theory says the core can track the group
            if cells[c]["predicted"] == "extends":
                ax.axvspan(i - 0.45, i + 0.45, color="0.9", zorder=0)
        ax.set_xticks(range(len(cores)), cores, rotation=40, ha="right", fontsize=8)
        ax.set(title=group, ylim=(0, 1.05))
    axes[0].set_ylabel(f"share of runs with state accuracy >= {STATE_OK}")
    axes[-1].legend(title="test length", loc="upper center")
    fig.suptitle("each core alone: learns at 1x, extends to 3x and 8x (shaded: theory says it can track the group)",
                 fontsize=9)
    save_figure(fig, out)

def main(argv=None):
    parser = ArgParser(description="The cores ladder: which recurrent cores learn and extend which groups.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.md, PREFIX.json, PREFIX.png")
    parser.add_argument("--theory", choices=THEORIES, default="groups", help="the tasks and what theory predicts")
    args = parser.parse_args(argv)
    check_out(args.out + ".png")
    result = ladder(load_runs(args.runs), args.theory)
    if not any(e["n"] for e in result["cells"]):
        die(f"no finished run of a core alone on {', '.join(groups_of(result))} in {' '.join(args.runs)}")
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", markdown(result))
    plot_ladder(result, args.out + ".png")
    print(f"wrote {args.out}.md, .json, .png: {sum(e['n'] for e in result['cells'])} runs in "
          f"{sum(bool(e['n']) for e in result['cells'])} cells ({result['left_out']} runs of other settings left out)")

if __name__ == "__main__":
    run_script(main)
