"""
The composite task: state tracking composed with associative recall (README, The task).

A sequence of n steps shows an action a_t (an element of a group G), then a key k_t that bookmarks the state
s_t reached after it (s_0 is the identity). After SEP come q = min(n, Q) query keys; each asks for the state
that was bookmarked with it. Worked example, G = Z5, K = 8 keys, n = 3, Q = 8:

    actions (3, 4, 1), keys (6, 2, 7)  ->  states (3, 2, 3)
    queries (2, 6, 7)                  ->  recall targets (2, 3, 3)
    tokens : 5 13 | 6 9 | 3 14 | 1 | 9 13 14     (PAD 0, SEP 1, action i is id 2+i, key j is id 2+g+j)
    targets: 3 -  | 2 - | 3 -  | - | 2  3  3     (- is -100: no loss, not scored)

Batches are generated in one vectorised call on the training device (the running states by a log2 n prefix scan).

python data.py                                   # prints a few decoded examples
python data.py --group S3 --n 16 --num 1000 --save s3.npz
"""
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, check_fits, die, number, positive_int, run_script, write_file
import argparse
import functools
import itertools
import re

import numpy as np
import torch

PAD, SEP, IGNORE = 0, 1, -100

# -----------------------------------------------------------------------------
# groups

def cyclic(m):
    """Z<m>: the integers 0..m-1 under addition mod m."""
    return list(range(m))

def symmetric(m):
    """S<m>: every permutation of 0..m-1, as a tuple, in itertools order."""
    return list(itertools.permutations(range(m)))

def alternating(m):
    """A<m>: the even permutations (an even number of inversions), in itertools order."""
    return [p for p in symmetric(m) if sum(p[i] > p[j] for i in range(m) for j in range(i + 1, m)) % 2 == 0]

def dihedral(m):
    """D<m>: the symmetries of a regular m-gon as permutations of its corners, the m rotations, then the m
    reflections (corner i to k - i)."""
    rotations = [tuple((k + i) % m for i in range(m)) for k in range(m)]
    return rotations + [tuple((k - i) % m for i in range(m)) for k in range(m)]

# every group the kit knows: a kind's letter, its sizes m (the name is the letter then m) and its elements' constructor.
# Elements are the integers of Z<m> or permutation tuples (s followed by a maps i to a[s[i]]); the identity need not
# come first; its table is checked to be a group as it is built (table_of). A new kind is one line here, a construction
# in test_all.REFERENCES independent of it (e.g. by matrices or a presentation) and a setting in test_all.LABEL_CASES.
KINDS = {"Z": (range(2, 65), cyclic), "S": (range(3, 6), symmetric), "A": (range(4, 6), alternating),
         "D": (range(3, 33), dihedral)}

def group_names():
    """Every group name the kit knows, kind by kind in KINDS order."""
    return [f"{kind}{m}" for kind, (sizes, _) in KINDS.items() for m in sizes]

def groups_in_words():
    """KINDS in words, e.g. "Z2..Z64, S3, S4, S5, A4, A5 or D3..D32": a kind of more than 3 sizes as a range."""
    parts = [f"{kind}{sizes[0]}..{kind}{sizes[-1]}" if len(sizes) > 3 else ", ".join(f"{kind}{m}" for m in sizes)
             for kind, (sizes, _) in KINDS.items()]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]

GROUPS = groups_in_words()  # every help and error names the groups in these words

def group_elements(name):
    """The elements of the group called name (a kind of KINDS then a size of that kind), in the order of its
    constructor: an action or state is an index into this list."""
    match = re.fullmatch(r"([A-Z]+)([1-9]\d*)", name)
    kind, m = (match.group(1), int(match.group(2))) if match else (None, 0)
    if kind in KINDS and m in KINDS[kind][0]:
        return KINDS[kind][1](m)
    raise ValueError(f"unknown group {name!r}: use {GROUPS}")

