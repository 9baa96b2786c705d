"""
The grid's launcher (bash results/commands.sh calls it): the lines of the table of contents (results/grid.py, or the
file in $GRID), their run folders under $RUNS (results/runs by default) and their states, all decided in this one
process; only the lines that are not finished start a Python of their own.

    --list [--only REGEX]          number, run folder and options of each line (a tab between them)
    --status [--only REGEX]        per experiment, how many runs are finished, interrupted, trained, new
    --job K                        line K: train it (or resume it), then score it with eval.py
    --workers N [--only REGEX]     the selected lines that are not finished, N at a time (--threads 1 each), then
                                   the figures of the selection; exit code 1 if a job failed
    --plots [--only REGEX]         the figures and tables whose experiments are all in the selection
    --array [--only REGEX]         the numbers of the selected lines that are not finished, as a SLURM --array list

REGEX selects lines by a regular expression searched in EXPERIMENT/NAME-s<SEED>, e.g. 'headline/.*-S3-'.
A job that finds its run folder held by another process (train.py or eval.py exit code runs.IN_USE) is skipped.
"""
import concurrent.futures
import contextlib
import glob
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, KIT)
os.chdir(KIT)  # the grid's paths (results/..., train.py) are the kit's

import torch

import runs
import train

RUNS = os.environ.get("RUNS", "results/runs")
STATES = ("finished", "interrupted", "trained", "new", "needs CUDA", "error")

