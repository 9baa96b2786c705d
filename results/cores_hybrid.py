"""
Cores in hybrids: the lstm_attn hybrid with each recurrent core, plain against a delayed schedule, beside what the
core alone does (the cores ladder, results/ladder.py). Per core and group: does the core alone extend the group to 3x,
how often the plain and the delayed hybrid fail the atlas's 3x rule, in how many runs the core holds the state at 3x
(the linear probe, eval.py --probe) and in how many the model reads it without attention (attention gated off,
eval.py --attn_off, the measure entry 67 judged by); each prediction of results/PREREGISTRATION.md (entry 67) held
or not.

    python results/cores_hybrid.py results/runs/cores_hybrid results/runs/cores --out results/cores_hybrid   # .md .json

The delayed schedule is fixed by theory: --delay auto where one layer of the core can track the group, DAT 5000 where
it cannot (--delay auto switches attention on once the core has the state, so for such a core never). Runs of
another setting are left out; hybrid runs under another schedule are counted. The LSTM's cells, from the committed
runs of the same setting (see results/grid.py's FIGURES), are shown for reference and not judged.
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script, write_json, write_text

from atlas import FAIL_BELOW, STATE_OK, atlas_entry, fisher_exact, wilson
from ladder import FLOOR, GROUPS, TRACKS, core_cell, ladder
from plot import load_runs, outside_runs
from options import schedule_name

LOST = 0.8  # a hybrid whose core cannot track the group is predicted lost: at least this share of its runs fail
REFERENCE = ("lstm",)  # the kit's own core: its cells are committed runs, shown beside the others, not judged

def delayed(core, group):
    """The schedule a cell's plain hybrid is compared with (pre-registered): --delay auto where one layer of the core
    can track the group, DAT 5000 where it cannot (--delay auto would never switch attention on)."""
    return "datauto" if group in TRACKS[core] else "dat5000"

def verdict(can, plain, late):
    """The prediction for a cell: where the core can track the group, a smaller share of the delayed hybrid's runs
    fail than of the plain one's, and a larger share of its runs read the state without attention; where it cannot, at
    least LOST of the runs fail under each schedule and none reads the state without attention (entry 67 wrote
    "the core holds the state" for this measure). None until both schedules have FLOOR runs."""
    if min(plain["n"], late["n"]) < FLOOR:
        return None
    share = lambda e, key: e[key] / e["n"]
    if can:
        return share(late, "n_fail") < share(plain, "n_fail") and \
            share(late, "n_reads_without_attention") > share(plain, "n_reads_without_attention")
    return all(e["n_fail"] >= LOST * e["n"] and e["n_reads_without_attention"] == 0 for e in (plain, late))

def cores_hybrid(all_runs):
    alone = {(e["core"], e["group"]): e for e in ladder(all_runs)["cells"]}
    cells, other_schedules = defaultdict(list), 0
    for run in all_runs:
        where = core_cell(run["config"])
        if where is None or run["config"]["model"] != "lstm_attn":  # the ladder's runs, or another setting
            continue
        schedule = schedule_name(run["config"])
        if schedule in ("plain", delayed(*where)):
            cells[where + (schedule,)].append(run)
        else:
            other_schedules += 1
    entries = []
    for core in TRACKS:
        for group in GROUPS:
            if not {(core, group, "plain"), (core, group, delayed(core, group))} & set(cells):
                continue
            # atlas_entry counts the finished runs and lists the unfinished seeds
            plain, late = (atlas_entry(sorted(cells[(core, group, s)], key=lambda r: r["config"]["seed"]), s)
                           if cells[(core, group, s)] else None for s in ("plain", delayed(core, group)))
            for e in (plain, late):
                if e is not None and None in (e["n_reads_without_attention"], e["n_probe_holds"]):
                    die(f"the {core} hybrid on {group} ({e['schedule']}): some of its runs were scored without "
                        "eval.py --attn_off --probe: score them again with both")
            can = group in TRACKS[core]
            both = plain is not None and late is not None
            entries.append({"core": core, "group": group, "can": can, "alone": alone[(core, group)],
                            "plain": plain, "delayed": late, "schedule": delayed(core, group),
                            "held": "reference" if core in REFERENCE else verdict(can, plain, late) if both else None,
                            "fisher_p": fisher_exact(late["n_fail"], late["n"], plain["n_fail"], plain["n"])
                            if both and plain["n"] and late["n"] else None})
    rule = (f"a hybrid run fails if its sequence accuracy at 3x is below {FAIL_BELOW}; its core holds the state if a "
            f"linear probe of it (eval.py --probe, fit on a 1x set of its own) reads the state at 3x with accuracy at "
            f"least {STATE_OK}; the model reads the state without attention if its state accuracy at 3x with "
            f"attention gated off (eval.py --attn_off) is at least {STATE_OK}; the core "
            f"alone extends a group if its state accuracy at 3x is at least {STATE_OK} (the ladder, --model lstm). "
            "Prediction held: where one layer of the core can track the group, a smaller share of the delayed "
            "hybrid's runs fail than of plain's, and a larger share of them read the state without attention; where "
            f"it cannot, at least {LOST:.0%} of the runs fail under each schedule and none reads the state without "
            f"attention; judged at {FLOOR} runs a schedule, by attention off as pre-registered")
    return {"rule": rule, "cells": entries, "other_schedules": other_schedules}

def rate(k, n):
    low, high = wilson(k, n)
    return f"{k} of {n} [{low:.2f}, {high:.2f}]" if n else "-"

def fails(e):
    """k of n runs that fail the 3x rule, with how many by the state and how many already at 1x."""
    if e is None or not e["n"]:
        return "-"
    parts = [f"{e['n_state_fail']} state"] + ([f"{e['n_fail_1x']} already at 1x"] if e["n_fail_1x"] else [])
    return rate(e["n_fail"], e["n"]) + (f" ({', '.join(parts)})" if e["n_fail"] else "")

def markdown(result):
    judged = {None: f"to be judged at {FLOOR} runs", True: "held", False: "did not hold", "reference": "reference"}
    measure = lambda e, key: "-" if e is None else rate(e[key], e["n"])
    pair = lambda e, key: f"{measure(e['plain'], key)} / {measure(e['delayed'], key)}"
    lines = [f"Rule: {result['rule']}. Intervals: 95% Wilson; Fisher p: two-sided exact test of the delayed "
             "schedule's failures against plain's. Can, cannot: whether one layer of the core can express the group "
             "at any length (results/PREREGISTRATION.md, entry 66), not whether it learns it. The delayed schedule "
             "is --delay auto (datauto) where it can, DAT 5000 (dat5000) where it cannot. The LSTM's cells are "
             "committed runs of the same setting, for reference.", "",
             "| core | group | the core alone extends to 3x | plain fails | delayed fails | Fisher p | the core holds "
             "the state at 3x (probe): plain / delayed | reads it without attention at 3x: plain / delayed | "
             "prediction |", "| --- " * 9 + "|"]
    never = []
    for e in result["cells"]:
        p = "-" if e["fisher_p"] is None else f"{e['fisher_p']:.2g}"
        lines.append(f"| {e['core']} | {e['group']} ({'can' if e['can'] else 'cannot'}) | "
                     f"{rate(e['alone']['k_3x'], e['alone']['n'])} | {fails(e['plain'])} | {fails(e['delayed'])} "
                     f"({e['schedule']}) | {p} | {pair(e, 'n_probe_holds')} | {pair(e, 'n_reads_without_attention')} | "
                     f"{judged[e['held']]} |")
        late = e["delayed"] or {}
        if "attn_on_step_by_seed" in late:
            never.append(f"- {e['core']} on {e['group']}: {late['attn_on_step_by_seed'].count(None)} of {late['n']}")
    unfinished = [f"- {e['core']} on {e['group']} {x['schedule']}: seeds {', '.join(map(str, x['unfinished_seeds']))}"
                  for e in result["cells"] for x in (e["plain"], e["delayed"]) if x and x["unfinished_seeds"]]
    return "\n".join(lines + (["", "Under --delay auto, runs whose attention never switched on (the core never "
                                "reached the state at the training length):", ""] + never if never else [])
                     + (["", "Unfinished runs, not counted above:", ""] + unfinished if unfinished else [])) + "\n"

def main(argv=None):
    parser = ArgParser(description="Cores in hybrids: plain against a delayed schedule, beside the core alone.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them (the hybrids and the ladder)")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    outside_runs(args.out)
    result = cores_hybrid(load_runs(args.runs))
    if not result["cells"]:
        die(f"no run in {' '.join(args.runs)} is an lstm_attn hybrid of the default setting but for its core")
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", markdown(result))
    print(f"wrote {args.out}.md, .json: {len(result['cells'])} cells ({result['other_schedules']} hybrid runs under "
          "other schedules left out)")

if __name__ == "__main__":
    run_script(main)