def group_option(name):
    """An argparse type: the name of a group that group_elements knows and whose table is a group (group_table)."""
    try:
        group_table(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    return name

def group_table(name, device="cpu"):
    """table[s, a] = index of the state reached from state s by action a (s followed by a), checked (table_of)."""
    return table_of(name).to(device, copy=True)

@functools.cache
def table_of(name):
    """The table of a group's elements, built once: each element a state of its kind (an integer of Z<m>, else a
    permutation tuple), none repeated; the products of elements not among them are -1, refused by check_table."""
    elements = group_elements(name)
    m, cyclic, index = len(elements), isinstance(elements[0], int), {}
    width = len(elements[0]) if isinstance(elements[0], tuple) else m
    for i, e in enumerate(elements):
        kind = f"an integer below {m}" if cyclic else f"a tuple permuting 0..{width - 1}"
        if not (e in range(m) if cyclic else isinstance(e, tuple) and all(type(x) is int for x in e)
                and sorted(e) == list(range(width))):
            raise ValueError(f"{name}: its element {i}, {e!r}, is not {kind}")
        index.setdefault(e, i)
        if index[e] != i:
            raise ValueError(f"{name}: its element {i}, {e!r}, repeats its element {index[e]}")
    compose = (lambda s, a: (s + a) % m) if cyclic else (lambda s, a: tuple(a[x] for x in s))
    table = torch.tensor([[index.get(compose(s, a), -1) for a in elements] for s in elements])
    check_table(name, table)
    return table

def check_table(name, table):
    """Refuse (ValueError), naming the first entry that fails, a table that is not a function from (state, action) to
    state (an entry that is none of the states) or not a group (no identity, an element without an inverse, a
    product that is not associative)."""
    def refuse(wrong, says):  # wrong: where the table fails; says(the first such entry's indices): how
        if wrong.any():
            raise ValueError(f"{name}{says(*wrong.nonzero()[0].tolist())}")
    n, every = len(table), torch.arange(len(table))
    refuse((table < 0) | (table >= n), lambda s, a: f": state {s} followed by action {a} is none of its {n} states")
    e = next((e for e in range(n) if table[e].equal(every) and table[:, e].equal(every)), None)
    if e is None:
        raise ValueError(f"{name} is not a group: no element e has e followed by a = a and s followed by e = s")
    refuse(~((table == e) & (table.T == e)).any(dim=1), lambda s: f" is not a group: its element {s} has no inverse")
    refuse(table[table] != table[:, table], lambda s, a, b: f" is not a group: state {s} followed by action {a}, then "
           f"action {b}, is {table[table[s, a], b]}, but followed by their product {table[a, b]} it is "
           f"{table[s, table[a, b]]}")  # table[table] at [s, a, b] is s followed by a then b, table[:, table] s by ab

def vocab_size(group_size, num_keys):
    """PAD, SEP, one action per group element, one key per key."""
    return 2 + group_size + num_keys

def seq_width(max_len, num_queries):
    """Tokens in a sequence of max_len steps: a_1 k_1 ... a_n k_n SEP q_1 ... q_q."""
    return 2 * max_len + 1 + min(max_len, num_queries)

# -----------------------------------------------------------------------------
# the generator

def running_states(table, actions):
    """s_t = a_1 followed by ... followed by a_t, for every t: a prefix scan over the group (Hillis-Steele),
    log2(n) vectorised steps instead of n, since composing actions is associative."""
    states, g, offset = actions, table.shape[0], 1
    while offset < actions.shape[1]:
        earlier = states[:, :-offset]  # the composition of the segment that ends offset steps back
        states = torch.cat([states[:, :offset], table.view(-1)[earlier * g + states[:, offset:]]], dim=1)
        offset *= 2
    return states

def sample_batch(table, batch_size, min_len, max_len, num_keys, num_queries, generator, state_frac=1.0):
    """Sequences with n drawn uniformly from min_len..max_len, right-padded to seq_width(max_len).
    Returns int64 tensors (tokens, targets) of shape (batch_size, seq_width), on the device of table.
    state_frac < 1 keeps each state target with that probability (the others become -100): a weaker direct
    signal for state tracking. Recall targets are always kept."""
    if max_len > num_keys:
        raise ValueError(f"{max_len} steps need at least {max_len} distinct keys, but --num_keys is {num_keys}")
    device, g = table.device, table.shape[0]
    B, N, Q = batch_size, max_len, min(max_len, num_queries)
    rand = dict(generator=generator, device=device)
    lengths = torch.randint(min_len, max_len + 1, (B, 1), **rand)
    actions = torch.randint(g, (B, N), **rand)
    keys = torch.rand(B, num_keys, **rand).argsort(dim=1)[:, :N]  # distinct keys per sequence
    states = running_states(table, actions)
    # queries: the steps of this sequence in random order (steps past its length sort last)
    steps = torch.arange(N, device=device)
    order = torch.rand(B, N, **rand).masked_fill(steps >= lengths, 2.0).argsort(dim=1)[:, :Q]

    pos = torch.arange(seq_width(N, num_queries), device=device)[None, :]
    in_stream = pos < 2 * lengths
    is_action = in_stream & (pos % 2 == 0)
    is_key = in_stream & (pos % 2 == 1)
    t = (pos // 2).clamp(max=N - 1).expand(B, -1)
    j = pos - 2 * lengths - 1  # index of the query at this position
    is_query = (j >= 0) & (j < lengths.clamp(max=Q))
    queried_step = order.gather(1, j.clamp(0, Q - 1))

    tokens = torch.full_like(is_action, PAD, dtype=torch.long)
    tokens = torch.where(is_action, 2 + actions.gather(1, t), tokens)
    tokens = torch.where(is_key, 2 + g + keys.gather(1, t), tokens)
    tokens = torch.where(pos == 2 * lengths, SEP, tokens)
    tokens = torch.where(is_query, 2 + g + keys.gather(1, queried_step), tokens)
    targets = torch.full_like(tokens, IGNORE)
    if state_frac < 1:
        is_action = is_action & (torch.rand(B, N, **rand) < state_frac).gather(1, t)
    targets = torch.where(is_action, states.gather(1, t), targets)
    targets = torch.where(is_query, states.gather(1, queried_step), targets)
    return tokens, targets

def eval_batch(table, n, num_keys, num_queries, num, seed):
    """The fixed eval set of length n: drawn on the CPU from its own seed, so it is the same on every device."""
    generator = torch.Generator().manual_seed(seed * 1000 + n)
    tokens, targets = sample_batch(table.cpu(), num, n, n, num_keys, num_queries, generator)
    return tokens.to(table.device), targets.to(table.device)

# -----------------------------------------------------------------------------
# reading sequences: the one place, with sample_batch, that knows the token layout

def target_masks(tokens, targets):
    """(state, recall): boolean masks of the scored positions before SEP (on actions) and after it (on queries)."""
    scored = targets != IGNORE
    before_sep = (tokens == SEP).long().cumsum(dim=1) == 0
    return scored & before_sep, scored & ~before_sep

def recall_ages(tokens, targets):
    """At each recall target, how many steps before SEP its key was bookmarked (0: the last step), else -1.
    Under a relative position encoding this decides how far back attention must look: a key bookmarked a steps
    back sits 2a + 2 + j tokens before query j."""
    sep = (tokens == SEP).long().argmax(dim=1, keepdim=True)
    pos = torch.arange(tokens.shape[1], device=tokens.device)
    is_key = (pos < sep) & (pos % 2 == 1)
    key_pos = ((tokens[:, :, None] == tokens[:, None, :]) & is_key[:, None, :]).long().argmax(dim=2)
    return torch.where(target_masks(tokens, targets)[1], (sep - 1 - key_pos) // 2, -1)

def token_names(tokens, group):
    """Short names of one sequence's tokens: a<element> for actions, k<j> for keys, | for SEP, q<j> for queries."""
    elements, g, seen_sep, names = group_elements(group), len(group_elements(group)), False, []
    for t in tokens.tolist():
        seen_sep |= t == SEP
        names.append("|" if t == SEP else "." if t == PAD else f"a{element_name(elements[t - 2])}" if t < 2 + g
                     else f"{'q' if seen_sep else 'k'}{t - 2 - g}")
    return names

def element_name(element):
    return str(element) if isinstance(element, int) else "".join(map(str, element))

def describe(tokens, targets, group, predictions=None):
    """A decoded sequence, one line per field; predictions (optional) are shown where the target is scored."""
    elements, tokens, targets = group_elements(group), tokens.tolist(), targets.tolist()
    g, sep = len(elements), tokens.index(SEP)
    names = lambda ids: " ".join(element_name(elements[i]) for i in ids)
    lines = [
        f"actions: {names(x - 2 for x in tokens[0:sep:2])}",
        f"keys:    {' '.join(str(x - 2 - g) for x in tokens[1:sep:2])}",
        f"states:  {names(targets[0:sep:2])}",
        f"queries: {' '.join(str(x - 2 - g) for x in tokens[sep + 1:] if x != PAD)}",
        f"recall:  {names(y for y in targets[sep + 1:] if y != IGNORE)}",
    ]
    if predictions is not None:
        scored, n = [p for p, y in zip(predictions.tolist(), targets) if y != IGNORE], sep // 2
        lines += [f"model:   states {names(scored[:n])} | recall {names(scored[n:])}"]
    return "\n".join(lines)

# -----------------------------------------------------------------------------

def main(argv=None):
    parser = ArgParser(description="Generate composite-task sequences (README, The task).")
    parser.add_argument("--group", default="S3", type=group_option, help=f"the state group: {GROUPS}")
    parser.add_argument("--n", type=positive_int, default=4, help="steps per sequence (all sequences have exactly n)")
    parser.add_argument("--num", type=positive_int, default=3, help="number of sequences")
    parser.add_argument("--seed", type=number(int, 0, 2**31 - 1), default=0, help="seeds the sequences")
    parser.add_argument("--num_keys", type=positive_int, default=64, help="size K of the key vocabulary")
    parser.add_argument("--num_queries", type=positive_int, default=8,
                        help="Q: a sequence of n steps gets min(n, Q) queries")
    parser.add_argument("--save", help="write int64 arrays tokens and targets to this .npz file")
    args = parser.parse_args(argv)
    if args.n > args.num_keys:
        die(f"{args.n} steps need at least {args.n} distinct keys, but --num_keys is {args.num_keys}")
    check_fits("--num", args.num, seq_width(args.n, args.num_queries), "cpu", args.num_keys)
    if args.save is not None and not args.save.endswith(".npz"):
        die(f"--save {args.save!r}: the file name must end in .npz")
    table = group_table(args.group)
    generator = torch.Generator().manual_seed(args.seed)
    tokens, targets = sample_batch(table, args.num, args.n, args.n, args.num_keys, args.num_queries, generator)
    if args.save:
        def save(path):
            with open(path, "wb") as f:  # through a file object: np.savez would append .npz to the name
                np.savez(f, tokens=tokens.numpy(), targets=targets.numpy())
        write_file(args.save, save)
        print(f"wrote {args.num} sequences of {args.n} steps to {args.save}: tokens and targets {tuple(tokens.shape)}")
    else:
        g = table.shape[0]
        print(f"group {args.group} (|G| = {g}), vocabulary {vocab_size(g, args.num_keys)}: PAD 0, SEP 1, "
              f"actions 2..{1 + g}, keys {2 + g}..{1 + g + args.num_keys}")
        for i in range(args.num):
            print(f"\ntokens:  {tokens[i].tolist()}\ntargets: {targets[i].tolist()}")
            print(describe(tokens[i], targets[i], args.group))

if __name__ == "__main__":
    run_script(main)
