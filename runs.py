"""The run plumbing shared by the scripts: the error line and the argument parser (with the bounds of option values),
file writing that leaves no debris, the device and memory checks, run names, and the run folder: config.json,
log.jsonl (appended), ckpt.pt (enough to resume and to evaluate), eval.json; one process at a time holds it."""
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
import fcntl
import json
import math
import pathlib
import re
import tempfile
import warnings

import torch

from model import ModelConfig, default_pos

IN_USE = 75  # the exit code of a refusal because another process holds the run folder (launchers skip it)

# -----------------------------------------------------------------------------
# the error line, the scripts' entry point, and the argument parser

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
    """Run a script's main(). Ctrl-C and SIGTERM: one line, exit code 128 + the signal's number (train.py says where
    to resume). Output piped into a reader that stops early (`| head`) ends the script quietly with exit code 1; any
    other failed write to the terminal or a file (a full disk) is one error line. Once main() is over the process
    ends at once: the interpreter's teardown (most of a second with torch) does nothing a run needs, and a signal
    during it would end the process without a word."""
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        try:
            main()
            sys.stdout.flush()  # inside the try: a reader gone before the last flush is caught here, not at exit
        except KeyboardInterrupt as e:
            die("interrupted", code=stop_code(e))
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit has nowhere to fail
            sys.exit(1)
        except OSError as e:  # standard output on a full disk, say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            die(f"cannot write the output: {e.strerror or e}")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os._exit(code)

class ShowDefaults(argparse.HelpFormatter):
    """--help gives each option's bounds, if it has any, and its default, where it has one to give (not None, not an
    off switch)."""
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

LARGEST_INT = 2**31 - 1  # sizes and counts above this overflow inside torch before any memory check could help

def number(kind, low=-math.inf, high=math.inf, above=False):
    """An argparse type: a finite int or float in [low, high] (or (low, high] with above=True). Its bounds in words
    (parse.bounds) are what --help and the error line say."""
    high = min(high, LARGEST_INT) if kind is int else high
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

def checked_again(parser, values, where="argument"):
    """values (a dict, e.g. a saved config) with every option passed through its type and choices again: a config
    edited by hand is held to the same bounds as the command line."""
    for action in parser._actions:
        value = values.get(action.dest)
        name = f"argument {action.option_strings[0]}" if where == "argument" else f"{where}: {action.dest}"
        if value is None and action.dest in values and action.default is not None:
            die(f"{name}: null, but the option has a value whenever it is set")
        if value is None:
            continue
        if isinstance(action.default, bool) != isinstance(value, bool):  # a switch, or a truth value where none is
            die(f"{name}: {value!r} is {'not ' * isinstance(action.default, bool)}a truth value")
        if where != "argument" and isinstance(value, str) and getattr(action.type, "kind", None):
            die(f"{name}: {value!r} is text, not a number")
        if callable(action.type) and not isinstance(value, bool):
            try:
                values[action.dest] = action.type(repr(value) if isinstance(value, float) else str(value))
            except argparse.ArgumentTypeError as e:
                die(f"{name}: {e}")
        if action.choices and values[action.dest] not in action.choices:
            die(f"{name}: {values[action.dest]!r} is not one of {', '.join(map(str, action.choices))}")
    return values

RECORDED = ("model_config", "attn_on_step")  # what a config.json holds besides options: the model, --delay auto's step
RETIRED = ("bench",)  # options older kits had, which never changed what a run computes: ignored

def checked_config(parser, config, where):
    """A run's saved options (config.json, a checkpoint's config) held to the options' current meaning: each key an
    option of this kit (a key it does not know was written by another kit: refused), each value checked again."""
    if not isinstance(config, dict):
        die(f"{where} is not a JSON object")
    options = {action.dest for action in parser._actions}
    for key in config:
        if key not in options and key not in RECORDED + RETIRED:
            die(f"{where}: {key} is not an option of this kit (a newer kit's run?)")
    step = config.get("attn_on_step")
    if step is not None and (type(step) is not int or step < 0):
        die(f"{where}: attn_on_step is {step!r}, not a step")
    return checked_again(parser, dict(config), where)

# -----------------------------------------------------------------------------
# files: every file the scripts write goes through write_file or append_line

UMASK = os.umask(0o022)
os.umask(UMASK)  # (reading the umask means setting it)

def write_file(path, write):
    """write(tmp_path) writes the file whole, then it replaces path at once: a crash leaves the old file, a failed
    write (a full disk, an error inside torch or matplotlib) removes its temporary file and is one error line. The
    temporary name is this process's own (two writers of one file never share it) and short (any name fits)."""
    if os.path.isdir(path):
        die(f"cannot write {path}: a folder is in the way")
    tmp = None
    try:
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

