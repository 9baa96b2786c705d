"""
The grid's launcher (bash results/commands.sh calls it): the lines of the table of contents (results/grid.py, or the
file in $GRID), their run folders under $RUNS (results/runs by default) and their states, all decided in this one
process; only the lines that are not finished start a Python of their own.

    --list [--only REGEX]          number, run folder and options of each line (a tab between them)
    --status [--only REGEX]        per experiment, how many runs are finished, interrupted, trained, new
    --job K                        line K: train it (or resume it), then score it with eval.py
    --workers N [--only REGEX]     the selected lines that are not finished, N at a time (--threads 1 each), then
                                   the figures of the selection; exit code 1 if a job or a figure failed
    --plots [--only REGEX]         the figures and tables each of whose runs is a line of the selection; exit code
                                   1 if one failed
    --array [--only REGEX]         the numbers of the selected lines that are not finished, as a SLURM --array list

REGEX selects lines by a regular expression searched in EXPERIMENT/NAME-s<SEED>, e.g. 'headline/.*-S3-'.
A line is finished when its log reached --max_iters and its eval.json holds every test length of MULTS. A line that
cannot work (bad options or MULTS, a test length above --num_keys, a finished folder whose eval.json lacks a length
and has no checkpoint to score it from) or a figure that cannot be drawn from its lines (a --schedules name none of
them has) is one error line each: --list and --status exit with code 1, --array and --plots print and draw nothing,
--workers starts no job for a bad figure (a bad line fails as its job).
A job that finds its run folder finished or held by another process (train.py or eval.py exit code runs.IN_USE)
when it starts is skipped. With RUNS elsewhere than results/runs, the figures and tables go there too: an output
results/X of the grid is written as RUNS/X, so the committed ones are never overwritten.
"""
import concurrent.futures
import contextlib
import fcntl
import fnmatch
import functools
import glob
import importlib.machinery
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
import runs  # first of the kit: it answers Ctrl-C during the slow imports below with one line

import torch

import train
from eval import extra_scores

RUNS = os.environ.get("RUNS", "results/runs")
STATES = ("finished", "interrupted", "trained", "new", "needs CUDA", "error")
TOOLS = {"rates": "results/atlas.py", "draw": "plot.py", "attention": "results/attention.py",
         "ladder": "results/ladder.py", "cores_hybrid": "results/cores_hybrid.py",
         "mechanism": "results/mechanism.py"}
ATLAS_SCHEDULES = "plain,dat5000"  # results/atlas.py's default --schedules

