"""
Where the state lives: two measures of each hybrid run, kept apart, and how well the first predicts the 3x verdict.

- *the recurrent part holds the state*: eval.py --probe, a least-squares read-out of the last recurrent block fit on a
  1x set of its own, reaches STATE_OK at 3x (eval.json's probe_state_acc);
- *the model reads the state without attention*: eval.py --attn_off, the head (trained on the stream after attention)
  given the stream without it, reaches STATE_OK at 3x (eval.json's attn_off.state_acc). It measures the read-out.

    python results/mechanism.py results/runs/headline results/runs/atlas ... --new mechanism --out results/mechanism

Writes PREFIX.md, PREFIX.json and PREFIX.png. Counted: finished hybrid runs with the LSTM core, scored with --probe,
under plain, DAT 5000 or --delay auto. Pooled per schedule and position encoding over the layouts whose first block
is recurrent (lstm_attn, interleaved), then per cell (a layout whose probed block follows attention is marked). The
runs in folders named --new are the pre-registered confirmation (results/PREREGISTRATION.md, entry 68): each one's
verdict predicted from its probe at 3x (P3) and at 2x (P2), judged apart from the pool, then pooled with it. The
figure: the probe and attention-off state accuracy against test length in the default setting's cell.
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

from atlas import FAIL_BELOW, STATE_OK, fisher_exact, layout_of, probed_after_attention, wilson
from plot import check_out, load_runs, record, save_figure
from options import identity, schedule_name, setting_name

SCHEDULES = ("plain", "dat5000", "datauto")
PREDICTORS = {"P3": 3, "P2": 2}  # entry 68: a run is predicted to pass if its probe at this length is >= STATE_OK
HITS_NEEDED = 0.80               # entry 68: a predictor holds if it calls at least this share of the new runs right
JUDGED_AT = 40                   # entry 68: the new runs; the predictions are judged once all of them are finished
HEADLINE = "lstm_attn-S3"        # the default setting's cell, drawn in the figure

def measures(run):
    """What the tables count of one run: its verdict and both measures at 3x, its probe at every length."""
    at = lambda mult: record(run, mult) or {}
    if "probe_state_acc" not in at(3) or "attn_off" not in at(3):
        die(f"{run['dir']}: its eval.json has no probe or attention-off score at 3x: score it with eval.py --mults "
            "1,2,3,... --attn_off --probe")
    return {"dir": run["dir"], "seed": run["config"]["seed"], "group": run["config"]["group"],
            "passes": at(3)["seq_acc"] >= FAIL_BELOW,
            "state_fail": at(3)["state_acc"] < STATE_OK, "probe_3x": at(3)["probe_state_acc"],
            "holds": at(3)["probe_state_acc"] >= STATE_OK, "reads": at(3)["attn_off"]["state_acc"] >= STATE_OK,
            **{name: at(mult).get("probe_state_acc", 0.0) >= STATE_OK for name, mult in PREDICTORS.items()},
            "lengths": {rec["mult"]: {"probe": rec.get("probe_state_acc"), "off": rec.get("attn_off", {})
                                      .get("state_acc")} for rec in run["eval"]}}  # the figure's curves

def two_by_two(rows):
    """Pass against 'the recurrent part holds the state': counts, P(pass | holds), P(pass | not), Fisher p."""
    holds, nots = [r for r in rows if r["holds"]], [r for r in rows if not r["holds"]]
    k_h, k_n = sum(r["passes"] for r in holds), sum(r["passes"] for r in nots)
    return {"n": len(rows), "n_pass": k_h + k_n, "n_holds": len(holds), "n_pass_holds": k_h, "n_not": len(nots),
            "n_pass_not": k_n, "n_reads": sum(r["reads"] for r in rows),
            "n_reads_pass": sum(r["reads"] and r["passes"] for r in rows),
            "p_pass_holds": wilson_rate(k_h, len(holds)), "p_pass_not": wilson_rate(k_n, len(nots)),
            "fisher_p": fisher_exact(k_h, len(holds), k_n, len(nots)) if holds and nots else None}

def wilson_rate(k, n):
    return {"k": k, "n": n, "ci95": wilson(k, n)}

def cells_of(runs, new):
    """{(setting, schedule): [measures]}, the committed pool and the --new runs apart; and per setting its position
    encoding, whether its first block is recurrent (pooled) and whether its probe reads a block after attention."""
    pool, fresh, settings = defaultdict(list), defaultdict(list), {}
    for run in runs:
        c, schedule = run["config"], schedule_name(run["config"])
        if not run["finished"] or schedule not in SCHEDULES or identity(c)["core"] != "lstm" or \
                c["model"] in ("lstm", "transformer"):
            continue
        key = (setting_name(c), schedule)
        settings[key[0]] = {"pos": identity(c)["pos"], "pooled": layout_of(c)[0] == "rnn",
                            "after_attention": probed_after_attention(c)}
        (fresh if os.path.basename(os.path.dirname(run["dir"])) == new else pool)[key].append(measures(run))
    return pool, fresh, settings

def pooled(cells, settings):
    """Per schedule and position encoding, over the layouts whose first block is recurrent."""
    out = []
    for schedule in SCHEDULES:
        for pos in ("none", "rope"):
            keys = [k for k in cells if k[1] == schedule and settings[k[0]]["pos"] == pos
                    and settings[k[0]]["pooled"]]
            if keys:
                rows = [r for k in keys for r in cells[k]]
                out.append({"schedule": schedule, "pos": pos, "cells": len(keys), **two_by_two(rows)})
    return out

def confirmation(fresh):
    """Entry 68: each predictor's hits on the new runs, per cell and in all; held once JUDGED_AT runs are in."""
    groups = {**{setting: rows for (setting, _), rows in fresh.items()}, "all": sum(fresh.values(), [])}
    out = {}
    for label, rows in groups.items():
        hits = {name: wilson_rate(sum(r[name] == r["passes"] for r in rows), len(rows)) for name in PREDICTORS}
        out[label] = {**two_by_two(rows), "hits": hits,
                      "fail_below_at_2x": sum(not r["passes"] and not r["P2"] for r in rows)}
    everything = out.get("all", {"n": 0})
    judged = everything["n"] >= JUDGED_AT
    verdicts = {name: (everything["hits"][name]["k"] >= HITS_NEEDED * JUDGED_AT) if judged else None
                for name in PREDICTORS}
    verdicts["attention-off separates nothing"] = (everything["n_reads"] == 0) if judged else None
    return {"cells": out, "held": verdicts, "runs": sorted(sum(fresh.values(), []), key=lambda r: r["dir"])}

