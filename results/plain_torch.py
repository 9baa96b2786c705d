"""
The kit's default hybrid written the plain torch way, to time the kit's training loop against (README, Speed).

    python results/plain_torch.py --train_len 16 --steps 600 --threads 2

nn.Embedding -> nn.LSTM (+ 0.1 x the embedding) -> two pre-norm nn.MultiheadAttention blocks with a causal mask ->
LayerNorm -> linear head; AdamW (lr 3e-3, betas 0.9 0.98, weight decay 0.01), gradient clipping at 1, batches of
64 from the kit's data generator (so that both sides pay for the same data and both learn the task). Prints the
mean and median ms per training step (data, forward, backward, clipping, optimizer step) after the first --skip.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the kit's data.py
from data import machine_of, sample_batch, vocab_size  # noqa: E402

class Hybrid(nn.Module):
    def __init__(self, vocab, classes, d_model=64, n_heads=2, n_attn=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d_model)
        self.lstm = nn.LSTM(d_model, d_model, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_attn))
        self.attns = nn.ModuleList(nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True)
                                   for _ in range(n_attn))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens):
        emb = self.emb(tokens)
        x = self.lstm(emb)[0] + 0.1 * emb
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        for norm, attn in zip(self.norms, self.attns):
            h = norm(x)
            x = x + attn(h, h, h, attn_mask=mask, is_causal=True, need_weights=False)[0]
        return self.head(self.ln_f(x))

def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--train_len", type=int, default=8)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--skip", type=int, default=100, help="steps left out of the timing")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    task = machine_of("S3")
    model = Hybrid(vocab_size(len(task.actions), 64), len(task.states))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.01)
    rng = torch.Generator().manual_seed(1)
    times = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        tokens, targets = sample_batch(task, 64, 1, args.train_len, 64, 8, rng)
        loss = F.cross_entropy(model(tokens).flatten(0, 1), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - t0)
    timed = [1000 * t for t in times[args.skip:]]
    print(f"plain torch, train_len {args.train_len}, {args.threads} threads: {statistics.mean(timed):.2f} ms/step "
          f"mean, {statistics.median(timed):.2f} median (steps {args.skip + 1}-{args.steps}); "
          f"final loss {loss.item():.3f}")

if __name__ == "__main__":
    main()
