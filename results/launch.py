"""
The grid's launcher (bash results/commands.sh calls it): the lines of the table of contents (results/grid.py, or the
file in $GRID), their run folders under $RUNS (results/runs by default) and their states, all decided in this one
process (results/contents.py); only the lines that are not finished start a Python of their own.

    --list [--only REGEX]          number, run folder and options of each line (a tab between them)
    --status [--only REGEX]        per experiment, how many runs are finished, interrupted, trained, new
    --job K                        line K: train it (or resume it), then score it with eval.py
    --workers N [--only REGEX]     the selected lines that are not finished, N at a time (--threads 1 each), then
                                   the figures of the selection; exit code 1 if a job or a figure failed
    --plots [--only REGEX]         the figures and tables each of whose runs is a line of the selection; exit code
                                   1 if one failed
    --array [--only REGEX]         the numbers of the selected lines that are not finished, as a SLURM --array list

REGEX selects lines by a regular expression searched in EXPERIMENT/NAME-s<SEED>, e.g. 'headline/.*-S3-'.
A line is finished when its log reached --max_iters and its eval.json holds every test length of MULTS, scored as
the launcher scores (eval.grid_options: 1,000 sequences, the eval seed, every extra score of the model; a plain list
of records, written before eval.json said how it was scored, counts as scored so). A line that cannot work (bad
options or MULTS, a test length above --num_keys, a finished folder whose eval.json lacks a length or was scored
otherwise and has no checkpoint to score it from) or a figure that cannot be drawn from its lines (a --schedules name
none of them has) is one error line each: --list and --status exit with code 1, --array and --plots print and draw
nothing, --workers starts no job for a bad figure (a bad line fails as its job).
A job that finds its run folder finished or held by another process (train.py or eval.py exit code runs.IN_USE)
when it starts is skipped. With RUNS elsewhere than results/runs, the figures and tables go there too: an output
results/X of the grid is written as RUNS/X, so the committed ones are never overwritten.
"""
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
if os.environ.get("RUNS"):  # a relative RUNS is from the folder the launcher was started in
    os.environ["RUNS"] = os.path.abspath(os.environ["RUNS"])
os.chdir(sys.path[0])  # the grid's paths (results/..., train.py) are the kit's
import runs  # first of the kit: it answers Ctrl-C during the slow imports below with one line

import contents
from contents import (STATES, TOOLS, Line, drawn, figure_command, figure_errors, figure_name, grid_texts, load_grid,
                      of_selection, output, parse_mults, select)
from eval import grid_options
from options import parser
from run_folder import in_use

# -----------------------------------------------------------------------------
# children: each in its own process group, so a Ctrl-C reaches them once, through stop()

children, stopping, stopped_by = set(), threading.Event(), []
children_lock = threading.Lock()

def stop_code():
    """The launcher's exit code once stopped: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (stopped_by[0] if stopped_by else signal.SIGINT)

def call(command, **kwargs):
    """Run command to its end: (its exit code, its output if piped); stop_code() if the launcher is being stopped."""
    with children_lock:
        if stopping.is_set():
            return stop_code(), None
        child = subprocess.Popen(command, process_group=0, **kwargs)
        children.add(child)
    try:
        output, _ = child.communicate()
        return child.returncode, output
    finally:
        with children_lock:
            children.discard(child)

def forward_signals():
    """From here on the launcher has children: a signal goes to them (stop), not straight to this process."""
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

def stop(signum, frame):
    """SIGTERM or Ctrl-C: pass it to the running children (train.py saves where to resume), start no more."""
    stopped_by.append(signum)
    stopping.set()
    with children_lock:
        for child in children:
            child.send_signal(signum)

# -----------------------------------------------------------------------------
# a job: one line, trained (or resumed) then scored

def run_job(line):
    """Train line (or resume it), then score it; 'done', 'skipped' or 'failed', after one line saying which. Its
    state is decided again first: another launcher may have finished the line, or hold its folder, by now."""
    say = lambda what: print(f"job {line.number}: {what}", flush=True)
    line.folder, line.state, line.error, line.schedule = line.decide()
    if line.state == "error":
        print(f"error: {line.error}", file=sys.stderr, flush=True)
        return "failed"
    if line.state in ("finished", "needs CUDA"):
        say(f"{line.folder} is finished" if line.state == "finished" else "skipped: needs a CUDA GPU")
        return "skipped"
    if in_use(line.folder):
        return finish(say, line, runs.IN_USE, "")
    python = [sys.executable, "-u"]
    commands = {"new": [python + ["train.py", *line.run_options, "--out_dir", line.folder, "--threads", "1"]],
                "interrupted": [python + ["train.py", "--resume", "--out_dir", line.folder, "--threads", "1"]],
                "trained": []}[line.state]
    for command in commands:
        code, _ = call(command, stdout=subprocess.DEVNULL)
        if code:
            return finish(say, line, code, "train.py")
    # eval.py's report, kept in memory and written whole (runs.write_text) once it succeeded: a refused or failed
    # score leaves nothing behind and never touches another process's files
    model = parser.parse_args(line.options).model
    score = python + ["eval.py", line.folder, *grid_options(model, parse_mults(line.mults)), "--mistakes", "2",
                      "--threads", "1"]
    code, report = call(score, stdout=subprocess.PIPE, text=True)
    if code:
        return finish(say, line, code, "eval.py")
    try:
        runs.write_text(os.path.join(line.folder, "eval.txt"), report, new_folder=False)
    except SystemExit:  # its error line is said
        return "failed"
    say(f"{line.folder} done")
    return "done"

def finish(say, line, code, script):
    if stopping.is_set():
        say(f"{line.folder}: stopped ({script} exit code {code})")
        return "failed"
    if code == runs.IN_USE:
        say(f"{line.folder} is in use by another process: skipped")
        return "skipped"
    say(f"{line.folder}: {script} failed (exit code {code})")
    return "failed"

def run_jobs(todo, workers):
    """The jobs, workers at a time; whether they all ended well (done, or skipped)."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        outcomes = Counter(pool.map(run_job, todo))
    print(f"{outcomes['done']} done, {outcomes['skipped']} skipped, {outcomes['failed']} failed", flush=True)
    return not outcomes["failed"]

