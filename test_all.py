"""
The kit's tests: python test_all.py (no pytest needed; pytest test_all.py works too). Under 40 s on 2 idle cores,
one test per core at a time on Linux; python test_all.py labels gate_schedule runs only the tests whose names hold
one of those words (any part of a name).

Labels against an independent reference, causality of every model, the delay semantics of DAT, resume,
bad input, and a tiny train -> eval -> plot run.
"""
import argparse
import contextlib
import dataclasses
import functools
import io
import itertools
import json
import multiprocessing
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))  # the study's scripts

import atlas
import attention
import automata
import bench
import contents
import cores_hybrid
import ladder
import launch
import mechanism
import data
import eval as evaluation
import options
import plot
import run_folder
import runs
import train
from model import CORES, HYBRIDS, MODELS, TRANSITIONS, Model, ModelConfig

TINY = ["--train_len", "4", "--num_keys", "16", "--num_queries", "3", "--d_model", "16", "--batch_size", "16",
        "--log_interval", "5", "--eval_interval", "10", "--n_eval_train", "20", "--device", "cpu"]

def release_locks():
    """Let go of every run folder this process holds (run_folder.lock): the tests run several scripts in turn."""
    while run_folder._held:
        os.close(run_folder._held.popitem()[1])

def run_cli(main, argv):
    """Run a script's main in-process: (exit code, stdout, stderr)."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()

@contextlib.contextmanager
def held_elsewhere(folder):
    """folder held, for the with block, by another process (run_folder.lock's advisory lock), as a trainer holds it."""
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
                               "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('held', flush=True); "
                               "sys.stdin.read()", folder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n", f"another process holds {folder}"
        yield
    finally:
        holder.communicate("")

def tmpdir():
    return tempfile.mkdtemp(prefix="datkit_test_")

# -----------------------------------------------------------------------------
# the composite task: group tables and labels against a slow reference that shares no code with data.py; the metrics

# Every kind of data.KINDS built again here, without data.py's code: m -> (states, actions, step, start, weights), in
# the order data.py documents (an action or state is an index into them), step(s, a) the state s followed by action a,
# weights how often each action is drawn (None: uniformly). A group's states and actions are its elements.

def reference_cyclic(m):
    return list(range(m)), list(range(m)), lambda s, a: (s + a) % m, 0, None

def reference_dihedral(m):  # (k, f) maps corner j to k + (-1)^f j; s then a maps j to a(s(j))
    elements = [(k, f) for f in (0, 1) for k in range(m)]
    return elements, elements, lambda s, a: ((a[0] + (-1) ** a[1] * s[0]) % m, s[1] ^ a[1]), (0, 0), None

def reference_symmetric(m, even_only=False):
    def cycles(p):
        seen, count = set(), 0
        for i in range(m):
            if i not in seen:
                count += 1
                while i not in seen:
                    seen.add(i)
                    i = p[i]
        return count
    perms = [p for p in itertools.permutations(range(m)) if not even_only or (m - cycles(p)) % 2 == 0]  # even
    return perms, perms, lambda s, a: tuple(a[s[i]] for i in range(m)), tuple(range(m)), None

def reference_by_matrices(matrices, start, weights=None):
    """An automaton whose action a moves the one-hot state vector v to v @ matrices[a]: matrices[a][q, r] is 1 where a
    takes state q to r (one 1 a row)."""
    step = lambda s, a: int(np.argmax(np.eye(len(matrices[0]))[s] @ matrices[a]))
    return list(range(len(matrices[0]))), list(range(len(matrices))), step, start, weights

def reference_flip_flop(m):  # write 0, write 1: every state to that one; ignore: the identity
    return reference_by_matrices([np.outer(np.ones(2), np.eye(2)[b]) for b in (0, 1)] + [np.eye(2)], 0, (0.1, 0.1, 0.8))

def reference_gridworld(m):  # left and right: the shifts np.eye(m, k=-1) and np.eye(m, k=1), a wall keeping its cell
    walls = lambda shift, cell: shift + np.diag(np.eye(m)[cell])
    return reference_by_matrices([walls(np.eye(m, k=-1), 0), walls(np.eye(m, k=1), m - 1)], 0)

def reference_cyclic_with_reset(m):  # add a: the rotation of the identity's columns by a; the reset: every row e_0
    reset = np.outer(np.ones(m), np.eye(m)[0])
    return reference_by_matrices([np.roll(np.eye(m), a, axis=1) for a in range(m)] + [reset], 0)

REFERENCES = {"Z": reference_cyclic, "S": reference_symmetric, "A": lambda m: reference_symmetric(m, even_only=True),
              "D": reference_dihedral, "F": reference_flip_flop, "G": reference_gridworld,
              "R": reference_cyclic_with_reset}

def reference_machine(name):
    kind = name.rstrip("0123456789")
    assert kind in REFERENCES, f"kind {kind!r} of data.KINDS has no independent construction in REFERENCES"
    return REFERENCES[kind](int(name[len(kind):]))

def test_every_machine_table_matches_reference():
    """The full table, start state and action weights of every machine data.py can name, against its kind's
    construction in REFERENCES."""
    missing = sorted(set(data.KINDS) - set(REFERENCES))
    assert not missing, f"kinds of data.KINDS without an independent construction in REFERENCES: {missing}"
    names = data.group_names()
    assert len(names) == len(set(names)) and {"Z2", "Z64", "S5", "A5", "D32", "F2", "G6", "R5"} <= set(names), \
        "the names of KINDS"
    for kind, (sizes, _) in data.KINDS.items():  # the names just outside a kind's sizes are refused
        for m in (min(sizes) - 1, max(sizes) + 1):
            with contextlib.suppress(argparse.ArgumentTypeError):
                data.group_option(f"{kind}{m}")
                raise AssertionError(f"{kind}{m} is outside the sizes of kind {kind} but was accepted")
    for name in names:
        assert data.group_option(name) == name, f"{name} from data.group_names() is refused"
        states, actions, step, start, weights = reference_machine(name)
        index = {s: i for i, s in enumerate(states)}
        assert len(index) == len(states) and start in index, f"{name}: the reference has repeats or no start"
        machine = data.machine_of(name)
        assert machine.start == index[start], f"{name}: start state {machine.start}, the reference's {index[start]}"
        assert (machine.weights is None) == (weights is None) and (weights is None or machine.weights.tolist() ==
                                                                    list(weights)), f"{name}: the action weights"
        assert machine.acts[:, machine.compose].equal(machine.acts[machine.acts]), f"{name}: in the actions' monoid, " \
            "a state followed by x then y is not where the map data.py composes of x and y takes it"
        table = machine.table.tolist()
        assert len(table) == len(states), f"{name}: {len(table)} states, the reference has {len(states)}"
        for s, row in zip(states, table, strict=True):
            expected = [index[step(s, a)] for a in actions]
            bad = next((i for i, (x, y) in enumerate(zip(row, expected, strict=True)) if x != y), None)
            assert bad is None, (f"{name}: state {index[s]} followed by action {bad} gives {row[bad]} in "
                                 f"data.machine_of, {expected[bad]} in the reference")

def test_a_table_that_is_not_a_group_is_one_error_line_naming_the_entry():
    """data.check_table names the entry of a table that is not a function from (state, action) to state, has no
    identity, an element without an inverse or a product that is not associative; a kind whose constructor breaks
    its group (here S3 that lost two elements) is one error line from data.py, train.py --dry_run and eval.py."""
    loop = [[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]]  # not associative
    for table, says in (([[0, 2], [1, 0]], "X: state 0 followed by action 1 is none of its 2 states"),
                        ([[0, 0], [0, 0]], "X is not a group: no element e"), ([[0, 1], [1, 1]], "element 1 has no "
                        "inverse"), (loop, "state 1 followed by action 1, then action 2, is 2, but followed by their "
                                           "product 3 it is 4")):
        try:
            data.check_table("X", torch.tensor(table))
            raise AssertionError(f"a table that is not a group was accepted: {table}")
        except ValueError as e:
            assert says in str(e), f"the entry is named: {e}"
    root = tmpdir()
    fake_finished_run(f"{root}/run", TINY, [1])  # an S3 run to score
    fake_checkpoint(f"{root}/run")
    kinds, kind = dict(data.KINDS), data.KINDS["S"]
    data.KINDS["S"] = (kind[0], lambda m: data.symmetric(m)[:-2])  # not closed: a product of two is not among them
    data.machine_of.cache_clear()  # machines are built once per name
    try:
        for script, argv in ((data, []), (train, ["--dry_run"]), (evaluation, [f"{root}/run", "--n_eval", "2"])):
            code, out, err = run_cli(script.main, argv)
            assert code == 2 and err.count("\n") == 1 and "S3: state 2 followed by action 1 is none of its 4 states" \
                in err, f"{script.__name__}: one error line naming the entry: {err!r}"
        assert data.check_table("X", torch.tensor([[0, 0], [0, 0]]), group=False) is None, \
            "an automaton's table need only be a function"
        unwalled = lambda m: data.Automaton(list(range(m)), ["L", "R"], lambda s, a: s + (a == "R") - (a == "L"), 0,
                                            None)
        data.KINDS["G"] = (data.KINDS["G"][0], unwalled)
        code, out, err = run_cli(data.main, ["--group", "G4"])  # no walls: left from 0 leaves the cells
        assert code == 2 and err.count("\n") == 1 and "G4: state 0 followed by action 0 is none of its 4 states" \
            in err, f"an automaton's step to none of its states is one error line naming the entry: {err!r}"
        data.KINDS["F"] = (range(2, 3), lambda m: data.flip_flop(m)._replace(weights=(0.5, 0.5)))  # 3 actions
        code, out, err = run_cli(data.main, ["--group", "F2"])
        assert code == 2 and "F2: its weights (0.5, 0.5) are not one positive number an action" in err, err
    finally:
        data.KINDS.update(kinds)
        data.machine_of.cache_clear()
        release_locks()
    shutil.rmtree(root)

def reference_targets(tokens, group, num_keys, num_queries):
    """Walk one token row as the README (The task) describes it and return the targets it must have."""
    states, actions, step, state, _ = reference_machine(group)
    g = len(actions)
    tokens = [t for t in tokens]
    sep = tokens.index(data.SEP)
    n = sep // 2
    targets, bookmarks = [], {}
    for t in range(n):
        action, key = tokens[2 * t] - 2, tokens[2 * t + 1] - 2 - g
        assert 0 <= action < g and 0 <= key < num_keys, "action / key ids out of range"
        state = step(state, actions[action])
        assert key not in bookmarks, "keys repeat within a sequence"
        bookmarks[key] = states.index(state)
        targets += [states.index(state), -100]
    queries = tokens[sep + 1:sep + 1 + min(n, num_queries)]
    assert len(set(queries)) == len(queries), "queries repeat"
    assert all(t == data.PAD for t in tokens[sep + 1 + len(queries):]), "padding after the queries"
    targets += [-100] + [bookmarks[q - 2 - g] for q in queries]
    return targets + [-100] * (len(tokens) - len(targets))

def reference_ages(tokens):
    """-1 everywhere but at the queries, where it is how many steps before SEP the queried key was bookmarked."""
    sep = tokens.index(data.SEP)
    keys, ages = tokens[1:sep:2], [-1] * len(tokens)
    for i in range(sep + 1, len(tokens)):
        if tokens[i] != data.PAD:
            ages[i] = len(keys) - 1 - keys.index(tokens[i])
    return ages

# the sampled-sequence settings (group, num_keys, num_queries), at least one for every kind of data.KINDS
LABEL_CASES = [("Z5", 20, 8), ("S3", 64, 8), ("A5", 40, 5), ("D4", 20, 8), ("D5", 16, 3), ("F2", 20, 8), ("G4", 16, 3),
               ("R5", 20, 8)]

def test_labels_match_reference():
    """Sampled sequences' targets and recall ages, row by row, against a walk with the kind's reference machine; the
    actions drawn as often as its weights say (within 5 standard deviations)."""
    missing = sorted(set(data.KINDS) - {group.rstrip("0123456789") for group, _, _ in LABEL_CASES})
    assert not missing, f"kinds of data.KINDS with no sampled-sequence setting in LABEL_CASES: {missing}"
    for group, num_keys, num_queries in LABEL_CASES:
        machine, (states, actions, _, _, weights) = data.machine_of(group), reference_machine(group)
        assert machine.table.shape == (len(states), len(actions)), f"{group}: the number of states and of actions"
        tokens, targets = data.sample_batch(machine, 200, 1, 16, num_keys, num_queries,
                                            torch.Generator().manual_seed(0))
        assert tokens.shape == (200, data.seq_width(16, num_queries)) and tokens.dtype == torch.int64, "batch shape"
        lengths = (tokens == data.SEP).nonzero()[:, 1] // 2
        assert lengths.min() == 1 and lengths.max() == 16, "n is drawn from 1..train_len"
        for i, (row_tokens, row_targets) in enumerate(zip(tokens.tolist(), targets.tolist(), strict=True)):
            expected = reference_targets(row_tokens, group, num_keys, num_queries)
            wrong = next((j for j, (x, y) in enumerate(zip(row_targets, expected)) if x != y), None)
            assert wrong is None, f"{group}: sequence {i}, position {wrong}: target {row_targets[wrong]}, the " \
                f"reference's {expected[wrong]} (tokens {row_tokens[:wrong + 1]})"
        for row_tokens, row_ages in zip(tokens.tolist(), data.recall_ages(tokens, targets).tolist(), strict=True):
            assert row_ages == reference_ages(row_tokens), f"{group}: recall ages"
        drawn = tokens[:, 0::2][(tokens[:, 0::2] >= 2) & (tokens[:, 0::2] < 2 + len(actions))] - 2
        counts, expected = torch.bincount(drawn, minlength=len(actions)), torch.tensor(weights or [1 / len(actions)] *
                                                                                      len(actions)) * len(drawn)
        assert ((counts - expected).abs() <= 5 * (expected * (1 - expected / len(drawn))).sqrt() + 1).all(), \
            f"{group}: actions drawn {counts.tolist()} times, {expected.tolist()} expected"

def test_design_example_layout():
    """The worked example of data.py and the README: its tokens, targets, ages and decoding are the task's."""
    # the worked example of data.py and the README: Z5, K = 8; decoding it shows its actions, keys, states and recall
    tokens = torch.tensor([5, 13, 6, 9, 3, 14, 1, 9, 13, 14])
    targets = torch.tensor([3, -100, 2, -100, 3, -100, -100, 2, 3, 3])
    assert reference_targets(tokens.tolist(), "Z5", 8, 8) == targets.tolist()
    assert data.recall_ages(tokens[None], targets[None]).tolist() == [[-1] * 7 + [1, 2, 0]]  # keys 2, 6, 7
    text = data.describe(tokens, targets, "Z5")
    for line in ("actions: 3 4 1", "keys:    6 2 7", "states:  3 2 3", "recall:  2 3 3"):
        assert line in text, text

def test_fixed_length_and_key_errors():
    """Eval sets have exactly n steps and are fixed by their seed; a length above --num_keys is refused."""
    table = data.machine_of("S3")
    tokens, _ = data.eval_batch(table, 12, 64, 8, 50, seed=1)
    assert ((tokens == data.SEP).nonzero()[:, 1] == 24).all(), "eval sequences have exactly n steps"
    assert torch.equal(tokens, data.eval_batch(table, 12, 64, 8, 50, seed=1)[0]), "eval sets are fixed by their seed"
    try:
        data.sample_batch(table, 4, 1, 65, 64, 8, torch.Generator())
        raise AssertionError("a length above num_keys must be refused")
    except ValueError:
        pass

def test_every_metric_is_one_when_right_and_zero_when_wrong():
    """Every metric eval.py's score returns (a new one included) and each band of recall by age, at every test length
    of the grid: 1.0 when the predictions are the targets and 0.0 when every scored one is wrong, whatever is
    predicted where nothing is scored (PAD, SEP, keys): a metric counts scored targets only."""
    table, train_len = data.machine_of("S3").table, 8
    for n in [1] + [m * train_len for m in (1, 2, 3, 4, 6, 8)]:
        tokens, targets = data.eval_batch(data.machine_of("S3"), n, 64, 8, 50, evaluation.EVAL_SEED)
        scored = targets != data.IGNORE
        elsewhere = torch.randint(0, len(table), targets.shape, generator=torch.Generator().manual_seed(n))
        for want, right in ((1.0, targets), (0.0, (targets + 1) % len(table))):
            predictions = torch.where(scored, right, elsewhere)
            got = {k: v.item() for k, v in evaluation.score(predictions, tokens, targets).items()}
            got["recall_by_age"] = evaluation.recall_by_age(predictions, tokens, targets, train_len)
            assert all(v == want for v in got.values() if not isinstance(v, list)) and \
                all(v == want for v in got["recall_by_age"]), f"n = {n}: every metric {want} expected: {got}"

# -----------------------------------------------------------------------------
# the models and cores: causality, the gate, each core's range and what a hand-set core can track

def tiny_config(model, **kw):
    return ModelConfig(model=model, vocab_size=30, n_classes=6, d_model=16, n_heads=2, **kw)

# every core of model.CORES, and each non-default value of its sub-options
CORE_VARIANTS = [{"core": core} for core in CORES] + [{"core": "diagonal", "transitions": t} for t in TRANSITIONS[1:]] \
    + [{"core": "delta", "beta_max": 2, "householder": 2}]

def test_causality_of_every_model():
    """Every model, layout and core is causal: changing a later token never changes an earlier output."""
    torch.manual_seed(0)
    variants = [tiny_config(m) for m in MODELS] + [tiny_config(m, pos="rope", mlp=True) for m in HYBRIDS] + \
        [tiny_config("lstm", **core) for core in CORE_VARIANTS]
    for cfg in variants:
        model = Model(cfg).eval()
        tokens = torch.randint(2, 30, (3, 21))
        changed = tokens.clone()
        changed[:, 12] = (changed[:, 12] + 5) % 28 + 2
        with torch.no_grad():
            a, b = model(tokens)[0], model(changed)[0]
        assert torch.allclose(a[:, :12], b[:, :12], atol=1e-6, rtol=0), f"{cfg} peeks at a later token"
        assert not torch.allclose(a[:, 12], b[:, 12]), f"{cfg} ignores its own token"

def test_same_init_with_and_without_dat():
    """DAT and its baseline start from the same weights (the paired comparison)."""
    for model in HYBRIDS:
        torch.manual_seed(3)
        plain = Model(tiny_config(model)).state_dict()
        torch.manual_seed(3)
        dat = Model(tiny_config(model, delay_attention=True)).state_dict()
        assert plain.keys() == dat.keys() and all(torch.equal(plain[k], dat[k]) for k in plain)

def test_gate_zero_is_the_model_without_attention():
    """For every core, a hybrid with the gate at 0 computes exactly its recurrent model and never
    calls attention."""
    torch.manual_seed(0)
    tokens = torch.randint(2, 30, (4, 15))
    for core in CORE_VARIANTS:
        hybrid = Model(tiny_config("lstm_attn", delay_attention=True, **core)).eval()
        assert hybrid.gate == 0.0, "a DAT hybrid starts with the gate at 0"
        recurrent = Model(tiny_config("lstm", **core)).eval()
        missing, _ = recurrent.load_state_dict(hybrid.state_dict(), strict=False)
        assert not missing, f"{core}: the hybrid holds every parameter of the recurrent model"
        calls = []
        for block in hybrid.blocks:
            if hasattr(block, "attn"):
                block.attn.register_forward_hook(lambda *a: calls.append(1))
        with torch.no_grad():
            assert torch.equal(hybrid(tokens)[0], recurrent(tokens)[0]), f"{core}: gate 0 is the model without it"
        assert not calls, "with the gate at exactly 0 the attention must not be computed"
    for name in ("attn_lstm", "interleaved"):
        torch.manual_seed(0)
        model = Model(tiny_config(name, delay_attention=True, n_lstm=2)).eval()
        with torch.no_grad():
            before = model(tokens)[0]
            for p in model.attention_parameters():
                p.add_(torch.randn_like(p))
            assert torch.equal(before, model(tokens)[0]), f"{name}: attention leaks through a gate of 0"
            model.gate = 1.0
            assert not torch.equal(before, model(tokens)[0])

def test_every_core_carries_earlier_tokens_and_keeps_the_sequences_of_a_batch_apart():
    """Every core of model.CORES (a new one included), in an lstm with the embedding skip at 0 so that only the core
    carries a token: a change to sequence 0's token 2 moves its output at every later position, and no other
    sequence's output (a core that ignores its input or recurs over the batch fails)."""
    torch.manual_seed(0)
    tokens = torch.randint(2, 30, (3, 8))
    changed = tokens.clone()
    changed[0, 2] = (changed[0, 2] + 5) % 28 + 2
    for core in CORE_VARIANTS:
        model = Model(tiny_config("lstm", emb_skip=0.0, **core)).eval()
        with torch.no_grad():
            a, b = model(tokens)[0], model(changed)[0]
        assert torch.allclose(a[1:], b[1:], atol=1e-6, rtol=0), f"{core}: a change to sequence 0 moved another " \
            "sequence's output: the core mixes the sequences of a batch (batch_first?)"
        moved = (a[0, 3:] - b[0, 3:]).abs().amax(dim=-1)
        assert (moved > 0).all(), f"{core}: the outputs after a changed token moved by {moved.tolist()}: the core " \
            "must carry earlier tokens"

def test_every_core_keeps_its_transitions_in_their_declared_range():
    """Every core of CORE_VARIANTS that declares transition_range = (i, low, high) (model.py; a new linear core by
    declaring it): on random inputs coefficients(x)[i] (its modulus, if complex) lies in [low, high] and reaches near
    both ends; a complex transition turns both ways."""
    torch.manual_seed(0)
    x, declared = 20 * torch.randn(4, 50, 16), set()
    for variant in CORE_VARIANTS:
        core = CORES[variant["core"]](ModelConfig(d_model=16, **variant))
        if not hasattr(core, "transition_range"):
            continue
        declared.add(variant["core"])
        i, low, high = core.transition_range
        values = core.coefficients(x)[i]
        size = values.abs() if values.is_complex() else values
        assert low <= size.min() < low + 0.01 and high - 0.01 < size.max() <= high, \
            f"{variant}: its transitions lie in [{size.min()}, {size.max()}], declared [{low}, {high}]"
        if values.is_complex():
            assert (values.angle() < -1).any() and (values.angle() > 1).any(), f"{variant}: it turns both ways"
    assert {"diagonal", "delta"} <= declared, f"the linear cores declare their ranges: only {declared} do"

# Expressivity: a core class the runs train, its parameters set by hand, tracks a group over 1,000 random actions:
# token 0 starts the state, token 1 + a is action a; the core's output is decoded by a hand-set linear readout.
SURE = 30.0  # a logit whose sigmoid is 1 (or 0) in float32

def hand_set_core(core, set_weights, **core_options):
    """core's module class with d_model 8, every parameter 0 but those set_weights(in_proj weight, out weight) sets,
    copied into the class's own parameters."""
    module = CORES[core](ModelConfig(d_model=8, core=core, **core_options))
    weights = {name: torch.zeros_like(p) for name, p in module.named_parameters()}
    set_weights(weights["in_proj.weight"], weights["out.weight"])
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(weights[name])
    return module

def assert_tracks(module, n_actions, states_of, codewords, what):
    """Random action sequences; at every step the codeword nearest the core's output (a linear readout:
    argmax_g 2 c_g . y - |c_g|^2) is the state states_of(actions) gives for it."""
    generator = torch.Generator().manual_seed(0)
    actions = torch.randint(0, n_actions, (3, 1000), generator=generator)
    tokens = torch.cat([torch.zeros(3, 1, dtype=torch.long), 1 + actions], dim=1)
    with torch.no_grad():
        y = module(F.one_hot(tokens, 8).float())
    decoded = (2 * y @ codewords.T - (codewords ** 2).sum(dim=1)).argmax(dim=-1)
    expected = torch.tensor([states_of(row) for row in actions.tolist()])
    wrong = (decoded != expected).sum().item()
    assert wrong == 0, f"{what}: {wrong} of {decoded.numel()} steps decoded wrong"

def cyclic_states(m):
    return lambda row: [0] + np.cumsum(row).__mod__(m).tolist()

def rotations(m):
    angles = 2 * np.pi * np.arange(m) / m
    return torch.tensor(np.stack([np.cos(angles), np.sin(angles)] + [np.zeros(m)] * 6, axis=1), dtype=torch.float)

def test_signed_diagonal_and_reflecting_delta_cores_track_parity():
    """Expressivity: the signed diagonal core and the reflecting delta core, set by hand, track Z2."""
    def signed(w_in, w_out):  # channel 0: h = 1 after the start; a = +1 on action 0, -1 on action 1
        w_in[0, 1], w_in[0, 2], w_in[8, 0] = SURE, -SURE, 1.0
        w_out[0, 0] = 1.0
    def reflecting(w_in, w_out):  # q = e_0; the start sets S = e_0 e_0^T (beta 1); action 1 reflects: k = e_0, beta 2
        w_in[0, :] = 1.0
        w_in[8, :], w_in[16, 0], w_in[24, 1], w_in[24, 2] = 1.0, 1.0, -SURE, SURE
        w_out[0, 0] = 1.0
    parity = torch.zeros(2, 8)
    parity[:, 0] = torch.tensor([1.0, -1.0])
    assert_tracks(hand_set_core("diagonal", signed, transitions="signed"), 2, cyclic_states(2), parity,
                  "signed diagonal core, Z2")
    assert_tracks(hand_set_core("delta", reflecting, beta_max=2), 2, cyclic_states(2), parity, "delta core, beta 2, Z2")

def test_unit_diagonal_core_tracks_the_flip_flop():
    """Expressivity: the unit diagonal core (transitions in [0, 1]), set by hand, holds a set-reset memory: a write is
    a_t = 0 with b_t the bit written, an ignore a_t = 1 (Sarrof et al. 2024)."""
    states, actions, step, start, _ = reference_machine("F2")
    def set_reset(w_in, w_out):  # channel 0: tokens 0 (start), 1 (write 0) and 2 (write 1) set h to 0, 0 and 1
        w_in[0, 0:3], w_in[0, 3], w_in[8, 2] = -SURE, SURE, 1.0
        w_out[0, 0] = 1.0
    def walk(row):
        visited = [start]
        for a in row:
            visited.append(step(visited[-1], actions[a]))
        return [states.index(s) for s in visited]
    bit = torch.zeros(2, 8)
    bit[1, 0] = 1.0  # state 0 is h = 0, state 1 is h = 1
    assert_tracks(hand_set_core("diagonal", set_reset), len(actions), walk, bit, "unit diagonal core, F2")

def test_complex_diagonal_and_two_step_delta_cores_track_z5():
    """Expressivity: the complex diagonal core and the two-step delta core, set by hand, track Z5."""
    angles = 2 * np.pi * np.arange(5) / 5
    def complex_(w_in, w_out):  # channel 0: h = 1 after the start; action a turns it by 2 pi a / 5 (pi tanh(u) wraps)
        w_in[0, 1:6] = SURE
        w_in[8, 1:6] = torch.tensor(np.arctanh(np.angle(np.exp(1j * angles)) / np.pi), dtype=torch.float)
        w_in[16, 0] = 1.0
        w_out[0, 0] = w_out[1, 8] = 1.0
    def two_reflections(w_in, w_out):  # the start sets S = I on channels 0, 1; action a: reflections in k1, then e_0
        w_in[0, :] = 1.0  # q = e_0
        step = 17  # per step: k (8 rows), v (8 rows), z (1 row), after q's 8 rows
        w_in[8, 0], w_in[16, 0], w_in[8 + step + 1, 0], w_in[16 + step + 1, 0] = 1.0, 1.0, 1.0, 1.0  # beta 1 both
        w_in[8, 1:6], w_in[9, 1:6] = torch.tensor(np.cos(angles / 2)), torch.tensor(np.sin(angles / 2))
        w_in[8 + step, 1:6], w_in[24, 1:6], w_in[24 + step, 1:6] = 1.0, SURE, SURE
        w_out[0, 0] = w_out[1, 1] = 1.0
    assert_tracks(hand_set_core("diagonal", complex_, transitions="complex"), 5, cyclic_states(5), rotations(5),
                  "complex diagonal core, Z5")
    assert_tracks(hand_set_core("delta", two_reflections, beta_max=2, householder=2), 5, cyclic_states(5),
                  rotations(5), "delta core, 2 Householder steps, Z5")

def test_two_step_delta_core_tracks_s3():
    """A permutation of the coordinates 0, 1, 2: the state S = diag(1, 1, 0) P, P the product of the actions'
    transpositions (each one Householder step, k = (e_i - e_j) / sqrt 2, beta 2); y = S u, u = (1, 2, 3)."""
    elements = list(itertools.permutations(range(3)))  # element p: column c of P is e_(p[c])
    actions = [(), ((0, 1),), ((0, 2),), ((1, 2),), ((0, 1), (1, 2)), ((1, 2), (0, 1))]
    u, step = torch.tensor([1.0, 2.0, 3.0]), 17
    def transpositions(w_in, w_out):
        w_in[0:3, :] = u[:, None]  # q = u
        w_in[8, 0], w_in[16, 0], w_in[8 + step + 1, 0], w_in[16 + step + 1, 0] = 1.0, 1.0, 1.0, 1.0  # S = diag(1, 1, 0)
        w_in[24, 1:], w_in[24 + step, 1:] = -SURE, -SURE  # beta 0: no step, unless the action has a transposition
        for a, swaps in enumerate(actions):
            for j, (i, k) in enumerate(swaps):
                w_in[8 + j * step + i, 1 + a], w_in[8 + j * step + k, 1 + a], w_in[24 + j * step, 1 + a] = 1, -1, SURE
        w_out[0, 0] = w_out[1, 1] = 1.0
    def states_of(row):
        p, states = [0, 1, 2], [0]
        for a in row:
            for i, k in actions[a]:
                p[i], p[k] = p[k], p[i]
            states.append(elements.index(tuple(p)))
        return states
    codewords = torch.zeros(6, 8)
    for g, p in enumerate(elements):
        codewords[g, list(p)] = u  # (P u)[p[c]] = u[c]
    codewords[:, 2] = 0  # diag(1, 1, 0) keeps rows 0 and 1
    assert_tracks(hand_set_core("delta", transpositions, beta_max=2, householder=2), 6, states_of, codewords,
                  "delta core, 2 Householder steps, S3")

# -----------------------------------------------------------------------------
# training and DAT: the delay's semantics, resume, numerics, speed

class Crash(Exception):
    pass

def train_until_crash(argv, crash_after):
    """Run train.py, crashing (as a kill would) when the batch after step crash_after is drawn."""
    real, calls = train.sample_batch, []
    def sample_then_crash(*a, **kw):
        calls.append(1)
        if len(calls) > crash_after:
            raise Crash
        return real(*a, **kw)
    train.sample_batch = sample_then_crash
    try:
        run_cli(train.main, argv)
        raise AssertionError("the run did not reach the crash")
    except Crash:
        pass
    finally:
        train.sample_batch = real

def initial_attention(argv_config):
    torch.manual_seed(argv_config["seed"])
    return [p.detach().clone() for p in Model(ModelConfig(**argv_config["model_config"])).attention_parameters()]

def test_dat_freezes_attention_then_resume_is_bit_identical():
    """The DAT rule: attention is bit-identical to its init at the delay (frozen, no weight decay), and a
    run resumed from its checkpoint ends bit-identical to an unbroken one."""
    root = tmpdir()
    argv = TINY + ["--dat", "--delay", "20", "--max_iters", "30", "--weight_decay", "0.5", "--seed", "7"]
    broken, unbroken = os.path.join(root, "broken"), os.path.join(root, "unbroken")
    train_until_crash(argv + ["--out_dir", broken], crash_after=20)  # the checkpoint at step 20 is the last

    ckpt = run_folder.load_checkpoint(os.path.join(broken, "ckpt.pt"))
    assert ckpt["step"] == 20 and ckpt["gate"] == 0.0
    with open(os.path.join(broken, "config.json")) as f:
        config = json.load(f)
    model = evaluation.model_from_checkpoint(ckpt, "cpu")
    init = initial_attention(config)
    after = model.attention_parameters()
    assert all(torch.equal(a, b) for a, b in zip(init, after)), "attention changed during the delay"
    torch.manual_seed(7)
    fresh = Model(ModelConfig(**config["model_config"]))
    assert not torch.equal(fresh.emb.weight, model.emb.weight), "the rest of the model must train"
    assert len(ckpt["optimizer"]["param_groups"]) == 2, "attention is in the optimizer before the delay"

    code, out, err = run_cli(train.main, ["--resume", "--out_dir", broken])
    assert code == 0, err
    code, out, err = run_cli(train.main, argv + ["--out_dir", unbroken])
    assert code == 0, err
    a = run_folder.load_checkpoint(os.path.join(broken, "ckpt.pt"))
    b = run_folder.load_checkpoint(os.path.join(unbroken, "ckpt.pt"))
    assert a["step"] == b["step"] == 30
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), "resume is not bit-identical"
    with open(os.path.join(broken, "log.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [5, 10, 15, 20, 25, 30], f"log after resume: {steps}"
    trained = evaluation.model_from_checkpoint(a, "cpu").attention_parameters()
    assert not all(torch.equal(x, y) for x, y in zip(init, trained)), "attention must train after the delay"
    shutil.rmtree(root)

def test_gate_schedule():
    """The gate: 0 before the delay, the ramp after it, 0 forever under --delay auto until the state is
    learned, 1 under --dat_mode freeze and lr."""
    class A:
        dat, dat_mode, attn_on_step, ramp = True, "gate", 10, 4
    assert [train.gate_at(s, A) for s in (0, 9, 10, 11, 13, 14, 100)] == [0, 0, 0.25, 0.5, 1, 1, 1]
    A.ramp = 0
    assert [train.gate_at(s, A) for s in (9, 10)] == [0, 1]
    A.attn_on_step = None  # --delay auto, before the state is learned
    assert train.gate_at(10**6, A) == 0.0
    A.dat_mode = "freeze"
    assert train.gate_at(0, A) == 1.0
    A.dat = False
    assert train.gate_at(0, A) == 1.0

def test_dat_modes_freeze_and_lr():
    """freeze: gate 1 from the start, attention frozen at init for the delay; lr: attention trains from step 0."""
    root = tmpdir()
    for mode, frozen in (("freeze", True), ("lr", False)):
        run = f"{root}/{mode}"
        argv = TINY + ["--dat", "--dat_mode", mode, "--delay", "20", "--max_iters", "30", "--out_dir", run]
        train_until_crash(argv, 20)
        ckpt = run_folder.load_checkpoint(f"{run}/ckpt.pt")
        with open(f"{run}/config.json") as f:
            init = initial_attention(json.load(f))
        after = evaluation.model_from_checkpoint(ckpt, "cpu").attention_parameters()
        same = all(torch.equal(a, b) for a, b in zip(init, after))
        assert ckpt["gate"] == 1.0 and same == frozen, mode
    shutil.rmtree(root)

def test_bench_times_real_training_in_both_phases():
    """--bench trains (loss falls, attention trains only in its second phase) and reports mean and median."""
    args = options.check_args(options.parser.parse_args(TINY))
    model, _, _, table, data_rng = train.build(args, None)
    optimizer = train.make_optimizer(model, args, with_attention=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench.bench(args, model, model, optimizer, table, data_rng, contextlib.nullcontext(), warm=3, timed=4)
    lines = out.getvalue().splitlines()
    assert "3 untimed then 4 timed steps" in lines[0] and len(lines) == 3, lines
    assert all("ms/step mean" in line and "median" in line for line in lines[1:]), lines
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert "blocks.0.lstm.weight_hh_l0" in changed and "blocks.1.attn.qkv.weight" in changed, changed

def test_frozen_attention_never_holds_a_gradient():
    """During the delay no frozen parameter may hold a .grad (it would pile up and shrink every clipped update)."""
    real, seen = torch.nn.utils.clip_grad_norm_, []
    def clip_and_record(params, max_norm):
        params = list(params)
        seen.append(sum(p.grad is not None for p in params if not p.requires_grad))
        seen[-1] += 100 * sum(p.grad is not None for p in params)  # how many parameters have a gradient at all
        return real(params, max_norm)
    root = tmpdir()
    torch.nn.utils.clip_grad_norm_ = clip_and_record
    try:
        for mode in ("freeze", "gate"):
            seen.clear()
            argv = TINY + ["--dat", "--dat_mode", mode, "--delay", "12", "--max_iters", "20",
                           "--out_dir", f"{root}/{mode}"]
            assert run_cli(train.main, argv)[0] == 0
            model = Model(tiny_config("lstm_attn"))
            n_all, n_attention = len(list(model.parameters())), len(model.attention_parameters())
            assert seen[:12] == [100 * (n_all - n_attention)] * 12, (mode, seen)  # frozen: no .grad at all
            assert seen[12:] == [100 * n_all] * 8, (mode, seen)
    finally:
        torch.nn.utils.clip_grad_norm_ = real
    shutil.rmtree(root)

def test_delay_auto_switches_when_the_state_is_learned():
    """--delay auto switches attention on once the threshold has held for its window, records the
    step, and never switches where the threshold is not met."""
    root = tmpdir()
    for threshold, switch in (("0", 10), ("1", None)):  # always met after 2 intervals; not met by a tiny model
        run = f"{root}/auto{threshold}"
        argv = TINY + ["--dat", "--delay", "auto", "--auto_threshold", threshold, "--auto_window", "2",
                       "--auto_interval", "5",
                       "--max_iters", "20", "--out_dir", run]
        code, out, err = run_cli(train.main, argv)
        assert code == 0, err
        with open(f"{run}/config.json") as f:
            assert json.load(f)["attn_on_step"] == switch
        with open(f"{run}/log.jsonl") as f:
            log = [json.loads(line) for line in f]
        assert [e["gate"] for e in log] == ([0, 0, 1, 1] if switch else [0, 0, 0, 0])
        assert all(0 <= e["train_state_acc"] <= 1 for e in log[:2])
    shutil.rmtree(root)

def test_numerics_unchanged():
    """The same seed gives the same data and the same loss curve as when these numbers were recorded (CPU)."""
    tokens, targets = data.sample_batch(data.machine_of("S3"), 64, 1, 16, 64, 8, torch.Generator().manual_seed(1))
    assert (tokens.sum().item(), targets.sum().item()) == GOLDEN_DATA
    root = tmpdir()
    argv = TINY + ["--max_iters", "20", "--out_dir", root + "/run", "--eval_interval", "20"]
    code, _, err = run_cli(train.main, argv)
    assert code == 0, err
    with open(root + "/run/log.jsonl") as f:
        losses = [json.loads(line)["loss"] for line in f]
    assert all(abs(a - b) < 1e-4 for a, b in zip(losses, GOLDEN_LOSSES)) and len(losses) == 4, losses
    shutil.rmtree(root)

def test_nan_loss_stops_and_says_what_is_kept():
    """A NaN loss stops the run with one line that names the checkpoint kept (or says there is none)."""
    root = tmpdir()
    real = train.lr_at
    for first_nan, says in ((10, "ckpt.pt holds step 10: python train.py --resume"),
                            (0, "no checkpoint was written yet")):
        train.lr_at = lambda step, args: float("nan") if step >= first_nan else real(step, args)
        try:
            code, _, err = run_cli(train.main, TINY + ["--max_iters", "30", "--out_dir", f"{root}/run{first_nan}"])
        finally:
            train.lr_at = real
        assert code == 2 and says in err and len(err.splitlines()) == 1, err
    ckpt = run_folder.load_checkpoint(root + "/run10/ckpt.pt")
    assert ckpt["step"] == 10 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not os.path.exists(root + "/run0/ckpt.pt")
    shutil.rmtree(root)

def test_resume_continues_the_folder_passed_with_the_options_allowed():
    """--resume continues the folder passed (a moved one too), with only the options it may change."""
    root = tmpdir()
    original, moved = f"{root}/original", f"{root}/moved"
    argv = TINY + ["--max_iters", "20", "--log_interval", "3", "--eval_interval", "5"]
    train_until_crash(argv + ["--out_dir", original], crash_after=12)
    assert run_folder.load_checkpoint(f"{original}/ckpt.pt")["step"] == 10, "a checkpoint every --eval_interval"
    os.rename(original, moved)
    train_until_crash(["--resume", "--out_dir", moved], crash_after=2)  # stopped before its next checkpoint
    assert run_folder.load_checkpoint(f"{moved}/ckpt.pt")["config"]["out_dir"] == moved, \
        "the checkpoint follows its folder"
    code, out, err = run_cli(train.main, ["--resume", "--out_dir", moved, "--max_iters", "25"])
    assert code == 2 and "--max_iters 25 differs from the run's 20" in err, f"a resume keeps what it computes: {err}"
    code, out, err = run_cli(train.main, ["--resume", "--out_dir", moved, "--max_iters", "20", "--threads", "1",
                                          "--log_interval", "4", "--seed", "0"])  # the run's own --max_iters, seed
    assert code == 0 and out.startswith(f"{moved}: ") and "resuming at step 10" in out, (out, err)
    assert not os.path.exists(original), "resume recreated the folder the run was made in"
    with open(f"{moved}/config.json") as f:
        config = json.load(f)
    assert (config["max_iters"], config["threads"], config["log_interval"], config["out_dir"]) == (20, 1, 4, moved)
    assert run_folder.load_checkpoint(f"{moved}/ckpt.pt")["step"] == 20
    steps = [e["step"] for e in run_folder.read_log(f"{moved}/log.jsonl")]
    assert steps == [3, 5, 6, 9, 10, 12, 15, 16, 20], steps  # log and eval steps; after step 10: new intervals
    before = tree(root)
    code, out, err = run_cli(train.main, ["--resume", "--out_dir", moved])
    assert code == 0 and "is finished" in out and tree(root) == before, "a finished run is left untouched"
    shutil.rmtree(root)

def test_every_core_trains_in_a_hybrid_under_delay_auto_and_is_scored_with_attention_off_and_a_probe():
    """Every core of model.CORES trains in a hybrid under --delay auto and is scored with --attn_off and
    --probe."""
    root = tmpdir()
    for core in CORES:
        run = f"{root}/{core}"
        argv = PROPERTY_BASE + ["--core", core, "--dat", "--delay", "auto", "--auto_threshold", "0", "--auto_window",
                                "1", "--auto_interval", "1", "--out_dir", run]
        assert run_cli(train.main, argv)[0] == 0, f"a {core} hybrid trains under --delay auto"
        assert json.load(open(f"{run}/config.json"))["attn_on_step"] == 1, f"the {core} hybrid's attention switched on"
        code, out, err = run_cli(evaluation.main, [run, "--n_eval", "8", "--mults", "1,2", "--attn_off", "--probe"])
        assert code == 0 and "attention off" in out and "probe" in out, f"a {core} hybrid is scored: {err}"
        release_locks()
    shutil.rmtree(root)

def test_probe_is_fit_on_a_set_of_its_own_not_the_one_it_scores():
    """eval.py --probe: with as many probe weights as 1x state positions, a least-squares fit on the scored set itself
    would read every state right (it interpolates); fit on its own 1x set, an untrained model's probe is near chance."""
    torch.manual_seed(0)
    config = vars(options.check_args(options.parser.parse_args(TINY)))  # d_model 16: 17 weights per class
    model = Model(options.model_config_of(config)).eval()
    n_eval = 4  # 4 sequences of 4 actions: 16 state positions, fewer than the 17 weights
    task = data.machine_of(config["group"])
    tokens, targets = data.eval_batch(task, config["train_len"], config["num_keys"], config["num_queries"], n_eval,
                                      evaluation.EVAL_SEED)
    is_state = data.target_masks(tokens, targets)[0]
    with torch.no_grad():
        x = model.stream(tokens, max(i for i, kind in enumerate(model.layout) if kind == "rnn") + 1)[is_state]
    x, y = torch.cat([x, torch.ones(len(x), 1)], dim=1), targets[is_state]
    fit = torch.linalg.lstsq(x, F.one_hot(y, len(task.states)).float()).solution
    in_sample = (x @ fit).argmax(-1).eq(y).float().mean()
    assert in_sample == 1.0, f"the check has teeth: a probe fit on the scored set reads it all ({in_sample})"
    scored = evaluation.evaluate(model, config, [1], n_eval, probe=True)[0][0]["probe_state_acc"]
    assert scored < 0.9, f"the probe is fit on a 1x set of its own, not the scored one: {scored:.3f}"

# -----------------------------------------------------------------------------
# the options: every option names the run, changes what it computes or is refused; bad input is one line

# recorded with the first version of the kit, before any speed work (torch 2.13.0, CPU)
GOLDEN_DATA = (40789, -160619)

GOLDEN_LOSSES = [1.923533, 1.927127, 1.806393, 1.770420]

def expect_refusal(main, argv, must_not_exist=None):
    code, _, err = run_cli(main, argv)
    assert code == 2, f"{argv}: exit code {code}, stderr {err!r}"
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), f"{argv}: {err!r}"
    assert must_not_exist is None or not os.path.exists(must_not_exist), f"{argv} wrote {must_not_exist}"

def tree(root):
    """Every path under root with its size and modification time: to check that a refusal wrote nothing."""
    stats = {os.path.join(d, name): os.lstat(os.path.join(d, name)) for d, dirs, files in os.walk(root)
             for name in dirs + files}
    return {path: (stat.st_size, stat.st_mtime_ns) for path, stat in stats.items()}

def bad_input_fixtures(root):
    """A finished tiny run, a transformer run, a plain file, and run folders and checkpoints damaged in every way
    the CLIs must survive."""
    run, transformer = f"{root}/run", f"{root}/transformer"
    assert run_cli(train.main, TINY + ["--max_iters", "10", "--out_dir", run])[0] == 0
    assert run_cli(train.main, TINY + ["--max_iters", "10", "--model", "transformer", "--out_dir", transformer])[0] == 0
    assert run_cli(evaluation.main, [run, "--n_eval", "20"])[0] == 0
    open(f"{root}/afile", "w").write("not a folder")
    good_ckpt = open(f"{run}/ckpt.pt", "rb").read()
    ckpt = torch.load(f"{run}/ckpt.pt", weights_only=True)
    damaged = {"empty": b"", "truncated": good_ckpt[:len(good_ckpt) // 2], "text": b"not a checkpoint",
               "foreign": {"model": {}}, "no_config": {"kit": "dat-kit"},
               "config_lacks_keys": {**ckpt, "config": {"model": "lstm_attn"}},
               "wrong_weights": {**ckpt, "model": {"emb.weight": torch.zeros(3, 3)}},
               "pickle": argparse.Namespace(kit="dat-kit"), "gate_text": {**ckpt, "gate": "x"},
               "gate_nan": {**ckpt, "gate": float("nan")}, "step_float": {**ckpt, "step": 20.0},
               "step_negative": {**ckpt, "step": -5}, "optimizer_empty": {**ckpt, "optimizer": {}},
               "weights_not_tensors": {**ckpt, "model": {k: 0 for k in ckpt["model"]}}}
    for name, content in damaged.items():
        os.makedirs(f"{root}/ckpt_{name}")
        if isinstance(content, bytes):
            open(f"{root}/ckpt_{name}/ckpt.pt", "wb").write(content)
        elif name == "pickle":  # a plain pickle, not torch's zip format
            pickle.dump(content, open(f"{root}/ckpt_{name}/ckpt.pt", "wb"))
        else:
            torch.save(content, f"{root}/ckpt_{name}/ckpt.pt")
    deep = "[" * 100000 + "]" * 100000  # nested past any reader's recursion
    config, records = json.load(open(f"{run}/config.json")), run_folder.read_eval(f"{run}/eval.json")[1]
    nan_off, above_one, huge_mult = ([{**records[0], **change}] + records[1:] for change in (
        {"attn_off": {"state_acc": float("nan")}}, {"state_acc": 1.5}, {"mult": 10**300}))
    for name, file, text in (("config_deep", "config.json", deep), ("eval_deep", "eval.json", deep),
                             ("config_model_config_list", "config.json", json.dumps({**config, "model_config": []})),
                             ("eval_nan_attn_off", "eval.json", json.dumps(nan_off)),
                             ("eval_above_one", "eval.json", json.dumps(above_one)),
                             ("eval_huge_mult", "eval.json", json.dumps(huge_mult)),
                             ("log_deep", "log.jsonl", deep + "\n"),
                             ("config_truncated", "config.json", '{"model": "lstm'),
                             ("config_lacks_keys", "config.json", "{}"),
                             ("eval_truncated", "eval.json", "[{"), ("eval_not_records", "eval.json", '{"a": 1}'),
                             ("log_bad_middle", "log.jsonl", '{"step": 5}\nnot json\n{"step": 10}\n')):
        shutil.copytree(run, f"{root}/{name}")
        open(f"{root}/{name}/{file}", "w").write(text)
    for name, content in (("log_utf8", b'{"step": 5}\n\xff\xfe\n'), ("log_string_step", b'{"step": "10"}\n'),
                          ("log_no_step", b'{"loss": 1.0}\n')):
        shutil.copytree(run, f"{root}/{name}")
        open(f"{root}/{name}/log.jsonl", "wb").write(content)
    shutil.copytree(run, f"{root}/log_folder")
    os.remove(f"{root}/log_folder/log.jsonl")
    os.makedirs(f"{root}/log_folder/log.jsonl")
    shutil.copytree(run, f"{root}/blocked")  # folders whose files cannot be written (a folder in the way)
    for name in ("config.json", "eval.json"):
        os.remove(f"{root}/blocked/{name}")
        os.makedirs(f"{root}/blocked/{name}")
    os.makedirs(f"{root}/empty_folder")
    # run folders whose records disagree: another run's checkpoint, a model_config its options do not make, a newer
    # kit's checkpoint, run records without their config, a link to nothing
    shutil.copytree(run, f"{root}/foreign_ckpt")
    shutil.copy(f"{transformer}/ckpt.pt", f"{root}/foreign_ckpt/ckpt.pt")
    shutil.copytree(run, f"{root}/stale_model")
    config = json.load(open(f"{run}/config.json"))
    json.dump({**config, "model_config": {**config["model_config"], "d_model": 99}},
              open(f"{root}/stale_model/config.json", "w"))
    for name, change in (("newer_model_field", {"model_config": {**ckpt["model_config"], "warp": 1}}),
                         ("newer_option", {"config": {**ckpt["config"], "warp": 1}})):
        shutil.copytree(run, f"{root}/ckpt_{name}")
        torch.save({**ckpt, **change}, f"{root}/ckpt_{name}/ckpt.pt")
    os.makedirs(f"{root}/records_no_config")
    open(f"{root}/records_no_config/log.jsonl", "w").write('{"step": 5}\n')
    os.symlink(f"{root}/nothing_here", f"{root}/dangling")

# one bad input a line: SCRIPT ARGS..., with {root} the fixtures' folder and {run} the finished tiny run
BAD_INPUTS = """
train --model gpt
train --group Q7
train --group S9
train --group Z05
train --group Z1
train --group D2
train --dat --delay 100 --max_iters 100
train --ramp 10
train --delay 100
train --dat_mode freeze
train --dat --delay abc
train --dat --delay -5
train --dat --ramp -1
train --model lstm --dat
train --dat --delay auto --dat_mode freeze
train --train_len 30
train --train_len 0
train --train_len -3
train --n_lstm 0
train --n_lstm -1
train --model transformer --n_attn 0
train --n_attn -1
train --n_attn 0
train --model interleaved --n_lstm 0
train --core nosuch
train --core gru --transitions signed
train --core delta --transitions complex
train --core diagonal --householder 2
train --model transformer --core delta
train --core delta --householder 0
train --core delta --householder 9
train --core delta --beta_max 3
train --lr 0
train --lr -1
train --lr nan
train --lr inf
train --weight_decay -1
train --weight_decay nan
train --grad_clip 0
train --grad_clip -1
train --min_lr_frac -5
train --min_lr_frac 2
train --warmup -1
train --auto_threshold 2
train --auto_window 0
train --threads 0
train --threads -1
train --state_frac 0
train --state_frac 1.5
train --state_frac nan
train --emb_skip nan
train --batch_size -5
train --batch_size 1000000000
train --n_eval_train 1000000000
train --train_len 1000000 --num_keys 3000000
train --d_model 15
train --n_heads 0
train --device xyz
train --lr
train --unknown_flag
train --max_iters 0
train --log_interval 0
train --eval_interval -1
train --num_queries 0
train --pos abc
train --seed x
train --out_dir ''
train --out_dir {root}/afile
train --out_dir {root}/afile/sub
train --out_dir {run}
train --out_dir {root}/blocked_new
resume
resume --out_dir {root}/never
resume --out_dir {run} --lr 0.5
resume --out_dir {run} --batch_size -5
resume --out_dir {run} --threads -1
resume --out_dir {run} --seed 5
resume --out_dir {run} --max_iters 5
resume --out_dir {run} --device xyz
resume --out_dir {run} --bench
resume --out_dir {run} --dry_run
resume --out_dir {run} --dat
resume --out_dir {run} --model lstm
resume --out_dir {root}/blocked --max_iters 20
resume --out_dir {root}/log_utf8 --max_iters 20
resume --out_dir {root}/log_string_step --max_iters 20
resume --out_dir {root}/log_no_step --max_iters 20
resume --out_dir {root}/log_folder --max_iters 20
train --out_dir {root}/log_utf8 --dry_run
train --out_dir {root}/log_folder --dry_run
plot {root}/log_utf8 --out {root}/new/fig.png
plot {root}/log_string_step --out {root}/new/fig.png
train --model lstm --n_attn 3
train --model lstm --pos rope
train --model transformer --mlp
train --model transformer --n_lstm 2
train --auto_window 5 --dat
train --seed -1
train --max_iters 99999999999
train --lr 1e400
train --max_it 100
resume --out_dir {root}/ckpt_empty
resume --out_dir {root}/ckpt_truncated
resume --out_dir {root}/ckpt_text
resume --out_dir {root}/ckpt_foreign
resume --out_dir {root}/ckpt_no_config
resume --out_dir {root}/ckpt_config_lacks_keys
resume --out_dir {root}/ckpt_pickle
eval {root}/never
eval {run} --mults 1,5
eval {run} --mults x
eval {run} --mults 0
eval {run} --mults ''
eval {run} --n_eval 0
eval {run} --by_age --n_eval 1 --mults 1,4
eval {run} --n_eval 1000000000
eval {run} --mistakes -1
eval {run} --threads 0
eval {run} --device xyz
eval {root}/transformer --attn_off
eval {root}/transformer --probe
eval {run} --unknown
eval {root}/blocked
eval
eval {root}/ckpt_empty
eval {root}/ckpt_truncated
eval {root}/ckpt_text
eval {root}/ckpt_foreign
eval {root}/ckpt_no_config
eval {root}/ckpt_config_lacks_keys
eval {root}/ckpt_wrong_weights
eval {root}/ckpt_pickle
plot {root}/never --out {root}/new/fig.png
plot {root}/empty_folder --out {root}/new/fig.png
plot {run} --out {root}/fig.xyz
plot {run} --out {root}/noext
plot {run} --summary {root}/table.txt --out {root}/new/fig.png
atlas {run} --out {root}/at.md
atlas {run} --out {root}/at --schedules plain,nosuch
atlas {run} --out {root}/at --schedules plain,,dat5000
atlas {run}
plot {run} --sweep group --out {root}/new/fig.png
atlas {run} --out {root}/at --sweep group
atlas {run} --out {root}/at --sweep delay
plot {run} --unknown
attention {run} {run} --out {root}/new/fig.png
attention {root}/never --out {root}/new/fig.png
attention {root}/ckpt_empty --out {root}/new/fig.png
attention {run} --out {root}/x.xyz
plot {root}/config_truncated --out {root}/new/fig.png
plot {root}/config_lacks_keys --out {root}/new/fig.png
plot {root}/eval_truncated --out {root}/new/fig.png
plot {root}/eval_not_records --out {root}/new/fig.png
plot {root}/log_bad_middle --out {root}/new/fig.png
plot {root}/config_deep --out {root}/new/fig.png
plot {root}/eval_deep --out {root}/new/fig.png
plot {root}/log_deep --out {root}/new/fig.png
plot {root}/config_model_config_list --out {root}/new/fig.png
plot {root}/eval_nan_attn_off --out {root}/new/fig.png
plot {root}/eval_above_one --out {root}/new/fig.png
plot {root}/eval_huge_mult --out {root}/new/fig.png
train --out_dir {root}/config_deep --dry_run
eval {root}/ckpt_gate_text
eval {root}/ckpt_gate_nan
eval {root}/ckpt_step_float
eval {root}/ckpt_step_negative
eval {root}/ckpt_weights_not_tensors
resume --out_dir {root}/ckpt_optimizer_empty
atlas {run} --out {run}/config
plot {run} --out {run}/fig.png
plot {run} --summary {run}/t.md --out {root}/new/fig.png
data --group Q7
data --group Z05
data --group D33
data --n 0
data --num -1
data --num_queries 0
data --num_keys 0
data --n 70
data --num 1000000000
data --save {root}/noext
data --save {root}/afile/x.npz
data --n abc
data --unknown
train --emb_skip -1e308
train --max_iters 20 --out_dir {run}
train --max_iters 10 --out_dir {run}
train --max_iters 10 --out_dir {root}/records_no_config
train --out_dir {root}/dangling
train --lr 1e300
train --dat --delay 20 --ramp 1
train --model interleaved
resume --out_dir {root}/foreign_ckpt
resume --out_dir {root}/stale_model
resume --out_dir {root}/ckpt_newer_option
resume --out_dir {root}/nowhere
eval {root}/foreign_ckpt
eval {root}/stale_model
eval {root}/ckpt_newer_model_field
eval {root}/nowhere
plot {root}/stale_model --out {root}/new/fig.png
plot {root}/records_no_config --out {root}/new/fig.png
"""

def bad_inputs(root):
    """(script module, argv) for every line of BAD_INPUTS; new runs get the tiny setting and a folder to avoid."""
    scripts = {"train": train, "resume": train, "eval": evaluation, "plot": plot, "atlas": atlas,
               "attention": attention, "data": data}
    cases = []
    for line in BAD_INPUTS.strip().splitlines():
        name, *argv = shlex.split(line.format(root=root, run=f"{root}/run"))
        argv = {"train": TINY + argv + ["--out_root", f"{root}/never"], "resume": ["--resume"] + argv,
                "data": ["--save", f"{root}/new/x.npz"] + argv}.get(name, argv)
        cases.append((scripts[name], argv))
    if not torch.cuda.is_available():
        cases += [(train, TINY + ["--device", "cuda", "--out_root", f"{root}/never"]),
                  (evaluation, [f"{root}/run", "--device", "cuda"])]
    return cases

def test_bad_inputs_are_refused():
    """Each bad input: exit code 2, exactly one stderr line starting error:, no traceback, nothing written."""
    root = tmpdir()
    bad_input_fixtures(root)
    os.makedirs(f"{root}/blocked_new/config.json")  # an out_dir whose config.json cannot be written
    cases = bad_inputs(root)
    assert len(cases) >= 100, len(cases)
    for script, argv in cases:
        before = tree(root)
        code, out, err = run_cli(script.main, argv)
        assert code == 2, f"{script.__name__} {argv}: exit code {code}, stderr {err!r}"
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), f"{script.__name__} {argv}: {err!r}"
        assert tree(root) == before, f"{script.__name__} {argv} wrote {set(tree(root)) ^ set(before) or 'into a file'}"
    shutil.rmtree(root)

def test_help_gives_every_default():
    """--help exits 0 and ends each option's line with its default, where it has one (never "default: None")."""
    for script, default in ((train, "8000"), (evaluation, "1,2,3,4"), (atlas, "plain,dat5000"), (data, "S3")):
        code, out, err = run_cli(script.main, ["--help"])
        text = " ".join(out.split())  # undo the line wrapping
        assert code == 0 and f"(default: {default})" in text and "default: None" not in text, (script.__name__, err)
    entries = run_cli(train.main, ["--help"])[1].split("\n  -")[1:]  # one per option: a line "  --name ..."
    entries = {"-" + e.split()[0]: "-" + " ".join(e.split()) for e in entries}
    for action in options.parser._actions:
        if action.dest != "help" and not any(action.default is v for v in (None, False)):
            assert entries[f"--{action.dest}"].endswith(f"(default: {action.default})"), entries[f"--{action.dest}"]

def test_output_into_a_closed_pipe_ends_quietly():
    """`python train.py --dry_run | head -0`: exit code 1 and an empty stderr, not a traceback per print."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the scripts start, so their first write finds no reader
    root = tmpdir()
    scripts = [subprocess.Popen([sys.executable, *argv], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)))
               for argv in (["train.py", "--dry_run", "--out_root", root], ["data.py", "--group", "Z5"])]
    os.close(write_end)
    for script in scripts:
        err = script.stderr.read()
        assert script.wait() == 1 and err == "", (script.args, script.returncode, err)
    shutil.rmtree(root)

def test_compile_without_a_compiler_and_unbounded_numbers_are_one_clear_line():
    """--compile without a C++ compiler, and an infinite number for an option, are one error line."""
    real = shutil.which
    shutil.which = lambda name: None  # a machine without a C++ compiler
    try:
        code, _, err = run_cli(train.main, TINY + ["--compile", "--out_root", "/nonexistent/never"])
    finally:
        shutil.which = real
    assert code == 2 and "C++ compiler" in err and len(err.splitlines()) == 1, f"--compile with no compiler: {err!r}"
    try:
        runs.number(float)("inf")
        raise AssertionError("an infinite number is refused")
    except argparse.ArgumentTypeError as e:
        assert str(e) == "must be a finite number, not inf", f"no bounds to name: {e}"

def dry_run(argv):
    code, out, err = run_cli(train.main, argv + ["--dry_run"])
    assert code == 0, err
    return out.split()

def other_values(action, value):
    """Up to two values of an option other than value, within its declared bounds: its other choices, the other
    truth value, or changed numbers (a text option gets a changed text)."""
    if action.choices:
        return [c for c in action.choices if c != value]
    if isinstance(action.default, bool):
        return [not value]
    kind = getattr(action.type, "kind", None)
    if kind is None:
        return [f"{value}x"]
    candidates = [value + 1, value * 2] if kind is int else [value * 2 + 0.5, value + 0.25, value / 2]
    return [v for v in dict.fromkeys(candidates) if action.type.low <= v <= action.type.high and v != value][:2]

def test_every_identifying_option_changes_the_run_name():
    """For each option of train.py but those in options.NOT_IDENTITY (a new one included, automatically), some other
    value gives another run name, in a plain, a DAT or a --delay auto run; a new option, model or group (the forks
    a student makes) is named without touching naming code."""
    bases = [vars(options.check_args(options.parser.parse_args(argv))) for argv in ([], ["--dat"], ["--dat", "--delay",
                                                                                                  "auto"])]
    for action in options.parser._actions:
        if action.dest in options.NOT_IDENTITY:
            continue
        assert action.dest in options.IDENTITY, f"--{action.dest} is neither identifying nor in NOT_IDENTITY"
        renamed = [options.run_name(base) != options.run_name({**base, action.dest: other})
                   for base in bases for other in other_values(action, base[action.dest])]
        assert any(renamed), f"--{action.dest}: no other value of it changes the run name"
    base = bases[0]
    for fork in ({"model": "gru_attn"}, {"group": "Q8"}):  # a new model or group: its name is in the run name
        assert options.run_name({**base, **fork}) != options.run_name(base), f"fork {fork} is not named"
    options.IDENTITY["rnn"] = "lstm"  # a new option --rnn, as a fork adds it to options.parser
    try:
        assert options.run_name({**base, "rnn": "gru"}) == "lstm_attn-S3-rnngru-plain", "a new option is named"
        assert options.run_name({**base, "rnn": "lstm"}) == "lstm_attn-S3-plain", "its default is left out"
    finally:
        del options.IDENTITY["rnn"]

def test_names_are_exact_for_every_numeric_option():
    """A number in a run name parses back to the option's value, for every numeric option: values one float step or
    one integer apart get two names, -0 and 0 one, and a round value keeps its short form (1.0 is 1)."""
    numeric = [a for a in options.parser._actions if getattr(a.type, "kind", None) and a.dest in options.IDENTITY]
    assert numeric, "the numeric identifying options are found"
    for action in numeric:
        name, kind = action.dest, action.type.kind
        if kind is float:
            value = 0.001234567
            assert options.tag(name, value) != options.tag(name, np.nextafter(value, 1.0)), f"--{name}: one float step"
            assert options.tag(name, -0.0) == options.tag(name, 0.0), f"--{name}: -0 is 0"
            assert options.tag(name, 1.0).endswith("1") and options.tag(name, 0.003).endswith("0.003"), \
                f"--{name}: round values keep their short form"
        else:
            assert options.tag(name, 1234567) != options.tag(name, 1234568), f"--{name}: one integer apart"

# a tiny base where every option can show its effect in a few steps; its schedules: plain, DAT, --delay auto
PROPERTY_BASE = ["--train_len", "2", "--num_keys", "8", "--num_queries", "1", "--d_model", "8", "--batch_size", "4",
                 "--max_iters", "4", "--warmup", "2", "--grad_clip", "0.01", "--log_interval", "1",
                 "--eval_interval", "4", "--n_eval_train", "1", "--threads", "1", "--device", "cpu"]

PROPERTY_SCHEDULES = {"plain": [], "dat": ["--dat", "--delay", "2"],
                      "auto": ["--dat", "--delay", "auto", "--auto_threshold", "0", "--auto_window", "1",
                               "--auto_interval", "1"]}

BASE_OF = {"interleaved": ["--n_lstm", "2"]}  # with 1 LSTM layer an interleaved model is an lstm_attn (refused)

ROUNDING = {"threads": 1e-5, "compile": 1e-5}  # options that may change a run's weights by float rounding alone

COMPUTE_NOTHING = ("help", "dry_run")  # options that start no run

def with_value(argv, action, value):
    """argv with the option set to value (a switch added or taken out)."""
    flag = action.option_strings[0]
    argv = [a for a in argv if a != flag] if isinstance(action.default, bool) else argv
    return argv + ([flag] * bool(value) if isinstance(action.default, bool) else [flag, str(value)])

def computed(argv, folder):
    """What a tiny run computes, through train.py's own main: (its options as check_args resolves them, the final
    weights and gate), or None if the options are refused (exit code 2 and one error line)."""
    code, out, err = run_cli(train.main, argv + ["--out_dir", folder])
    release_locks()
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), f"{argv}: refused in one line: {err!r}"
        return None
    assert code == 0, f"{argv}: exit code {code}: {err}"
    # the file this test just had written: read without the (slower) checks of weights_only for foreign files
    ckpt = torch.load(os.path.join(folder, "ckpt.pt"), weights_only=False)
    resolved = {k: v for k, v in ckpt["config"].items() if k not in ("out_dir", "attn_on_step")}
    return resolved, ckpt["model"], ckpt["gate"]

def differs(a, b, tolerance=0.0):
    weights = a[1].keys() != b[1].keys() or any(
        a[1][k].shape != b[1][k].shape or not torch.allclose(a[1][k], b[1][k], rtol=0, atol=tolerance) for k in a[1])
    return weights or a[2] != b[2]

def assert_other_values_compute_or_are_refused(base, reference, names, how_many, folder):
    """folder: the base run's. Each of the first how_many other values of each option in names, set on base: it
    changes what the run computes (and its name), or is refused in one line, or check_args resolves it to the base's
    options; an option in NOT_IDENTITY or SAFE_ON_RESUME changes nothing (ROUNDING: up to float rounding)."""
    for action in (a for a in options.parser._actions if a.dest in names):
        name = action.dest
        resolved = options.check_args(options.parser.parse_args(base))
        values = other_values(action, reference[0].get(name, getattr(resolved, name)))
        for value in values[:how_many]:
            # --resume continues the base's own folder (finished: it must leave the run as it is)
            got = computed(with_value(base, action, value), folder if name == "resume" else f"{folder}-{name}-{value}")
            change = f"{base[len(PROPERTY_BASE):]}: --{name} {value}"
            if name in options.NOT_IDENTITY + options.SAFE_ON_RESUME:  # neither may change what a run computes
                assert got is not None and not differs(got, reference, ROUNDING.get(name, 0.0)), \
                    f"{change} changes what the run computes, but --{name} is in NOT_IDENTITY or SAFE_ON_RESUME"
            elif got is not None and got[0] != reference[0]:
                assert differs(got, reference), f"{change} computes the same as the base: refuse it " \
                    "for this model or core (UNUSED_BY) or make it reach the model"
                assert options.run_name(got[0]) != options.run_name(reference[0]), f"{change}: same name"

def tried_here(name, model, schedule):
    """Whether the property test tries option name from this base: not the seed or what starts no run; what must
    change nothing once, from lstm_attn under --delay auto, where the most can change; a hybrid's schedule options
    from its DAT and --delay auto bases, its other options from plain."""
    if name in ("seed",) + COMPUTE_NOTHING:
        return False
    if name in options.NOT_IDENTITY:
        return (model, schedule) == ("lstm_attn", "auto")
    return model not in HYBRIDS or (name in options.SCHEDULE) == (schedule != "plain")

def test_every_option_changes_what_a_run_computes_or_is_refused():
    """For every model and every option of train.py (a new one included, automatically): a value of an identifying
    option other than the base's changes the weights a tiny deterministic run ends with, or is refused for that
    model in one line, or is an alias that check_args resolves to the base's options; an option in NOT_IDENTITY or in
    SAFE_ON_RESUME (what --resume may change) changes nothing (ROUNDING: up to float rounding). The seed alone is
    exempt. The base model gets every other
    value, the other models the first; the schedule's options are tried from the DAT and --delay auto bases; each
    core's sub-options (options.CORE_OPTIONS) every other value from an lstm with that core."""
    root, real_compile = tmpdir(), torch.compile
    torch.compile = functools.partial(real_compile, backend="eager")  # the inductor takes minutes and a compiler
    try:
        for model in MODELS:
            schedules = PROPERTY_SCHEDULES if model in HYBRIDS else {"plain": []}
            for schedule, flags in schedules.items():
                base = PROPERTY_BASE + ["--model", model] + BASE_OF.get(model, []) + flags
                reference = computed(base, f"{root}/{model}-{schedule}")
                assert reference is not None, f"the base run {base} is refused"
                names = [a.dest for a in options.parser._actions if tried_here(a.dest, model, schedule)]
                assert_other_values_compute_or_are_refused(base, reference, names, None if model == "lstm_attn" else 1,
                                                           f"{root}/{model}-{schedule}")
        model_options = [f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("model", "core")]
        for core in CORES:  # every core, from an lstm of that core: the options that reach the model
            base = PROPERTY_BASE + ["--model", "lstm", "--core", core]
            reference = computed(base, f"{root}/{core}")
            assert reference is not None, f"the base run {base} is refused"
            assert_other_values_compute_or_are_refused(base, reference, model_options, 1, f"{root}/{core}")
    finally:
        torch.compile = real_compile
    shutil.rmtree(root)

def test_every_model_config_field_is_an_option_or_derived():
    """Each ModelConfig field is an option (options.py) of the same name (it reaches the model with no second edit)
    or one of options.DERIVED, never both; and an option's default is its field's default."""
    defaults = {a.dest: a.default for a in options.parser._actions}
    for field in dataclasses.fields(ModelConfig):
        assert (field.name in defaults) != (field.name in options.DERIVED), \
            f"ModelConfig.{field.name}: an option of the same name or a derived field (options.DERIVED), not both"
        assert field.name not in options.NOT_IDENTITY, f"--{field.name} reaches the model: it identifies the run"
        assert defaults.get(field.name) in (None, field.default), f"--{field.name}'s default is not its field's"
    config = vars(options.check_args(options.parser.parse_args(["--model", "transformer", "--d_model", "32"])))
    assert options.model_config_of(config) == ModelConfig(model="transformer", d_model=32, pos="rope"), \
        "model_config_of gives each field its option's value"

# -----------------------------------------------------------------------------
# run folders and faults: names, states, a failed write, a held folder, a signal, tampered records

def test_a_write_that_fails_midway_leaves_no_debris():
    """torch.save raising midway (as on a full disk): one error line, no ckpt.pt.tmp, the old checkpoint intact."""
    root = tmpdir()
    run = f"{root}/run"
    argv = TINY + ["--max_iters", "20", "--out_dir", run]
    train_until_crash(argv, crash_after=15)  # a good checkpoint at step 10
    good = open(f"{run}/ckpt.pt", "rb").read()
    real = torch.save
    def save_half_then_fail(obj, path):
        open(path, "wb").write(b"half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 123")
    torch.save = save_half_then_fail
    try:
        code, _, err = run_cli(train.main, ["--resume", "--out_dir", run])
    finally:
        torch.save = real
    assert code == 2 and err.startswith(f"error: cannot write {run}/ckpt.pt: ") and len(err.splitlines()) == 1, err
    assert not os.path.exists(f"{run}/ckpt.pt.tmp"), "the partial temporary file is removed"
    assert open(f"{run}/ckpt.pt", "rb").read() == good, "the previous checkpoint survives"
    assert run_cli(train.main, ["--resume", "--out_dir", run])[0] == 0, "and the run resumes from it"
    shutil.rmtree(root)

def test_a_folder_held_by_another_process_is_refused_and_untouched():
    """A run folder another process holds is refused by the trainer and evaluator (exit code IN_USE)
    and left as it was."""
    root = tmpdir()
    run = f"{root}/run"
    assert run_cli(train.main, TINY + ["--max_iters", "10", "--out_dir", run])[0] == 0
    release_locks()  # this process trained it; now another one holds it
    with held_elsewhere(run):
        before = tree(root)
        for script, argv in ((train, ["--resume", "--out_dir", run, "--max_iters", "20"]), (evaluation, [run])):
            code, _, err = run_cli(script.main, argv)
            assert code == runs.IN_USE and err == f"error: {run} is in use by another process\n", (code, err)
        assert tree(root) == before, "the held folder is untouched"
    shutil.rmtree(root)

def test_a_signal_during_training_stops_with_one_line_and_loses_nothing():
    """SIGTERM during training: exit code 143, one line saying where to resume, and the checkpoint kept."""
    root = tmpdir()
    run = f"{root}/run"
    argv = [sys.executable, "train.py", *TINY, "--max_iters", "100000", "--eval_interval", "5", "--threads", "1",
            "--out_dir", run]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while "token acc" not in child.stdout.readline():  # the first checkpoint is written
        assert child.poll() is None, child.stderr.read()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143 and len(err.splitlines()) == 1, (child.returncode, err)
    assert err.startswith("error: interrupted at step ") and f"--resume --out_dir {run}" in err, err
    assert run_folder.run_state(run) == "interrupted", "the folder says it is interrupted"
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")], "no temporary file is left"
    shutil.rmtree(root)

def test_a_checkpoint_older_than_a_model_config_field_loads_with_its_default():
    """A checkpoint written before a model_config field or an option existed is scored and resumed with
    its default."""
    root = tmpdir()
    run = f"{root}/run"
    train_until_crash(TINY + ["--max_iters", "20", "--out_dir", run], crash_after=15)
    ckpt = torch.load(f"{run}/ckpt.pt", weights_only=True)
    del ckpt["model_config"]["emb_skip"], ckpt["config"]["auto_window"]  # written before these fields existed
    torch.save(ckpt, f"{run}/ckpt.pt")
    code, _, err = run_cli(evaluation.main, [run, "--n_eval", "20"])
    assert code == 0, f"eval of an older checkpoint: {err}"
    code, _, err = run_cli(train.main, ["--resume", "--out_dir", run])
    assert code == 0, f"resume of an older checkpoint: {err}"
    assert json.load(open(f"{run}/config.json"))["auto_window"] == 3, "the missing option takes its default"
    shutil.rmtree(root)

def test_a_run_folder_moved_or_replaced_mid_run_is_never_written_again():
    """A trainer whose folder is renamed, or renamed and replaced by a new one, while it trains stops with one line at
    its next log line: it never makes the folder anew nor writes into the new one; the moved folder resumes."""
    root = tmpdir()
    for replaced in (False, True):
        run, moved = f"{root}/run{replaced}", f"{root}/moved{replaced}"
        real, calls = train.sample_batch, []
        def sample_then_move(*a, **kw):
            calls.append(1)
            if len(calls) == 13:  # after the checkpoint at step 10
                os.rename(run, moved)
                if replaced:
                    os.makedirs(run)
            return real(*a, **kw)
        train.sample_batch = sample_then_move
        try:
            code, _, err = run_cli(train.main, TINY + ["--max_iters", "20", "--out_dir", run])
        finally:
            train.sample_batch = real
        release_locks()
        assert code == 2 and "no longer the folder this run holds" in err and len(err.splitlines()) == 1, \
            f"a {'replaced' if replaced else 'moved'} folder stops the trainer in one line: {err!r}"
        assert os.listdir(run) == [] if replaced else not os.path.exists(run), "nothing is written at the old path"
        assert run_cli(train.main, ["--resume", "--out_dir", moved])[0] == 0, "the moved folder resumes"
    shutil.rmtree(root)

def test_a_reader_racing_a_starting_trainer_leaves_its_folder_out():
    """A folder with config.json and no log.jsonl yet, held by a trainer (it is writing its first records), is left
    out by plot.py's readers with a warning; the same folder held by no one is damaged: one error line."""
    root = tmpdir()
    fake_run(root, "a-s0", 0, "none", 0.9)
    os.makedirs(f"{root}/b-s1")
    shutil.copy(f"{root}/a-s0/config.json", f"{root}/b-s1/config.json")
    with held_elsewhere(f"{root}/b-s1"):  # the trainer holds its folder
        code, _, err = run_cli(plot.main, [root, "--out", f"{root}/fig.png"])
    assert code == 0 and "b-s1: a run starting" in err, f"a starting run is left out: {code} {err!r}"
    code, _, err = run_cli(plot.main, [root, "--out", f"{root}/fig.png"])
    assert code == 2 and "b-s1: a run folder without log.jsonl" in err, f"unheld, it is damaged: {err!r}"
    shutil.rmtree(root)

def test_an_unwritable_home_leaves_no_matplotlib_folder_behind():
    """Where HOME is not writable matplotlib makes a folder in the temporary folder; the scripts' fast exit removes it
    (one would be left per figure)."""
    root = tmpdir()
    env = {**os.environ, "HOME": "/proc", "TMPDIR": root}
    env.pop("MPLCONFIGDIR", None)
    assert subprocess.run([sys.executable, "plot.py", "--help"], env=env, capture_output=True).returncode == 0, "help"
    assert os.listdir(root) == [], f"left behind: {os.listdir(root)}"
    shutil.rmtree(root)

def test_a_name_the_output_cannot_print_is_one_line_before_anything_is_written():
    """Under an output encoding that cannot print a run folder's or a figure's name (PYTHONIOENCODING=ascii), train.py
    and plot.py stop with one error line before they write anything."""
    root = tmpdir()
    name = f"{root}/\u00e9"  # a folder name the ascii encoding cannot print
    for script, argv in ((train, [*TINY, "--out_dir", name]), (plot, [root, "--out", f"{name}.png"])):
        ascii_out, err = io.TextIOWrapper(io.BytesIO(), encoding="ascii"), io.StringIO()
        with contextlib.redirect_stdout(ascii_out), contextlib.redirect_stderr(err):
            try:
                script.main(argv)
                code = 0
            except SystemExit as e:
                code = e.code
        assert code == 2 and err.getvalue().startswith("error: ") and len(err.getvalue().splitlines()) == 1 \
            and "encoding (ascii)" in err.getvalue(), f"{script.__name__}: {err.getvalue()!r}"
        assert os.listdir(root) == [], f"{script.__name__} wrote nothing: {os.listdir(root)}"
    shutil.rmtree(root)

def test_the_log_is_appended_not_rewritten():
    """log.jsonl is written whole once when a run starts or resumes, then one line is appended per log line."""
    root = tmpdir()
    real, whole_writes = runs.write_file, []
    def record(path, write, new_folder=True):
        whole_writes.append(os.path.basename(path))
        return real(path, write)
    runs.write_file = record
    try:
        assert run_cli(train.main, TINY + ["--max_iters", "30", "--out_dir", f"{root}/run"])[0] == 0
    finally:
        runs.write_file = real
    assert whole_writes.count("log.jsonl") == 1 and len(run_folder.read_log(f"{root}/run/log.jsonl")) == 6, whole_writes
    shutil.rmtree(root)

def test_a_cut_log_line_is_cut_off_once_by_the_holder_and_left_alone_by_readers():
    """A log line a full disk cut short: readers (who may see a live trainer's line half written) skip it silently
    and write nothing; the process that holds the folder cuts it off once with one warning, and the log stays JSON
    lines through the resumed run (no glued lines)."""
    root = tmpdir()
    run, argv = f"{root}/run", TINY + ["--max_iters", "20"]
    train_until_crash(argv + ["--out_dir", run], crash_after=15)  # log lines to step 15, the checkpoint at 10
    with open(f"{run}/log.jsonl", "a") as f:
        f.write('{"step": 20, "loss": 1.9, "ms_per_step": 4.28')
    before = open(f"{run}/log.jsonl").read()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        steps = [e["step"] for e in run_folder.read_log(f"{run}/log.jsonl")]
        assert dry_run(argv + ["--out_dir", run])[1] == "interrupted"
    assert steps == [5, 10, 15] and err.getvalue() == "" and open(f"{run}/log.jsonl").read() == before, \
        "a reader skips the unfinished line silently and leaves the file alone"
    code, out, err = run_cli(train.main, ["--resume", "--out_dir", run])
    assert code == 0 and err.count("warning") == 1, f"the holder cuts the line off with one warning: {err!r}"
    lines = open(f"{run}/log.jsonl").read().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [5, 10, 15, 20], f"the log after the resume: {lines}"
    shutil.rmtree(root)

def test_two_writers_of_one_file_never_share_a_temporary_file():
    """Writers of one output file each write a temporary file of their own, so the file is always one writer's whole
    text and nothing is left behind (20 rounds of two threads)."""
    root = tmpdir()
    path, texts = f"{root}/fig.txt", ["a" * 100_000, "b" * 100_000]
    for _ in range(20):
        threads = [threading.Thread(target=runs.write_text, args=(path, text)) for text in texts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert open(path).read() in texts and os.listdir(root) == ["fig.txt"], "one whole text, no debris"
    shutil.rmtree(root)

def test_eval_json_says_how_it_was_scored():
    """eval.json's "scored" holds the eval seed, the checkpoint's step and every option of eval.py but those in
    eval.UNSCORED (a new one too), as given; an option in UNSCORED changes no score, or is refused; eval.py removes a
    report of an earlier scoring (eval.txt); plot.py reads how a run was scored from it."""
    root, threads = tmpdir(), torch.get_num_threads()
    run, base = f"{root}/run", [f"{root}/run", "--n_eval", "4", "--mults", "1,2"]
    assert run_cli(train.main, PROPERTY_BASE + ["--out_dir", run])[0] == 0, "a run to score"
    def score(argv):
        with open(f"{run}/eval.txt", "w") as f:
            f.write("the report of an earlier scoring")
        code, _, err = run_cli(evaluation.main, argv)
        assert code in (0, 2) and (code == 0) != os.path.exists(f"{run}/eval.txt"), f"{argv}: eval.txt: {err}"
        return run_folder.read_eval(f"{run}/eval.json") if code == 0 else None
    try:
        (scored, records), recorded = score(base), set()
        assert (scored["eval_seed"], scored["step"]) == (evaluation.EVAL_SEED, 4), f"seed and step: {scored}"
        options = [a for a in evaluation.parser._actions if a.dest not in ("help", "run_dir")]
        for action in options:
            value = getattr(evaluation.parser.parse_args(base), action.dest)
            others = {"mults": ["1,3"], "threads": [1]}.get(action.dest) or other_values(action, value)
            for other in others[:2]:
                got = score(with_value(base, action, other))
                if action.dest in evaluation.UNSCORED:
                    assert got is None or got[1] == records, f"--{action.dest} {other} changes a score: not UNSCORED"
                elif got is not None and got[0].get(action.dest) != scored[action.dest]:
                    recorded.add(action.dest)
        scored_options = {a.dest for a in options} - set(evaluation.UNSCORED)
        assert recorded == scored_options, f"options that change a score, not eval.json: {scored_options - recorded}"
        assert score(base)[0] == scored and plot.load_runs([run])[0]["scored"] == scored, "plot.py reads it"
    finally:
        torch.set_num_threads(threads)
        release_locks()
    shutil.rmtree(root)

def test_readers_refuse_copies_and_non_finite_accuracies():
    """Readers refuse a copied run folder (one run counted twice) and an eval.json with a NaN accuracy."""
    root = tmpdir()
    fake_run(root, "a-s0", 0, "none", 0.9)
    shutil.copytree(f"{root}/a-s0", f"{root}/copy-s0")  # the same config and seed twice would count as two seeds
    code, _, err = run_cli(atlas.main, [root, "--out", f"{root}/at", "--schedules", "plain"])
    assert code == 2 and "a-s0" in err and "copy-s0" in err, f"a copied run folder: {err}"
    shutil.rmtree(f"{root}/copy-s0")
    with open(f"{root}/a-s0/eval.json", "w") as f:
        f.write('[{"n": 24, "mult": 3, "state_acc": NaN, "recall_acc": 1, "token_acc": 1, "seq_acc": 1}]')
    code, _, err = run_cli(atlas.main, [root, "--out", f"{root}/at", "--schedules", "plain"])
    assert code == 2 and "a-s0" in err and "a number from 0 to 1" in err, f"a NaN accuracy: {err}"
    with open(f"{root}/a-s0/eval.json", "w") as f:
        f.write('[{"n": 8, "mult": 1, "state_acc": 1, "recall_acc": 1, "token_acc": 1, "seq_acc": 1}]')
    code, _, err = run_cli(atlas.main, [root, "--out", f"{root}/at", "--schedules", "plain"])
    assert code == 2 and "no 3x record" in err and len(err.splitlines()) == 1, f"no 3x record: {err}"
    shutil.rmtree(root)

def test_run_folder_names_keep_their_form():
    """Run names keep their form: the README's example, bookkeeping options left out, a model's own
    default position encoding left out, a CUDA run named apart."""
    root = tmpdir()
    name = dry_run(["--pos", "rope", "--train_len", "16", "--dat", "--seed", "3", "--out_root", root])[0]
    assert name == os.path.join(root, "lstm_attn-S3-rope-len16-dat5000-s3"), f"the README's example name: {name}"
    plain = dry_run(["--out_root", root])[0]
    same = dry_run(["--threads", "1", "--device", "cpu", "--log_interval", "7", "--out_root", root])[0]
    assert same == plain, "options that do not identify a run (threads, log interval, cpu) leave the name alone"
    assert dry_run(["--model", "transformer", "--pos", "rope"])[0] == os.path.join("out", "transformer-S3-plain-s0"), \
        "a model's own default position encoding is left out of the name"
    cpu_run = vars(options.check_args(options.parser.parse_args(["--dat"])))  # a CUDA run (bf16) is another run
    assert options.run_name({**cpu_run, "device": "cuda"}) == "lstm_attn-S3-cuda-dat5000", "a CUDA run is named so"
    assert dry_run(["--core", "gru"])[0] == os.path.join("out", "lstm_attn-S3-coregru-plain-s0"), \
        "a core other than the LSTM is named; the LSTM, the default, is left out"
    auto = vars(options.check_args(options.parser.parse_args(["--dat", "--delay", "auto", "--auto_window", "5"])))
    assert options.run_name(auto) == "lstm_attn-S3-datauto-win5", "--delay auto's options follow the schedule"
    assert not os.listdir(root), "--dry_run wrote something"
    shutil.rmtree(root)

def test_run_state_decides_skip_and_resume():
    """A folder's state (new, interrupted, trained, finished) decides what train.py and the grid do with it;
    a line a crash cut short is cut off on resume."""
    root = tmpdir()
    run, argv = os.path.join(root, "run"), TINY + ["--max_iters", "20"]
    assert dry_run(argv + ["--out_dir", run])[1] == "new"
    train_until_crash(argv + ["--out_dir", run], crash_after=15)  # checkpoint at step 10
    assert dry_run(argv + ["--out_dir", run])[1] == "interrupted"
    with open(os.path.join(run, "log.jsonl"), "a") as f:
        f.write('{"step": 20, "lo')  # a line cut short by a crash
    code, out, err = run_cli(train.main, ["--resume", "--out_dir", run])
    assert code == 0 and "resuming at step 10" in out and "unfinished last line" in err, (out, err)
    assert dry_run(argv + ["--out_dir", run])[1] == "trained"
    assert run_cli(evaluation.main, [run, "--n_eval", "20"])[0] == 0
    assert dry_run(argv + ["--out_dir", run])[1] == "finished"
    os.remove(os.path.join(run, "ckpt.pt"))  # a committed run folder: no checkpoint, still finished
    assert dry_run(argv + ["--out_dir", run])[1] == "finished"
    shutil.rmtree(root)

def test_records_in_order_the_checkpoint_rules_and_a_scored_folder_is_never_emptied():
    """The checkpoint's step, not the log's, decides a resumable folder's state; a log's steps strictly increase; a
    folder with eval.json and no checkpoint (every committed run) stays finished when its log loses its last newline,
    and nothing in it is written or deleted."""
    root = tmpdir()
    run, argv = os.path.join(root, "run"), TINY + ["--max_iters", "20"]
    train_until_crash(argv + ["--out_dir", run], crash_after=15)  # checkpoint at step 10
    log = open(f"{run}/log.jsonl").read()
    with open(f"{run}/log.jsonl", "a") as f:
        f.write('{"step": 20}\n')  # a stray line at max_iters
    assert run_folder.run_state(run) == "interrupted", "a stray log line at max_iters: the checkpoint says step 10"
    with open(f"{run}/log.jsonl", "w") as f:
        f.write(log + '{"step": 5}\n')  # a step going back
    code, _, err = run_cli(train.main, ["--resume", "--out_dir", run])
    assert code == 2 and "not after" in err and len(err.splitlines()) == 1, f"a decreasing step is one line: {err!r}"
    with open(f"{run}/log.jsonl", "w") as f:
        f.write(log)
    assert run_cli(train.main, ["--resume", "--out_dir", run])[0] == 0, "the repaired run resumes"
    assert run_cli(evaluation.main, [run, "--n_eval", "20"])[0] == 0, "and is scored"
    os.remove(f"{run}/ckpt.pt")  # as committed
    with open(f"{run}/log.jsonl") as f:
        text = f.read()
    with open(f"{run}/log.jsonl", "w") as f:
        f.write(text[:-1])  # the last newline lost
    before = {name: open(f"{run}/{name}", "rb").read() for name in os.listdir(run)}
    assert dry_run(argv + ["--out_dir", run])[1] == "finished", "judged by its eval.json, not by its log"
    code, _, err = run_cli(train.main, argv + ["--out_dir", run])
    assert code == 2 and "finished" in err, f"a new run into a scored folder is refused: {err!r}"
    after = {name: open(f"{run}/{name}", "rb").read() for name in os.listdir(run)}
    assert after == before, "nothing in the scored folder was written or deleted"
    shutil.rmtree(root)

def edit_json(path, edit):
    """Rewrite the JSON file at path with edit(value) (which changes value in place or returns the new one)."""
    with open(path) as f:
        value = json.load(f)
    value = edit(value) or value
    with open(path, "w") as f:
        json.dump(value, f)

def test_readers_match_seeds_by_test_length():
    """Two seeds of one config scored at 1,2,3x and 1,3,4x: each row of the summary averages the records of its own
    length, only the lengths both share have rows, one warning line says so; the by-age table takes 3x, the longest
    length both share. A figure's extension may be in capitals."""
    root = tmpdir()
    for seed, mults in ((0, (1, 2, 3)), (1, (1, 3, 4))):
        fake_run(root, f"a-s{seed}", seed, "none", 0.9)
        records = [{"n": 8 * m, "mult": m, "state_acc": 1.0, "recall_acc": 1.0, "token_acc": seed / 10 + m / 100,
                    "seq_acc": 0.9, "recall_by_age": [0.9 + seed / 10 - m / 100] * m} for m in mults]
        edit_json(os.path.join(root, f"a-s{seed}", "eval.json"), lambda _: records)
    code, out, err = run_cli(plot.main, [root, "--out", f"{root}/fig.PNG", "--summary", f"{root}/table.md"])
    assert code == 0, f"plot.py over seeds scored at different lengths: {err}"
    assert err.startswith("warning: lstm_attn-S3-plain: ") and len(err.splitlines()) == 1, f"one warning line: {err}"
    assert all(s in err for s in ("1,2,3x: seed 0", "1,3,4x: seed 1", "share are used: 1,3x")), f"the lengths: {err}"
    with open(f"{root}/fig.PNG", "rb") as f:
        assert f.read(4) == b"\x89PNG", "--out fig.PNG is written as a PNG"
    with open(f"{root}/table.md") as f:
        rows = [line.split(" | ") for line in f.read().splitlines()[2:]]
    assert [row[1] for row in rows] == ["1x", "3x"], f"rows only at the lengths both seeds have: {rows}"
    assert rows[1][4] == "0.080 [0.030, 0.130]", f"the 3x row averages the two 3x records: {rows[1]}"
    code, out, err = run_cli(atlas.main, [root, "--out", f"{root}/atlas", "--schedules", "plain"])
    assert code == 0 and len(err.splitlines()) == 1 and "lstm_attn-S3 plain" in err, f"the atlas warns once: {err}"
    with open(f"{root}/atlas.json") as f:
        cell = json.load(f)["cells"][0]
    assert cell["longest_mult"] == 3, f"by age: the longest length both seeds share: {cell['longest_mult']}"
    assert np.allclose(cell["recall_by_age_longest"], [0.92] * 3), f"by age: both 3x records: {cell}"
    edit_json(os.path.join(root, "a-s1", "eval.json"), lambda records: [r for r in records if r["mult"] != 3])
    code, out, err = run_cli(plot.main, [root, "--out", f"{root}/sweep.png", "--sweep", "seed"])
    assert code == 0 and err.startswith("warning: --sweep seed: 1 finished run") and "a-s1" in err, \
        f"--sweep: a run without a 3x record is left out, said in one line: {err}"
    shutil.rmtree(root)

def test_readers_warn_when_seeds_were_scored_differently():
    """Seeds of one config scored with other settings (eval.json's "scored"; a plain list of records counts as scored
    as the grid scores) are pooled with one warning line, from plot.py and the atlas, naming what differs."""
    root = tmpdir()
    for seed in (0, 1, 2):
        fake_run(root, f"a-s{seed}", seed, "none", 0.9)
    for seed, n_eval in ((1, 1000), (2, 20)):  # seed 1 as the grid scores it, said in the header; seed 2 otherwise
        scored = {**evaluation.grid_scoring("lstm_attn", [1, 2, 3, 8], 8000), "n_eval": n_eval}
        edit_json(f"{root}/a-s{seed}/eval.json", lambda records: {"scored": scored, "records": records})
    for script, argv in ((plot, ["--out", f"{root}/fig.png"]), (atlas, ["--out", f"{root}/at", "--schedules",
                                                                          "plain"])):
        code, out, err = run_cli(script.main, [root] + argv)
        assert code == 0 and err == "warning: lstm_attn-S3-plain: its seeds were scored differently (n_eval 1000: " \
            "seed 0,1; n_eval 20: seed 2); pooled as they are\n", f"{script.__name__}: one warning line: {err!r}"
    shutil.rmtree(root)

def test_readers_refuse_a_damaged_config_and_load_an_older_one():
    """A config.json edited by hand or by a newer kit is one error line naming the folder and the field, from
    plot.py and the atlas, which write nothing; a config of an older kit (a retired option, newer options absent)
    loads, its absent options at their defaults."""
    root = tmpdir()
    fake_run(root, "a-s0", 0, "none", 0.9)
    config = os.path.join(root, "a-s0", "config.json")
    with open(config) as f:
        good = f.read()
    for field, value in (("seed", "abc"), ("seed", "3"), ("seed", True), ("seed", None), ("seed", 1.5),
                         ("max_iters", "8k"),
                         ("dat_mode", "sometimes"), ("model", "gpt"), ("pos", "alibi"), ("device", "tpu"),
                         ("group", "Q7"), ("dat", "yes"), ("mlp", 1), ("attn_on_step", "soon"), ("warp", 2),
                         (None, [1, 2])):
        edit_json(config, lambda c: value if field is None else c.update({field: value}))
        for script, argv in ((plot, ["--out", f"{root}/new/fig.png"]), (atlas, ["--out", f"{root}/new/at"])):
            code, out, err = run_cli(script.main, [root] + argv)
            assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, \
                f"{script.__name__}, config field {field} = {value!r}: one error line, not {code} {err!r}"
            assert config in err and (field or "JSON object") in err, f"the file and the field are named: {err}"
            assert not os.path.exists(f"{root}/new"), f"{script.__name__} wrote something for field {field}"
        with open(config, "w") as f:
            f.write(good)
    edit_json(config, lambda c: c.update({"warp": 2}))
    code, out, err = run_cli(plot.main, [root, "--out", f"{root}/new/fig.png"])
    assert "a newer kit" in err, f"an unknown field: perhaps a newer kit's: {err}"
    with open(config, "w") as f:
        f.write(good)
    older = lambda c: {**{k: v for k, v in c.items() if k not in ("dat_mode", "auto_threshold", "auto_window")},
                       "bench": False, "seed": 3}  # a retired option
    edit_json(config, older)
    (run,) = plot.load_runs([root])
    assert run["finished"] and run["config"]["seed"] == 3, f"an older config loads: {run['config']}"
    assert plot.run_name(run["config"]) == "lstm_attn-S3-plain", "its absent options take their defaults"
    shutil.rmtree(root)

def test_readers_refuse_a_run_folder_missing_its_config_or_log():
    """A folder holding a run's files but not config.json or log.jsonl is one error line naming it and what it
    lacks (not a seed silently dropped); a folder with none of a run's files is no run."""
    root = tmpdir()
    fake_run(root, "a-s0", 0, "none", 0.9)
    os.makedirs(f"{root}/notes")  # no run's file in it: not a run
    assert plot.find_runs([root]) == [f"{root}/a-s0"], "a folder with no run's file is not a run"
    for folder, removed in (("a-s1", "log.jsonl"), ("a-s2", "config.json")):
        fake_run(root, folder, int(folder[-1]), "none", 0.9)
        os.remove(os.path.join(root, folder, removed))
        for script, argv in ((plot, ["--out", f"{root}/fig.png"]), (atlas, ["--out", f"{root}/at"])):
            code, out, err = run_cli(script.main, [root] + argv)
            assert code == 2 and len(err.splitlines()) == 1 and os.path.join(root, folder) in err and removed in err, \
                f"{script.__name__}: a run folder without {removed}: {code} {err!r}"
        shutil.rmtree(os.path.join(root, folder))
    shutil.rmtree(root)

# -----------------------------------------------------------------------------
# the tables: failure rates and tests, the ladder, cores in hybrids, where the state lives

def test_wilson_interval_and_fisher_test():
    """The atlas's statistics against hand-computed values: Wilson intervals and Fisher's exact test."""
    # hand-computed: 2 of 5, z = 1.96: centre (0.4 + 0.3841) / 1.7683 = 0.4435, half-width 0.3258
    assert np.allclose(atlas.wilson(2, 5), [0.1176, 0.7693], atol=1e-4)
    assert np.allclose(atlas.wilson(0, 10), [0.0, 0.2775], atol=1e-4)  # z^2 / (n + z^2)
    assert np.allclose(atlas.wilson(10, 10), [0.7225, 1.0], atol=1e-4)
    assert abs(atlas.fisher_exact(2, 5, 0, 5) - 4 / 9) < 1e-12  # C(5,2)C(5,0)/C(10,2) doubled: 10/45 * 2
    assert abs(atlas.fisher_exact(3, 3, 0, 3) - 0.1) < 1e-12    # 2 / C(6,3)
    assert abs(atlas.fisher_exact(4, 10, 0, 10) - 0.0867) < 1e-4
    assert atlas.fisher_exact(1, 4, 1, 4) == 1.0

def fake_run(root, folder, seed, pos, seq_acc_3x, finished=True, seq_acc_1x=1.0, flags=(), attn_on_step=None,
             probe=None, attn_off=None):
    """A run folder as train.py and eval.py leave it (config, log, eval; an unfinished one still training: no eval),
    with chosen accuracies; probe and attn_off: the state accuracy of eval.py --probe and --attn_off at every length
    (a function of mult), if scored so."""
    argv = ["--seed", str(seed), "--pos", pos, "--out_dir", folder, *flags]
    config = vars(options.check_args(options.parser.parse_args(argv)))
    if attn_on_step is not None:  # as --delay auto records it when the state is learned
        config["attn_on_step"] = attn_on_step
    config["model_config"] = dataclasses.asdict(options.model_config_of(config))
    os.makedirs(os.path.join(root, folder))
    with open(os.path.join(root, folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(root, folder, "log.jsonl"), "w") as f:
        f.write(json.dumps({"step": 8000 if finished else 500, "token_acc_3x": 0.5}) + "\n")
    accuracies = {"state_acc": 0.9, "recall_acc": 0.9, "token_acc": 0.9}
    records = [{"n": 8 * m, "mult": m, **accuracies, "seq_acc": seq_acc_1x if m == 1 else seq_acc_3x,
                **({"probe_state_acc": probe(m)} if probe else {}),
                **({"attn_off": {**accuracies, "seq_acc": 0.0, "state_acc": attn_off(m)}} if attn_off else {})}
               for m in (1, 2, 3, 8)]
    if finished:
        with open(os.path.join(root, folder, "eval.json"), "w") as f:
            json.dump(records, f)

def test_plot_groups_runs_by_config_not_folder_name():
    """plot.py and the atlas group runs by their config, never by folder name; unfinished runs are
    counted apart."""
    root = tmpdir()
    fake_run(root, "misleading-s0", 0, "none", 0.1)   # same config as the next, other folder name
    fake_run(root, "other-name-s7", 7, "none", 0.95)
    fake_run(root, "misleading-s1", 1, "rope", 0.2, seq_acc_1x=0.5)   # a name like the first, another config
    fake_run(root, "rope-s2", 2, "rope", 0.3, finished=False)
    loaded = plot.load_runs([root])
    assert plot.find_runs([root, os.path.join(root, "rope-s2") + "/"]) == plot.find_runs([root]), "named twice"
    groups = plot.group_by_config(loaded)
    assert sorted(groups) == ["lstm_attn-S3-plain", "lstm_attn-S3-rope-plain"], groups.keys()
    assert [r["config"]["seed"] for r in groups["lstm_attn-S3-plain"]] == [0, 7]
    cells = {c["setting"]: c for c in atlas.atlas(loaded, ["plain"])["cells"]}
    none, rope = cells["lstm_attn-S3"], cells["lstm_attn-S3-rope"]
    assert (none["n"], none["n_fail"], none["seeds"], none["seq_acc_3x"]) == (2, 1, [0, 7], [0.525, 0.1, 0.95])
    assert (rope["n"], rope["n_fail"], rope["unfinished_seeds"]) == (1, 1, [2]), "unfinished runs are not mixed in"
    assert none["config"] == {"model": "lstm_attn", "group": "S3", "pos": "none", "device": "cpu"}
    assert none["ci95"] == atlas.wilson(1, 2)
    lo, hi = atlas.wilson(1, 2)
    overview = atlas.atlas_overview(atlas.atlas(loaded, ["plain", "dat5000"]), ["plain", "dat5000"])
    assert f"| lstm_attn-S3 | 1 of 2 [{lo:.2f}, {hi:.2f}] (1 state, 0 recall) | - | - | 0.53 / - |" in overview
    groups["lstm_attn-S3-plain"][0]["eval"][1]["probe_state_acc"] = 0.5  # one run scored with --probe, one without
    assert "| lstm_attn-S3-plain (0,7) | 3x |" in plot.summary_table(groups, plot.scored_lengths(groups))
    code, out, err = run_cli(atlas.main, [root, "--out", os.path.join(root, "atlas"), "--schedules", "plain"])
    assert code == 0, err
    with open(os.path.join(root, "atlas.md")) as f:
        assert "| lstm_attn-S3-rope | plain | 1 | 1 (1 / 0 / 1) |" in f.read()  # it failed at 1x too
    argv = [root, "--out", f"{root}/by_width", "--schedules", "plain", "--sweep", "d_model"]  # rates against it
    code, out, err = run_cli(atlas.main, argv)
    assert code == 0 and os.path.getsize(f"{root}/by_width.png") > 10000, err
    shutil.rmtree(root)

def test_tables_name_the_recurrent_part_the_runs_have():
    """The atlas and plot.py's summary say LSTM for LSTM runs (every committed table) and the core for another."""
    root = tmpdir()
    for core in ("lstm", "gru"):
        flags = () if core == "lstm" else ("--core", "gru")
        fake_run(root, f"{core}/a-s0", 0, "none", 0.9, flags=flags)
        runs_here, out = f"{root}/{core}", f"{root}/{core}"
        assert run_cli(atlas.main, [runs_here, "--out", f"{out}_atlas", "--schedules", "plain"])[0] == 0, "atlas"
        assert run_cli(plot.main, [runs_here, "--out", f"{out}.png", "--summary", f"{out}.md"])[0] == 0, "plot"
        name = {"lstm": "LSTM", "gru": "gru core"}[core]
        atlas_text, summary = open(f"{root}/{core}_atlas.md").read(), open(f"{root}/{core}.md").read()
        assert f"{name} holds the state" in atlas_text and f"{name} probe 3x" in atlas_text, f"the atlas names {name}"
        assert f"state, {name} probe" in summary, f"the summary names {name}"
        other = {"lstm": "gru core", "gru": "LSTM"}[core]
        assert other not in atlas_text + summary, f"a {core} run's tables do not name the {other}"
    shutil.rmtree(root)

def test_ladder_counts_runs_that_extend_and_judges_a_full_cell():
    """results/ladder.py: per core and group, the runs whose state accuracy reaches 0.98 at 1x, 3x and 8x; a
    prediction judged once a cell has its 10 seeds; runs of another setting left out."""
    root = tmpdir()
    for seed in range(10):  # the GRU on Z5: every seed learns it, 6 extend it to 3x, 2 to 8x
        fake_run(root, f"gru-s{seed}", seed, "none", 0.0, flags=("--model", "lstm", "--group", "Z5", "--core", "gru"))
        edit_json(f"{root}/gru-s{seed}/eval.json", lambda records: [
            {**r, "state_acc": 1.0 if r["mult"] == 1 or r["mult"] == 3 and seed < 6 or seed < 2 else 0.5}
            for r in records])
    fake_run(root, "unit-s0", 0, "none", 0.0, flags=("--model", "lstm", "--group", "Z5", "--core", "diagonal"))
    fake_run(root, "wide-s0", 0, "none", 0.0, flags=("--model", "lstm", "--d_model", "32"))
    result = ladder.ladder(plot.load_runs([root]))
    cells = {(e["core"], e["group"]): e for e in result["cells"]}
    gru, unit = cells[("gru", "Z5")], cells[("diagonal unit", "Z5")]
    assert (gru["n"], gru["k_1x"], gru["k_3x"], gru["k_8x"], gru["held"]) == (10, 10, 6, 2, True), f"counts: {gru}"
    assert (unit["n"], unit["held"]) == (1, None), f"a cell below 10 seeds is not judged: {unit}"
    assert result["left_out"] == 1, "a run of another setting (d_model 32) is left out"
    text = ladder.markdown(result)
    assert "- the LSTM and GRU (1 cells): 10 / 6 / 2 of 10" in text and \
        "- cells no layer of the core can express (1 cells): 0 / 0 / 0 of 1" in text, "the pooled counts"
    shutil.rmtree(root)

def test_cores_hybrid_compares_plain_with_the_schedule_theory_fixes():
    """results/cores_hybrid.py: a core that can track the group is compared with --delay auto, one that cannot with
    DAT 5000; each prediction judged at 10 runs a schedule; the core alone comes from the ladder's runs."""
    root = tmpdir()
    def hybrid(name, seed, core, group, schedule, seq_acc_3x, off_3x, probe_3x=1.0):
        fake_run(root, f"{name}-s{seed}", seed, "none", seq_acc_3x, flags=("--group", group, *core, *schedule),
                 attn_off=lambda m: off_3x if m == 3 else 1.0, probe=lambda m: probe_3x if m == 3 else 1.0)
    gru, unit, auto = ("--core", "gru"), ("--core", "diagonal"), ("--dat", "--delay", "auto")
    for seed in range(10):  # GRU on Z5 (can): plain fails 6 and never reads the state without attention, though its
        # core holds it in 4 (the probe); auto fails none and always reads it without attention
        hybrid("gru-plain", seed, gru, "Z5", (), 0.1 if seed < 6 else 0.9, 0.5, 0.5 if seed < 6 else 1.0)
        hybrid("gru-auto", seed, gru, "Z5", auto, 0.9, 1.0)
        hybrid("unit-plain", seed, unit, "S3", (), 0.1, 0.3)  # unit diagonal on S3 (cannot): lost both ways
        hybrid("unit-dat", seed, unit, "S3", ("--dat",), 0.1 if seed else 0.9, 0.3)
    hybrid("gru-dat", 0, gru, "Z5", ("--dat",), 0.9, 1.0)  # not the schedule theory fixes for this cell: left out
    fake_run(root, "gru-alone-s0", 0, "none", 0.0, flags=("--model", "lstm", "--group", "Z5", *gru))
    edit_json(f"{root}/gru-alone-s0/eval.json", lambda records: [{**r, "state_acc": 1.0} for r in records])
    result = cores_hybrid.cores_hybrid(plot.load_runs([root]))
    cells = {(e["core"], e["group"]): e for e in result["cells"]}
    assert sorted(cells) == [("diagonal unit", "S3"), ("gru", "Z5")], f"one entry per cell: {sorted(cells)}"
    g, u = cells[("gru", "Z5")], cells[("diagonal unit", "S3")]
    assert (g["delayed"]["schedule"], u["delayed"]["schedule"]) == ("datauto", "dat5000"), "schedules by theory"
    assert (g["plain"]["n_fail"], g["delayed"]["n_fail"], g["delayed"]["n_reads_without_attention"]) == (6, 0, 10), g
    assert (g["plain"]["n_probe_holds"], g["plain"]["n_reads_without_attention"]) == (4, 0), \
        f"the probe's column counts probe_state_acc, attention-off's attn_off.state_acc: {g['plain']}"
    assert "4 of 10 [0.17, 0.69] / 10 of 10" in cores_hybrid.markdown(result) and \
        "0 of 10 [0.00, 0.28] / 10 of 10" in cores_hybrid.markdown(result), "both columns in the table"
    assert (g["alone"]["n"], g["alone"]["k_3x"]) == (1, 1), "the core alone is counted from the ladder's run"
    assert g["held"] and u["held"], "a cured can-cell and a cannot-cell lost under both schedules hold"
    assert result["other_schedules"] == 1, "the GRU hybrid under DAT 5000 is left out and counted"
    fake_run(root, "gru-auto-s10", 10, "none", 0.9, finished=False, flags=("--group", "Z5", *gru, *auto))
    text = cores_hybrid.markdown(cores_hybrid.cores_hybrid(plot.load_runs([root])))
    assert "- gru on Z5 datauto: seeds 10" in text, "an unfinished run is listed, not counted"
    hybrid("unit-dat", 10, unit, "S3", ("--dat",), 0.9, 1.0)  # one delayed core that holds the state
    hybrid("gru-plain", 10, gru, "Z5", (), 0.9, 1.0)
    cells = {(e["core"], e["group"]): e for e in cores_hybrid.cores_hybrid(plot.load_runs([root]))["cells"]}
    assert cells[("diagonal unit", "S3")]["held"] is False, "a core that cannot track the group but holds it: not held"
    assert cells[("gru", "Z5")]["held"] is True, "11 plain runs against 10 delayed are judged alike"
    shutil.rmtree(root)

def test_automata_judges_each_prediction_once_its_cell_is_full():
    """results/automata.py: per automaton, plain against DAT 5000 and --delay auto, entry 71's (a), (b) and (c) judged
    only once each schedule has 10 runs; the pooled plain probe over every automaton's plain runs; other settings left
    out, unfinished runs listed."""
    root = tmpdir()
    def hybrid(automaton, schedule, seed, fails, probe_holds):
        flags = ("--group", automaton, *{"plain": (), "dat5000": ("--dat",), "datauto": ("--dat", "--delay", "auto")}[
            schedule])
        fake_run(root, f"{automaton}-{schedule}-s{seed}", seed, "none", 0.1 if fails else 0.95, flags=flags,
                 probe=lambda m: 1.0 if probe_holds else 0.5, attn_off=lambda m: 0.5)
    for seed in range(10):  # F2: plain fails once; G4: plain fails 6 times, --delay auto twice and holds 7 of 10
        hybrid("F2", "plain", seed, seed == 0, seed != 0)
        hybrid("G4", "plain", seed, seed < 6, seed >= 5)  # seed 5 fails with a probe that holds: called wrong
        for schedule in ("dat5000", "datauto"):
            hybrid("F2", schedule, seed, False, True)
        hybrid("G4", "dat5000", seed, False, True)
        hybrid("G4", "datauto", seed, seed < 2, seed >= 3)
    fake_run(root, "G4-wide-s0", 0, "none", 0.1, flags=("--group", "G4", "--d_model", "128"))  # another setting
    fake_run(root, "R3-plain-s0", 0, "none", 0.1, finished=False, flags=("--group", "R3"))
    try:
        result = automata.automata(plot.load_runs([root]))
        cells = {row["automaton"]: row for row in result["cells"]}
        assert list(cells) == ["F2", "G4", "R3"], f"one row per automaton with runs: {list(cells)}"
        f2, g4 = cells["F2"]["held"], cells["G4"]["held"]
        assert f2["a"] is True and f2["c"] is True and f2["b"].startswith("not judged"), f"F2: {f2}"
        assert (g4["a"], g4["b"], g4["c"]) == (True, False, False), f"G4: plain fails 6, auto 2 and holds 7: {g4}"
        assert cells["G4"]["schedules"]["plain"]["n"] == 10, "the d_model 128 run is another setting: left out"
        assert abs(cells["G4"]["schedules"]["dat5000"]["fisher_p_vs_plain"] - 0.010836) < 1e-6, "Fisher, 0/10 vs 6/10"
        assert result["plain_called_held"] is None, "R3's plain runs are not in: the pooled probe is not judged"
        assert "- R3: (a) to be judged" in automata.markdown(result) and "  - plain: seeds 0 not finished" in \
            automata.markdown(result), "an automaton short of its runs is listed with its unfinished seeds"
        automata.AUTOMATA = ("F2", "G4")
        result = automata.automata(plot.load_runs([root]))
        assert (result["plain_called_right"], result["plain_n"], result["plain_called_held"]) == (19, 20, True), \
            f"the probe calls 19 of the 20 plain verdicts right: {result['plain_called_right']}"
    finally:
        automata.AUTOMATA = ("F2", "G4", "G6", "R3", "R5")
    shutil.rmtree(root)

def test_automata_measures_the_recall_the_lstm_learned_before_attention_joined():
    """results/automata.py's post hoc table: per machine and delayed schedule, the step attention joined (a config
    older than attn_on_step: its --delay), recall at 1x at the log's last eval with the gate at 0 and at its last
    eval; a run attention joined before its first eval has no value alone, one it never joined is counted apart;
    plain and unfinished runs left out; automata first."""
    root = tmpdir()
    def delayed(folder, group, evals, flags=("--dat",), seed=0, **kwargs):  # evals: (step, recall at 1x, gate)
        fake_run(root, folder, seed, "none", 0.5, flags=("--group", group, *flags), **kwargs)
        with open(os.path.join(root, folder, "log.jsonl"), "w") as f:
            f.writelines(json.dumps({"step": step, "recall_acc_1x": acc, "gate": gate}) + "\n"
                         for step, acc, gate in evals)
    delayed("S3-dat", "S3", [(2500, 0.5, 0.0), (5000, 0.6, 0.0), (8000, 1.0, 1.0)])
    with open(os.path.join(root, "S3-dat", "config.json")) as f:
        config = json.load(f)
    del config["attn_on_step"]  # as configs older than attn_on_step hold a fixed delay
    with open(os.path.join(root, "S3-dat", "config.json"), "w") as f:
        json.dump(config, f)
    delayed("G4-dat", "G4", [(2500, 0.8, 0.0), (5000, 0.9, 0.0), (5500, 0.2, 1.0), (8000, 0.95, 1.0)])
    auto = ("--dat", "--delay", "auto")
    delayed("G4-auto-early", "G4", [(500, 0.7, 1.0), (8000, 1.0, 1.0)], auto, attn_on_step=300)
    delayed("G4-auto-s1", "G4", [(500, 0.4, 0.0), (1000, 0.45, 0.0), (1500, 0.9, 1.0), (8000, 1.0, 1.0)], auto,
            seed=1, attn_on_step=1200)
    delayed("G4-auto-never-s2", "G4", [(500, 0.3, 0.0), (8000, 0.35, 0.0)], auto, seed=2)
    fake_run(root, "G4-plain", 0, "none", 0.5, flags=("--group", "G4"))
    fake_run(root, "G4-dat-s1", 1, "none", 0.5, finished=False, flags=("--group", "G4", "--dat"))
    rows = automata.before_attention(plot.load_runs([root]))
    keys = ("n", "n_never_joined", "joined_at_step", "n_alone", "alone_at_step", "recall_1x_alone",
            "recall_1x_at_the_end")
    got = {(r["machine"], r["schedule"]): tuple(r[k] for k in keys) for r in rows}
    each = lambda x: [x, x, x]  # mean, min and max of one run
    assert got == {("G4", "dat5000"): (1, 0, each(5000), 1, each(5000), each(0.9), each(0.95)),
                   ("G4", "datauto"): (3, 1, [750, 300, 1200], 1, each(1000), each(0.45), each(1.0)),
                   ("S3", "dat5000"): (1, 0, each(5000), 1, each(5000), each(0.6), each(1.0))}, got
    assert list(got) == [("G4", "dat5000"), ("G4", "datauto"), ("S3", "dat5000")], "automata first, then groups"
    shutil.rmtree(root)

def test_tables_keep_the_probe_and_attention_off_apart():
    """The atlas, the ladder and results/mechanism.py count "the recurrent part holds the state" from eval.json's
    probe_state_acc and "the model reads it without attention" from attn_off.state_acc, never one for the other."""
    root = tmpdir()
    holds, not_ = (lambda m: 1.0), (lambda m: 0.5)
    fake_run(root, "pool/a-s0", 0, "none", 0.9, probe=holds, attn_off=not_)  # passes; the probe holds, off not
    fake_run(root, "pool/a-s1", 1, "none", 0.1, probe=not_, attn_off=not_)   # fails; neither
    fake_run(root, "pool/a-s2", 2, "none", 0.9, probe=not_, attn_off=holds)  # passes; only attention off
    fake_run(root, "pool/b-s0", 0, "none", 0.9, probe=holds, attn_off=holds, flags=("--dat",))
    cell = atlas.atlas(plot.load_runs([f"{root}/pool"]), ["plain", "dat5000"])["cells"][0]
    assert (cell["n_probe_holds"], cell["n_reads_without_attention"]) == (1, 1), f"the atlas's two counts: {cell}"
    text = atlas.atlas_markdown(atlas.atlas(plot.load_runs([f"{root}/pool"]), ["plain", "dat5000"]), ["plain"])
    assert "LSTM holds the state (probe) 1 of 3" in text and "without attention (attention off) 1 of 3" in text, text
    pool, fresh, settings = mechanism.cells_of(plot.load_runs([f"{root}/pool"]), "mechanism")
    plain = mechanism.two_by_two(pool[("lstm_attn-S3", "plain")])
    assert (plain["n_holds"], plain["n_pass_holds"], plain["n_pass_not"], plain["n_reads"]) == (1, 1, 1, 1), plain
    assert not fresh and settings["lstm_attn-S3"] == {"pos": "none", "pooled": True, "after_attention": False}
    fake_run(root, "alone-s0", 0, "none", 0.0, flags=("--model", "lstm", "--group", "Z5", "--core", "gru"),
             probe=holds)  # the head reads the state at 0.9 (fake_run's state_acc): below the line; the probe holds
    gru = {(e["core"], e["group"]): e for e in ladder.ladder(plot.load_runs([f"{root}/alone-s0"]))["cells"]}
    assert (gru[("gru", "Z5")]["k_3x"], gru[("gru", "Z5")]["k_probe_3x"]) == (0, 1), "the ladder's head and probe"
    shutil.rmtree(root)

def test_mechanism_judges_the_confirmation_apart_from_the_pool():
    """results/mechanism.py: runs in folders named --new are predicted from their probe at 3x (P3) and 2x (P2) and
    judged once JUDGED_AT of them are finished, apart from the committed pool; the figure and tables are written."""
    root = tmpdir()
    fake_run(root, "headline/a-s0", 0, "none", 0.9, probe=lambda m: 1.0, attn_off=lambda m: 0.5)
    fake_run(root, "headline/b-s0", 0, "none", 0.9, probe=lambda m: 1.0, attn_off=lambda m: 1.0, flags=("--dat",))
    # every 5th run fails though its probe holds at 2x (even seeds: at 3x too)
    for seed in range(100, 100 + mechanism.JUDGED_AT):
        passes, fooled = seed % 2 == 0, seed % 5 == 0
        fake_run(root, f"mechanism/a-s{seed}", seed, "none", 0.9 if passes and not fooled else 0.1,
                 probe=lambda m, p=passes, f=fooled: 1.0 if p or (f and m <= 2) else 0.7, attn_off=lambda m: 0.5)
    out = f"{root}/mech"
    code, printed, err = run_cli(mechanism.main, [f"{root}/headline", f"{root}/mechanism", "--out", out])
    assert code == 0 and os.path.isfile(out + ".png"), f"mechanism.py draws its figure: {err}"
    result = json.load(open(out + ".json"))["confirmation"]
    hits = result["cells"]["all"]["hits"]
    assert (hits["P3"]["k"], hits["P2"]["k"]) == (36, 32), f"P3 misses the 4 fooled passes, P2 all 8 fooled: {hits}"
    assert result["held"] == {"P3": True, "P2": True, "attention-off separates nothing": True}, result["held"]
    assert "P3 held; P2 held" in open(out + ".md").read(), "the verdicts are in the table"
    shutil.rmtree(root)

def test_atlas_gives_the_step_delay_auto_switched_at():
    """The atlas lists the step each --delay auto seed switched attention on at, or never."""
    root, auto = tmpdir(), ("--dat", "--delay", "auto")
    fake_run(root, "auto-s0", 0, "none", 0.9, flags=auto, attn_on_step=700)
    fake_run(root, "auto-s1", 1, "none", 0.1, flags=auto)  # the state never learned: attention never on
    code, out, err = run_cli(atlas.main, [root, "--out", f"{root}/atlas", "--schedules", "datauto"])
    assert code == 0, err
    with open(f"{root}/atlas.md") as f:
        assert "- lstm_attn-S3 datauto: s0 700, s1 never" in f.read().splitlines()
    shutil.rmtree(root)

def test_atlas_of_runs_none_finished_is_refused():
    """An atlas of runs none of which is finished is one error line and writes nothing."""
    root = tmpdir()
    for seed in (0, 1):
        fake_run(root, f"a-s{seed}", seed, "none", 0.9, finished=False)
    code, out, err = run_cli(atlas.main, [root, "--out", f"{root}/new/at", "--schedules", "plain"])
    assert code == 2 and len(err.splitlines()) == 1 and "finished" in err, f"no finished run: one line: {err!r}"
    assert not os.path.exists(f"{root}/new"), "an atlas of no finished run writes nothing"
    shutil.rmtree(root)

# -----------------------------------------------------------------------------
# the grid (results/commands.sh, results/launch.py) on a small grid of its own, and the committed one

TINY_GRID = """
TINY = "--max_iters 20 --d_model 8 --batch_size 4"
def grid():
    yield "done 1,2 --seed 0 " + TINY
    yield "todo 1,2 --seed 0 " + TINY
    yield "todo 1,2 --seed 1 " + TINY
    yield "gpu 1,2 --seed 0 --device cuda " + TINY
FIGURES = [(OUT, "draw", ["todo"], "")]
"""

def tiny_grid(root):
    """A grid of 4 lines under root (a RUNS folder with a space and glob characters in its name), line 1 finished
    (fake files: scored at its MULTS 1,2); (environment for the launcher, the lines as the launcher reads them)."""
    path, out = os.path.join(root, "grid.py"), os.path.join(root, "todo.png")
    with open(path, "w") as f:
        f.write(f"OUT = {out!r}\n" + TINY_GRID)
    env = {**os.environ, "GRID": path, "RUNS": os.path.join(root, "runs [here]*")}
    with launcher_in_process(env):
        first = contents.Line(1, next(contents.load_grid().grid()))
        fake_finished_run(first.folder, first.options, [1, 2])
        return env, [contents.Line(k, text) for k, text in enumerate(contents.load_grid().grid(), 1)]

def fake_finished_run(folder, flags, mults):
    """A run folder as train.py and eval.py leave it (no checkpoint, like a committed one), scored at mults."""
    config = vars(options.check_args(options.parser.parse_args([*flags, "--out_dir", folder])))
    config["model_config"] = dataclasses.asdict(options.model_config_of(config))
    os.makedirs(folder)
    records = [{"n": 8 * m, "mult": m, "seq_acc": 1.0} for m in mults]
    for name, text in (("config.json", json.dumps(config)), ("eval.json", json.dumps(records)),
                       ("log.jsonl", json.dumps({"step": config["max_iters"]}) + "\n")):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)

def fake_checkpoint(folder):
    """A checkpoint of the run in folder, as train.py saves it at its last step (freshly initialised weights)."""
    config = json.load(open(os.path.join(folder, "config.json")))
    model_config = options.model_config_of(config)
    run_folder.save_checkpoint(os.path.join(folder, "ckpt.pt"), model=Model(model_config).state_dict(), config=config,
                         model_config=dataclasses.asdict(model_config), step=config["max_iters"], gate=1.0)

@contextlib.contextmanager
def launcher_in_process(env):
    """results/launch.py in this process, pointed at env's grid and runs; its signal handlers undone after."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    contents.RUNS, os.environ["GRID"] = env["RUNS"], env["GRID"]
    try:
        yield
    finally:
        contents.RUNS = os.environ.get("RUNS", "results/runs")
        del os.environ["GRID"]
        for s, handler in handlers.items():
            signal.signal(s, handler)

def mtimes(folder):
    return {name: os.stat(os.path.join(folder, name)).st_mtime_ns for name in os.listdir(folder)}

def test_grid_selection_status_and_skipping():
    """The grid's lines: their run names, --only's selection, each line's state and --status's counts;
    a CUDA line is skipped on a machine without CUDA."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    names = [line.name() for line in lines]
    assert names[:3] == ["done/lstm_attn-S3-d8-bs4-iters20-plain-s0", "todo/lstm_attn-S3-d8-bs4-iters20-plain-s0",
                         "todo/lstm_attn-S3-d8-bs4-iters20-plain-s1"], f"run names of the tiny grid: {names}"
    assert [line.number for line in contents.select(lines, "todo/.*-s1$")] == [3], "--only selects by EXPERIMENT/NAME"
    states = [line.state for line in lines]
    cuda = "finished" if torch.cuda.is_available() else "needs CUDA"
    assert states == ["finished", "new", "new", "new" if cuda == "finished" else cuda], f"states: {states}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = launch.status(contents.select(lines, "todo|done"))
    table = {row.split()[0]: row.split()[1:] for row in out.getvalue().splitlines()[1:]}
    assert code == 0 and table["done"][:4] == ["1", "0", "0", "0"] and table["todo"][:4] == ["0", "0", "0", "2"] \
        and table["all"][:4] == ["1", "0", "0", "2"], f"--status counts per experiment: {out.getvalue()}"
    # a --workers pass over the finished line starts no job, leaves it untouched, draws no figure of "todo"
    before = mtimes(lines[0].folder)
    code, out, err = launch_main(env, "--workers", "2", "--only", "done/")
    assert code == 0 and "1 of 1 lines are finished; 0 to run" in out, f"skips finished: {code} {out} {err}"
    assert mtimes(lines[0].folder) == before, "a finished run folder is not touched"
    assert not os.path.exists(os.path.join(root, "todo.png")), "figures of unselected experiments are not drawn"
    shutil.rmtree(root)

def test_grid_job_failures_and_a_held_folder():
    """A grid job on a folder another process holds is skipped, not failed; a failing job fails alone."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    # a run folder another process holds (train.py exit code runs.IN_USE): skipped, not failed
    os.makedirs(lines[1].folder)
    with held_elsewhere(lines[1].folder):
        done = launch_main(env, "--job", "2")
    assert done[0] == 0 and "in use by another process: skipped" in done[1], f"IN_USE is a skip: {done}"
    assert not os.path.exists(os.path.join(lines[1].folder, "log.jsonl")), "a held folder is left alone"
    # a log that cannot be read (in a folder not yet scored): one error line, exit code 1, nothing written
    os.remove(os.path.join(lines[0].folder, "eval.json"))
    with open(os.path.join(lines[0].folder, "log.jsonl"), "w") as f:
        f.write("not json\n{}\n")
    out, err = io.StringIO(), io.StringIO()
    with launcher_in_process(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            launch.main(["--job", "1"])
        except SystemExit as e:
            code = e.code
    assert code == 1 and err.getvalue().count("\n") == 1 and err.getvalue().startswith("error: line 1: ") \
        and not out.getvalue(), f"a failing dry-run is one error line and exit code 1: {code} {err.getvalue()}"
    assert sorted(os.listdir(lines[0].folder)) == ["config.json", "log.jsonl"], "nothing written"
    shutil.rmtree(root)

def test_grid_job_leaves_a_finished_run_alone():
    """results/slurm.sh as SLURM array task 1 runs --job 1: on a finished run folder it says so, touches nothing,
    takes seconds; a job number past the grid is one error line; a --device cuda line without CUDA is skipped."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    before = mtimes(lines[0].folder)
    t0 = time.time()
    done = subprocess.run(["bash", "results/slurm.sh"], capture_output=True, text=True,
                          env={**env, "SLURM_ARRAY_TASK_ID": "1"})
    assert done.returncode == 0 and "job 1: " in done.stdout and "is finished" in done.stdout, f"task 1: {done}"
    assert time.time() - t0 < 15, "a finished line is decided in seconds"
    assert mtimes(lines[0].folder) == before, "a finished run folder is not touched"
    err = io.StringIO()
    with launcher_in_process(env), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            launch.main(["--job", "100000"])
        except SystemExit as e:
            code = e.code
        assert code == 2 and err.getvalue().startswith("error: no job 100000"), f"past the grid: {err.getvalue()}"
        if not torch.cuda.is_available():  # the --device cuda line
            assert launch.run_job(lines[3]) == "skipped" and not os.path.exists(os.path.join(env["RUNS"], "gpu")), \
                "a --device cuda line is skipped, not failed, on a machine without CUDA"
    shutil.rmtree(root)

def test_grid_lines_name_their_device_and_start_no_other_command():
    """A line that names no device is a CPU line: on a CUDA machine (patched in) the grid's states and run folders are
    the CPU machine's, and train.py is told --device cpu; a line's own --device (=cuda too; the last one given)
    decides; --help, --resume and --dry_run in a line are one error line at --list."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        with launcher_in_process(env):
            on_cuda = [contents.Line(line.number, line.text) for line in lines[:3]]
    finally:
        torch.cuda.is_available = real
    assert [(l.folder, l.state) for l in on_cuda] == [(l.folder, l.state) for l in lines[:3]], \
        "a CUDA machine sees the CPU lines as a CPU machine does"
    assert on_cuda[1].run_options[-2:] == ["--device", "cpu"], "train.py is told the line's device"
    with launcher_in_process(env):
        line = lambda options: contents.Line(9, "todo 1,2 " + options)
        cuda = "new" if torch.cuda.is_available() else "needs CUDA"
        assert line("--device=cuda --seed 5").state == cuda, "--device=cuda is a CUDA line"
        assert line("--device cuda --device cpu --seed 5").state == "new", "the last --device decides"
        for option in ("--help", "--resume", "--dry_run"):
            assert line(f"{option} --seed 5").error.endswith("is not for a grid line: the launcher resumes and "
                                                           "scores each line itself"), f"{option} in a line"
    shutil.rmtree(root)

def test_grid_relative_runs_is_from_the_current_folder():
    """RUNS=relative/path is the folder under the one the launcher is started from, not under the kit."""
    root = tmpdir()
    env, _ = tiny_grid(root)
    kit = os.path.dirname(os.path.abspath(__file__))
    command = ["bash", os.path.join(kit, "results", "commands.sh"), "--list"]
    listed = subprocess.run(command, cwd=root, env={**env, "RUNS": "mine"}, capture_output=True, text=True)
    folders = [line.split("\t")[1] for line in listed.stdout.splitlines()]
    mine = os.path.join(root, "mine")
    assert listed.returncode == 0 and folders and all(f.startswith(mine) for f in folders), \
        f"RUNS is resolved from the current folder: {listed.stdout!r} {listed.stderr!r}"
    assert not os.path.exists(mine), "--list creates nothing"
    shutil.rmtree(root)

def launch_main(env, *argv):
    """results/launch.py's main in this process with env's GRID and RUNS: (exit code, stdout, stderr)."""
    with launcher_in_process(env):
        return run_cli(launch.main, list(argv))

def one_error_line(result, code):
    return result[0] == code and len(result[2].splitlines()) == 1 and result[2].startswith("error: ")

def test_grid_line_is_finished_only_when_scored_at_every_length():
    """eval.json must hold every test length of the line's MULTS, scored as the launcher scores (eval.grid_scoring;
    a plain list of records counts as scored so), with its report (eval.txt): else its checkpoint is scored again
    (trained), or, with none (a committed run folder has none), the line is refused in one line."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    with open(os.path.join(lines[0].folder, "eval.json"), "w") as f:
        json.dump([{"n": 8, "mult": 1, "seq_acc": 1.0}], f)
    with launcher_in_process(env):
        line = contents.Line(1, lines[0].text)
    assert line.state == "error" and line.error == f"line 1: {lines[0].folder}: eval.json lacks 2x and there is no " \
        "checkpoint to score it from", f"a finished folder scored at 1x only, no checkpoint: {line.error}"
    code, out, err = launch_main(env, "--status", "--only", "^done/")
    assert code == 1 and err == f"error: {line.error}\n" and out.splitlines()[-1].split()[-1] == "1", \
        f"--status counts it as an error, said in one line, exit code 1: {code} {out} {err}"
    fake_checkpoint(lines[0].folder)
    with launcher_in_process(env):
        line = contents.Line(1, lines[0].text)
    assert line.state == "trained" and line.error is None, f"with a checkpoint it is scored again: {line.state}"
    with open(os.path.join(lines[0].folder, "eval.json"), "w") as f:  # scored at every length, its report lost
        json.dump([{"n": 8 * m, "mult": m, "seq_acc": 1.0} for m in (1, 2)], f)
    with launcher_in_process(env):
        line = contents.Line(1, lines[0].text)
    assert not os.path.exists(os.path.join(lines[0].folder, "eval.txt")) and line.state == "trained", \
        f"eval.json without eval.txt (a kill between the two), a checkpoint there: scored again: {line.state}"
    with open(os.path.join(lines[0].folder, "eval.txt"), "w") as f:
        f.write("the report\n")
    records = [{"n": 8 * m, "mult": m, "seq_acc": 1.0} for m in (1, 2)]
    for n_eval, state in ((1000, "finished"), (20, "trained"), (20, "error")):  # the last without its checkpoint
        scored = {**evaluation.grid_scoring("lstm_attn", [1, 2], 20), "n_eval": n_eval}
        with open(os.path.join(lines[0].folder, "eval.json"), "w") as f:
            json.dump({"scored": scored, "records": records}, f)
        if state == "error":
            os.remove(os.path.join(lines[0].folder, "ckpt.pt"))
        with launcher_in_process(env):
            line = contents.Line(1, lines[0].text)
        assert line.state == state, f"scored with --n_eval {n_eval} (the grid: 1000): {line.state} {line.error}"
    assert line.error == f"line 1: {lines[0].folder}: eval.json was scored with n_eval 20 (the grid's: 1000) and " \
        "there is no checkpoint to score it from", f"scored otherwise, no checkpoint: one error line: {line.error}"
    shutil.rmtree(root)

BAD_GRID = """
TINY = "--max_iters 20 --d_model 8 --batch_size 4"
def grid():
    yield "x 1,2 " + TINY
    yield "x 1,two " + TINY
    yield "x 0,1 " + TINY
    yield "x 1,4 --num_keys 24 " + TINY
    yield "x"
FIGURES = [("results/own", "rates", ["x"], "--schedules plain,dat1000"), ("results/default", "rates", ["x"], ""),
           ("results/typo.png", "draw", ["x/lstm-*"], ""), ("results/fine.png", "draw", ["x"], ""),
           ("results/other.png", "draw", ["y"], "")]
"""

def test_grid_refuses_lines_and_figures_that_cannot_work():
    """Bad MULTS, a test length above --num_keys, a line without MULTS; a rates figure whose --schedules (or
    results/atlas.py's default) names a schedule none of its lines has, a figure matching no line: one error line
    each from --list and --status (exit code 1); --array and --plots print and write nothing."""
    root = tmpdir()
    path = os.path.join(root, "grid.py")
    with open(path, "w") as f:
        f.write(BAD_GRID)
    env = {**os.environ, "GRID": path, "RUNS": os.path.join(root, "runs")}
    expected = ["error: line 2: MULTS '1,two' is not a comma-separated list of positive integers",
                "error: line 3: MULTS '0,1' is not a comma-separated list of positive integers",
                "error: line 4: test length 32 (4x) is above --num_keys 24: keys would repeat",
                "error: line 5: 'x' is not \"EXPERIMENT MULTS TRAIN_OPTIONS...\"",
                "error: figure results/own: --schedules plain,dat1000 names dat1000, which none of its lines has "
                "(they have plain)",
                "error: figure results/default: --schedules plain,dat5000 (the default) names dat5000, which none of "
                "its lines has (they have plain)",
                "error: figure results/typo.png: its runs x/lstm-* match no line of the grid"]
    before = tree(root)
    for argv in (["--list"], ["--status"], ["--array"], ["--plots"], ["--workers", "1"]):
        code, out, err = launch_main(env, *argv)
        expect = expected[4:] if argv[0] == "--workers" else expected
        assert code == 1 and err.splitlines() == expect, f"{argv}: one error line each, exit code 1: {code} {err}"
        assert (argv[0] in ("--list", "--status")) == bool(out), f"{argv}: output only from --list, --status: {out}"
    assert tree(root) == before, "nothing written: no run folder, no figure"
    done = subprocess.run(["bash", "results/slurm.sh"], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and done.stderr.splitlines() == expected and not done.stdout, \
        f"results/slurm.sh submits nothing from such a selection: {done}"
    shutil.rmtree(root)

def test_grid_bad_grid_or_runs_is_one_error_line():
    """GRID missing, empty, not Python, without grid() or FIGURES, a FIGURES entry of the wrong shape; RUNS empty:
    one error line, exit code 2, nothing written."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    files = {"syntax.py": "def grid(:\n", "no_grid.py": "FIGURES = []\n",
             "no_figures.py": "def grid():\n    yield ''\n",
             "bad_figure.py": "def grid():\n    yield ''\nFIGURES = [('out', 'pie', [], '')]\n",
             "raises.py": "def grid():\n    yield 1 / 0\nFIGURES = []\n"}
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    before = tree(root)
    for grid_path in ["", os.path.join(root, "missing.py"), *(os.path.join(root, name) for name in files)]:
        result = launch_main({**env, "GRID": grid_path}, "--status")
        assert one_error_line(result, 2) and "GRID" in result[2], f"GRID {grid_path!r}: {result}"
    result = launch_main({**env, "RUNS": ""}, "--list")
    assert one_error_line(result, 2) and "RUNS is empty" in result[2], f"RUNS '': {result}"
    assert tree(root) == before, "nothing written by a refusal"
    shutil.rmtree(root)

def test_grid_figures_go_under_runs_and_a_failing_one_fails():
    """With RUNS elsewhere (glob characters in its name too) an output results/X is written as RUNS/X; a figure
    none of whose runs are here fails --plots (one line, exit code 1); an attention picture without checkpoints is
    skipped, not failed."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    with launcher_in_process(env):
        figure = ("results/x", "rates", ["done"], "--summary results/s.md")
        command, reason, _ = contents.figure_command(figure, root)
        runs_here = env["RUNS"]
        assert command[2:] == [f"{runs_here}/done", "--out", f"{runs_here}/x", "--summary", f"{runs_here}/s.md"], \
            f"outputs under RUNS, folders found though RUNS has glob characters: {command} {reason}"
        assert contents.figure_command(("results/a.png", "attention", ["done"], ""), root)[1:] == \
            ("it needs the checkpoints (not committed)", False), "an attention picture without checkpoints: skipped"
    contents.RUNS = "results/runs"
    assert contents.output("results/x.md") == "results/x.md", "with the kit's own RUNS, results/ is written"
    code, out, err = launch_main(env, "--plots")
    assert code == 1 and err == f"error: {os.path.join(root, 'todo.png')}: none of its runs are here\n", \
        f"a figure that cannot be drawn fails --plots: {code} {err}"
    shutil.rmtree(root)

def has_child(pid):
    """Whether a process whose parent is pid runs (Linux: /proc/PID/stat, field 4)."""
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    return True
        except (OSError, IndexError, ValueError):  # gone meanwhile
            pass
    return False

def test_grid_signal_while_drawing_exits_128_plus_signal():
    """A signal while the grid draws its figures stops it with exit code 128 + the signal's number."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    os.makedirs(os.path.join(env["RUNS"], "todo"))  # a folder for the figure: its drawing starts
    child = subprocess.Popen([sys.executable, "results/launch.py", "--plots"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while child.poll() is None and not has_child(child.pid) and time.time() - t0 < 20:
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate()
    assert child.returncode == 143, f"SIGTERM while a figure is drawn: exit code 128 + 15: {child.returncode} {err}"
    shutil.rmtree(root)

def test_grid_job_decides_again_and_writes_its_report_whole():
    """A job decides its line's state again as it starts (another launcher may have finished it or hold it); it scores
    as eval.grid_scoring says; eval.py's report is written whole as eval.txt once eval.py succeeded; a failed score
    touches no other process's file."""
    root = tmpdir()
    env, lines = tiny_grid(root)
    with launcher_in_process(env), contextlib.redirect_stdout(io.StringIO()) as out:
        todo = lines[1]
        fake_finished_run(todo.folder, todo.options, [1, 2])  # another launcher finished it meanwhile
        assert todo.state == "new" and launch.run_job(todo) == "skipped" and todo.state == "finished", \
            f"a line finished since the launcher started is skipped: {todo.state}"
        os.makedirs(lines[2].folder)
        with held_elsewhere(lines[2].folder):
            assert launch.run_job(lines[2]) == "skipped" and "in use by another process" in out.getvalue(), \
                f"a folder held by another process is skipped: {out.getvalue()}"
        os.remove(os.path.join(todo.folder, "eval.json"))
        fake_checkpoint(todo.folder)  # trained, not scored
        with open(os.path.join(todo.folder, "eval.txt.tmp"), "w") as f:
            f.write("another process's report")
        call, launch.call = launch.call, lambda command, **kwargs: (2, "")  # eval.py fails
        try:
            assert launch.run_job(todo) == "failed", "a score that fails is a failed job"
        finally:
            launch.call = call
        with open(os.path.join(todo.folder, "eval.txt.tmp")) as f:
            assert f.read() == "another process's report", "a failed score leaves another process's file alone"
        assert not os.path.exists(os.path.join(todo.folder, "eval.txt")), "no report from a failed score"
        os.remove(os.path.join(todo.folder, "eval.txt.tmp"))
        commands = []
        call, launch.call = launch.call, lambda command, **kwargs: commands.append(command) or (0, "the report\n")
        try:
            assert launch.run_job(todo) == "done", "a score that succeeds is done"
        finally:
            launch.call = call
        score = evaluation.scoring(evaluation.parser.parse_args(commands[0][3:]), 20)
        assert commands[0][2] == "eval.py" and score == evaluation.grid_scoring("lstm_attn", [1, 2], 20), \
            f"the launcher scores as the grid's lines ask (eval.grid_scoring): {commands}"
        with open(os.path.join(todo.folder, "eval.txt")) as f:
            assert f.read() == "the report\n", "eval.txt holds eval.py's output"
        assert sorted(os.listdir(todo.folder)) == ["ckpt.pt", "config.json", "eval.txt", "log.jsonl"], \
            f"nothing else left behind: {os.listdir(todo.folder)}"
    shutil.rmtree(root)

def test_grid_readme_student_experiment_works_as_written():
    """The README's example experiment (its cell and its FIGURES entry, copied from the README) lists its lines and
    passes the figure's checks: its --schedules are the schedules of its lines."""
    with open("README.md") as f:
        section = f.read().split("## The grid")[1].split("\n## ")[0]
    cell = re.search(r"`(yield from cell\(.*?\))`", section.replace("\n", " "))[1]
    figure = re.search(r'`(\("results/[^`]*\))`', section.replace("\n", " "))[1]
    experiment = re.search(r"--list --only '(\^\w+/)'", section)[1]
    root = tmpdir()
    path = os.path.join(root, "grid.py")
    with open(path, "w") as f:
        f.write(f"from grid import cell, PLAIN, DAT\ndef grid():\n    {cell}\nFIGURES = [{figure}]\n")
    code, out, err = launch_main({**os.environ, "GRID": path, "RUNS": os.path.join(root, "runs")}, "--list",
                                 "--only", experiment)
    assert code == 0 and not err and len(out.splitlines()) == 4, f"the README's example: {code} {out} {err}"
    shutil.rmtree(root)

def test_grid_committed_lines_and_figures_all_work():
    """results/grid.py: no line that cannot work, every committed run scored at its line's test lengths, every
    figure's --schedules among its lines'."""
    code, out, err = launch_main({**os.environ, "GRID": "results/grid.py", "RUNS": "results/runs"}, "--status")
    total = dict(zip(contents.STATES, map(int, out.splitlines()[-1].split()[1:])))
    assert code == 0 and not err and total["error"] == 0 and total["finished"] > 0, f"the grid: {code} {out} {err}"

# -----------------------------------------------------------------------------
# the documents: the README's commands, figures and tables are the kit's

def test_readme_quick_start_figures_are_the_committed_runs():
    """The quick start's expected figures at 3x are the committed record of the same run."""
    text = " ".join(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")).read().split())
    number = r"([\d.]+)"
    found = re.search(rf"has at 3x state {number}, recall {number}, token {number} and sequence {number} \(`([^`]+)`",
                      text)
    assert found, "the README's quick start names its expected figures and their file"
    record = next(r for r in json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), found[5])))
                  if r["mult"] == 3)
    figures = [f"{record[k]:.4f}" for k in ("state_acc", "recall_acc", "token_acc", "seq_acc")]
    assert figures == list(found.groups()[:4]), f"the README says {found.groups()[:4]}, {found[5]} holds {record}"

