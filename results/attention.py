"""
The attention weights of every block and head of a trained hybrid on one eval sequence at 3x the training length:
where each recall query looks (results/attention_dat.png and attention_plain.png). Needs the run's ckpt.pt.

    python results/attention.py out/lstm_attn-S3-dat5000-s0 --out attention.png
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's folder
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, die, run_script

import matplotlib.pyplot as plt
import torch

from data import eval_batch, machine_of, token_names
from eval import EVAL_SEED, model_from_checkpoint
from plot import check_out, save_figure
from run_folder import checked_run, load_checkpoint

def plot_attention(run_dir, out, mult=3):
    """The attention weights of every block and head on one eval sequence at mult x the training length."""
    ckpt = load_checkpoint(os.path.join(run_dir, "ckpt.pt"))
    config = checked_run(run_dir, ckpt)  # config.json, the checkpoint and its model agree
    model = model_from_checkpoint(ckpt, "cpu")
    if "attn" not in model.layout:
        die(f"{run_dir} holds a {config['model']}, which has no attention")
    n = mult * config["train_len"]
    if n > config["num_keys"]:
        die(f"test length {n} ({mult}x) is above --num_keys {config['num_keys']}")
    tokens, _ = eval_batch(machine_of(config["group"]), n, config["num_keys"], config["num_queries"], 1, EVAL_SEED)
    attention = [block.attn for block in model.blocks if hasattr(block, "attn")]
    for module in attention:
        module.keep_weights = True
    with torch.no_grad():
        model(tokens)
    names = token_names(tokens[0], config["group"])
    heads = attention[0].kept_weights.shape[1]
    fig, axes = plt.subplots(len(attention), heads, figsize=(6 * heads, 6 * len(attention)), squeeze=False)
    for b, module in enumerate(attention):
        for h in range(heads):
            ax = axes[b, h]
            ax.imshow(module.kept_weights[0, h].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
            ax.set_yticks(range(len(names)), names, fontsize=5)
            ax.set(title=f"attention block {b + 1}, head {h + 1}", xlabel="attends to", ylabel="position")
    fig.suptitle(f"{run_dir}: one sequence of {n} steps ({mult}x); rows q.. are the recall lookups")
    save_figure(fig, out)
    print(f"wrote {out}")

def main(argv=None):
    parser = ArgParser(description="Draw a run's attention weights on one sequence at 3x.")
    parser.add_argument("run_dir", help="a run folder with its ckpt.pt")
    parser.add_argument("--out", default="attention.png", help="where to write the figure (.png, .pdf, .svg, ...)")
    args = parser.parse_args(argv)
    check_out(args.out)
    plot_attention(args.run_dir, args.out)

if __name__ == "__main__":
    run_script(main)