def load_grid():
    """The module in $GRID (results/grid.py by default); a file that is missing, not Python, or without grid() and
    FIGURES (output, tool, runs, options) is one error line."""
    path = os.environ.get("GRID", "results/grid.py")
    if not path:
        runs.die("GRID is empty: give a Python file with grid() and FIGURES, or leave GRID unset")
    if not os.path.isfile(path):
        relative = f" (a relative path is from the kit's folder {KIT})" * (not os.path.isabs(path))
        runs.die(f"GRID {path}: no such file{relative}")
    try:
        loader = importlib.machinery.SourceFileLoader("grid_of_the_launcher", path)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
    except Exception as e:  # SyntaxError (with its line number), or whatever the module raised
        runs.die(f"GRID {path}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
    if not callable(getattr(module, "grid", None)):
        runs.die(f"GRID {path}: it has no grid() function (yielding the lines \"EXPERIMENT MULTS TRAIN_OPTIONS...\")")
    if not isinstance(getattr(module, "FIGURES", None), (list, tuple)):
        runs.die(f"GRID {path}: it has no FIGURES list (of (output, tool, runs, options); [] for none)")
    for k, figure in enumerate(module.FIGURES, 1):
        if not (isinstance(figure, (list, tuple)) and len(figure) == 4 and figure[1] in TOOLS
                and isinstance(figure[0], (str, type(None))) and isinstance(figure[2], (list, tuple))
                and all(isinstance(p, str) for p in figure[2]) and isinstance(figure[3], str)):
            runs.die(f"GRID {path}: FIGURES entry {k} is not (output, tool, runs, options) with tool one of "
                     f"{', '.join(TOOLS)}")
    return module

def grid_texts(module):
    """The lines grid() yields; one error line if it fails."""
    try:
        return list(module.grid())
    except Exception as e:
        runs.die(f"GRID {os.environ.get('GRID', 'results/grid.py')}: grid() failed: {type(e).__name__}: {e}")

def parse_mults(text):
    """MULTS "1,2,3" -> [1, 2, 3]; anything but a comma list of positive integers is refused (runs.die)."""
    if not re.fullmatch(r"[0-9]+(,[0-9]+)*", text) or 0 in (mults := [int(m) for m in text.split(",")]):
        runs.die(f"MULTS {text!r} is not a comma-separated list of positive integers")
    return mults

def scored_mults(folder):
    """The test lengths (mults) eval.json in folder holds a record for."""
    records = runs.read_json(os.path.join(folder, "eval.json"))
    return {r.get("mult") for r in records if isinstance(r, dict)} if isinstance(records, list) else set()

class Line:
    """Line number (from 1) of the grid; experiment, mults, options; run folder, state (STATES) and schedule name;
    error: why a line's options or its folder cannot be used (the state is then "error")."""
    def __init__(self, number, text):
        self.number, self.text = number, text
        fields = text.split() if isinstance(text, str) else []
        self.experiment, self.mults, self.options = (fields + ["?"])[0], (fields + ["", ""])[1], fields[2:]
        self.folder, self.state, self.error, self.schedule = self.decide()

    def decide(self):
        """(folder, state, error, schedule), from the line and what its folder holds now."""
        out_root = os.path.join(RUNS, self.experiment)
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stderr(quiet):  # runs.die's line, said once below with the line number
                if not isinstance(self.text, str) or not self.mults:
                    runs.die(f"{self.text!r} is not \"EXPERIMENT MULTS TRAIN_OPTIONS...\"")
                if not re.fullmatch(r"[\w.+-]+", self.experiment) or set(self.experiment) == {"."}:
                    runs.die(f"experiment {self.experiment!r}: give a folder name (letters, digits, _ . + -)")
                mults = parse_mults(self.mults)
                # a CUDA run on a machine without CUDA: its options checked on this CPU, named with its device
                cuda = " --device cuda " in f" {' '.join(self.options)} " and not torch.cuda.is_available()
                args = train.check_args(train.parser.parse_args(
                    self.options + ["--out_root", out_root] + ["--device", "cpu"] * cuda))
                longest = max(mults) * args.train_len
                if longest > args.num_keys:
                    runs.die(f"test length {longest} ({max(mults)}x) is above --num_keys {args.num_keys}: "
                             f"keys would repeat")
                if cuda:
                    args.device = "cuda"
                    args.out_dir = os.path.join(out_root, f"{train.run_name(vars(args))}-s{args.seed}")
                folder, schedule = args.out_dir, runs.schedule_name(vars(args), train.IDENTITY)
                state = train.folder_state(args)  # judged by the folder's own config, which must be this line's
                if state == "finished":  # and scored at every test length the line asks for, with its report?
                    lacking = [f"{m}x" for m in mults if m not in scored_mults(folder)]
                    has_ckpt = os.path.isfile(os.path.join(folder, "ckpt.pt"))
                    if lacking and not has_ckpt:
                        runs.die(f"{folder}: eval.json lacks {', '.join(lacking)} and there is no checkpoint to "
                                 f"score it from")
                    report_lost = not os.path.isfile(os.path.join(folder, "eval.txt"))  # killed between the two
                    state = "trained" if lacking or report_lost and has_ckpt else state
                return folder, "needs CUDA" if cuda and state != "finished" else state, None, schedule
        except SystemExit:
            reason = quiet.getvalue().strip().splitlines() or ["a bad line"]
            error = f"line {self.number}: {reason[-1].removeprefix('error: ')}"
            return os.path.join(out_root, "?"), "error", error, None

    def name(self):
        return f"{self.experiment}/{os.path.basename(self.folder)}"

def select(lines, only):
    pattern = re.compile(only) if only else None
    return [line for line in lines if pattern is None or pattern.search(line.name())]

def in_use(folder):
    """Whether another process holds folder (runs.lock) right now."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)

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
    commands = {"new": [python + ["train.py", *line.options, "--out_dir", line.folder, "--threads", "1"]],
                "interrupted": [python + ["train.py", "--resume", "--out_dir", line.folder, "--threads", "1"]],
                "trained": []}[line.state]
    for command in commands:
        code, _ = call(command, stdout=subprocess.DEVNULL)
        if code:
            return finish(say, line, code, "train.py")
    # eval.py's report, kept in memory and written whole (runs.write_text) once it succeeded: a refused or failed
    # score leaves nothing behind and never touches another process's files
    model = train.parser.parse_args(line.options).model
    score = python + ["eval.py", line.folder, "--mults", line.mults, *extra_scores(model), "--by_age",
                      "--mistakes", "2", "--threads", "1"]
    code, report = call(score, stdout=subprocess.PIPE, text=True)
    if code:
        return finish(say, line, code, "eval.py")
    try:
        runs.write_text(os.path.join(line.folder, "eval.txt"), report)
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

# -----------------------------------------------------------------------------
# figures

def expand(pattern):
    """a{b,c}d -> abd, acd (the shell's braces, which glob lacks)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [p for alt in match[1].split(",") for p in expand(pattern[:match.start()] + alt + pattern[match.end():])]

def elsewhere():
    """Whether RUNS is not the kit's own results/runs."""
    return os.path.realpath(RUNS) != os.path.realpath("results/runs")

def output(path):
    """Where a figure's output results/X goes: there, or RUNS/X with RUNS elsewhere (the committed ones stay)."""
    return os.path.join(RUNS, path.removeprefix("results/")) if elsewhere() and path.startswith("results/") else path

def figure_name(figure):
    """What a figure writes (with RUNS elsewhere, there): its output, or for a table only its options."""
    return output(figure[0]) if figure[0] else " ".join(map(output, figure[3].split()))

def figure_command(figure, scratch):
    """The command that draws figure (out, tool, runs, options), or why it cannot be drawn; scratch: a folder for
    the figure of a table only. (command, reason, whether the reason is a failure)."""
    out, tool, patterns, options = figure
    root = glob.escape(RUNS)
    folders = [f for p in patterns for e in expand(p) for f in sorted(glob.glob(os.path.join(root, e)))]
    if not folders:
        return None, "none of its runs are here", True
    if tool == "attention" and not all(os.path.exists(os.path.join(f, "ckpt.pt")) for f in folders):
        return None, "it needs the checkpoints (not committed)", False
    out = os.path.join(scratch, "all.png") if out is None else output(out)
    return [sys.executable, TOOLS[tool], *folders, "--out", out, *map(output, options.split())], None, False

def of_selection(module, selected):
    """The figures whose experiments all have lines in selected (checked by figure_errors)."""
    experiments = {line.experiment for line in selected}
    return [f for f in module.FIGURES if {p.split("/")[0] for p in f[2]} <= experiments]

def drawn(figures, selected):
    """The figures each of whose runs (EXPERIMENT or EXPERIMENT/GLOB) matches a line of selected."""
    return [f for f in figures if all(any(matches(line, [p]) for line in selected) for p in f[2])]

@functools.cache
def compiled(pattern):
    """EXPERIMENT/GLOB (with {a,b} alternatives) as a regular expression per part, for each alternative."""
    return [[re.compile(fnmatch.translate(part)) for part in p.strip("/").split("/")] for p in expand(pattern)]

def matches(line, patterns):
    """Whether line's run folder is one of the runs EXPERIMENT or EXPERIMENT/GLOB of a figure."""
    parts = (line.experiment, os.path.basename(line.folder))
    return any(len(c) <= 2 and all(r.match(x) for r, x in zip(c, parts)) for p in patterns for c in compiled(p))

def figure_errors(figures, lines):
    """Why each of figures cannot be drawn from the grid's lines: one of its runs matches no line, or its --schedules
    (for a rates figure; results/atlas.py's default if none) names a schedule that none of its lines has."""
    errors = []
    for out, tool, patterns, options in figures:
        lost = [p for p in patterns if not any(matches(line, [p]) for line in lines if line.state != "error")]
        if lost:
            errors.append(f"figure {out or options}: its runs {' '.join(lost)} match no line of the grid")
            continue
        mine = {line.schedule for line in lines if line.state != "error" and matches(line, patterns)}
        words = options.split()
        named = [w.removeprefix("--schedules=") for w in words if w.startswith("--schedules=")] + \
                [b for a, b in zip(words, words[1:]) if a == "--schedules"]
        lacking = [s for s in dict.fromkeys((named or [ATLAS_SCHEDULES])[-1].split(",")) if s not in mine]
        if tool == "rates" and lacking:
            errors.append(f"figure {out}: --schedules {(named or [ATLAS_SCHEDULES])[-1]}"
                          f"{'' if named else ' (the default)'} names {', '.join(lacking)}, which none of its lines "
                          f"has (they have {', '.join(sorted(mine))})")
    return errors

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
    if not RUNS:
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