def load_grid():
    path = os.environ.get("GRID", "results/grid.py")
    spec = importlib.util.spec_from_file_location("grid", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

class Line:
    """Line number (from 1) of the grid; experiment, mults, options; run folder and state (STATES); error: why a
    line's options or its folder cannot be read (the state is then "error")."""
    def __init__(self, number, text):
        self.number, self.text = number, text
        self.experiment, self.mults, *self.options = text.split()
        self.folder, self.state, self.error = self.decide()

    def decide(self):
        out_root = ["--out_root", os.path.join(RUNS, self.experiment)]
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stderr(quiet):  # runs.die's line, said once below with the line number
                if " --device cuda " in f" {' '.join(self.options)} " and not torch.cuda.is_available():
                    # the folder a CUDA run would have: its options checked on this CPU, named with its device
                    args = train.check_args(train.parser.parse_args(self.options + out_root + ["--device", "cpu"]))
                    args.device = "cuda"
                    folder = os.path.join(out_root[1], f"{train.run_name(vars(args))}-s{args.seed}")
                    finished = runs.run_state(folder) == "finished"
                    return folder, "finished" if finished else "needs CUDA", None
                args = train.check_args(train.parser.parse_args(self.options + out_root))
                return args.out_dir, runs.run_state(args.out_dir), None
        except SystemExit:
            reason = quiet.getvalue().strip().splitlines() or ["a bad line"]
            return os.path.join(out_root[1], "?"), "error", f"line {self.number}: {reason[-1].removeprefix('error: ')}"

    def name(self):
        return f"{self.experiment}/{os.path.basename(self.folder)}"

def select(lines, only):
    pattern = re.compile(only) if only else None
    return [line for line in lines if pattern is None or pattern.search(line.name())]

# -----------------------------------------------------------------------------
# children: each in its own process group, so a Ctrl-C reaches them once, through stop()

children, stopping = set(), threading.Event()
children_lock = threading.Lock()

def call(command, **kwargs):
    """Run command to its end; its exit code (the signal's 128 + N if the launcher is being stopped)."""
    with children_lock:
        if stopping.is_set():
            return 130
        child = subprocess.Popen(command, process_group=0, **kwargs)
        children.add(child)
    try:
        return child.wait()
    finally:
        with children_lock:
            children.discard(child)

def forward_signals():
    """From here on the launcher has children: a signal goes to them (stop), not straight to this process."""
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

def stop(signum, frame):
    """SIGTERM or Ctrl-C: pass it to the running children (train.py saves where to resume), start no more."""
    stopping.set()
    with children_lock:
        for child in children:
            child.send_signal(signum)

# -----------------------------------------------------------------------------
# a job: one line, trained (or resumed) then scored

def eval_options(options):
    """What eval.py can score: --attn_off needs a hybrid, --probe an LSTM."""
    model = train.parser.parse_args(options).model
    return {"transformer": [], "lstm": ["--probe"]}.get(model, ["--attn_off", "--probe"])

def run_job(line):
    """Train line (or resume it), then score it; 'done', 'skipped' or 'failed', after one line saying which."""
    say = lambda what: print(f"job {line.number}: {what}", flush=True)
    if line.state == "error":
        print(f"error: {line.error}", file=sys.stderr, flush=True)
        return "failed"
    if line.state in ("finished", "needs CUDA"):
        say(f"{line.folder} is finished" if line.state == "finished" else "skipped: needs a CUDA GPU")
        return "skipped"
    python = [sys.executable, "-u"]
    commands = {"new": [python + ["train.py", *line.options, "--out_dir", line.folder, "--threads", "1"]],
                "interrupted": [python + ["train.py", "--resume", "--out_dir", line.folder, "--threads", "1"]],
                "trained": []}[line.state]
    for command in commands:
        code = call(command, stdout=subprocess.DEVNULL)
        if code:
            return finish(say, line, code, "train.py")
    # eval.txt is written whole or not at all, like every file of a run folder
    score = python + ["eval.py", line.folder, "--mults", line.mults, *eval_options(line.options), "--by_age",
                      "--mistakes", "2", "--threads", "1"]
    report = os.path.join(line.folder, "eval.txt")
    with open(report + ".tmp", "w") as f:
        code = call(score, stdout=f)
    if code:
        os.remove(report + ".tmp")
        return finish(say, line, code, "eval.py")
    os.replace(report + ".tmp", report)
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

# -----------------------------------------------------------------------------
# figures

def expand(pattern):
    """a{b,c}d -> abd, acd (the shell's braces, which glob lacks)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [p for alt in match[1].split(",") for p in expand(pattern[:match.start()] + alt + pattern[match.end():])]

def figure_command(figure):
    """The command that draws figure (out, tool, runs, options), or the reason it cannot be drawn."""
    out, tool, patterns, options = figure
    folders = [f for p in patterns for e in expand(p) for f in sorted(glob.glob(os.path.join(RUNS, e)))]
    if not folders:
        return None, "none of its runs are here"
    if tool == "attention" and not all(os.path.exists(os.path.join(f, "ckpt.pt")) for f in folders):
        return None, "it needs the checkpoints (not committed)"
    if out is None:  # a table only: the figure goes to a temporary file
        out = os.path.join(tempfile.mkdtemp(), "all.png")
    script = {"rates": "results/atlas.py", "draw": "plot.py", "attention": "results/attention.py"}[tool]
    return [sys.executable, script, *folders, "--out", out, *options.split()], None

def plots(grid, selected, workers):
    """The figures whose experiments all have lines in selected; a figure that cannot be drawn is skipped."""
    experiments = {line.experiment for line in selected}
    figures = [f for f in grid.FIGURES if {p.split("/")[0] for p in f[2]} <= experiments]

    def draw(figure):
        command, reason = figure_command(figure)
        code = call(command) if command else None
        if reason or code:
            print(f"skipped: {figure[0] or figure[3]}: {reason or f'exit code {code}'}", file=sys.stderr, flush=True)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(draw, figures))

# -----------------------------------------------------------------------------

def status(selected):
    """Counts per experiment, in the order of the grid; exit code 1 if some line cannot be read."""
    counts = {}
    for line in selected:
        counts.setdefault(line.experiment, Counter())[line.state] += 1
    total = sum(counts.values(), Counter())
    width = max([len("experiment")] + [len(e) for e in counts])
    print(f"{'experiment':<{width}}  " + "  ".join(f"{s:>11}" for s in STATES))
    for experiment, c in [*counts.items(), ("all", total)]:
        print(f"{experiment:<{width}}  " + "  ".join(f"{c[s]:>11}" for s in STATES))
    for line in selected:
        if line.error:
            print(f"error: {line.error}", file=sys.stderr)
    return 1 if total["error"] else 0

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
    grid = load_grid()
    texts = list(grid.grid())
    if args.job:
        if args.job > len(texts):
            runs.die(f"no job {args.job}: the grid has lines 1..{len(texts)}")
        line = Line(args.job, texts[args.job - 1])
        forward_signals()
        outcome = run_job(line)
        sys.exit(130 if stopping.is_set() else 0 if outcome != "failed" else 1)
    selected = select([Line(k, text) for k, text in enumerate(texts, 1)], args.only)
    if args.list:
        for line in selected:
            print(f"{line.number}\t{line.folder}\t{line.mults} {' '.join(line.options)}")
    elif args.status:
        sys.exit(status(selected))
    elif args.array:
        print(ranges([line.number for line in selected if line.state != "finished"]))
    elif args.plots:
        forward_signals()
        plots(grid, selected, os.cpu_count())
    else:
        todo = [line for line in selected if line.state != "finished"]
        print(f"{len(selected) - len(todo)} of {len(selected)} lines are finished; {len(todo)} to run", flush=True)
        forward_signals()
        ok = run_jobs(todo, args.workers)
        if stopping.is_set():
            sys.exit(130)
        plots(grid, selected, args.workers)
        if not ok:
            print("some jobs failed: run again to retry them", file=sys.stderr)
        sys.exit(0 if ok else 1)

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # before any child started (forward_signals)
        runs.die("interrupted", code=130)
    except BrokenPipeError:  # --list | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