def write_text(path, text):
    write_file(path, lambda tmp: pathlib.Path(tmp).write_text(text))

def write_json(path, value):
    """Strict JSON: a NaN or infinity is an error here, not a file other readers cannot parse."""
    try:
        text = json.dumps(value, indent=1, allow_nan=False)
    except ValueError:
        die(f"cannot write {path}: it would hold a NaN or an infinity")
    write_text(path, text)

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
    """Refuse n sequences of width tokens that would not fit in memory, by a rough upper estimate: generating them
    (a key shuffle per sequence, tokens, targets, masks), then chunk at a time through the model (activations, kept
    for the backward pass when training, and T x T attention weights)."""
    chunk = n if chunk is None else min(n, chunk)
    per_token = 4 * d_model * (24 * blocks + 8) * (2 if training else 1) + 12 * n_heads * blocks * width
    needed = n * (12 * num_keys + 40 * width) + chunk * width * per_token
    available = torch.cuda.get_device_properties(0).total_memory if device == "cuda" else \
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        die(f"{what} {n} x {width} tokens needs ~{needed / 2**30:.1f} GiB, more than this machine's "
            f"{available / 2**30:.1f} GiB")

# -----------------------------------------------------------------------------
# run names: model-group[-every identifying option that differs from its default]-schedule, e.g.
# lstm_attn-S3-rope-len16-dat5000. `defaults` maps each identifying option (train.IDENTITY) to its default, so a
# new option is named without touching this code; SHORT only shortens the names of the options that have one.

SHORT = dict(train_len="len", num_keys="keys", num_queries="q", state_frac="sf", d_model="d", n_heads="h",
             n_lstm="nlstm", n_attn="nattn", emb_skip="skip", batch_size="bs", max_iters="iters", min_lr_frac="minlr",
             weight_decay="wd", grad_clip="clip", auto_threshold="thr", auto_window="win", auto_interval="every",
             transitions="", beta_max="beta")  # e.g. lstm-Z5-corediagonal-complex-plain, ...-coredelta-beta2-plain
FIRST = ("model", "group", "pos", "device")  # named by their value alone, in this order, before the others
SCHEDULE = ("dat", "delay", "dat_mode", "ramp", "auto_threshold", "auto_window", "auto_interval")  # its options

def identity(config, defaults):
    """The options of a config (a dict, e.g. a run's config.json) that decide what the run computes, seed aside;
    options newer than the config take their defaults."""
    return {name: config.get(name, default) for name, default in defaults.items()}

def is_default(name, value, config, defaults):
    if name == "pos":  # its default depends on the model
        return value == default_pos(config["model"])
    if name == "device":  # a CPU run is the usual run; a CUDA run (bf16, data drawn on the GPU) is another one
        return value in ("auto", "cpu")
    return value == defaults[name]

def tag(name, value):
    if name in FIRST:
        return str(value)
    if isinstance(value, bool):
        return SHORT.get(name, name)
    return f"{SHORT.get(name, name)}{value:g}" if isinstance(value, (int, float)) else f"{SHORT.get(name, name)}{value}"

def setting_name(config, defaults):
    """model-group[-options that differ from their defaults], schedule and seed aside: e.g. lstm_attn-S3-rope-len16."""
    c = identity(config, defaults)
    names = sorted((k for k in c if k not in SCHEDULE), key=lambda k: FIRST.index(k) if k in FIRST else len(FIRST))
    return "-".join(tag(k, c[k]) for k in names if k in FIRST[:2] or not is_default(k, c[k], c, defaults))

def schedule_name(config, defaults):
    """plain, dat5000, dat5000r1000, freeze5000, lr5000, datauto or datauto-thr0.9-win5."""
    c = identity(config, defaults)
    if not c["dat"]:
        return "plain"
    name = {"gate": "dat", "freeze": "freeze", "lr": "lr"}[c["dat_mode"]] + str(c["delay"])
    name += f"r{c['ramp']}" if c["ramp"] else ""
    return "-".join([name] + [tag(k, c[k]) for k in SCHEDULE[4:] if c[k] != defaults[k]])

def run_name(config, defaults):
    """setting-schedule: runs that differ in anything but the seed get different names."""
    return f"{setting_name(config, defaults)}-{schedule_name(config, defaults)}"

# -----------------------------------------------------------------------------
# the run folder: lock, log, state, checkpoint

_held = {}  # (device, inode) of each folder this process holds: its descriptor, whose lock lasts as long as the process

