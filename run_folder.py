"""
A run folder's records and their checks: config.json, log.jsonl (appended), ckpt.pt, eval.json. One process at a time
holds a folder (lock); its state (new, interrupted, trained, finished) is judged by its own records; its records are
checked against the options (options.py) whenever it is used, so a folder made before a change says what differs.
"""
import argparse
import fcntl
import json
import math
import os
import sys
import warnings
from dataclasses import asdict

import torch

from model import Model, ModelConfig
from options import IDENTITY, SAFE_ON_RESUME, check_args, checked_config, model_config_of, parser
from runs import IN_USE, die, read_json, read_text, write_file, write_text

# -----------------------------------------------------------------------------
# lock, log, state, checkpoint

_held = {}  # (device, inode) of each folder this process holds: its descriptor, whose lock lasts as long as the process

def inode_of(folder):
    """(device, inode) of folder: what a lock holds, whatever the folder's path becomes."""
    stat = os.stat(folder)
    return stat.st_dev, stat.st_ino

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
        inode = inode_of(folder)
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

def still_held(folder):
    """Stop with one line unless folder is still the folder this process locked (same inode): a folder moved or
    replaced while its run trained is never written again, by this process or by making it anew."""
    try:
        held = inode_of(folder) in _held
    except OSError:
        held = False
    if not held:
        die(f"{folder} is no longer the folder this run holds (moved or replaced while it ran): stopped")

def in_use(folder):
    """Whether another process holds folder (lock) right now: it may be writing the folder's first records."""
    try:
        if inode_of(folder) in _held:  # this process's own
            return False
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, then let go as fd closes
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)

def read_log(path):
    """The entries of a log.jsonl, each with an integer step, the steps strictly increasing; anything else malformed is
    one error line. A last line without its newline (half written by a live trainer, or cut short by a crash or a
    full disk) is no entry: readers leave it alone, and the process that holds the folder cuts it off (start_log)."""
    lines, log = read_text(path).split("\n")[:-1], []  # the last piece: "" after a whole line, else unfinished
    for i, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            die(f"{path}: line {i + 1} is not JSON")
        if not isinstance(entry, dict) or type(entry.get("step")) is not int:
            die(f"{path}: line {i + 1} has no integer step")
        if log and entry["step"] <= log[-1]["step"]:
            die(f"{path}: line {i + 1} has step {entry['step']}, not after line {i}'s {log[-1]['step']}")
        log.append(entry)
    return log

RUN_FILES = ("config.json", "log.jsonl", "ckpt.pt", "eval.json", "eval.txt")  # any of them: a run folder

def read_eval(path):
    """An eval.json: (how it was scored, its records). eval.py writes {"scored": {...}, "records": [...]}; a plain list
    of records, written before eval.json said how it was scored (every committed one), has None for the first."""
    value = read_json(path)
    if isinstance(value, dict) and value.keys() == {"scored", "records"} and isinstance(value["scored"], dict):
        return value["scored"], value["records"]
    return None, value

RECORD_KEYS = {"n", "mult", "state_acc", "recall_acc", "token_acc", "seq_acc"}

def accuracies(value, key=""):
    """Every accuracy in an eval.json record, at any depth (attention off's, the probe's, recall by age's bands)."""
    if isinstance(value, dict):
        return [a for k, v in value.items() for a in accuracies(v, k)]
    if isinstance(value, list):
        return [a for v in value for a in accuracies(v, key)]
    return [value] if key.endswith("_acc") or key == "recall_by_age" else []

def eval_problem(records, config):
    """What makes an eval.json's records unreadable for the run of config, or None."""
    if not (isinstance(records, list) and all(isinstance(r, dict) and RECORD_KEYS <= r.keys() for r in records)):
        return f"eval.json does not hold eval.py's records (with {', '.join(sorted(RECORD_KEYS))})"
    if not all(isinstance(a, (int, float)) and math.isfinite(a) and 0 <= a <= 1 for a in accuracies(records)):
        return "eval.json holds an accuracy that is not a number from 0 to 1"
    if not (all(type(r["mult"]) is int and 1 <= r["mult"] * config["train_len"] <= config["num_keys"] for r in records)
            and len({r["mult"] for r in records}) == len(records)):
        return "eval.json's test lengths (mult) are not distinct whole numbers from 1 to the run's --num_keys steps"

