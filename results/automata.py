"""
Beyond groups: the lstm_attn hybrid on automata that are not groups, plain, DAT 5000 and --delay auto
(results/PREREGISTRATION.md, entry 71). Per automaton and schedule: failures of the atlas's 3x rule, the runs whose
LSTM holds the state at 3x (the linear probe, eval.py --probe) and the runs that read it without attention (eval.py
--attn_off), k of n with 95% Wilson intervals, and Fisher's exact test of each delayed schedule against plain; then
each prediction of entry 71, judged once its cell has 10 runs a schedule; then, post hoc, how far the LSTM had
learned recall alone when attention joined, on the automata and on the groups given beside them.

    python results/automata.py results/runs/automata --out results/automata   # .md .json
    python results/automata.py results/runs/automata GROUPS... --out ...   # the groups' runs in the post hoc table
                                                                            # (grid.py: GROUPS_AT_DEFAULT)

Only lstm_attn runs at the default setting but for the machine and the schedule are counted.
"""
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script, write_json, write_text

from atlas import FAIL_BELOW, STATE_OK, atlas_entry, count, fisher_exact, spread, wilson
from data import group_names
from plot import load_runs, outside_runs, record
from options import IDENTITY, SCHEDULE, identity, is_default, schedule_name

AUTOMATA = ("F2", "G4", "G6", "R3", "R5")
SCHEDULES = ("plain", "dat5000", "datauto")
FLOOR = 10  # runs a schedule needs before a cell's predictions are judged
ONE_BIT = ("F2",)  # (a): where plain is predicted to fail in at most 2 of 10; elsewhere in at least SHORTCUT
SHORTCUT, CURED, PROBE_HOLDS, CALLED_RIGHT = 3, 1, 8, 0.8  # the pre-registered bars of (a), (b), (c)

def cell_of(config):
    """(machine, schedule) of an lstm_attn run at the default setting but for those two, its schedule one of
    SCHEDULES; None for any other run."""
    c = identity(config)
    other = [k for k in IDENTITY if k not in SCHEDULE + ("group",) and not is_default(k, c[k], c)]
    schedule = schedule_name(config)
    return None if other or c["model"] != "lstm_attn" or schedule not in SCHEDULES else (c["group"], schedule)

def judge(automaton, entries, full):
    """Entry 71's (a), (b) and (c) for one automaton's {schedule: atlas entry}: True or False, None until the runs
    it needs are in (full: every schedule has FLOOR runs)."""
    if not full:
        return {"a": None, "b": None, "c": None}
    plain, delayed = entries["plain"], [entries[s] for s in SCHEDULES[1:]]
    one_bit = automaton in ONE_BIT
    shortcut = plain["n_fail"] >= SHORTCUT
    return {"a": plain["n_fail"] <= SHORTCUT - 1 if one_bit else shortcut,
            "b": all(e["n_fail"] <= CURED for e in delayed) if shortcut else "not judged: plain failed in fewer than "
                 f"{SHORTCUT}",
            "c": all(e["n_probe_holds"] >= PROBE_HOLDS for e in delayed)}

