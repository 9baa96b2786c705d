"""
The models: an LSTM, a causal Transformer, and three LSTM + attention hybrids.

    embedding -> blocks -> LayerNorm -> linear head over the |G| states

An LSTM block replaces the stream with the LSTM's output plus emb_skip * the token embedding (a small skip so
later blocks see which token sits where). An attention block adds  gate * Attn(LN(x))  to the stream, and, if
the config asks for it, an MLP. The gate is one non-trainable number held by the model: Delayed Attention
Training keeps it at 0 for the first --delay steps. At exactly 0 the attention is skipped, not computed.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ("lstm", "transformer", "lstm_attn", "attn_lstm", "interleaved")
HYBRIDS = ("lstm_attn", "attn_lstm", "interleaved")

@dataclass
class ModelConfig:
    model: str = "lstm_attn"
    vocab_size: int = 72     # 2 + |G| + num_keys
    n_classes: int = 6       # |G|
    d_model: int = 64
    n_heads: int = 2
    n_lstm: int = 1          # LSTM layers (lstm and hybrids)
    n_attn: int = 2          # attention blocks (transformer and hybrids)
    mlp: bool = False        # an MLP in each attention block of a hybrid (the transformer always has them)
    pos: str = "none"        # rope | none: position encoding inside attention
    emb_skip: float = 0.1    # weight of the token embedding added to each LSTM block's output
    delay_attention: bool = False  # start with the gate at 0 (DAT); False: the gate is 1 always

def default_pos(model):
    """RoPE for the transformer, none for the rest: a hybrid's LSTM supplies the order."""
    return "rope" if model == "transformer" else "none"

def block_layout(cfg):
    """The order of blocks, e.g. ['lstm', 'attn', 'attn'] for lstm_attn with 1 LSTM layer and 2 attention blocks."""
    if cfg.model == "lstm":
        return ["lstm"] * cfg.n_lstm
    if cfg.model == "transformer":
        return ["attn"] * cfg.n_attn
    if cfg.model == "lstm_attn":
        return ["lstm"] * cfg.n_lstm + ["attn"] * cfg.n_attn
    if cfg.model == "attn_lstm":
        return ["attn"] * cfg.n_attn + ["lstm"] * cfg.n_lstm
    if cfg.model == "interleaved":  # L A L A ..., leftovers at the end
        pairs = [["lstm"] * (i < cfg.n_lstm) + ["attn"] * (i < cfg.n_attn) for i in range(max(cfg.n_lstm, cfg.n_attn))]
        return sum(pairs, [])
    raise ValueError(f"unknown model {cfg.model!r}: use one of {', '.join(MODELS)}")

# -----------------------------------------------------------------------------

def rotary(x, cos, sin):
    """Rotate each pair of channels (first half, second half) of x (B, H, T, hd) by a position-dependent angle."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)

class Attention(nn.Module):
    """Pre-norm causal multi-head self-attention: the attention sublayer, the group DAT freezes."""
    keep_weights = False

    def __init__(self, cfg):
        super().__init__()
        assert cfg.d_model % cfg.n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = cfg.n_heads
        self.ln = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, rope=None):
        B, T, C = x.shape
        H, hd = self.n_heads, C // self.n_heads
        q, k, v = self.qkv(self.ln(x)).view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = rotary(q, *rope), rotary(k, *rope)
        weights = self.weights(q, k)
        if self.keep_weights:  # for pictures (plot.py --attn)
            self.kept_weights = weights.view(B, H, T, T).detach()
        y = weights @ v.reshape(B * H, T, hd)
        return self.proj(y.view(B, H, T, hd).transpose(1, 2).reshape(B, T, C))

    @staticmethod
    def weights(q, k):
        """Causal softmax(q k^T / sqrt(hd)), (B*H, T, T). Written out rather than F.scaled_dot_product_attention,
        so that the weights are there for pictures; on a CPU at these sizes it is also the faster of the two
        (results/README.md, Speed)."""
        B, H, T, hd = q.shape
        future = torch.full((T, T), float("-inf"), device=q.device, dtype=q.dtype).triu(1)
        q, k = q.reshape(B * H, T, hd), k.reshape(B * H, T, hd)
        scores = torch.baddbmm(future, q, k.transpose(1, 2), alpha=hd ** -0.5)
        return scores.softmax(dim=-1)

class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln = nn.LayerNorm(cfg.d_model)
        self.up = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.down = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x):
        return self.down(F.gelu(self.up(self.ln(x))))

class AttentionBlock(nn.Module):
    def __init__(self, cfg, mlp):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg) if mlp else None

    def forward(self, x, gate, rope):
        if gate != 0.0:  # a gate of exactly 0 skips the attention: the output is then exactly x
            x = x + gate * self.attn(x, rope)
        if self.mlp is not None:
            x = x + self.mlp(x)
        return x

class LSTMBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.lstm = nn.LSTM(cfg.d_model, cfg.d_model, batch_first=True)
        self.emb_skip = cfg.emb_skip

    def forward(self, x, emb):
        return self.lstm(x)[0] + self.emb_skip * emb

# -----------------------------------------------------------------------------

class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.layout = block_layout(cfg)
        if cfg.pos not in ("rope", "none"):
            raise ValueError(f"unknown position encoding {cfg.pos!r}: use rope or none")
        has_mlp = cfg.mlp or cfg.model == "transformer"
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(LSTMBlock(cfg) if kind == "lstm" else AttentionBlock(cfg, has_mlp)
                                    for kind in self.layout)
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_classes)
        # the gate is a plain float, not a tensor: checking it for 0 then costs no device sync
        self.gate = 0.0 if cfg.delay_attention else 1.0

    def attention_parameters(self):
        """The parameters of every attention sublayer (projections and pre-norm): the group DAT freezes."""
        return [p for block in self.blocks if isinstance(block, AttentionBlock) for p in block.attn.parameters()]

    def rope(self, T, device):
        if self.cfg.pos == "none" or "attn" not in self.layout:
            return None
        hd = self.cfg.d_model // self.cfg.n_heads
        freqs = 1.0 / (10000 ** (torch.arange(0, hd // 2, device=device) / (hd // 2)))
        angles = torch.arange(T, device=device)[:, None] * freqs[None, :]
        return angles.cos(), angles.sin()

    def stream(self, tokens, n_blocks=None):
        """The residual stream (B, T, d_model) after the first n_blocks blocks (all of them by default)."""
        emb = self.emb(tokens)
        rope = self.rope(tokens.shape[1], tokens.device)
        x = emb
        for block in self.blocks[:n_blocks]:
            x = block(x, emb) if isinstance(block, LSTMBlock) else block(x, self.gate, rope)
        return x

    def forward(self, tokens, targets=None):
        """logits (B, T, |G|) and the mean cross-entropy over scored positions (None without targets)."""
        logits = self.head(self.ln_f(self.stream(tokens)))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return logits, loss