def run_state(out_dir, log=None):
    """new (nothing trained, or stopped before its first checkpoint), interrupted (a checkpoint short of max_iters),
    trained (a checkpoint at max_iters, no eval.json yet) or finished (eval.json, and a checkpoint at max_iters if
    there is one: a committed run folder has none), by the folder's own config.json. The checkpoint's step is the
    truth, not the log's; without one, the eval.json. log: the folder's log entries, if the caller has read them."""
    path = lambda name: os.path.join(out_dir, name)
    if not os.path.isfile(path("config.json")):
        if any(os.path.exists(path(name)) for name in RUN_FILES[1:]):
            die(f"{out_dir} holds run records without their config.json")
        return "new"
    config = read_json(path("config.json"))
    max_iters = config.get("max_iters") if isinstance(config, dict) else None
    if type(max_iters) is not int:
        die(f"{path('config.json')}: max_iters is not an integer")
    scored = os.path.isfile(path("eval.json"))
    if os.path.isfile(path("ckpt.pt")):
        at_end = load_checkpoint(path("ckpt.pt"))["step"] == max_iters
        return ("finished" if scored else "trained") if at_end else "interrupted"
    if scored:  # scored at max_iters, as the committed plain lists of records were
        step = (read_eval(path("eval.json"))[0] or {}).get("step", max_iters)
        if step != max_iters:
            die(f"{out_dir}: its eval.json scores step {step!r}, not max_iters {max_iters}, and it has no checkpoint")
        return "finished"
    if log is None:
        log = read_log(path("log.jsonl")) if os.path.exists(path("log.jsonl")) else []
    if log and log[-1]["step"] == max_iters:
        die(f"{out_dir}: its log reaches max_iters {max_iters} but it has neither eval.json nor a checkpoint to score")
    return "new"

def start_log(path, ckpt):
    """Write log.jsonl as a run starts or resumes: the lines up to the checkpoint's step (the loop writes the later
    ones again), with the checkpoint's own line if a stop came between writing the two; an unfinished last line (a
    crash or a full disk) cut off, said once; untouched if it is so already."""
    text = read_text(path) if ckpt and os.path.exists(path) else ""
    log = [e for e in read_log(path) if e["step"] <= ckpt["step"]] if text else []
    if ckpt and ckpt.get("entry") and (not log or log[-1]["step"] < ckpt["step"]):
        log.append(ckpt["entry"])
    new_text = "".join(json.dumps(entry) + "\n" for entry in log)
    if text and not text.endswith("\n"):
        print(f"warning: {path}: cut off an unfinished last line", file=sys.stderr)
    if not ckpt or new_text != text:
        write_text(path, new_text, new_folder=False)

def save_checkpoint(path, **state):
    write_file(path, lambda tmp: torch.save({"kit": "dat-kit", **state}, tmp), new_folder=False)

CKPT_KEYS = ("model", "config", "model_config", "step", "gate")  # what eval needs; resuming needs the rest too
RESUME_KEYS = CKPT_KEYS + ("optimizer", "streak", "data_rng")
CONFIG_KEYS = ("model", "group", "train_len", "num_keys", "num_queries", "seed", "max_iters")

def load_checkpoint(path, for_resume=False):
    """A dat-kit checkpoint, or one error line for a missing, truncated, foreign, incomplete or damaged file."""
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
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    checks = {"model": lambda w: isinstance(w, dict) and all(isinstance(t, torch.Tensor) for t in w.values()),
              "step": lambda s: type(s) is int and s >= 0, "gate": lambda g: number(g) and 0 <= g <= 1,
              "optimizer": lambda o: isinstance(o, dict) and {"state", "param_groups"} <= o.keys(),
              "streak": lambda s: type(s) is int and s >= 0, "data_rng": lambda r: isinstance(r, torch.Tensor)}
    wrong = [k for k, fits in checks.items() if k in ckpt and not fits(ckpt[k])]
    if wrong:
        die(f"{path} is damaged: its {wrong[0]} is not what train.py writes ({type(ckpt[wrong[0]]).__name__})")
    return ckpt