def rate(r):
    low, high = r["ci95"]
    return f"{r['k']} of {r['n']} [{low:.2f}, {high:.2f}]" if r["n"] else "-"

HEADER = ["runs", "pass", "holds: runs (pass)", "not: runs (pass)", "P(pass given holds)", "P(pass given not)",
          "Fisher p", "reads without attention: runs (pass)"]

def row(e):
    p = "-" if e["fisher_p"] is None else f"{e['fisher_p']:.2g}"
    return [str(e["n"]), str(e["n_pass"]), f"{e['n_holds']} ({e['n_pass_holds']})", f"{e['n_not']} ({e['n_pass_not']})",
            rate(e["p_pass_holds"]), rate(e["p_pass_not"]), p, f"{e['n_reads']} ({e['n_reads_pass']})"]

def table(first, rows):
    return [f"| {' | '.join(first + HEADER)} |", "| --- " * (len(first) + len(HEADER)) + "|"] + \
        [f"| {' | '.join(lead + row(e))} |" for lead, e in rows]

def disagreements(cells, settings):
    """Plain runs of the pooled layouts whose verdict the probe at 3x calls wrong, by kind."""
    plain = [r for (setting, schedule), rows in sorted(cells.items()) for r in rows
             if schedule == "plain" and settings[setting]["pooled"]]
    show = lambda r: f"`{r['dir'].split('runs/')[-1]}` {r['probe_3x']:.3f}"
    kinds = [("pass though the probe does not hold", lambda r: r["passes"] and not r["holds"]),
             ("fail though the probe holds (by the state)", lambda r: not r["passes"] and r["holds"] and
              r["state_fail"]),
             ("fail though the probe holds (by recall)", lambda r: not (r["passes"] or r["state_fail"]) and r["holds"])]
    return [f"- plain runs that {label} ({len(found)}; the probe at 3x after each): " + ", ".join(map(show, found))
            for label, found in ((label, [r for r in plain if kind(r)]) for label, kind in kinds)]

