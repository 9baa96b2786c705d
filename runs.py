"""The plumbing every script shares: the error line and the entry point, the argument parser (with the bounds of
option values), file writing that leaves no debris, the device and memory checks."""
import os
import signal
import sys

def _stop_at_start(signum, frame):
    """Ctrl-C or SIGTERM before a script's main() runs (the imports take a second or two): one line, at once."""
    os.write(2, f"error: interrupted ({signal.Signals(signum).name})\n".encode())
    os._exit(128 + signum)

signal.signal(signal.SIGINT, _stop_at_start)  # first thing: each script imports runs before torch or matplotlib
signal.signal(signal.SIGTERM, _stop_at_start)

import argparse
import contextlib
import json
import math
import pathlib
import re
import shutil
import tempfile

import torch

IN_USE = 75  # the exit code of a refusal because another process holds the run folder (launchers skip it)

# -----------------------------------------------------------------------------
# the error line, the scripts' entry point, and the argument parser

def printable(text, what):
    """Refuse, before anything is written, a name (a path) the terminal's encoding cannot print."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except UnicodeEncodeError:
        die(f"{what} {ascii(text)}: the output's encoding ({sys.stdout.encoding}) cannot print it")

def die(message, code=2):
    """One line on stderr and the exit code: 2 for bad input or a failed write (never a traceback), IN_USE for a
    folder another process holds, 128 + N for signal N."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)

class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM inside main(): raised where the script is, so that what it is writing is cleaned up."""
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM

def _stop(signum, frame):
    for s in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not interrupt the clean-up
        signal.signal(s, signal.SIG_IGN)
    raise Stopped(signum)

def stop_code(interrupt):
    return getattr(interrupt, "code", 130)

def run_script(main):
    """Run a script's main(). Ctrl-C and SIGTERM: one line, exit code 128 + the signal's number. Output piped into a
    reader that stops early (`| head`) ends the script quietly with exit code 1; any other failed write is one error
    line. Then the process ends at once: the interpreter's teardown (most of a second with torch) does nothing a run
    needs, and a signal during it would end the process without a word."""
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        try:
            main()
            sys.stdout.flush()  # inside the try: a reader gone before the last flush is caught here, not at exit
        except KeyboardInterrupt as e:
            die("interrupted", code=stop_code(e))
        except OSError as e:  # a reader gone (BrokenPipeError), or standard output on a full disk
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit has nowhere to fail
            if isinstance(e, BrokenPipeError):
                sys.exit(1)
            die(f"cannot write the output: {e.strerror or e}")
        except UnicodeEncodeError as e:  # a name the output's encoding lacks, past the checks of printable()
            die(f"cannot print {ascii(e.object[e.start:e.end])} in the output's encoding ({e.encoding})")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):
            stream.flush()
    # the folder matplotlib makes in the temporary folder where HOME is not writable: its own clean-up runs at the
    # interpreter's exit, which os._exit skips (one would be left per figure)
    made = sys.modules["matplotlib"].get_configdir() if "matplotlib" in sys.modules else ""
    if os.path.basename(made).startswith("matplotlib-") and os.path.dirname(made) == tempfile.gettempdir():
        shutil.rmtree(made, ignore_errors=True)
    os._exit(code)

class ShowDefaults(argparse.HelpFormatter):
    """--help gives each option's bounds, if any, and its default, where it has one (not None, not an off switch)."""
    def _get_help_string(self, action):
        shown = action.option_strings and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
        bounds = getattr(action.type, "bounds", "")
        return (action.help or "") + (f"; {bounds}" if bounds else "") + (" (default: %(default)s)" if shown else "")

class ArgParser(argparse.ArgumentParser):
    """Bad input is one error line; no abbreviations (--lr must not quietly mean --lr_something)."""
    def __init__(self, **kwargs):
        super().__init__(formatter_class=ShowDefaults, allow_abbrev=False, **kwargs)
        # a value such as -1e-3 is a number, not an option (argparse knows only -1 and -0.5 as numbers)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):
        die(message)