def test_readme_results_table_is_copied_from_the_generated_tables():
    """Every row of the README's results table is a row of a table results/atlas.py wrote (a stale copy fails)."""
    with open("README.md") as f:
        table = [line for line in f.read().split("\n\n") if line.startswith("| setting | plain fails")][0]
    generated = set()
    for name in os.listdir("results"):
        if name.endswith(".md") and name not in ("README.md", "PREREGISTRATION.md"):
            with open(os.path.join("results", name)) as f:
                generated |= set(f.read().splitlines())
    rows = table.splitlines()[2:]
    assert 0 < len(rows) <= 10, f"the README's table has {len(rows)} rows"
    for row in rows:
        assert row in generated, f"README row not in any table of results/: {row}"

def test_tiny_train_eval_plot():
    """The quick start's path on a tiny run: train.py, eval.py with every extra score, plot.py's figure
    and table, and data.py's --save, end to end."""
    root = tmpdir()
    for seed in (0, 1):
        argv = TINY + ["--dat", "--delay", "10", "--ramp", "8", "--max_iters", "30", "--seed", str(seed),
                       "--out_dir", f"{root}/lstm_attn-dat-s{seed}"]
        code, out, err = run_cli(train.main, argv)
        assert code == 0, err
        assert "ms/step" in out and "left" in out
        code, out, err = run_cli(evaluation.main, [f"{root}/lstm_attn-dat-s{seed}", "--n_eval", "40", "--attn_off",
                                                   "--probe", "--by_age", "--mults", "1,3,4"])
        assert code == 0, err
    scored, records = run_folder.read_eval(f"{root}/lstm_attn-dat-s0/eval.json")
    assert [r["n"] for r in records] == [4, 12, 16] and [r["mult"] for r in records] == [1, 3, 4]
    for r in records:
        for view in (r, r["attn_off"]):
            assert all(0 <= view[k] <= 1 for k in ("state_acc", "recall_acc", "token_acc", "seq_acc"))
        assert 0 <= r["probe_state_acc"] <= 1
        assert len(r["recall_by_age"]) == r["mult"] and all(0 <= a <= 1 for a in r["recall_by_age"])
    with open(f"{root}/lstm_attn-dat-s0/log.jsonl") as f:
        log = [json.loads(line) for line in f]
    assert {"step", "loss", "lr", "gate", "ms_per_step", "token_acc_3x"} <= log[-1].keys()
    assert [e["gate"] for e in log] == [0.0, 0.0, 0.625, 1.0, 1.0, 1.0]
    code, out, err = run_cli(plot.main, [root, "--out", f"{root}/fig.png", "--summary", f"{root}/summary.md"])
    assert code == 0, err
    assert "2 runs, 1 labels" in out and os.path.getsize(f"{root}/fig.png") > 10000
    with open(f"{root}/summary.md") as f:
        rows = f.read().splitlines()[2:]
    label = "lstm_attn-S3-len4-keys16-q3-d16-bs16-iters30-dat10r8"  # every option that differs from the defaults
    assert len(rows) == 3 and rows[0].startswith(f"| {label} (0,1) | 1x |"), rows
    records = [run_folder.read_eval(f"{root}/lstm_attn-dat-s{s}/eval.json")[1] for s in (0, 1)]
    tokens_4x = [r[2]["token_acc"] for r in records]
    assert f"{np.mean(tokens_4x):.3f} [{min(tokens_4x):.3f}, {max(tokens_4x):.3f}]" in rows[2]
    code, out, err = run_cli(atlas.main, [root, "--out", f"{root}/atlas", "--schedules", "dat10r8"])
    bands = [r[2]["recall_by_age"] for r in records]
    means = " | ".join(f"{np.mean(b):.3f}" for b in zip(*bands))
    row = f"| {label.removesuffix('-dat10r8')} | dat10r8 | 2 | 4x | {means} |"
    assert code == 0 and row in open(f"{root}/atlas.md").read().splitlines(), (err, row)
    code, out, err = run_cli(plot.main, [root, "--sweep", "seed", "--out", f"{root}/sweep.png"])
    assert code == 0 and "2 runs, 2 values of seed" in out, err
    expect_refusal(plot.main, [root, "--sweep", "group"])  # not numeric
    code, out, err = run_cli(attention.main, [f"{root}/lstm_attn-dat-s0", "--out", f"{root}/attn.png"])
    assert code == 0 and os.path.getsize(f"{root}/attn.png") > 10000, err
    code, out, err = run_cli(data.main, ["--group", "A5", "--n", "6", "--num", "5", "--save", f"{root}/a5.npz"])
    arrays = np.load(f"{root}/a5.npz")
    assert arrays["tokens"].shape == arrays["targets"].shape == (5, 2 * 6 + 1 + 6)
    assert arrays["tokens"].dtype == np.int64
    shutil.rmtree(root)