def lock(folder, create=True):
    """Hold folder for this process (an advisory lock on the folder itself, gone when the process ends, however it
    ends): a second trainer or evaluator of the same folder refuses in one line and leaves it untouched. Readers that
    write (eval.py, --resume) hold it before they read anything in it. create=False: the folder must exist."""
    if os.path.islink(folder) and not os.path.exists(folder):
        die(f"{folder} is a symbolic link to nothing")
    if not create and not os.path.isdir(folder):
        die(f"no run folder at {folder}")
    try:
        os.makedirs(folder, exist_ok=True)
        inode = (os.stat(folder).st_dev, os.stat(folder).st_ino)
        if inode in _held:  # this process holds it already (train.py, then eval.py in the same process)
            return
        fd = os.open(folder, os.O_RDONLY)
    except OSError as e:
        die(f"cannot write {folder}: {e.strerror or e}")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        die(f"{folder} is in use by another process", code=IN_USE)
    _held[inode] = fd

def release_locks():
    """Let go of every folder this process holds (for a process that runs several scripts in turn: the tests)."""
    while _held:
        os.close(_held.popitem()[1])

def read_log(path):
    """The entries of a log.jsonl, each with an integer step. A last line without its newline (a live trainer's
    line half written, or one a crash or a full disk cut short) is not an entry: readers leave it alone, and the
    process that holds the folder cuts it off (start_log). Anything else malformed is one error line."""
    lines, log = read_text(path).split("\n")[:-1], []  # the last piece: "" after a whole line, else unfinished
    for i, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            die(f"{path}: line {i + 1} is not JSON")
        if not isinstance(entry, dict) or type(entry.get("step")) is not int:
            die(f"{path}: line {i + 1} has no integer step")
        log.append(entry)
    return log

RUN_FILES = ("config.json", "log.jsonl", "ckpt.pt", "eval.json", "eval.txt")  # any of them: a run folder

def run_state(out_dir, log=None):
    """new (nothing trained, or a run stopped before its first checkpoint), interrupted (a checkpoint short of the
    run's max_iters), trained (the log at max_iters, a checkpoint, no eval.json yet) or finished (the log at
    max_iters and eval.json: a committed run folder has no checkpoint). Judged by the folder's own config.json, never
    by the options of the command that asks. log: the folder's log entries, if the caller has read them already."""
    path = lambda name: os.path.join(out_dir, name)
    if not os.path.isfile(path("config.json")):
        if any(os.path.exists(path(name)) for name in RUN_FILES[1:]):
            die(f"{out_dir} holds run records without their config.json")
        return "new"
    config = read_json(path("config.json"))
    max_iters = config.get("max_iters") if isinstance(config, dict) else None
    if type(max_iters) is not int:
        die(f"{path('config.json')}: max_iters is not an integer")
    if log is None:
        log = read_log(path("log.jsonl")) if os.path.exists(path("log.jsonl")) else []
    at_end = bool(log) and log[-1]["step"] == max_iters
    if at_end and os.path.isfile(path("eval.json")):
        return "finished"
    if not os.path.isfile(path("ckpt.pt")):
        if at_end:
            die(f"{out_dir}: its log reaches max_iters {max_iters} but it has neither eval.json nor a checkpoint to "
                f"score")
        return "new"
    return "trained" if at_end else "interrupted"

def start_log(path, ckpt):
    """Write log.jsonl as a run starts or resumes: the lines up to the checkpoint's step (the loop writes the later
    ones again), with the checkpoint's own line if a stop came between writing the two; an unfinished last line (a
    crash or a full disk) cut off, said once; untouched if it is so already."""
    text = read_text(path) if ckpt and os.path.exists(path) else ""
    old = read_log(path) if text else []
    log = [e for e in old if e["step"] <= ckpt["step"]] if ckpt else []
    if ckpt and ckpt.get("entry") and (not log or log[-1]["step"] < ckpt["step"]):
        log.append(ckpt["entry"])
    new_text = "".join(json.dumps(entry) + "\n" for entry in log)
    if text and not text.endswith("\n"):
        print(f"warning: {path}: cut off an unfinished last line", file=sys.stderr)
    if not ckpt or new_text != text:
        write_text(path, new_text)

def save_checkpoint(path, **state):
    write_file(path, lambda tmp: torch.save({"kit": "dat-kit", **state}, tmp))

CKPT_KEYS = ("model", "config", "model_config", "step", "gate")  # what eval needs; resuming needs the rest too
RESUME_KEYS = CKPT_KEYS + ("optimizer", "streak", "data_rng")
CONFIG_KEYS = ("model", "group", "train_len", "num_keys", "num_queries", "seed", "max_iters")