def automata(all_runs):
    cells = defaultdict(list)
    for run in all_runs:
        where = cell_of(run["config"])
        if where is not None and where[0] in AUTOMATA:
            cells[where].append(run)
    rows, plain_runs = [], []
    for automaton in AUTOMATA:
        if not any((automaton, s) in cells for s in SCHEDULES):
            continue
        entries = {s: atlas_entry(sorted(cells[(automaton, s)], key=lambda r: r["config"]["seed"]), s)
                   for s in SCHEDULES if cells[(automaton, s)]}
        for e in entries.values():
            if None in (e["n_probe_holds"], e["n_reads_without_attention"]):
                die(f"automaton {automaton} ({e['schedule']}): some runs were scored without eval.py --attn_off "
                    "--probe: score them again with both")
            if e["schedule"] != "plain" and "plain" in entries and entries["plain"]["n"] and e["n"]:
                e["fisher_p_vs_plain"] = fisher_exact(e["n_fail"], e["n"], entries["plain"]["n_fail"],
                                                      entries["plain"]["n"])
        full = len(entries) == len(SCHEDULES) and all(e["n"] >= FLOOR for e in entries.values())
        rows.append({"automaton": automaton, "schedules": entries, "held": judge(automaton, entries, full)})
        plain_runs += [r for r in cells[(automaton, "plain")] if r["finished"]]
    # (c), second half: over every plain run, the probe at 3x calls the verdict (pass if it holds) right
    passes = lambda run: record(run, 3)["seq_acc"] >= FAIL_BELOW
    holds = lambda run: (record(run, 3).get("probe_state_acc") or 0.0) >= STATE_OK
    right = sum(passes(r) == holds(r) for r in plain_runs)
    all_in = len(rows) == len(AUTOMATA) and all(r["schedules"].get("plain", {}).get("n", 0) >= FLOOR for r in rows)
    return {"rule": f"a run fails if its sequence accuracy at 3x is below {FAIL_BELOW} (a state failure if its state "
                    f"accuracy at 3x is below {STATE_OK}); the LSTM holds the state if the probe's state accuracy at "
                    f"3x is at least {STATE_OK}; the model reads it without attention if its state accuracy at 3x "
                    f"with attention gated off is at least {STATE_OK}",
            "cells": rows, "plain_called_right": right, "plain_n": len(plain_runs),
            "plain_called_right_ci95": wilson(right, len(plain_runs)),
            "plain_called_held": right >= CALLED_RIGHT * len(plain_runs) if all_in else None,
            "before_attention": before_attention(all_runs)}

def recall_alone(run):
    """A delayed run's (step attention joined, None if never; step of the log's last periodic eval with the gate at 0,
    None if none; recall at 1x there, the recurrent part alone; recall at 1x at its last eval). A cell with a run
    lacking a value shows none (spread)."""
    joined = run["config"].get("attn_on_step", run["config"]["delay"])  # older configs record only a fixed delay
    evals = [e for e in run["log"] if "recall_acc_1x" in e]
    alone = [e for e in evals if e["gate"] == 0.0]  # the log records each eval's gate
    last_alone = (alone[-1]["step"], alone[-1]["recall_acc_1x"]) if alone else (None, None)
    return joined, *last_alone, evals[-1]["recall_acc_1x"] if evals else None  # None: a log without evals

def before_attention(all_runs):
    """Post hoc, not pre-registered: per machine (the automata, then the groups among all_runs) and delayed schedule,
    over the finished runs attention joined: the step it joined, how far the recurrent part had learned recall alone
    at the last eval before (gate 0), and recall at the end; runs attention never joined are counted apart."""
    cells = defaultdict(list)
    for run in all_runs:
        where = cell_of(run["config"]) if run["finished"] else None
        if where is not None and where[1] != "plain":
            cells[where].append(recall_alone(run))
    order = lambda cell: (cell[0] not in AUTOMATA, group_names().index(cell[0]), SCHEDULES.index(cell[1]))
    rows = []
    for (machine, schedule), measured in sorted(cells.items(), key=lambda item: order(item[0])):
        joined = [m for m in measured if m[0] is not None]
        alone = [m for m in joined if m[1] is not None]
        rows.append({"machine": machine, "schedule": schedule, "n": len(measured),
                     "n_never_joined": len(measured) - len(joined), "joined_at_step": spread([m[0] for m in joined]),
                     "n_alone": len(alone), "alone_at_step": spread([m[1] for m in alone]),
                     "recall_1x_alone": spread([m[2] for m in alone]),
                     "recall_1x_at_the_end": spread([m[3] for m in joined])})
    return rows