def number(kind, low=-math.inf, high=math.inf, above=False):
    """An argparse type: a finite int or float in [low, high] (or (low, high] with above=True). Its bounds in words
    (parse.bounds) are what --help and the error line say."""
    high = min(high, 2**31 - 1) if kind is int else high  # above it, sizes overflow inside torch unchecked
    show = lambda x: f"{x:g}" if kind is float else str(x)  # 1e-05 for a float, every digit of an int
    bounds = " and ".join([f"{'above' if above else 'at least'} {show(low)}"] * (low > -math.inf)
                          + [f"at most {show(high)}"] * (high < math.inf))
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, not {text!r}")
        if not (math.isfinite(value) and (low < value if above else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"must be a finite number{' ' * bool(bounds)}{bounds}, not {text}")
        return value
    parse.kind, parse.low, parse.high, parse.bounds = kind, low, high, bounds  # for --help and the tests
    return parse

positive_int, count = number(int, 1), number(int, 0)
fraction, unit = number(float, 0, 1, above=True), number(float, 0, 1)  # (0, 1] and [0, 1]

# -----------------------------------------------------------------------------
# files: every file the scripts write goes through write_file or append_line

UMASK = os.umask(0o022)
os.umask(UMASK)  # (reading the umask means setting it)

def write_file(path, write, new_folder=True):
    """write(tmp_path) writes the file whole, then it replaces path at once: a crash leaves the old file, a failed
    write removes its temporary file (this process's own, with a short name) and is one error line.
    new_folder=False: the file's folder must exist (a run record is never written by making its folder anew)."""
    if os.path.isdir(path):
        die(f"cannot write {path}: a folder is in the way")
    tmp = None
    try:
        if new_folder:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~UMASK)  # as open() would have made it, not mkstemp's private 0600
        os.replace(tmp, path)
    except BaseException as e:  # Ctrl-C mid-write too: no debris, then the interrupt goes on
        if tmp and os.path.isfile(tmp):
            os.remove(tmp)
        if not isinstance(e, Exception):
            raise
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        if "inline_container" in reason:  # torch.save's words for a file it could not finish
            reason = "the file could not be written whole (is the disk full?)"
        die(f"cannot write {path}: {reason}")

def write_text(path, text, new_folder=True):
    write_file(path, lambda tmp: pathlib.Path(tmp).write_text(text), new_folder)

def write_json(path, value, new_folder=True):
    """Strict JSON: a NaN or infinity is an error here, not a file other readers cannot parse."""
    try:
        text = json.dumps(value, indent=1, allow_nan=False)
    except ValueError:
        die(f"cannot write {path}: it would hold a NaN or an infinity")
    write_text(path, text, new_folder)

def append_line(path, text):
    try:
        with open(path, "a") as f:
            f.write(text + "\n")
    except OSError as e:
        die(f"cannot write {path}: {e.strerror or e}")

def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        die(f"cannot read {path}: {getattr(e, 'strerror', None) or e}")

def read_json(path):
    try:
        return json.loads(read_text(path))
    except ValueError as e:
        die(f"cannot read {path}: {e}")
    except RecursionError:
        die(f"cannot read {path}: nested too deeply to be a file of this kit")

# -----------------------------------------------------------------------------
# the machine

def pick_device(name):
    """auto: cuda, else mps, else cpu; a device this machine lacks is one error line."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available() or name == "mps" and not torch.backends.mps.is_available():
        die(f"--device {name} is not available on this machine")
    return name

def check_fits(what, n, width, device, num_keys, d_model=0, blocks=0, n_heads=0, training=False, chunk=None):
    """Refuse n sequences of width tokens that would not fit in memory, by a rough upper estimate: generating them,
    then chunk at a time through the model (activations, kept for backward when training, T x T attention)."""
    chunk = n if chunk is None else min(n, chunk)
    per_token = 4 * d_model * (24 * blocks + 8) * (2 if training else 1) + 12 * n_heads * blocks * width
    needed = n * (12 * num_keys + 40 * width) + chunk * width * per_token
    available = torch.cuda.get_device_properties(0).total_memory if device == "cuda" else \
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        die(f"{what} {n} x {width} tokens needs ~{needed / 2**30:.1f} GiB, more than this machine's "
            f"{available / 2**30:.1f} GiB")
