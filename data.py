"""
The composite task: state tracking composed with associative recall (README, The task).

A state machine (a group G, or an automaton) has states, actions A and a start state s_0 (a group's identity). A
sequence of n steps shows an action a_t, then a key k_t that bookmarks the state s_t reached after it. After SEP come
q = min(n, Q) query keys; each asks for the state that was bookmarked with it. Worked example, G = Z5, K = 8 keys,
n = 3, Q = 8:

    actions (3, 4, 1), keys (6, 2, 7)  ->  states (3, 2, 3)
    queries (2, 6, 7)                  ->  recall targets (2, 3, 3)
    tokens : 5 13 | 6 9 | 3 14 | 1 | 9 13 14     (PAD 0, SEP 1, action i is id 2+i, key j is id 2+|A|+j)
    targets: 3 -  | 2 - | 3 -  | - | 2  3  3     (- is -100: no loss, not scored)

Batches are generated in one vectorised call on the training device (the running states by a log2 n prefix scan).

python data.py                                   # prints a few decoded examples
python data.py --group F2 --n 16                 # the flip-flop, an automaton
python data.py --group S3 --n 16 --num 1000 --save s3.npz
"""
# the kit's runs first: it answers Ctrl-C during the slow imports below in one line
from runs import ArgParser, check_fits, die, number, positive_int, run_script, write_file
import argparse
import collections
import functools
import itertools
import typing

import numpy as np
import torch

PAD, SEP, IGNORE = 0, 1, -100

# -----------------------------------------------------------------------------
# state machines: groups, and automata that are not groups

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
    """D<m>: the symmetries of a regular m-gon as permutations of its corners, the m rotations (corner i to k + i),
    then the m reflections (corner i to k - i)."""
    return [tuple((k + sign * i) % m for i in range(m)) for sign in (1, -1) for k in range(m)]

# An automaton: its states, actions, step(state, action) -> state, start s_0, actions' weights (None: uniform)
Automaton = collections.namedtuple("Automaton", "states actions step start weights")

def flip_flop(m):
    """F2: a set-reset memory from 0; write 0 (w0), write 1 (w1) and ignore (-), the writes rare so that the last one
    is often far back: the flip-flop language at p = 0.8 (Liu et al. 2023)."""
    return Automaton([0, 1], ["w0", "w1", "-"], lambda s, a: {"w0": 0, "w1": 1}.get(a, s), 0, (0.1, 0.1, 0.8))

def gridworld(m):
    """G<m>: a position on m cells, start 0; actions left (L) and right (R), clipped at the walls."""
    return Automaton(list(range(m)), ["L", "R"], lambda s, a: min(max(s + (a == "R") - (a == "L"), 0), m - 1), 0, None)

def cyclic_with_reset(m):
    """R<m>: Z<m>'s m actions (add a mod m), then one that sends every state to 0 (0!), start 0."""
    return Automaton(list(range(m)), list(range(m)) + ["0!"], lambda s, a: 0 if a == "0!" else (s + a) % m, 0, None)

# every machine the kit knows: a kind's letter, its sizes m (the name is the letter then m) and its constructor: an
# Automaton, or a group's elements, the integers of Z<m> or permutation tuples (s followed by a maps i to a[s[i]]), its
# table checked to be a group as it is built (machine_of). A new kind is one line here, a construction in
# test_all.REFERENCES independent of it (e.g. by matrices) and a setting in test_all.LABEL_CASES.
KINDS = {"Z": (range(2, 65), cyclic), "S": (range(3, 6), symmetric), "A": (range(4, 6), alternating),
         "D": (range(3, 33), dihedral), "F": (range(2, 3), flip_flop), "G": (range(3, 9), gridworld),
         "R": (range(2, 33), cyclic_with_reset)}

def group_names():
    """Every machine name the kit knows (a --group), kind by kind in KINDS order."""
    return [f"{kind}{m}" for kind, (sizes, _) in KINDS.items() for m in sizes]