def same_model(saved, model_config, what):
    """One error line unless a saved model_config (config.json's, a checkpoint's) is model_config, the model the run's
    options make now: fields newer than the record take their defaults (older runs load as before)."""
    if not isinstance(saved, dict):
        die(f"{what}: model_config is not a JSON object")
    now = asdict(model_config)
    if set(saved) - set(now):
        die(f"{what}: model_config field {sorted(set(saved) - set(now))[0]} is unknown to this kit")
    for key, value in now.items():
        if saved.get(key, getattr(ModelConfig, key)) != value:
            shown = repr(saved[key]) if key in saved else f"missing (so {getattr(ModelConfig, key)!r})"
            die(f"{what}: model_config {key} is {shown}, but its options make {value!r} (a run made before its "
                f"option reached the model? train it again)")

# -----------------------------------------------------------------------------
# the run in a folder, held to the options

def checked_run(folder, ckpt=None):
    """The config.json of folder, held to the options' meaning, its model_config the model its options make now; and
    its checkpoint, if any, the same run (identifying options, seed and folder), model and weights. One error line
    names the field that differs."""
    config_path, where = os.path.join(folder, "config.json"), os.path.join(folder, "ckpt.pt")
    config = checked_config(read_json(config_path), config_path)
    for key in CONFIG_KEYS + ("model_config",):
        if key not in config:
            die(f"{config_path} lacks {key}")
    if ckpt is None and os.path.isfile(where):
        ckpt = load_checkpoint(where)
    if ckpt is not None:
        checked_config(ckpt["config"], where)
    model_config = model_config_of(config)
    same_model(config["model_config"], model_config, config_path)
    if ckpt is None:
        return config
    theirs, name = ckpt["config"], lambda c: os.path.basename(os.path.normpath(str(c.get("out_dir"))))
    for key in [*IDENTITY, "seed"]:
        if theirs.get(key, IDENTITY.get(key)) != config.get(key, IDENTITY.get(key)):
            die(f"{where} holds another run: its {key} is {theirs.get(key)!r}, config.json's {config.get(key)!r}")
    if name(theirs) != name(config):
        die(f"{where} was written for the run folder {name(theirs)}, not {name(config)}")
    same_model(ckpt["model_config"], model_config, where)
    with torch.device("meta"):  # the weights are the model's parameters; shapes only: no memory, no random draw
        shapes = {k: tuple(v.shape) for k, v in Model(model_config).state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in ckpt["model"].items()}  # load_checkpoint: a dict of tensors
    for key in sorted(shapes.keys() | saved.keys()):
        if shapes.get(key) != saved.get(key):
            die(f"{where}: its weights do not fit the model its options make: {key} is {saved.get(key, 'missing')} "
                f"there, {shapes.get(key, 'missing')} here (a run made before the model changed? train it again)")
    return config

def folder_state(args):
    """run_state of args.out_dir, which must hold this run if it holds any (its identifying options and seed)."""
    state = run_state(args.out_dir)
    if os.path.isfile(os.path.join(args.out_dir, "config.json")):
        theirs = checked_run(args.out_dir)
        for key in list(IDENTITY) + ["seed"]:
            if theirs.get(key, IDENTITY.get(key)) != getattr(args, key):
                die(f"{args.out_dir} holds another run: its {key} is {theirs.get(key, IDENTITY.get(key))!r}, not "
                    f"{getattr(args, key)!r}; choose another --out_dir")
    return state

def resumed(argv):
    """(args, ckpt) of the run in --out_dir, held first, then read: its options with those SAFE_ON_RESUME allows
    taken from argv (options newer than the run take their defaults)."""
    unset = object()  # the options typed on the command line are those not left unset
    namespace = argparse.Namespace(**{action.dest: unset for action in parser._actions})
    given = {k: v for k, v in vars(parser.parse_args(argv, namespace)).items() if v is not unset}
    if given.get("out_dir") is None:
        die("--resume needs --out_dir, the run folder to continue")
    if given.get("dry_run"):
        die("--dry_run starts no run: not with --resume")
    lock(given["out_dir"], create=False)
    ckpt = load_checkpoint(os.path.join(given["out_dir"], "ckpt.pt"), for_resume=True)
    run = checked_config(ckpt["config"], os.path.join(given["out_dir"], "ckpt.pt"))
    args = check_args(parser.parse_args([], argparse.Namespace(**{**run, **given})))  # out_dir: the folder passed
    for name in given:
        if name not in SAFE_ON_RESUME + ("resume", "out_dir") and getattr(args, name) != run.get(name):
            die(f"--{name} {getattr(args, name)} differs from the run's {run.get(name)}: a resumed run keeps its "
                f"options; only {', '.join('--' + s for s in SAFE_ON_RESUME)} may change")
    return args, ckpt