def plots(figures, workers):
    """Draw figures; how many failed (one line each). A figure that needs checkpoints not here is skipped."""
    def draw(figure):
        with tempfile.TemporaryDirectory() as scratch:
            command, reason, failure = figure_command(figure, scratch)
            code = call(command)[0] if command else 0
        if stopping.is_set():
            return False  # said once, by the launcher's exit code
        if reason:
            print(f"{'error' if failure else 'skipped'}: {figure_name(figure)}: {reason}", file=sys.stderr, flush=True)
        elif code:
            print(f"error: {figure_name(figure)}: {TOOLS[figure[1]]} failed (exit code {code})", file=sys.stderr,
                  flush=True)
        return reason is not None and failure or code != 0

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(draw, figures))

# -----------------------------------------------------------------------------

def status(selected, problems=()):
    """Counts per experiment, in the order of the grid; exit code 1 if some line or figure cannot be used."""
    counts = {}
    for line in selected:
        counts.setdefault(line.experiment, Counter())[line.state] += 1
    total = sum(counts.values(), Counter())
    width = max([len("experiment")] + [len(e) for e in counts])
    print(f"{'experiment':<{width}}  " + "  ".join(f"{s:>11}" for s in STATES))
    for experiment, c in [*counts.items(), ("all", total)]:
        print(f"{experiment:<{width}}  " + "  ".join(f"{c[s]:>11}" for s in STATES))
    return report([line.error for line in selected if line.error] + list(problems))

def report(problems):
    """Each problem as one error line on stderr; exit code 1 if there is one."""
    sys.stdout.flush()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0

def ranges(numbers):
    """[1, 2, 3, 7] -> '1-3,7'."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}-{n}" if n > start else f"{n}")
            start = None
    return ",".join(parts)

def main(argv=None):
    parser = runs.ArgParser(description="List, run and plot the grid of results/grid.py.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="number, run folder and options of each line")
    what.add_argument("--status", action="store_true", help="per experiment, the runs in each state")
    what.add_argument("--job", type=runs.positive_int, metavar="K", help="train and score line K")
    what.add_argument("--workers", type=runs.positive_int, metavar="N", help="run the lines N at a time, then plot")
    what.add_argument("--plots", action="store_true", help="the figures and tables of the selection")
    what.add_argument("--array", action="store_true", help="the lines to run, as a SLURM --array list")
    parser.add_argument("--only", metavar="REGEX", help="select lines by a regular expression over EXPERIMENT/NAME")
    args = parser.parse_args(argv)
    try:
        re.compile(args.only or "")
    except re.error as e:
        runs.die(f"--only {args.only!r}: {e}")
    if args.job and args.only:
        runs.die("--job K runs one line: not with --only")
    if not contents.RUNS:
        runs.die("RUNS is empty: give the folder of the run folders, or leave RUNS unset (results/runs)")
    module = load_grid()
    texts = grid_texts(module)
    if args.job:
        if args.job > len(texts):
            runs.die(f"no job {args.job}: the grid has lines 1..{len(texts)}")
        line = Line(args.job, texts[args.job - 1])
        forward_signals()
        outcome = run_job(line)
        sys.exit(stop_code() if stopping.is_set() else 0 if outcome != "failed" else 1)
    lines = [Line(k, text) for k, text in enumerate(texts, 1)]
    selected = select(lines, args.only)
    figures = of_selection(module, selected)
    bad_figures = figure_errors(figures, lines)
    problems = [line.error for line in selected if line.error] + bad_figures
    figures = drawn(figures, selected)
    if args.list:
        for line in selected:
            print(f"{line.number}\t{line.folder}\t{line.mults} {' '.join(line.options)}")
        sys.exit(report(problems))
    elif args.status:
        sys.exit(status(selected, bad_figures))
    elif args.array:
        if problems:
            sys.exit(report(problems))
        print(ranges([line.number for line in selected if line.state != "finished"]))
    elif args.plots:
        if problems:
            sys.exit(report(problems))
        forward_signals()
        failed = plots(figures, os.cpu_count())
        sys.exit(stop_code() if stopping.is_set() else 1 if failed else 0)
    else:
        if bad_figures:  # refused before any job; a line that cannot work fails as its job
            sys.exit(report(bad_figures))
        todo = [line for line in selected if line.state != "finished"]
        print(f"{len(selected) - len(todo)} of {len(selected)} lines are finished; {len(todo)} to run", flush=True)
        forward_signals()
        ok = run_jobs(todo, args.workers)
        if stopping.is_set():
            sys.exit(stop_code())
        failed = plots(figures, args.workers)
        if stopping.is_set():
            sys.exit(stop_code())
        if not ok:
            print("some jobs failed: run again to retry them", file=sys.stderr)
        if failed:
            print(f"{failed} figure{'s' * (failed > 1)} or table{'s' * (failed > 1)} failed", file=sys.stderr)
        sys.exit(0 if ok and not failed else 1)

if __name__ == "__main__":
    runs.run_script(main)  # a signal before any child started, a closed pipe (--list | head), a full disk: one line