def groups_in_words():
    """KINDS in words, e.g. "Z2..Z64, S3, S4, S5 or F2": a kind of more than 3 sizes as a range."""
    parts = [f"{kind}{sizes[0]}..{kind}{sizes[-1]}" if len(sizes) > 3 else ", ".join(f"{kind}{m}" for m in sizes)
             for kind, (sizes, _) in KINDS.items()]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else parts[0]

GROUPS = groups_in_words()  # every help and error names the machines in these words

def group_option(name):
    """An argparse type: the name of a machine whose table machine_of builds and checks."""
    try:
        machine_of(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    return name

class Machine(typing.NamedTuple):
    """A state machine as the generator uses it. Its actions' monoid holds every map Q -> Q that a sequence of actions
    makes, the actions first: compose[x, y] is the index of x followed by y, acts[q, x] the state x takes q to, and
    table[q, a] the state reached from state q by action a."""
    compose: torch.Tensor
    acts: torch.Tensor
    start: int
    weights: torch.Tensor | None  # the share of draws each action gets, None: uniformly
    states: list  # the names of the states and of the actions, as sequences are printed
    actions: list

    @property
    def table(self):
        return self.acts[:, :len(self.actions)]

    def to(self, device):
        move = lambda x: None if x is None else x.to(device, copy=True)  # a copy: never the cached machine's tensors
        return self._replace(compose=move(self.compose), acts=move(self.acts), weights=move(self.weights))

@functools.cache
def machine_of(name):
    """The machine called name (a kind of KINDS then a size), on the CPU, built and checked once: its states distinct
    (a group's integers of Z<m> or permutation tuples), a step to none of them (-1) refused by check_table."""
    if name not in group_names():
        raise ValueError(f"unknown group {name!r}: use {GROUPS}")
    built = KINDS[name[0]][1](int(name[1:]))  # the kind's letter, then its size
    group = not isinstance(built, Automaton)
    if group:
        m, cyclic, width = len(built), isinstance(built[0], int), len(built[0]) if isinstance(built[0], tuple) else 0
        for i, e in enumerate(built):
            if not (e in range(m) if cyclic else isinstance(e, tuple) and all(type(x) is int for x in e)
                    and sorted(e) == list(range(width))):
                raise ValueError(f"{name}: its element {i}, {e!r}, is not "
                                 f"{f'an integer below {m}' if cyclic else f'a tuple permuting 0..{width - 1}'}")
        step = (lambda s, a: (s + a) % m) if cyclic else (lambda s, a: tuple(a[x] for x in s))
        built = Automaton(built, built, step, None, None)
    index = {}
    for i, s in enumerate(built.states):
        if index.setdefault(s, i) != i:
            raise ValueError(f"{name}: its state {i}, {s!r}, repeats its state {index[s]}")
    table = torch.tensor([[index.get(built.step(s, a), -1) for a in built.actions] for s in built.states])
    identity = check_table(name, table, group)
    compose, acts = (table, table) if group else monoid(table)  # a group's maps are its elements, in order
    weights = None if built.weights is None else torch.tensor(built.weights, dtype=torch.float64)
    if weights is not None and not (weights.shape == (len(table[0]),) and weights.min() > 0):
        raise ValueError(f"{name}: its weights {built.weights} are not one positive number an action")
    names = lambda xs: [str(x) if not isinstance(x, tuple) else "".join(map(str, x)) for x in xs]
    return Machine(compose, acts, identity if group else index[built.start],
                   None if weights is None else weights / weights.sum(), names(built.states), names(built.actions))

def check_table(name, table, group=True):
    """Refuse (ValueError), naming the first entry that fails, a table that is not a function from (state, action) to
    state (an entry that is none of the states) or, for a group, not a group (no identity, an element without an
    inverse, a product that is not associative). Returns a group's identity."""
    def refuse(wrong, says):  # wrong: where the table fails; says(the first such entry's indices): how
        if wrong.any():
            raise ValueError(f"{name}{says(*wrong.nonzero()[0].tolist())}")
    n, every = len(table), torch.arange(len(table))
    refuse((table < 0) | (table >= n), lambda s, a: f": state {s} followed by action {a} is none of its {n} states")
    if not group:
        return None
    e = next((e for e in range(n) if table[e].equal(every) and table[:, e].equal(every)), None)
    if e is None:
        raise ValueError(f"{name} is not a group: no element e has e followed by a = a and s followed by e = s")
    refuse(~((table == e) & (table.T == e)).any(dim=1), lambda s: f" is not a group: its element {s} has no inverse")
    refuse(table[table] != table[:, table], lambda s, a, b: f" is not a group: state {s} followed by action {a}, then "
           f"action {b}, is {table[table[s, a], b]}, but followed by their product {table[a, b]} it is "
           f"{table[s, table[a, b]]}")  # table[table] at [s, a, b] is s followed by a then b, table[:, table] s by ab
    return e

def monoid(table):
    """The maps Q -> Q that sequences of actions make, each a row of the states it sends 0..|Q|-1 to, the actions'
    first: composing every two of them until that finds no new one.
    Returns (compose, acts): compose[x, y] the index of x followed by y, acts[q, x] = maps[x, q]."""
    maps = table.T
    while True:
        size = len(maps)
        products = maps[torch.arange(size)[None, :, None], maps[:, None, :]]  # [x, y, q]: y applied after x
        rows, found = torch.unique(torch.cat([maps, products.flatten(0, 1)]), dim=0, return_inverse=True)
        first = torch.full((len(rows),), size).scatter_reduce(0, found[:size], torch.arange(size), "amin")
        if (first < size).all():  # every product is one of the maps: first names each by its index
            return first[found[size:]].view(size, size), maps.T.contiguous()
        maps = torch.cat([maps, rows[first == size]])

def vocab_size(n_actions, num_keys):
    """PAD, SEP, one token per action, one per key."""
    return 2 + n_actions + num_keys

def seq_width(max_len, num_queries):
    """Tokens in a sequence of max_len steps: a_1 k_1 ... a_n k_n SEP q_1 ... q_q."""
    return 2 * max_len + 1 + min(max_len, num_queries)

# -----------------------------------------------------------------------------
# the generator

def running_states(machine, actions):
    """s_t = s_0 followed by a_1, ..., a_t, for every t: a prefix scan over the actions' monoid (Hillis-Steele),
    log2(n) vectorised steps instead of n, since composing maps is associative; then each prefix applied to s_0."""
    prefix, size, offset = actions, machine.compose.shape[0], 1
    while offset < actions.shape[1]:
        earlier = prefix[:, :-offset]  # the composition of the segment that ends offset steps back
        prefix = torch.cat([prefix[:, :offset], machine.compose.view(-1)[earlier * size + prefix[:, offset:]]], dim=1)
        offset *= 2
    return machine.acts[machine.start][prefix]

def sample_batch(machine, batch_size, min_len, max_len, num_keys, num_queries, generator, state_frac=1.0):
    """Sequences with n drawn uniformly from min_len..max_len, right-padded to seq_width(max_len).
    Returns int64 tensors (tokens, targets) of shape (batch_size, seq_width), on the machine's device.
    state_frac < 1 keeps each state target with that probability (the others become -100): a weaker direct
    signal for state tracking. Recall targets are always kept."""
    if max_len > num_keys:
        raise ValueError(f"{max_len} steps need at least {max_len} distinct keys, but --num_keys is {num_keys}")
    device, g = machine.acts.device, len(machine.actions)
    B, N, Q = batch_size, max_len, min(max_len, num_queries)
    rand = dict(generator=generator, device=device)
    lengths = torch.randint(min_len, max_len + 1, (B, 1), **rand)
    if machine.weights is None:
        actions = torch.randint(g, (B, N), **rand)
    else:  # action i where the cumulative weights first pass a uniform draw
        cumulative = machine.weights.cumsum(0)
        actions = torch.searchsorted(cumulative, torch.rand(B, N, dtype=cumulative.dtype, **rand), right=True)
        actions = actions.clamp(max=g - 1)  # a draw above the last sum, 1 up to rounding
    keys = torch.rand(B, num_keys, **rand).argsort(dim=1)[:, :N]  # distinct keys per sequence
    states = running_states(machine, actions)
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

def eval_batch(machine, n, num_keys, num_queries, num, seed):
    """The fixed eval set of length n: drawn on the CPU from its own seed, so it is the same on every device."""
    generator = torch.Generator().manual_seed(seed * 1000 + n)
    tokens, targets = sample_batch(machine.to("cpu"), num, n, n, num_keys, num_queries, generator)
    return tokens.to(machine.acts.device), targets.to(machine.acts.device)

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
    """Short names of one sequence's tokens: a<action> for actions, k<j> for keys, | for SEP, q<j> for queries."""
    actions, seen_sep, names = machine_of(group).actions, False, []
    for t in tokens.tolist():
        seen_sep |= t == SEP
        names.append("|" if t == SEP else "." if t == PAD else f"a{actions[t - 2]}" if t < 2 + len(actions)
                     else f"{'q' if seen_sep else 'k'}{t - 2 - len(actions)}")
    return names

def describe(tokens, targets, group, predictions=None):
    """A decoded sequence, one line per field; predictions (optional) are shown where the target is scored."""
    machine, tokens, targets = machine_of(group), tokens.tolist(), targets.tolist()
    g, sep = len(machine.actions), tokens.index(SEP)
    states = lambda ids: " ".join(machine.states[i] for i in ids)
    lines = [
        f"actions: {' '.join(machine.actions[x - 2] for x in tokens[0:sep:2])}",
        f"keys:    {' '.join(str(x - 2 - g) for x in tokens[1:sep:2])}",
        f"states:  {states(targets[0:sep:2])}",
        f"queries: {' '.join(str(x - 2 - g) for x in tokens[sep + 1:] if x != PAD)}",
        f"recall:  {states(y for y in targets[sep + 1:] if y != IGNORE)}",
    ]
    if predictions is not None:
        scored, n = [p for p, y in zip(predictions.tolist(), targets) if y != IGNORE], sep // 2
        lines += [f"model:   states {states(scored[:n])} | recall {states(scored[n:])}"]
    return "\n".join(lines)

# -----------------------------------------------------------------------------

def main(argv=None):
    parser = ArgParser(description="Generate composite-task sequences (README, The task).")
    parser.add_argument("--group", default="S3", type=group_option,
                        help=f"the state machine, a group or an automaton: {GROUPS}")
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
    machine = machine_of(args.group)
    generator = torch.Generator().manual_seed(args.seed)
    tokens, targets = sample_batch(machine, args.num, args.n, args.n, args.num_keys, args.num_queries, generator)
    if args.save:
        def save(path):
            with open(path, "wb") as f:  # through a file object: np.savez would append .npz to the name
                np.savez(f, tokens=tokens.numpy(), targets=targets.numpy())
        write_file(args.save, save)
        print(f"wrote {args.num} sequences of {args.n} steps to {args.save}: tokens and targets {tuple(tokens.shape)}")
    else:
        g, weights = len(machine.actions), machine.weights
        drawn = "uniformly" if weights is None else ", ".join(f"{a} {w:g}" for a, w in zip(machine.actions, weights))
        print(f"{args.group}: {len(machine.states)} states from {machine.states[machine.start]}, {g} actions drawn "
              f"{drawn}; vocabulary {vocab_size(g, args.num_keys)}: PAD 0, SEP 1, actions 2..{1 + g}, keys "
              f"{2 + g}..{1 + g + args.num_keys}")
        for i in range(args.num):
            print(f"\ntokens:  {tokens[i].tolist()}\ntargets: {targets[i].tolist()}")
            print(describe(tokens[i], targets[i], args.group))

if __name__ == "__main__":
    run_script(main)
