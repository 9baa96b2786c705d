"""
The options of a run: train.py's parser, every option's bounds where it is defined, which options identify a run (its
name) and which a model or core has no use for, what a resume may change, the ModelConfig they make, the checks
across options, and a saved config (config.json, a checkpoint's) held to the options' meaning.
"""
import argparse
import os
from dataclasses import fields

from data import GROUPS, group_option, machine_of, seq_width, vocab_size
from model import CORES, HYBRIDS, MODELS, TRANSITIONS, ModelConfig, block_layout, default_pos
import runs
from runs import ArgParser, count, die, fraction, number, positive_int, unit

DEFAULT_DELAY = 5000  # --dat without --delay

def delay_option(text):
    return text if text == "auto" else count(text)

parser = ArgParser(description="Train an LSTM, Transformer or hybrid on the composite task, optionally with DAT.")
arg = parser.add_argument
arg("--model", default="lstm_attn", choices=MODELS, help="the model")
arg("--group", default="S3", type=group_option, help=f"state group: {GROUPS}")
arg("--train_len", type=positive_int, default=8, help="training sequences have 1..train_len steps")
arg("--num_keys", type=positive_int, default=64, help="key vocabulary K: at least the longest test length")
arg("--num_queries", type=positive_int, default=8, help="queries per sequence: min(n, num_queries)")
arg("--state_frac", type=fraction, default=1.0, help="keep each training state target with this probability")
arg("--d_model", type=positive_int, default=64, help="width of embeddings, LSTM and attention")
arg("--n_heads", type=positive_int, default=2, help="attention heads (d_model / n_heads must be even)")
arg("--n_lstm", type=positive_int, default=1, help="recurrent blocks (LSTM layers with the default core)")
arg("--n_attn", type=positive_int, default=2, help="attention blocks")
arg("--mlp", action="store_true", help="give each hybrid attention block an MLP (the transformer always has one)")
arg("--pos", choices=("rope", "none"), help="position encoding in attention (default: rope for the transformer, none)")
arg("--emb_skip", type=number(float, -100, 100), default=0.1, help="the token embedding's weight in a recurrent block")
arg("--core", default="lstm", choices=tuple(CORES), help="what the recurrent blocks compute (model.py: equations)")
arg("--transitions", default="unit", choices=TRANSITIONS, help="the diagonal core's a_t: [0, 1], [-1, 1] or unit disc")
arg("--beta_max", type=int, default=1, choices=(1, 2), help="the delta core's beta_t is in [0, beta_max] (2: reflect)")
arg("--householder", type=number(int, 1, 8), default=1, help="the delta core's steps per token (1: DeltaNet, more: "
    "DeltaProduct)")
arg("--batch_size", type=positive_int, default=64, help="sequences per training step")
arg("--max_iters", type=positive_int, default=8000, help="training steps")
arg("--lr", type=number(float, 0, 10, above=True), default=3e-3, help="peak learning rate (AdamW, betas 0.9 0.98)")
arg("--warmup", type=count, default=100, help="linear warmup steps, then cosine decay to --min_lr_frac * lr")
arg("--min_lr_frac", type=unit, default=0.1, help="where the cosine decay ends, as a fraction of --lr")
arg("--weight_decay", type=number(float, 0, 100), default=0.01, help="AdamW weight decay (of matrices only)")
arg("--grad_clip", type=number(float, 0, above=True), default=1.0, help="clip the gradient's global norm to this")
arg("--dat", action="store_true", help="Delayed Attention Training: attention gated to 0 and frozen for --delay steps")
arg("--delay", type=delay_option, help=f"steps before attention switches on (needs --dat; default {DEFAULT_DELAY}), or "
    "auto: once the state accuracy on training batches has been at or above --auto_threshold for --auto_window checks")
arg("--dat_mode", default="gate", choices=("gate", "freeze", "lr"), help="during the delay: gate 0 and attention "
    "frozen (DAT), gate 1 and attention frozen at its init, or gate 1 and the attention's lr warmed up")