def confirmation_lines(c):
    """Entry 68's table, its verdicts and every new run."""
    judged = {None: f"to be judged at {JUDGED_AT} runs", True: "held", False: "did not hold"}
    right = lambda r, name: "yes" if r[name] == r["passes"] else "NO"
    return ["The confirmation (entry 68: new seeds, judged apart from the pool): hits of each predictor (P3: the probe "
            f"at 3x >= {STATE_OK}; P2: the probe at 2x >= {STATE_OK}, no 3x sequence read):", "",
            "| cell | runs | fail | P3 right | P2 right | failing runs whose probe is below the line at 2x |",
            "| --- | --- | --- | --- | --- | --- |",
            *[f"| {label} | {e['n']} | {e['n'] - e['n_pass']} | {rate(e['hits']['P3'])} | {rate(e['hits']['P2'])} | "
              f"{e['fail_below_at_2x']} of {e['n'] - e['n_pass']} |" for label, e in c["cells"].items()], "",
            *table(["cell"], [([label], e) for label, e in c["cells"].items()]), "",
            f"Predictions (at least {HITS_NEEDED:.0%} of {JUDGED_AT} right; attention off reaches the line in none): "
            + "; ".join(f"{k} {judged[v]}" for k, v in c["held"].items()) + ".", "",
            "Run by run (seed, group, verdict, the probe at 3x, P3 right, P2 right): " + ", ".join(
                f"s{r['seed']} {r['group']} {'pass' if r['passes'] else 'fail'} {r['probe_3x']:.3f} {right(r, 'P3')} "
                f"{right(r, 'P2')}" for r in c["runs"]), ""]

def markdown(result):
    pooled_table = lambda entries: table(["schedule", "position encoding", "cells"],
                                         [([e["schedule"], e["pos"], str(e["cells"])], e) for e in entries])
    after = lambda setting: " (after attention)" * result["settings"][setting]["after_attention"]
    lines = [f"Rule: {result['rule']}.", "", "Pooled over the committed runs (layouts whose first block is recurrent: "
             "lstm_attn and interleaved; interleaved's probe reads its second LSTM, which sees attention's output):",
             "", *pooled_table(result["pooled"]), ""]
    if result["confirmation"]["runs"]:
        lines += [*confirmation_lines(result["confirmation"]), "The committed pool and the new runs together:", "",
                  *pooled_table(result["pooled_with_new"]), ""]
    return "\n".join(lines + curves_table(result["curves"]) + [
        "Where the probe and the verdict disagree (committed runs, the pooled layouts):", "",
        *disagreements(result["cell_rows"], result["settings"]), "",
        "Per cell (setting and schedule; \"after attention\": the probed block sees attention's output):", "",
        *table(["setting", "schedule"], [([s + after(s), sch], e) for (s, sch), e in result["per_cell"]])]) + "\n"

MEASURE_NAMES = {"probe": "the LSTM holds the state: linear probe of its output",
                 "off": "the model reads the state without attention: attention gated off"}

def curves(cells):
    """The figure's curves, in the default setting's cell: plain runs that pass, plain runs that fail, DAT 5000 runs;
    per measure the median and the min and max over runs at each test length all of them were scored at."""
    plain = cells.get((HEADLINE, "plain"), [])
    groups = [("plain, pass", [r for r in plain if r["passes"]]),
              ("plain, fail", [r for r in plain if not r["passes"]]),
              ("DAT 5000", cells.get((HEADLINE, "dat5000"), []))]
    out = []
    for label, rows in groups:
        if rows:
            mults = sorted(set.intersection(*(set(r["lengths"]) for r in rows)))
            ys = {key: np.array([[r["lengths"][m][key] for m in mults] for r in rows]) for key in MEASURE_NAMES}
            out.append({"label": label, "n": len(rows), "mults": mults,
                        **{key: {"median": np.median(y, axis=0).tolist(), "min": y.min(axis=0).tolist(),
                                 "max": y.max(axis=0).tolist()} for key, y in ys.items()}})
    return out

