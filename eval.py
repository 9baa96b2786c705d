"""
Score a trained run at several test lengths and show a few of its mistakes.

    python eval.py out/lstm_attn-S3-dat5000-s0                 # 1x..4x the training length, 1000 sequences each
    python eval.py out/RUN --mults 1,2,3,4,6,8 --attn_off      # also score with the attention gate forced to 0
    python eval.py out/RUN --mults 1,3,8 --by_age              # recall by how far back its key was bookmarked

Per length: state accuracy (targets at actions), recall accuracy (targets at queries), token accuracy (all
targets) and sequence accuracy (every target of a sequence right), on sequences from a fixed seed per length.
Writes RUN_DIR/eval.json: {"scored": how (every option that changes a score, the eval seed, the checkpoint's step),
"records": one per length}; a report of an earlier scoring (RUN_DIR/eval.txt, the grid's) is removed.
"""
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import (ArgParser, check_fits, count, die, number, pick_device, positive_int, printable, run_script,
                  write_json)
import os
import time

import torch

from data import IGNORE, describe, eval_batch, machine_of, recall_ages, seq_width, target_masks
from model import Model, ModelConfig
from run_folder import checked_run, load_checkpoint, lock, still_held

EVAL_SEED = 1234

def model_from_checkpoint(ckpt, device):
    """The checkpoint's model at the checkpoint's gate; model_config fields newer than it take their defaults. Its
    model_config and weights are those of its run's options: run_folder.checked_run holds them to it first."""
    model = Model(ModelConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.gate = ckpt["gate"]  # the gate of the step the checkpoint was taken at
    return model.to(device).eval()

# -----------------------------------------------------------------------------

def predict(model, tokens, batch_size=500):
    return torch.cat([model(tokens[i:i + batch_size])[0].argmax(dim=-1) for i in range(0, len(tokens), batch_size)])

def score(predictions, tokens, targets):
    """The four accuracies (module docstring), as tensors (no host sync until the caller asks)."""
    scored = targets != IGNORE
    right = (predictions == targets) & scored
    is_state, is_recall = target_masks(tokens, targets)
    return {"state_acc": right[is_state].float().mean(), "recall_acc": right[is_recall].float().mean(),
            "token_acc": right[scored].float().mean(), "seq_acc": (right == scored).all(dim=1).float().mean()}

def recall_by_age(predictions, tokens, targets, train_len):
    """Recall accuracy per band of train_len steps back to the key's bookmark: band 0 holds the keys bookmarked
    0..train_len-1 steps before SEP (the only ages training shows), band b the next train_len, and so on."""
    band = recall_ages(tokens, targets).div(train_len, rounding_mode="floor")
    right, bands = predictions == targets, range(int(band.max()) + 1)
    empty = [b for b in bands if not (band == b).any()]
    if empty:
        die(f"--by_age: no query of these {len(tokens)} sequences of {tokens.shape[1]} tokens looks back "
            f"{empty[0] * train_len}..{(empty[0] + 1) * train_len - 1} steps (band {empty[0]}): give a larger --n_eval")
    return [right[band == b].float().mean().item() for b in bands]

def probe_features(model, tokens, targets):
    """A linear probe's input: the stream right after the last recurrent block at action positions, with a 1 for the
    bias; and the states there."""
    is_state = target_masks(tokens, targets)[0]
    x = model.stream(tokens, max(i for i, kind in enumerate(model.layout) if kind == "rnn") + 1)[is_state].float()
    return torch.cat([x, torch.ones(len(x), 1, device=x.device)], dim=1), targets[is_state]

@torch.inference_mode()
def evaluate(model, config, mults, n_eval, attn_off=False, by_age=False, probe=False):
    """One record per test length; with attn_off, each record also holds the scores with the gate at 0; with
    by_age, the recall accuracy per band of steps back to the key (recall_by_age); with probe, where the state lives:
    a linear probe (least squares onto the one-hot state) of probe_features, fit on a 1x set of its own."""
    task = machine_of(config["group"]).to(next(model.parameters()).device)
    records, gate = [], model.gate
    eval_set = lambda mult, seed: eval_batch(task, mult * config["train_len"], config["num_keys"],
                                             config["num_queries"], n_eval, seed)
    if probe:
        x, y = probe_features(model, *eval_set(1, EVAL_SEED + 1))
        one_hot = torch.nn.functional.one_hot(y, len(task.states)).float()
        weights = torch.linalg.lstsq(x.cpu(), one_hot.cpu()).solution.to(x.device)
    for mult in mults:
        tokens, targets = eval_set(mult, EVAL_SEED)
        predictions = predict(model, tokens)
        record = {"n": mult * config["train_len"], "mult": mult,
                  **{k: v.item() for k, v in score(predictions, tokens, targets).items()}}
        if by_age:
            record["recall_by_age"] = recall_by_age(predictions, tokens, targets, config["train_len"])
        if attn_off:
            model.gate = 0.0
            off = score(predict(model, tokens), tokens, targets)
            model.gate = gate
            record["attn_off"] = {k: v.item() for k, v in off.items()}
        if probe:
            x, y = probe_features(model, tokens, targets)
            record["probe_state_acc"] = ((x @ weights).argmax(dim=-1) == y).float().mean().item()
        records.append((record, (tokens, targets, predictions)))
    return records

def extra_scores(model):
    """The scores eval.py can add for a model, all of which the grid asks for."""
    return {"transformer": [], "lstm": ["--probe"]}.get(model, ["--attn_off", "--probe"]) + ["--by_age"]

def grid_options(model, mults):
    """eval.py's options as the grid (results/launch.py) scores a run of model: every extra score, defaults else."""
    return ["--mults", ",".join(map(str, mults)), *extra_scores(model)]

def scoring(args, step):
    """eval.json's "scored": every option of eval.py but UNSCORED, a new one too, the eval seed, the step."""
    options = {a.dest: getattr(args, a.dest) for a in parser._actions if a.dest not in UNSCORED}
    return {"eval_seed": EVAL_SEED, **options, "step": step}

def grid_scoring(model, mults, step):
    """scoring as the grid scores a run (grid_options): what a plain list of records (run_folder.read_eval) means."""
    return scoring(parser.parse_args(["", *grid_options(model, mults)]), step)

# -----------------------------------------------------------------------------

def mults_option(text):
    """Sorted multiples, each a positive_int, a repeated one scored once."""
    return sorted({positive_int(m) for m in text.split(",")})

parser = ArgParser(description="Score a run's checkpoint at multiples of its training length.")
parser.add_argument("run_dir", help="a run folder written by train.py (holds ckpt.pt)")
parser.add_argument("--mults", default="1,2,3,4", type=mults_option, help="test lengths as multiples of "
                    "the run's --train_len, comma-separated (each at most the run's --num_keys steps)")
parser.add_argument("--n_eval", type=positive_int, default=1000, help="sequences per test length")
parser.add_argument("--attn_off", action="store_true", help="also score with the attention gate forced to 0")
parser.add_argument("--probe", action="store_true", help="also fit a linear probe of the state on the last "
                    "recurrent block's output at 1x and score it at each length (needs a recurrent block)")
parser.add_argument("--by_age", action="store_true", help="also score recall per band of --train_len steps "
                    "back to the key's bookmark (band 0: the ages training shows)")
parser.add_argument("--mistakes", type=count, default=3, help="decoded mistakes to print (at the longest length)")
parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"), help="where to score")
parser.add_argument("--threads", type=number(int, 1, 1024), help="CPU threads (default: torch's choice)")

# what changes no score (what is shown, where and how fast it runs): every other option is recorded (scoring)
UNSCORED = ("help", "run_dir", "mistakes", "device", "threads")

def main(argv=None):
    args = parser.parse_args(argv)
    printable(args.run_dir, "run folder")
    device = pick_device(args.device)
    lock(args.run_dir, create=False)  # held before it is read: no trainer or other evaluator writes it meanwhile
    ckpt = load_checkpoint(os.path.join(args.run_dir, "ckpt.pt"))
    config = checked_run(args.run_dir, ckpt)  # config.json, the checkpoint and its model agree
    cfg = ModelConfig(**ckpt["model_config"])
    longest = max(args.mults) * config["train_len"]
    if longest > config["num_keys"]:
        die(f"test length {longest} ({max(args.mults)}x) is above --num_keys {config['num_keys']}: keys would repeat")
    check_fits("--n_eval", args.n_eval, seq_width(longest, config["num_queries"]), device, config["num_keys"],
               cfg.d_model, cfg.n_lstm + cfg.n_attn, cfg.n_heads, chunk=500)  # predict() runs 500 at a time
    for extra in ("attn_off", "probe"):
        if getattr(args, extra) and f"--{extra}" not in extra_scores(config["model"]):
            die(f"--{extra} needs {'a hybrid model' if extra == 'attn_off' else 'recurrent blocks'}: a "
                f"{config['model']} has none")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = model_from_checkpoint(ckpt, device)

    t0 = time.time()
    records = evaluate(model, config, args.mults, args.n_eval, args.attn_off, args.by_age, args.probe)
    seconds = time.time() - t0
    path, report = os.path.join(args.run_dir, "eval.json"), os.path.join(args.run_dir, "eval.txt")
    still_held(args.run_dir)
    if os.path.isfile(report):  # the grid's report of an earlier scoring: written again from this one, or not at all
        os.remove(report)
    # before the report: a terminal or file that fails loses no score
    write_json(path, {"scored": scoring(args, ckpt["step"]), "records": [r for r, _ in records]}, new_folder=False)
    print(f"{args.run_dir}: step {ckpt['step']}, gate {model.gate:g}, {args.n_eval} sequences per length, "
          f"{seconds:.1f} s")
    print(f"{'n':>4} {'mult':>4} {'state':>7} {'recall':>7} {'token':>7} {'seq':>7}"
          + "   | attention off: state  recall   token     seq" * args.attn_off + "   | probe" * args.probe)
    accuracies = lambda rec: "".join(f" {rec[k]:7.4f}" for k in ("state_acc", "recall_acc", "token_acc", "seq_acc"))
    for record, _ in records:
        print(f"{record['n']:>4} {record['mult']:>3}x" + accuracies(record)
              + ("   |              " + accuracies(record["attn_off"]) if args.attn_off else "")
              + (f"   | {record['probe_state_acc']:.4f}" if args.probe else ""))
    if args.by_age:
        print(f"\nrecall accuracy by how far back the key was bookmarked, in bands of {config['train_len']} steps "
              f"(band 0: the ages training shows)")
        for record, _ in records:
            print(f"{record['n']:>4} {record['mult']:>3}x " + " ".join(f"{a:.3f}" for a in record["recall_by_age"]))

    record, (tokens, targets, predictions) = records[-1]
    wrong = ((predictions != targets) & (targets != IGNORE)).any(dim=1).nonzero().flatten()[:args.mistakes]
    for i in wrong.tolist():
        print(f"\nmistake at n = {record['n']} (sequence {i}):")
        print(describe(tokens[i].cpu(), targets[i].cpu(), config["group"], predictions[i].cpu()))
    print(f"\nwrote {path}")

if __name__ == "__main__":
    run_script(main)