# -----------------------------------------------------------------------------

def one_thread():
    torch.set_num_threads(1)  # tiny models: one thread is faster, and two spin against any other busy process

def run_one(name):
    """Run one test in this process: (name, passed, seconds, the traceback of a failure)."""
    t0 = time.time()
    try:
        globals()[name]()
        return name, True, time.time() - t0, ""
    except (Exception, SystemExit):
        return name, False, time.time() - t0, traceback.format_exc()

if __name__ == "__main__":
    words = sys.argv[1:]  # python test_all.py WORD...: the tests whose names hold one of the words
    names = [name for name, fn in list(globals().items()) if name.startswith("test_") and callable(fn)
             and (not words or any(word in name for word in words))]
    if not names:
        print(f"error: no test's name holds {' or '.join(map(repr, words))}", file=sys.stderr)
        sys.exit(2)
    # one test per core at a time, in worker processes forked after the imports (each test makes its own folders);
    # forking a process that has loaded torch and matplotlib is safe on Linux only: elsewhere one at a time, here
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    reported, failed = [], 0
    with contextlib.ExitStack() as stack:
        if sys.platform == "linux":
            fork = multiprocessing.get_context("fork")
            run_all = stack.enter_context(ProcessPoolExecutor(min(cores, len(names)), fork, one_thread)).map
        else:
            one_thread()
            run_all = map
        try:
            for name, passed, seconds, failure in run_all(run_one, names):  # printed in order
                reported.append(name)
                failed += not passed
                print(f"{'ok   ' if passed else 'FAIL '} {name} ({seconds:.1f} s)\n{failure}".strip(), flush=True)
        except BrokenProcessPool as e:  # a worker died (a crash in C, os._exit): the tests not reported count failed
            failed += len(names) - len(reported)
            print(f"FAIL  a worker process died ({e}) while {', '.join(n for n in names if n not in reported)} ran "
                  "or waited", flush=True)
    print(f"{len(names) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