def curves_table(lines_of):
    mults = sorted({m for c in lines_of for m in c["mults"]})
    lines = [f"The figure's curves ({HEADLINE}): the median over runs at each test length, the probe / attention off:",
             "", "| runs | " + " | ".join(f"{m}x" for m in mults) + " |", "| --- " * (len(mults) + 1) + "|"]
    for c in lines_of:
        at = {m: f"{c['probe']['median'][i]:.3f} / {c['off']['median'][i]:.3f}" for i, m in enumerate(c["mults"])}
        lines.append(f"| {c['label']} ({c['n']}) | " + " | ".join(at.get(m, "-") for m in mults) + " |")
    return lines + [""]

def plot_curves(lines_of, out):
    """Both measures against test length, a panel each: median as a line, min to max as a band."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (key, title) in zip(axes, MEASURE_NAMES.items()):
        for i, c in enumerate(lines_of):
            ax.plot(c["mults"], c[key]["median"], "o-" if i < 2 else "s--", color=f"C{i}",
                    label=f"{c['label']} ({c['n']} runs)")
            ax.fill_between(c["mults"], c[key]["min"], c[key]["max"], color=f"C{i}", alpha=0.2)
        ax.axhline(STATE_OK, color="0.5", ls=":", lw=1)
        ax.set(xlabel="test length (multiple of the training length)", title=title, ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("state accuracy (median; band: min to max)")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"{HEADLINE}: where the state lives (dotted: {STATE_OK})", fontsize=10)
    save_figure(fig, out)

def main(argv=None):
    parser = ArgParser(description="Where the state lives: the probe against attention-off, and the 3x verdict.")
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--new", default="mechanism", metavar="FOLDER_NAME", help="runs in folders of this name are "
                        "the confirmation's new seeds, judged apart (default: mechanism)")
    parser.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.md, PREFIX.json, PREFIX.png")
    args = parser.parse_args(argv)
    check_out(args.out + ".png")
    pool, fresh, settings = cells_of(load_runs(args.runs), args.new)
    if not pool:
        die(f"no finished hybrid run with the LSTM core under {', '.join(SCHEDULES)} in {' '.join(args.runs)}")
    both = defaultdict(list, {k: list(v) for k, v in pool.items()})
    for k, v in fresh.items():
        both[k] += v
    rule = (f"a run passes if its sequence accuracy at 3x is at least {FAIL_BELOW}; the recurrent part holds the state "
            "if the linear probe of its last recurrent block (eval.py --probe, fit on a 1x set of its own) is at least "
            f"{STATE_OK} at 3x; the model reads the state without attention if its state accuracy at 3x with attention "
            f"gated off (eval.py --attn_off) is at least {STATE_OK}. Intervals: 95% Wilson; Fisher p: two-sided exact "
            "test of pass against holds")
    result = {"rule": rule, "pooled": pooled(pool, settings),
              "pooled_with_new": pooled(both, settings),
              "confirmation": confirmation(fresh), "settings": settings, "cell_rows": pool,
              "per_cell": [(k, two_by_two(pool[k])) for k in sorted(pool)]}
    result["curves"] = curves(pool)
    plot_curves(result["curves"], args.out + ".png")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "lengths"} for r in rows]
    result["confirmation"]["runs"] = strip(result["confirmation"]["runs"])
    write_json(args.out + ".json", {**{k: result[k] for k in ("rule", "pooled", "pooled_with_new", "confirmation",
                                                              "curves")},
                                    "per_cell": [{"setting": s, "schedule": sch, **e} for (s, sch), e in
                                                 result["per_cell"]],
                                    "runs": strip(sum(pool.values(), []))})
    write_text(args.out + ".md", markdown(result))
    print(f"wrote {args.out}.md, .json, .png: {sum(map(len, pool.values()))} committed runs in {len(pool)} cells, "
          f"{sum(map(len, fresh.values()))} new")

if __name__ == "__main__":
    run_script(main)
