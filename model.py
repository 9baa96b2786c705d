"""
The models: an LSTM, a causal Transformer, and three LSTM + attention hybrids.

    embedding -> blocks -> LayerNorm -> linear head over the |Q| states

A recurrent block replaces the stream with its core's output (an LSTM, or one of CORES) plus emb_skip * the token
embedding (so later blocks see which token sits where). An attention block adds  gate * Attn(LN(x))  to the stream,
and, if the config asks for it, an MLP. The gate is one non-trainable number held by the model: Delayed Attention
Training keeps it at 0 for the first --delay steps, and at exactly 0 the attention is skipped, not computed.
"""
import itertools
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = ("lstm", "transformer", "lstm_attn", "attn_lstm", "interleaved")
HYBRIDS = ("lstm_attn", "attn_lstm", "interleaved")

@dataclass
class ModelConfig:
    model: str = "lstm_attn"
    vocab_size: int = 72     # 2 + |A| + num_keys: PAD, SEP, actions, keys
    n_classes: int = 6       # |Q|, the states
    d_model: int = 64
    n_heads: int = 2
    n_lstm: int = 1          # recurrent blocks (lstm and hybrids)
    n_attn: int = 2          # attention blocks (transformer and hybrids)
    mlp: bool = False        # an MLP in each attention block of a hybrid (the transformer always has them)
    pos: str = "none"        # rope | none: position encoding inside attention
    emb_skip: float = 0.1    # weight of the token embedding added to each recurrent block's output
    core: str = "lstm"       # the recurrent block's core: one of CORES
    transitions: str = "unit"  # the diagonal core's a_t: unit [0, 1], signed [-1, 1] or complex (|a_t| <= 1)
    beta_max: int = 1        # the delta core's beta_t lies in [0, beta_max]
    householder: int = 1     # the delta core's Householder steps per token (1: DeltaNet, more: DeltaProduct)
    delay_attention: bool = False  # a new model's gate is 0 (DAT), else 1; train.py and eval.py set it after

def default_pos(model):
    """RoPE for the transformer, none for the rest: a hybrid's LSTM supplies the order."""
    return "rope" if model == "transformer" else "none"

def block_layout(cfg):
    """The order of blocks, e.g. ['rnn', 'attn', 'attn'] for lstm_attn with 1 recurrent and 2 attention blocks
    (interleaved: R A R A ..., the leftovers at the end)."""
    rnn, attn = ["rnn"] * cfg.n_lstm, ["attn"] * cfg.n_attn
    layouts = {"lstm": rnn, "transformer": attn, "lstm_attn": rnn + attn, "attn_lstm": attn + rnn,
               "interleaved": [kind for pair in itertools.zip_longest(rnn, attn) for kind in pair if kind]}
    if cfg.model not in layouts:
        raise ValueError(f"unknown model {cfg.model!r}: use one of {', '.join(MODELS)}")
    return layouts[cfg.model]

# -----------------------------------------------------------------------------

def rotary(x, cos, sin):
    """Rotate each pair of channels (first half, second half) of x (B * H, T, hd) by a position-dependent angle."""
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
        q, k, v = self.qkv(self.ln(x)).view(B, T, 3, H, hd).permute(2, 0, 3, 1, 4).reshape(3, B * H, T, hd)
        if rope is not None:
            q, k = rotary(q, *rope), rotary(k, *rope)
        # causal softmax(q k^T / sqrt(hd)), written out rather than F.scaled_dot_product_attention so that the
        # weights are there for pictures; on a CPU at these sizes it is also the faster (results/README.md, Speed)
        future = torch.full((T, T), float("-inf"), device=q.device, dtype=q.dtype).triu(1)
        weights = torch.baddbmm(future, q, k.transpose(1, 2), alpha=hd ** -0.5).softmax(dim=-1)
        if self.keep_weights:  # for pictures (results/attention.py)
            self.kept_weights = weights.view(B, H, T, T).detach()
        return self.proj((weights @ v).view(B, H, T, hd).transpose(1, 2).reshape(B, T, C))

class MLP(nn.Sequential):
    def __init__(self, cfg):
        d = cfg.d_model
        super().__init__(OrderedDict(ln=nn.LayerNorm(d), up=nn.Linear(d, 4 * d), gelu=nn.GELU(),
                                     down=nn.Linear(4 * d, d)))

class AttentionBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg) if cfg.mlp or cfg.model == "transformer" else None

    def forward(self, x, gate, rope):
        if gate != 0.0:  # a gate of exactly 0 skips the attention: the output is then exactly x
            x = x + gate * self.attn(x, rope)
        if self.mlp is not None:
            x = x + self.mlp(x)
        return x

# -----------------------------------------------------------------------------
# the recurrent cores: (B, T, d_model) -> (B, T, d_model), causal. The linear ones compute every token's projections
# in one matmul first. A core declares transition_range = (i, low, high) if coefficients(x)[i] (its modulus, if
# complex) keeps in [low, high]: the range test reads it.

class TorchCore:
    """A core torch has built in (nn.LSTM, nn.GRU), d_model wide; the output is its h_t."""
    def __init__(self, cfg):
        super().__init__(cfg.d_model, cfg.d_model, batch_first=True)

    def forward(self, x):
        return super().forward(x)[0]

class LSTMCore(TorchCore, nn.LSTM):
    """The LSTM (Hochreiter & Schmidhuber 1997): f_t, i_t, o_t = sigmoid(W x_t + U h_(t-1) + b), one each;
    c_t = f_t * c_(t-1) + i_t * tanh(W_c x_t + U_c h_(t-1) + b_c), h_t = o_t * tanh(c_t)."""

class GRUCore(TorchCore, nn.GRU):
    """The GRU (Cho et al. 2014): r_t, z_t = sigmoid(W x_t + U h_(t-1) + b), one each;
    n_t = tanh(W_n x_t + b_n + r_t * (U_n h_(t-1) + b_hn)), h_t = (1 - z_t) * n_t + z_t * h_(t-1)."""

class DiagonalCore(nn.Module):
    """A selective diagonal linear recurrence in the style of Mamba (Gu & Dao 2023): per channel
    h_t = a_t * h_(t-1) + b_t, y_t = W_out h_t, with a_t and b_t linear in x_t and a_t squashed into the range of
    --transitions (Sarrof et al. 2024, "The Expressive Capacity of State Space Models"; Grazzi et al. 2025,
    "Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues"):
      unit:    a_t = sigmoid(z_t) in [0, 1] (Mamba's range: cannot count mod 2)
      signed:  a_t = 2 sigmoid(z_t) - 1 in [-1, 1] (a sign flip tracks parity)
      complex: a_t = sigmoid(z_t) exp(i pi tanh(u_t)), on the unit disc, h_t complex (b_t = b_re + i b_im) and
               y_t = W_out [Re h_t, Im h_t] (a rotation tracks a cyclic group)."""
    def __init__(self, cfg):
        super().__init__()
        self.transitions, d = cfg.transitions, cfg.d_model
        self.is_complex = cfg.transitions == "complex"
        self.transition_range = (0, -1.0 if cfg.transitions == "signed" else 0.0, 1.0)  # a_t's
        self.in_proj = nn.Linear(d, (4 if self.is_complex else 2) * d)  # z, b (and u, b_im)
        self.out = nn.Linear(2 * d if self.is_complex else d, d)

    def coefficients(self, x):
        """a_t and b_t of every token, (B, T, d) each (complex under --transitions complex)."""
        if self.is_complex:
            z, u, b_re, b_im = self.in_proj(x).chunk(4, dim=-1)
            return torch.polar(torch.sigmoid(z), torch.pi * torch.tanh(u)), torch.complex(b_re, b_im)
        z, b = self.in_proj(x).chunk(2, dim=-1)
        return (2 * torch.sigmoid(z) - 1 if self.transitions == "signed" else torch.sigmoid(z)), b

    def forward(self, x):
        a, b = self.coefficients(x)
        h, states = torch.zeros_like(b[:, 0]), []
        for t in range(x.shape[1]):
            h = a[:, t] * h + b[:, t]
            states.append(h)
        h = torch.stack(states, dim=1)
        return self.out(torch.cat([h.real, h.imag], dim=-1) if self.is_complex else h)