def load_checkpoint(path, for_resume=False):
    """A dat-kit checkpoint, or one clear error line for a missing, truncated, foreign or incomplete file.
    model_config fields newer than the checkpoint are not required: they take the dataclass's defaults."""
    if not os.path.isfile(path):
        die(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch warns before refusing a file that is not a zip archive
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated files and foreign pickles both land here
        reason = str(e).split("\n")[0].split(". ")[0]
        die(f"cannot read checkpoint {path} ({type(e).__name__}: {reason}): not a file train.py wrote, or damaged")
    if not isinstance(ckpt, dict) or ckpt.get("kit") != "dat-kit":
        die(f"{path} is not a dat-kit checkpoint")
    missing = [k for k in (RESUME_KEYS if for_resume else CKPT_KEYS) if k not in ckpt]
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    missing += [f"config {k}" for k in CONFIG_KEYS if k not in config]
    missing += ["model_config"] * (not isinstance(ckpt.get("model_config"), dict))
    if missing:
        die(f"{path} is incomplete: it lacks {', '.join(missing)}")
    return ckpt

def check_agreement(folder, config, model_config, defaults, ckpt=None, may_differ=()):
    """The one consistency check of a run folder: its config.json's model_config is the model its options make now
    (model_config, a dict), and a checkpoint holds the same run (identifying options and seed, and the folder it
    was written for; `may_differ`: options a resume may change) and the same model. One error line names the field
    that differs. Fields newer than a record take their defaults (the kit's older runs load as before)."""
    def compare(saved, now, what):
        if not isinstance(saved, dict) or set(saved) - set(now):
            unknown = sorted(set(saved) - set(now)) if isinstance(saved, dict) else ["(not a JSON object)"]
            die(f"{what}: model_config field {unknown[0]} is unknown to this kit")
        for key, value in now.items():
            if saved.get(key, getattr(ModelConfig, key)) != value:
                shown = repr(saved[key]) if key in saved else f"missing (so {getattr(ModelConfig, key)!r})"
                die(f"{what}: model_config {key} is {shown}, but its options make {value!r} (a run made before its "
                    f"option reached the model? train it again)")
    compare(config.get("model_config", {}), model_config, os.path.join(folder, "config.json"))
    if ckpt is None:
        return
    where = os.path.join(folder, "ckpt.pt")
    theirs, ours = ckpt["config"], config
    name = lambda c: os.path.basename(os.path.normpath(str(c.get("out_dir"))))
    for key in [k for k in defaults if k not in may_differ] + ["seed"]:
        if theirs.get(key, defaults.get(key)) != ours.get(key, defaults.get(key)):
            die(f"{where} holds another run: its {key} is {theirs.get(key)!r}, config.json's {ours.get(key)!r}")
    if name(theirs) != name(ours):
        die(f"{where} was written for the run folder {name(theirs)}, not {name(ours)}")
    compare(ckpt["model_config"], model_config, where)

def check_weights(weights, model, where):
    """The checkpoint's weights fit the model its options make now: the same parameters, of the same shapes (a run
    trained before the model's code changed does not). One error line names the first that differs."""
    now = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in weights.items()} if isinstance(weights, dict) else {}
    for key in sorted(now.keys() | saved.keys()):
        if now.get(key) != saved.get(key):
            die(f"{where}: its weights do not fit the model its options make: {key} is {saved.get(key, 'missing')} "
                f"there, {now.get(key, 'missing')} here (a run made before the model changed? train it again)")

def resumed(parser, argv, safe, check):
    """The options of the run in --out_dir (checked again by check), with the few in `safe` taken from argv;
    options newer than the run take their defaults. The folder is held first, then read. (args, checkpoint)."""
    unset = object()  # the options typed on the command line are those not left unset
    namespace = argparse.Namespace(**{action.dest: unset for action in parser._actions})
    given = {k: v for k, v in vars(parser.parse_args(argv, namespace)).items() if v is not unset}
    if given.get("out_dir") is None:
        die("--resume needs --out_dir, the run folder to continue")
    if given.get("dry_run"):
        die("--dry_run starts no run: not with --resume")
    lock(given["out_dir"], create=False)
    ckpt = load_checkpoint(os.path.join(given["out_dir"], "ckpt.pt"), for_resume=True)
    run = checked_config(parser, ckpt["config"], os.path.join(given["out_dir"], "ckpt.pt"))
    args = check(parser.parse_args([], argparse.Namespace(**{**run, **given})))  # out_dir: the folder passed
    for name in given:
        if name not in safe + ("resume", "out_dir") and getattr(args, name) != run.get(name):
            die(f"--{name} {getattr(args, name)} differs from the run's {run.get(name)}: a resumed run keeps its "
                f"options; only {', '.join('--' + s for s in safe)} may change")
    return args, ckpt