arg("--auto_threshold", type=unit, default=0.99, help="state accuracy that --delay auto waits for")
arg("--auto_window", type=positive_int, default=3, help="checks in a row at --auto_threshold --delay auto waits for")
arg("--auto_interval", type=positive_int, default=100, help="--delay auto's check: the state accuracy over the last "
    "this many steps, every this many steps")
arg("--ramp", type=count, help="after the delay, raise the gate linearly to 1 over this many steps (needs --dat)")
arg("--seed", type=number(int, 0, 2**31 - 1), default=0, help="seeds the init and the training data")
arg("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="auto: cuda, mps or cpu; cuda: bf16")
arg("--threads", type=number(int, 1, 1024), help="CPU threads (default: torch's; 1 per run for runs side by side)")
arg("--out_dir", help="run folder (default: OUT_ROOT/NAME-s<seed>, e.g. lstm_attn-S3-rope-len16-dat5000-s3)")
arg("--out_root", default="out", help="where the default run folder is made")
arg("--dry_run", action="store_true", help="print the run folder and its state (new, interrupted, trained, finished)")
arg("--log_interval", type=positive_int, default=100, help="steps between log lines")
arg("--eval_interval", type=positive_int, default=500, help="steps between evals at 1x and 3x and checkpoints")
arg("--n_eval_train", type=positive_int, default=500, help="sequences per length in the periodic evals")
arg("--resume", action="store_true", help="continue the run in --out_dir with its own options (only --threads, "
    "--log_interval and --eval_interval may change)")
arg("--compile", action="store_true", help="torch.compile the model (opt-in; not faster here: results/README.md)")

# options that do not change what a run computes: left out of its name. Every other option identifies the run. The
# device is in: on CUDA a run trains under bf16 autocast and draws its data from the GPU's generator.
NOT_IDENTITY = ("seed", "threads", "out_dir", "out_root", "dry_run", "log_interval", "eval_interval",
                "n_eval_train", "resume", "compile", "help")
IDENTITY = {a.dest: a.default for a in parser._actions if a.dest not in NOT_IDENTITY}
SAFE_ON_RESUME = ("threads", "log_interval", "eval_interval")  # what --resume may change: nothing it computes
# options a model or a core has no use for, keyed by (option, value): refused for it (a value would name a second,
# identical run). The model's entries come first: a transformer has no core, whichever core is named.
CORE_OPTIONS = {"diagonal": ("transitions",), "delta": ("beta_max", "householder")}  # the options of each core
ALL_CORE_OPTIONS = sum(CORE_OPTIONS.values(), ())
UNUSED_BY = {("model", "lstm"): ("n_attn", "n_heads", "pos", "mlp"),
             ("model", "transformer"): ("n_lstm", "emb_skip", "mlp", "core") + ALL_CORE_OPTIONS,
             **{("core", core): tuple(o for o in ALL_CORE_OPTIONS if o not in CORE_OPTIONS.get(core, ()))
                for core in CORES}}  # every core, a new one included: the other cores' options are refused for it

# The model of a run's options: each ModelConfig field is the option of the same name, except these derived ones.
DERIVED = {"vocab_size": lambda o, task: vocab_size(len(task.actions), o["num_keys"]),
           "n_classes": lambda o, task: len(task.states), "delay_attention": lambda o, task: o["dat"]}

def model_config_of(options):
    """The ModelConfig of a run's options (a dict; options newer than it take their defaults)."""
    options, task = {**IDENTITY, **options}, machine_of(options["group"])
    options["pos"] = options["pos"] or default_pos(options["model"])
    value = lambda f: DERIVED[f.name](options, task) if f.name in DERIVED else options.get(f.name, f.default)
    return ModelConfig(**{f.name: value(f) for f in fields(ModelConfig)})

# -----------------------------------------------------------------------------
# run names: model-group[-every identifying option that differs from its default]-schedule, e.g.
# lstm_attn-S3-rope-len16-dat5000: a new option is named without touching this code; SHORT only shortens the names
# of the options that have one.

SHORT = dict(train_len="len", num_keys="keys", num_queries="q", state_frac="sf", d_model="d", n_heads="h",
             n_lstm="nlstm", n_attn="nattn", emb_skip="skip", batch_size="bs", max_iters="iters", min_lr_frac="minlr",
             weight_decay="wd", grad_clip="clip", auto_threshold="thr", auto_window="win", auto_interval="every",
             transitions="", beta_max="beta")  # e.g. lstm-Z5-corediagonal-complex-plain, ...-coredelta-beta2-plain
FIRST = ("model", "group", "pos", "device")  # named by their value alone, in this order, before the others
# the schedule's options: --dat, then those that need it, the last three --delay auto's (check_args reads this order)
SCHEDULE = ("dat", "delay", "ramp", "dat_mode", "auto_threshold", "auto_window", "auto_interval")

def identity(config):
    """The options of a config (a dict, e.g. a run's config.json) that decide what the run computes, seed aside;
    options newer than the config take their defaults."""
    return {name: config.get(name, default) for name, default in IDENTITY.items()}

def is_default(name, value, config):
    if name == "pos":  # its default depends on the model
        return value == default_pos(config["model"])
    if name == "device":  # a CPU run is the usual run; a CUDA run (bf16, data drawn on the GPU) is another one
        return value in ("auto", "cpu")
    return value == IDENTITY[name]

def exact(value):
    """A value as a run name writes it: a float in the shortest %g form of at least 6 digits that parses back to it
    (1.0 is 1, 0.001234567 keeps every digit), -0 as 0; anything else (an integer, a text) as it is."""
    if not isinstance(value, float):
        return str(value)
    return next(text for digits in range(6, 18) if float(text := f"{value + 0.0:.{digits}g}") == value)

def tag(name, value):
    if name in FIRST:
        return str(value)
    return SHORT.get(name, name) + ("" if isinstance(value, bool) else exact(value))  # a switch: its name alone

def setting_name(config):
    """model-group[-options that differ from their defaults], schedule and seed aside: e.g. lstm_attn-S3-rope-len16."""
    c = identity(config)
    names = sorted((k for k in c if k not in SCHEDULE), key=lambda k: FIRST.index(k) if k in FIRST else len(FIRST))
    return "-".join(tag(k, c[k]) for k in names if k in FIRST[:2] or not is_default(k, c[k], c))

def schedule_name(config):
    """plain, dat5000, dat5000r1000, freeze5000, lr5000, datauto or datauto-thr0.9-win5."""
    c = identity(config)
    if not c["dat"]:
        return "plain"
    name = {"gate": "dat", "freeze": "freeze", "lr": "lr"}[c["dat_mode"]] + str(c["delay"])
    name += f"r{c['ramp']}" if c["ramp"] else ""
    return "-".join([name] + [tag(k, c[k]) for k in SCHEDULE[4:] if c[k] != IDENTITY[k]])

def run_name(config):
    """setting-schedule: runs that differ in anything but the seed get different names."""
    return f"{setting_name(config)}-{schedule_name(config)}"

# -----------------------------------------------------------------------------
# checks that involve several options

def check_args(args):
    """Cross-option checks and resolved defaults, before anything is written; a saved config passes again."""
    for (option, value), unused in UNUSED_BY.items():  # an option ignored would name a different, identical run
        for name in unused if getattr(args, option) == value else ():
            if getattr(args, name) not in (IDENTITY[name], default_pos(args.model) if name == "pos" else None):
                user = f"a {args.model}" if option == "model" else f"the {value} core"
                die(f"--{name}: {user} has no use for it (it would only change the run's name)")
    for name in SCHEDULE[1:]:
        if getattr(args, name) not in (None, 0, IDENTITY[name]) and not args.dat:
            die(f"--{name} needs --dat")
    if args.dat and args.model not in HYBRIDS:
        die(f"--dat needs a hybrid model ({', '.join(HYBRIDS)}), not {args.model}")
    args.delay = (DEFAULT_DELAY if args.delay is None else args.delay) if args.dat else 0
    args.ramp = args.ramp or 0
    if args.dat and args.delay == 0:
        die("--dat --delay 0 is the plain run (attention on from step 0): leave out --dat, or delay it 1 step or more")
    if args.ramp == 1:
        die("--ramp 1 is no ramp (the gate is 1 at once, as with 0): use 0, or 2 or more steps")
    if args.ramp and args.dat_mode != "gate":
        die(f"--ramp raises the gate: --dat_mode {args.dat_mode} keeps it at 1")
    layout = block_layout(args)
    for other in MODELS[:MODELS.index(args.model)]:  # e.g. interleaved with 1 LSTM layer is lstm_attn
        if block_layout(argparse.Namespace(**{**vars(args), "model": other})) == layout:
            die(f"--model {args.model} with these block counts is a {other} (the same blocks in the same order): "
                f"use --model {other}")
    if args.delay == "auto":
        if args.dat_mode != "gate":
            die("--delay auto needs --dat_mode gate: it watches the state accuracy with attention off")
        args.attn_on_step = getattr(args, "attn_on_step", None)  # None until the state is learned; resume keeps it
    else:
        for name in SCHEDULE[4:]:  # --delay auto's
            if getattr(args, name) != IDENTITY[name]:
                die(f"--{name} needs --delay auto")
        if args.delay >= args.max_iters:
            die(f"--delay {args.delay} must be below --max_iters {args.max_iters}")
        args.attn_on_step = args.delay
    if 3 * args.train_len > args.num_keys:
        die(f"test length {3 * args.train_len} (3x, evaluated during training) is above --num_keys {args.num_keys}")
    if "attn" in layout and (args.d_model % args.n_heads or (args.d_model // args.n_heads) % 2):
        die("--d_model must be a multiple of --n_heads with an even head size")
    args.pos = args.pos or default_pos(args.model)
    args.device = runs.pick_device(args.device)
    blocks = dict(d_model=args.d_model, blocks=args.n_lstm + args.n_attn, n_heads=args.n_heads)
    runs.check_fits("batch", args.batch_size, seq_width(args.train_len, args.num_queries), args.device,
                    args.num_keys, training=True, **blocks)
    runs.check_fits("--n_eval_train", args.n_eval_train, seq_width(3 * args.train_len, args.num_queries),
                    args.device, args.num_keys, **blocks)  # the periodic evals at 3x
    if args.out_dir is None:
        args.out_dir = os.path.join(args.out_root, f"{run_name(vars(args))}-s{args.seed}")
    if not args.out_dir.strip():
        die("--out_dir is empty")
    runs.printable(args.out_dir, "--out_dir")
    return args

# -----------------------------------------------------------------------------
# a saved config held to the options' meaning

RECORDED = ("model_config", "attn_on_step")  # what a config.json holds besides options: the model, --delay auto's step
RETIRED = ("bench",)  # options older kits had, which never changed what a run computes: ignored

def checked_config(config, where):
    """A run's saved options (config.json, a checkpoint's config) held to the options' current meaning: each key an
    option of this kit (a key it does not know was written by another kit: refused), each value passed through its
    option's type and choices again (a config edited by hand is held to the same bounds as the command line)."""
    if not isinstance(config, dict):
        die(f"{where} is not a JSON object")
    options = {action.dest for action in parser._actions}
    for key in config:
        if key not in options and key not in RECORDED + RETIRED:
            die(f"{where}: {key} is not an option of this kit (a newer kit's run?)")
    step = config.get("attn_on_step")
    if step is not None and (type(step) is not int or step < 0):
        die(f"{where}: attn_on_step is {step!r}, not a step")
    values = dict(config)
    for action in parser._actions:
        value, name = values.get(action.dest), f"{where}: {action.dest}"
        if value is None and action.dest in values and action.default is not None:
            die(f"{name}: null, but the option has a value whenever it is set")
        if value is None:
            continue
        if isinstance(action.default, bool) != isinstance(value, bool):  # a switch, or a truth value where none is
            die(f"{name}: {value!r} is {'not ' * isinstance(action.default, bool)}a truth value")
        if isinstance(value, str) and getattr(action.type, "kind", None):
            die(f"{name}: {value!r} is text, not a number")
        if callable(action.type) and not isinstance(value, bool):
            try:
                values[action.dest] = action.type(repr(value) if isinstance(value, float) else str(value))
            except argparse.ArgumentTypeError as e:
                die(f"{name}: {e}")
        if action.choices and values[action.dest] not in action.choices:
            die(f"{name}: {values[action.dest]!r} is not one of {', '.join(map(str, action.choices))}")
    return values