class DeltaCore(nn.Module):
    """The delta rule, one head with a d_model x d_model state (Schlag et al. 2021; Yang et al. 2024, "Parallelizing
    Linear Transformers with the Delta Rule over Sequence Length"): with k_t L2-normalised and
    beta_t = beta_max * sigmoid(z_t),
        S_t = S_(t-1) (I - beta_t k_t k_t^T) + beta_t v_t k_t^T,   y_t = W_out S_t q_t,
    all of k, v, z, q linear in x_t, S_0 = 0. beta_max 2 lets I - beta k k^T be a reflection (a negative eigenvalue:
    Grazzi et al. 2025). With --householder n > 1 each token makes n such steps, each with its own k, v, beta: the
    transition is a product of n generalised Householder matrices (DeltaProduct: Siems et al. 2025, "DeltaProduct:
    Improving State-Tracking in Linear RNNs via Householder Products").
    Computed without a loop over time, as Yang et al. do: S_s = sum_(r <= s) beta_r u_r k_r^T over the steps s, where
    u_s = v_s - S_(s-1) k_s solve one unit lower-triangular system."""
    def __init__(self, cfg):
        super().__init__()
        self.beta_max, self.steps, d = cfg.beta_max, cfg.householder, cfg.d_model
        self.transition_range = (3, 0.0, float(cfg.beta_max))  # beta_t's
        self.in_proj = nn.Linear(d, d + cfg.householder * (2 * d + 1))  # q, then per step k, v, z
        self.out = nn.Linear(d, d)

    def coefficients(self, x):
        """q (B, T, d), and per step k, v (B, T * n, d) and beta (B, T * n, 1): token 0's n steps, then token 1's..."""
        d = x.shape[-1]
        q, steps = self.in_proj(x).split([d, self.steps * (2 * d + 1)], dim=-1)
        k, v, z = steps.unflatten(-1, (self.steps, 2 * d + 1)).flatten(1, 2).split([d, d, 1], dim=-1)
        return q, F.normalize(k, dim=-1), v, self.beta_max * torch.sigmoid(z)

    def forward(self, x):
        q, k, v, beta = self.coefficients(x)
        step, token = torch.arange(k.shape[1], device=x.device), torch.arange(q.shape[1], device=x.device)
        beta_k = beta * k
        # u_s + sum_(r < s) (k_s . beta_r k_r) u_r = v_s; the solver reads the strict lower triangle only
        u = torch.linalg.solve_triangular(k @ beta_k.transpose(1, 2), v, upper=False, unitriangular=True)
        # y_t = S q_t with S after token t's last step: sum over those steps r of (q_t . beta_r k_r) u_r
        seen = step[None, :] // self.steps <= token[:, None]
        return self.out((q @ beta_k.transpose(1, 2)).masked_fill(~seen, 0) @ u)

CORES = {"lstm": LSTMCore, "gru": GRUCore, "diagonal": DiagonalCore, "delta": DeltaCore}
TRANSITIONS = ("unit", "signed", "complex")

class RecurrentBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.core_name, self.emb_skip = cfg.core, cfg.emb_skip
        # held under the core's name: an LSTM's parameters keep the keys of checkpoints older than the cores
        self.add_module(cfg.core, CORES[cfg.core](cfg))

    def forward(self, x, emb):
        return getattr(self, self.core_name)(x) + self.emb_skip * emb

# -----------------------------------------------------------------------------

class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg, self.layout = cfg, block_layout(cfg)
        for name, known in (("pos", ("rope", "none")), ("core", CORES), ("transitions", TRANSITIONS)):
            if getattr(cfg, name) not in known:
                raise ValueError(f"unknown {name} {getattr(cfg, name)!r}: use one of {', '.join(known)}")
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(RecurrentBlock(cfg) if kind == "rnn" else AttentionBlock(cfg)
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
        x = emb = self.emb(tokens)
        rope = self.rope(tokens.shape[1], tokens.device)
        for block in self.blocks[:n_blocks]:
            x = block(x, emb) if isinstance(block, RecurrentBlock) else block(x, self.gate, rope)
        return x

    def forward(self, tokens, targets=None):
        """logits (B, T, |Q|) and the mean cross-entropy over scored positions (None without targets)."""
        logits = self.head(self.ln_f(self.stream(tokens)))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