def markdown(result):
    fails = lambda e: f"{e['n_fail']} of {e['n']} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]" + (
        f" ({e['n_state_fail']} state; {e['n_fail_1x']} already at 1x)" if e["n_fail"] else "")
    verdict = lambda v: {None: f"to be judged at {FLOOR} runs a schedule", True: "held", False: "did not hold"}.get(
        v, v)
    lines = [f"Rule: {result['rule']}. Intervals: 95% Wilson; Fisher's exact test (two-sided) against plain.", "",
             "| automaton | schedule | fails the 3x rule | LSTM holds the state (probe) | reads the state without "
             "attention | Fisher p |", "| --- | --- | --- | --- | --- | --- |"]
    for row in result["cells"]:
        for s, e in row["schedules"].items():
            p = e.get("fisher_p_vs_plain")
            lines.append(f"| {row['automaton']} | {s} | {fails(e) if e['n'] else '-'} | {count(e, 'n_probe_holds')} | "
                         f"{count(e, 'n_reads_without_attention')} | {'-' if p is None else f'{p:.2g}'} |")
    lines += ["", "Entry 71's predictions, per automaton: (a) plain fails the 3x rule in at least "
              f"{SHORTCUT} of 10 runs ({', '.join(ONE_BIT)}: in at most {SHORTCUT - 1}); (b) where it does, DAT 5000 "
              f"and --delay auto each fail in at most {CURED}; (c) under both, the LSTM holds the state (probe) in at "
              f"least {PROBE_HOLDS} of 10.", ""]
    for row in result["cells"]:
        lines.append(f"- {row['automaton']}: " + "; ".join(f"({k}) {verdict(v)}" for k, v in row["held"].items()))
        unfinished = {s: e["unfinished_seeds"] for s, e in row["schedules"].items() if e["unfinished_seeds"]}
        lines += [f"  - {s}: seeds {', '.join(map(str, seeds))} not finished" for s, seeds in unfinished.items()]
    low, high = result["plain_called_right_ci95"]
    lines += ["", f"(c), plain: the probe at 3x calls the verdict right in {result['plain_called_right']} of "
              f"{result['plain_n']} plain runs [{low:.2f}, {high:.2f}] (predicted: at least {CALLED_RIGHT:.0%} of "
              f"the {FLOOR * len(AUTOMATA)}): {verdict(result['plain_called_held'])}."]
    spread_of = lambda v: "-" if v is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"
    steps = lambda v: "-" if v is None else f"{v[1]:.0f}" if v[1] == v[2] else f"{v[1]:.0f}-{v[2]:.0f}"
    lines += ["", "Post hoc, not pre-registered: under a delay, how far the LSTM had learned recall alone before "
              "attention joined. Per machine (the automata, then the groups at the default setting from the other "
              "experiments) and delayed schedule, over the finished runs attention joined: the step it joined; the "
              "training log's last periodic eval with the gate at 0 (at or before that step; --n_eval_train sequences "
              "at 1x) and the recall accuracy there; the recall accuracy at the last eval (step 8000, attention on); "
              "mean [min, max] over the runs. Under a fixed delay the eval falls on the step attention joins; under "
              "--delay auto it is up to 499 steps before, and a run that joined before step 500 has none.", "",
              "| machine | schedule | runs (attention never joined) | attention joined at step | runs with an eval "
              "before | at step | recall at 1x there, LSTM alone | recall at 1x at the end |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {c['machine']} | {c['schedule']} | {c['n']} ({c['n_never_joined']}) | {steps(c['joined_at_step'])} | "
              f"{c['n_alone']} | {steps(c['alone_at_step'])} | {spread_of(c['recall_1x_alone'])} | "
              f"{spread_of(c['recall_1x_at_the_end'])} |" for c in result["before_attention"]]
    return "\n".join(lines) + "\n"

def main(argv=None):
    parser = ArgParser(description="Beyond groups: the hybrid on automata, plain against the delayed schedules.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    outside_runs(args.out + ".md")
    result = automata(load_runs(args.runs))
    if not result["cells"]:
        die(f"no lstm_attn run on {', '.join(AUTOMATA)} in {' '.join(args.runs)}")
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", markdown(result))
    print(f"wrote {args.out}.md, .json: {sum(e['n'] for r in result['cells'] for e in r['schedules'].values())} "
          f"runs of {len(result['cells'])} automata")

if __name__ == "__main__":
    run_script(main)
