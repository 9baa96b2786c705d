"""
The grid read, with nothing run (results/launch.py does the running): the table of contents (results/grid.py, or the
file in $GRID) loaded and checked; each line's run folder under $RUNS and its state, decided from what the folder
holds now; which figures a selection of lines draws, why one cannot be drawn, and the command that draws it.
"""
import argparse
import contextlib
import fnmatch
import functools
import glob
import importlib.machinery
import importlib.util
import io
import os
import re
import sys

import torch

from eval import grid_scoring
from options import check_args, parser, run_name, schedule_name
from run_folder import folder_state, read_eval
from runs import die

RUNS = os.environ.get("RUNS", "results/runs")
STATES = ("finished", "interrupted", "trained", "new", "needs CUDA", "error")
TOOLS = {"rates": "results/atlas.py", "draw": "plot.py", "attention": "results/attention.py",
         "ladder": "results/ladder.py", "cores_hybrid": "results/cores_hybrid.py",
         "mechanism": "results/mechanism.py", "automata": "results/automata.py"}
ATLAS_SCHEDULES = "plain,dat5000"  # results/atlas.py's default --schedules

NOT_IN_A_LINE = ("-h", "--help", "--resume", "--dry_run")  # options of train.py that start no run of the line

def load_grid():
    """The module in $GRID (results/grid.py by default); a file that is missing, not Python, or without grid() and
    FIGURES (output, tool, runs, options) is one error line."""
    path = os.environ.get("GRID", "results/grid.py")
    if not path:
        die("GRID is empty: give a Python file with grid() and FIGURES, or leave GRID unset")
    if not os.path.isfile(path):
        relative = f" (a relative path is from the kit's folder {os.getcwd()})" * (not os.path.isabs(path))
        die(f"GRID {path}: no such file{relative}")
    try:
        loader = importlib.machinery.SourceFileLoader("grid_of_the_launcher", path)
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
    except Exception as e:  # SyntaxError (with its line number), or whatever the module raised
        die(f"GRID {path}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")
    if not callable(getattr(module, "grid", None)):
        die(f"GRID {path}: it has no grid() function (yielding the lines \"EXPERIMENT MULTS TRAIN_OPTIONS...\")")
    if not isinstance(getattr(module, "FIGURES", None), (list, tuple)):
        die(f"GRID {path}: it has no FIGURES list (of (output, tool, runs, options); [] for none)")
    for k, figure in enumerate(module.FIGURES, 1):
        if not (isinstance(figure, (list, tuple)) and len(figure) == 4 and figure[1] in TOOLS
                and isinstance(figure[0], (str, type(None))) and isinstance(figure[2], (list, tuple))
                and all(isinstance(p, str) for p in figure[2]) and isinstance(figure[3], str)):
            die(f"GRID {path}: FIGURES entry {k} is not (output, tool, runs, options) with tool one of "
                     f"{', '.join(TOOLS)}")
    return module

def grid_texts(module):
    """The lines grid() yields; one error line if it fails."""
    try:
        return list(module.grid())
    except Exception as e:
        die(f"GRID {os.environ.get('GRID', 'results/grid.py')}: grid() failed: {type(e).__name__}: {e}")

def parse_mults(text):
    """MULTS "1,2,3" -> [1, 2, 3]; anything but a comma list of positive integers is refused (die)."""
    if not re.fullmatch(r"[0-9]+(,[0-9]+)*", text) or 0 in (mults := [int(m) for m in text.split(",")]):
        die(f"MULTS {text!r} is not a comma-separated list of positive integers")
    return mults

def scored_otherwise(folder, args, mults):
    """What keeps the finished run in folder from being finished for its line: the test lengths (mults) its eval.json
    lacks, and the settings it was scored with that differ from the grid's (eval.grid_scoring: the launcher's; a plain
    list of records counts as scored so). A list of texts, empty if none."""
    scored, records = read_eval(os.path.join(folder, "eval.json"))
    held = {r.get("mult") for r in records if isinstance(r, dict)} if isinstance(records, list) else set()
    lacking = [f"{m}x" for m in mults if m not in held]
    asked, scored = grid_scoring(args.model, mults, args.max_iters), scored or {}
    differ = [f"{k} {scored.get(k)!r} (the grid's: {asked.get(k)!r})" for k in sorted(asked.keys() | scored.keys())
              if scored and k != "mults" and scored.get(k) != asked.get(k)]
    return [f"lacks {', '.join(lacking)}"] * bool(lacking) + [f"was scored with {', '.join(differ)}"] * bool(differ)

class Line:
    """Line number (from 1) of the grid; experiment, mults, options; run folder, state (STATES) and schedule name;
    error: why a line's options or its folder cannot be used (the state is then "error")."""
    def __init__(self, number, text):
        self.number, self.text = number, text
        fields = text.split() if isinstance(text, str) else []
        self.experiment, self.mults, self.options = (fields + ["?"])[0], (fields + ["", ""])[1], fields[2:]
        self.run_options = self.options  # with the line's device named: what train.py is given (decide)
        self.folder, self.state, self.error, self.schedule = self.decide()

    def decide(self):
        """(folder, state, error, schedule), from the line and what its folder holds now."""
        out_root = os.path.join(RUNS, self.experiment)
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stderr(quiet):  # die's line, said once below with the line number
                if not isinstance(self.text, str) or not self.mults:
                    die(f"{self.text!r} is not \"EXPERIMENT MULTS TRAIN_OPTIONS...\"")
                if not re.fullmatch(r"[\w.+-]+", self.experiment) or set(self.experiment) == {"."}:
                    die(f"experiment {self.experiment!r}: give a folder name (letters, digits, _ . + -)")
                mults = parse_mults(self.mults)
                banned = [o for o in self.options if o.split("=")[0] in NOT_IN_A_LINE]
                if banned:
                    die(f"{banned[0]} is not for a grid line: the launcher resumes and scores each line itself")
                # the line's device: the one it names (the last --device), else cpu, so that a CUDA machine names and
                # trains the committed CPU lines as they were; a CUDA line on a machine without CUDA is checked on
                # this CPU and named with its device
                device = parser.parse_args(self.options, argparse.Namespace(device=None)).device or "cpu"
                self.run_options = self.options + ["--device", device]
                cuda = device == "cuda" and not torch.cuda.is_available()
                args = check_args(parser.parse_args(
                    self.options + ["--out_root", out_root, "--device", "cpu" if cuda else device]))
                longest = max(mults) * args.train_len
                if longest > args.num_keys:
                    die(f"test length {longest} ({max(mults)}x) is above --num_keys {args.num_keys}: keys would repeat")
                if cuda:
                    args.device = "cuda"
                    args.out_dir = os.path.join(out_root, f"{run_name(vars(args))}-s{args.seed}")
                folder, schedule = args.out_dir, schedule_name(vars(args))
                state = folder_state(args)  # judged by the folder's own config, which must be this line's
                if state == "finished":  # and scored as its line asks (scored_otherwise), with its report?
                    otherwise = scored_otherwise(folder, args, mults)
                    has_ckpt = os.path.isfile(os.path.join(folder, "ckpt.pt"))
                    if otherwise and not has_ckpt:
                        die(f"{folder}: eval.json {' and '.join(otherwise)} and there is no checkpoint to score it "
                            "from")
                    report_lost = not os.path.isfile(os.path.join(folder, "eval.txt"))  # killed between the two
                    state = "trained" if otherwise or report_lost and has_ckpt else state
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
