"""
Cores in hybrids: the lstm_attn hybrid with each recurrent core, plain against a delayed schedule, beside what the
core alone does (the cores ladder, results/ladder.py). Per core and group: does the core alone extend the group to 3x,
how often the plain and the delayed hybrid fail the atlas's 3x rule, and in how many runs the core holds the state at
3x with attention gated off; each prediction of results/PREREGISTRATION.md (entry 67) held or not.

    python results/cores_hybrid.py results/runs/cores_hybrid results/runs/cores results/runs/baselines \\
        --out results/cores_hybrid                                                          # PREFIX.md, PREFIX.json

The delayed schedule is fixed by theory: --delay auto where one layer of the core can track the group, DAT 5000 where
it cannot (--delay auto switches attention on once the core has the state, so for such a core never). Runs of any
other setting or schedule are left out and counted.
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script, schedule_name, write_json, write_text

from atlas import FAIL_BELOW, STATE_OK, atlas_entry, fisher_exact, wilson
from ladder import FLOOR, GROUPS, TRACKS, core_cell, ladder
from plot import load_runs
from train import IDENTITY

LOST = 0.8  # a hybrid whose core cannot track the group is predicted lost: at least this share of its runs fail

def delayed(core, group):
    """The schedule a cell's plain hybrid is compared with (pre-registered)."""
    return "datauto" if group in TRACKS[core] else "dat5000"

def verdict(can, plain, late):
    """The prediction for a cell: where the core can track the group, the delayed hybrid fails in fewer runs than the
    plain one and its core holds the state in more; where it cannot, both fail in at least LOST of their runs and no
    core holds the state. None until both schedules have FLOOR runs."""
    if min(plain["n"], late["n"]) < FLOOR:
        return None
    if can:
        return late["n_fail"] < plain["n_fail"] and late["n_state_held"] > plain["n_state_held"]
    return all(e["n_fail"] >= LOST * e["n"] and e["n_state_held"] == 0 for e in (plain, late))

def cores_hybrid(all_runs):
    alone = {(e["core"], e["group"]): e for e in ladder(all_runs)["cells"]}
    cells, left_out = defaultdict(list), 0
    for run in all_runs:
        where, model = core_cell(run["config"]), run["config"]["model"]
        schedule = schedule_name(run["config"], IDENTITY)
        if where is None or schedule not in ("plain", delayed(*where) if model == "lstm_attn" else "plain") \
                or model not in ("lstm", "lstm_attn"):
            left_out += 1
        elif model == "lstm_attn" and run["finished"]:
            cells[where + (schedule,)].append(run)
    entries = []
    for core in TRACKS:
        for group in GROUPS:
            plain_runs, late_runs = cells.get((core, group, "plain")), cells.get((core, group, delayed(core, group)))
            if not (plain_runs and late_runs):
                continue
            plain, late = atlas_entry(plain_runs, "plain"), atlas_entry(late_runs, delayed(core, group))
            if None in (plain["n_state_held"], late["n_state_held"]):
                die(f"the {core} hybrid on {group}: some runs were scored without eval.py --attn_off")
            can = group in TRACKS[core]
            entries.append({"core": core, "group": group, "can": can, "alone": alone[(core, group)],
                            "plain": plain, "delayed": late, "held": verdict(can, plain, late),
                            "fisher_p": fisher_exact(late["n_fail"], late["n"], plain["n_fail"], plain["n"])})
    rule = (f"a hybrid run fails if its sequence accuracy at 3x is below {FAIL_BELOW}; its core holds the state if "
            f"its state accuracy at 3x with attention gated off is at least {STATE_OK}; the core alone extends a "
            f"group if its state accuracy at 3x is at least {STATE_OK} (the ladder). Prediction held: where the core "
            "can track the group, the delayed hybrid fails in fewer runs than plain and its core holds the state in "
            f"more; where it cannot, both schedules fail in at least {LOST:.0%} of their runs and no core holds the "
            f"state; judged at {FLOOR} runs a schedule")
    return {"rule": rule, "cells": entries, "left_out": left_out}

def rate(k, n):
    low, high = wilson(k, n)
    return f"{k} of {n} [{low:.2f}, {high:.2f}]" if n else "-"

def markdown(result):
    lines = [f"Rule: {result['rule']}. Intervals: 95% Wilson; Fisher p: two-sided exact test of the delayed "
             "schedule's failures against plain's. Can, cannot: what theory says one layer of the core can track.", "",
             "| core | group | the core alone extends to 3x | plain fails | delayed fails | Fisher p | core holds "
             "the state at 3x: plain / delayed | prediction |", "| --- " * 8 + "|"]
    for e in result["cells"]:
        plain, late, alone = e["plain"], e["delayed"], e["alone"]
        fails = lambda c: rate(c["n_fail"], c["n"]) + (f" ({c['n_state_fail']} state)" if c["n_fail"] else "")
        judged = {None: f"to be judged at {FLOOR} runs", True: "held", False: "did not hold"}[e["held"]]
        lines.append(f"| {e['core']} | {e['group']} ({'can' if e['can'] else 'cannot'}) | "
                     f"{rate(alone['k_3x'], alone['n'])} | {fails(plain)} | {fails(late)} ({late['schedule']}) | "
                     f"{e['fisher_p']:.2g} | {rate(plain['n_state_held'], plain['n'])} / "
                     f"{rate(late['n_state_held'], late['n'])} | {judged} |")
    return "\n".join(lines) + "\n"

def main(argv=None):
    parser = ArgParser(description="Cores in hybrids: plain against a delayed schedule, beside the core alone.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them (the hybrids and the ladder)")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    result = cores_hybrid(load_runs(args.runs))
    if not result["cells"]:
        die(f"no core and group in {' '.join(args.runs)} has finished hybrid runs under plain and the delayed schedule")
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", markdown(result))
    print(f"wrote {args.out}.md, .json: {len(result['cells'])} cells ({result['left_out']} runs of other settings "
          "or schedules left out)")

if __name__ == "__main__":
    run_script(main)
