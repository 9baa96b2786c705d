"""
The study's table of contents: every run behind results/, grouped by the question it answers, and every figure and
table drawn from them. bash results/commands.sh reads it (results/launch.py: --list, --status, --job, --workers,
--plots).

A run is one line "EXPERIMENT MULTS TRAIN_OPTIONS...": its folder is RUNS/EXPERIMENT/NAME-s<SEED>, NAME made by
train.py from the options, and eval.py scores it at the test lengths MULTS (multiples of --train_len). Lines are
numbered in the order below; a new experiment goes at the end of grid(), with a one-line comment saying what it asks.
A figure names its runs as EXPERIMENT or EXPERIMENT/GLOB (with {a,b} alternatives), relative to RUNS.
"""
M = "1,2,3,4,6,8"   # test lengths, as multiples of --train_len
M16 = "1,2,3,4"     # at --train_len 16: 8x would need 128 distinct keys, and the runs have 64
PLAIN, DAT = "", "--dat"   # the hybrid without and with DAT (--delay 5000 by default)
CORES = ("", "--core gru", "--core diagonal", "--core diagonal --transitions signed",
         "--core diagonal --transitions complex", "--core delta --beta_max 2",
         "--core delta --beta_max 2 --householder 2")  # the LSTM, then the recurrent cores of model.py

def cell(experiment, seeds, setting, *schedules, mults=M):
    """One line per seed and schedule, a seed's schedules together (the paired comparison trains side by side)."""
    for seed in seeds:
        for schedule in schedules:
            yield " ".join(filter(None, (experiment, mults, f"--seed {seed}", setting, schedule)))

def grid():
    # the headline: the lstm_attn hybrid on S3, plain against DAT
    yield from cell("headline", range(20), "", PLAIN, DAT)
    # baselines: an LSTM alone, a Transformer alone (RoPE, MLPs)
    yield from cell("baselines", range(10), "", "--model lstm", "--model transformer")
    # other hybrid designs: attention first (A A L L) and interleaved (L A L A)
    yield from cell("designs", range(10), "--model attn_lstm --n_lstm 2", PLAIN, DAT)
    yield from cell("designs", range(20), "--model interleaved --n_lstm 2", PLAIN, DAT)
    # second groups: A5 (not learned at this size), Z5
    yield from cell("group", range(3), "--group A5", PLAIN, DAT)
    yield from cell("group", range(10), "--group Z5", PLAIN, DAT)
    # the delay sweep (delays 0 and 5000 are the headline runs)
    yield from cell("delay", range(10), "--dat", *(f"--delay {d}" for d in (250, 500, 1000, 2000, 4000)))
    # which half of DAT matters: a ramp, attention learning-rate warmup only, frozen attention only
    yield from cell("modes", range(10), "--dat", "--ramp 1000", "--dat_mode lr", "--dat_mode freeze")
    # a delay that needs no tuning: attention on once the LSTM has the state (--delay auto)
    yield from cell("auto", range(10), "--dat --delay auto", "")
    yield from cell("auto", range(3), "--group A5 --dat --delay auto", "")
    # attention blocks with MLPs
    yield from cell("mlp", range(10), "--mlp", PLAIN, DAT)
    # --train_len 16 before the default became 8 (two of these predate model.py writing attention out, so a rerun
    # agrees only up to float rounding); the same runs are in atlas/, so the all-runs summary leaves this out
    yield from cell("explore", [0], "--train_len 16", DAT, PLAIN, "--pos rope", mults=M16)
    # the headline cell on a CUDA GPU (bf16 autocast, data drawn on the GPU: other runs than the CPU's); a machine
    # without CUDA skips these lines
    yield from cell("gpu", range(20), "--device cuda", DAT, PLAIN)

    # A5, where the hybrid at d_model 64 learns nothing: how far does an LSTM alone hold the state, and with what lr?
    A5 = "--group A5 --d_model 128"
    yield from cell("a5", [0], f"--model lstm {A5} --max_iters 16000", "--lr 0.001")
    yield from cell("a5", range(20), f"--model lstm {A5}", "--max_iters 16000", "--max_iters 32000")
    # the hybrid on A5 given those 32000 steps, plain and --delay auto
    yield from cell("a5", range(20), f"{A5} --max_iters 32000", PLAIN, "--dat --delay auto")

    # the shortcut atlas (results/README.md, Atlas): plain against DAT cell by cell, 10 or 20 seeds a cell
    # S3 with RoPE
    yield from cell("atlas", range(20), "--pos rope", PLAIN, DAT)
    # S3 with RoPE: is DAT's recall failure the 3000 steps its attention trains after the delay? shorter delays
    yield from cell("atlas", range(20), "--pos rope --dat", "--delay 1000", "--delay 2000", "--delay auto")
    # ... and twice the steps
    yield from cell("atlas", range(20), "--pos rope --max_iters 16000", PLAIN, DAT, "--dat --delay 1000")
    # S3 at widths 32, 96, 128: does the plain hybrid's failure rate depend on its size?
    yield from cell("atlas", range(10), "--d_model 32", PLAIN, DAT)
    yield from cell("atlas", range(20), "--d_model 96", PLAIN, DAT)
    yield from cell("atlas", range(20), "--d_model 128", PLAIN, DAT, "--dat --delay auto")
    # S3 trained twice as long: is the plain hybrid's failure a short budget's?
    yield from cell("atlas", range(20), "--max_iters 16000", PLAIN, DAT)
    # Z5 with RoPE, and its short and automatic delays
    yield from cell("atlas", range(10), "--group Z5 --pos rope", PLAIN, DAT, "--dat --delay 2000")
    yield from cell("atlas", range(20), "--group Z5 --pos rope", "--dat --delay auto")
    # Z5 without position encoding: the short and automatic delays (plain and DAT 5000 are in group/)
    yield from cell("atlas", range(10), "--group Z5 --dat", "--delay 2000", "--delay auto")
    # Z5 at twice the width: is the width's cure S3's alone?
    yield from cell("atlas", range(10), "--group Z5 --d_model 128", PLAIN, "--dat --delay auto")
    yield from cell("atlas", range(20), "--group Z5 --d_model 128", DAT)
    # A4 without position encoding and with RoPE
    yield from cell("atlas", range(10), "--group A4", PLAIN, DAT, "--dat --delay 2000", "--dat --delay auto")
    yield from cell("atlas", range(20), "--group A4 --pos rope", PLAIN, "--dat --delay auto")
    yield from cell("atlas", range(10), "--group A4 --pos rope", DAT, "--dat --delay 2000")
    # A4 at twice the steps: is the attention's training time what it lacks?
    yield from cell("atlas", range(10), "--group A4 --max_iters 16000", PLAIN, DAT)
    yield from cell("atlas", range(20), "--group A4 --pos rope --max_iters 16000", PLAIN, DAT, "--dat --delay auto")
    # A4 at widths 128 and 256: cured by more width?
    yield from cell("atlas", range(20), "--group A4 --d_model 128", PLAIN)
    yield from cell("atlas", range(10), "--group A4 --d_model 128", DAT, "--dat --delay auto")
    yield from cell("atlas", range(10), "--group A4 --d_model 256", PLAIN, DAT)
    # A4 at a lower learning rate: is the lr what fails at d_model 256? (and its control at d_model 64)
    yield from cell("atlas", range(10), "--group A4 --d_model 256 --lr 0.001", PLAIN, DAT)
    yield from cell("atlas", range(10), "--group A4 --lr 0.001", PLAIN, DAT, "--max_iters 24000")
    # Z6: abelian, the order of S3; does it fail like Z5 or not like S3?
    yield from cell("atlas", range(10), "--group Z6", PLAIN, DAT, "--dat --delay auto")
    yield from cell("atlas", range(10), "--group Z6 --d_model 128", PLAIN, "--dat --delay auto")
    yield from cell("atlas", range(20), "--group Z6 --d_model 128", DAT)
    # D4 (not abelian, its counts fix 2 of its 3 bits) against Z8: commutativity or counting?
    for group in ("D4", "Z8"):
        yield from cell("atlas", range(10), f"--group {group}", PLAIN, DAT, "--dat --delay auto")
        yield from cell("atlas", range(10), f"--group {group} --d_model 128", "--dat --delay auto")
    yield from cell("atlas", range(25), "--group D4 --d_model 128", PLAIN, DAT)
    yield from cell("atlas", range(20), "--group Z8 --d_model 128", PLAIN, DAT)
    # the interleaved design with RoPE, where DAT 5000 is also worse than plain
    yield from cell("atlas", range(20), "--model interleaved --n_lstm 2 --pos rope", PLAIN, DAT)
    yield from cell("atlas", range(10), "--model interleaved --n_lstm 2 --pos rope", "--dat --delay 1000")
    # A5 at the size where an LSTM alone learns it (results/README.md, A5)
    yield from cell("atlas", range(20), "--group A5 --d_model 128 --max_iters 16000", PLAIN, "--dat --delay 10000",
                    "--dat --delay auto")
    # --train_len 16, without position encoding and with RoPE (its short delay, --delay auto, twice the steps)
    yield from cell("atlas", range(20), "--train_len 16", PLAIN, DAT, "--dat --delay auto", mults=M16)
    yield from cell("atlas", range(10), "--train_len 16 --pos rope", PLAIN, DAT, "--dat --delay 1000",
                    "--dat --delay auto", mults=M16)
    yield from cell("atlas", range(10), "--train_len 16 --pos rope --max_iters 16000", PLAIN, "--dat --delay 1000",
                    mults=M16)

    # the cores ladder (results/README.md, Cores): each recurrent core alone, one layer, on Z2, Z5 and S3; seed by
    # seed across the cells, so that a partial grid covers every cell (the LSTM's S3 cell is baselines/)
    for seed in range(10):
        for group in ("Z2", "Z5", "S3"):
            for core in CORES:
                if (core, group) != ("", "S3"):
                    yield from cell("cores", [seed], f"--model lstm --group {group} {core}".strip(), PLAIN)

    # cores in hybrids (results/README.md, Cores in hybrids): the lstm_attn hybrid with a core, plain against --delay
    # auto where one layer of the core can track the group, against DAT 5000 where it cannot; seed by seed again
    gru, unit, signed, complex_, delta, product = CORES[1:]
    AUTO = "--dat --delay auto"
    for seed in range(10):
        for core, group, delayed in ((gru, "Z5", AUTO), (gru, "S3", AUTO), (product, "Z5", AUTO), (product, "S3", AUTO),
                                     (complex_, "Z5", AUTO), (signed, "Z2", AUTO), (delta, "Z2", AUTO),
                                     (unit, "S3", DAT), (complex_, "S3", DAT)):
            yield from cell("cores_hybrid", [seed], f"--group {group} {core}", PLAIN, delayed)

    # where the state lives (results/README.md, Where the state lives): plain hybrids on new seeds of S3 and D4, each
    # run's 3x verdict predicted from the probe of its recurrent part; seed by seed across the two cells
    for seed in range(100, 130):
        for group in ("S3", "D4")[:1 + (seed < 110)]:
            yield from cell("mechanism", [seed], f"--group {group}", PLAIN)

    # beyond groups (results/README.md, Beyond groups): the lstm_attn hybrid on automata that are not groups, plain,
    # DAT 5000 and --delay auto, and each core alone on one size of each; seed by seed across both experiments
    for seed in range(10):
        for group in ("F2", "G4", "G6", "R3", "R5"):
            yield from cell("automata", [seed], f"--group {group}", PLAIN, DAT, AUTO)
        for group in ("F2", "G4", "R5"):
            for core in CORES:
                yield from cell("automata_cores", [seed], f"--model lstm --group {group} {core}".strip(), PLAIN)

def experiments():
    return sorted({line.split()[0] for line in grid()})

AUTOMATA = ("automata", "automata_cores")  # the experiments on automata that are not groups

# The figures and tables: (output, tool, runs, options). rates: results/atlas.py, failure rates with intervals
# (output: PREFIX.md, .json, .png); draw: plot.py, accuracy against test length (or against --sweep); attention:
# results/attention.py, where one run's attention looks. A figure is drawn when each of its runs (EXPERIMENT or
# EXPERIMENT/GLOB) matches a line of the selection (bash results/commands.sh --plots [--only REGEX]); a rates figure
# names its schedules with --schedules (plain,dat5000 if not), each one a schedule of its lines.
# S3 at the default setting, plain, DAT 5000 and --delay auto, with the other groups that have all three
GROUPS_AT_DEFAULT = ["headline", "auto/lstm_attn-S3-*", "group/lstm_attn-Z5-{plain,dat5000}-s*",
                     "atlas/lstm_attn-{Z5,A4,Z6,D4,Z8}-{plain,dat5000,datauto}-s*"]
RECALL_RUNS = ["headline/lstm_attn-S3-dat5000-s[5-9]", "atlas/lstm_attn-S3-rope-dat5000-s[0-4]",
               "atlas/lstm_attn-S3-rope-{dat1000,iters16000,len16-dat1000,len16-datauto,len16-iters16000-dat1000}-*",
               "atlas/interleaved-S3-rope-nlstm2-dat1000-*", "atlas/lstm_attn-{S3,Z5,A4}-rope-{dat2000,datauto}-*",
               "atlas/lstm_attn-A4-rope-iters16000-dat*"]
FIGURES = [
    # every cell of the atlas, with the delays besides 5000: 10000 for A5, 1000, 2000 and auto under RoPE
    ("results/atlas", "rates", ["headline", "atlas", "group/lstm_attn-Z5-*", "designs/interleaved-*", "gpu"],
     "--schedules plain,dat5000,dat10000,dat1000,dat2000,datauto"),
    # the width cells beside their d_model 64 ones, the figure against d_model
    ("results/width_rates", "rates", ["headline", "group/lstm_attn-Z5-*",
                                      "atlas/lstm_attn-{A4,Z6,D4,Z8}-{plain,dat5000}-s*",
                                      "atlas/lstm_attn-{S3,A4,Z5,Z6,D4,Z8}-d[0-9]*", "atlas/lstm_attn-A4-lr*"],
     "--sweep d_model"),
    # recall by how far back its key was bookmarked (eval.py --by_age): DAT 5000 and the short delays under RoPE
    ("results/recall_by_age", "rates", RECALL_RUNS, "--schedules dat5000,dat1000,dat2000,datauto,plain"),
    # S3 at the default setting beside the other groups with plain, DAT 5000 and --delay auto (GROUPS_AT_DEFAULT)
    ("results/headline_rates", "rates", GROUPS_AT_DEFAULT, "--schedules plain,dat5000,datauto"),
    ("results/modes_rates", "rates", ["headline", "modes"], "--schedules plain,dat5000,freeze5000,lr5000,dat5000r1000"),
    ("results/delay_rates", "rates", ["headline", "delay"],
     "--schedules plain,dat250,dat500,dat1000,dat2000,dat4000,dat5000"),
    ("results/mlp_rates", "rates", ["mlp"], "--schedules plain,dat5000"),
    ("results/auto_rates", "rates", ["headline", "auto/lstm_attn-S3-*"], "--schedules plain,datauto,dat5000"),
    ("results/baseline_rates", "rates", ["baselines"], "--schedules plain"),
    ("results/design_rates", "rates", ["designs/attn_lstm-*"], "--schedules plain,dat5000"),
    ("results/a5_lstm_rates", "rates", ["a5/lstm-A5-d128-iters{16000,32000}-plain-s*"], "--schedules plain"),
    ("results/a5_hybrid_rates", "rates", ["atlas/lstm_attn-A5-d128-iters16000-*", "a5/lstm_attn-*"],
     "--schedules plain,datauto"),
    ("results/headline.png", "draw", ["headline"], ""),
    ("results/baselines.png", "draw", ["headline/*-s[0-2]", "baselines"], ""),
    ("results/designs.png", "draw", ["designs"], ""),
    ("results/groups.png", "draw", ["group"], ""),
    ("results/delay_sweep.png", "draw", ["delay", "headline/*-s[0-9]"], "--sweep delay"),
    ("results/modes.png", "draw", ["modes", "headline/*-s[0-9]"], "--summary results/modes_summary.md"),
    ("results/auto.png", "draw", ["auto", "group/*-s[0-2]"], ""),
    ("results/mlp.png", "draw", ["mlp"], ""),
    ("results/explore_len16.png", "draw", ["explore"], ""),
    ("results/a5.png", "draw", ["a5/*-s0"], ""),
    # attention pictures need the checkpoints, which are not committed: drawn only where the runs were trained
    ("results/attention_dat.png", "attention", ["headline/lstm_attn-S3-dat5000-s0"], ""),
    ("results/attention_plain.png", "attention", ["headline/lstm_attn-S3-plain-s0"], ""),
    # which group each core alone learns and extends (results/ladder.py)
    ("results/cores_ladder", "ladder", ["cores", "baselines/lstm-S3-*"], ""),
    # the hybrid with each core, plain against the delayed schedule: the atlas's columns, and the table beside the
    # core alone (results/cores_hybrid.py; the LSTM's cells are the committed runs of the same setting)
    ("results/cores_hybrid_rates", "rates", ["cores_hybrid"], "--schedules plain,datauto,dat5000"),
    ("results/cores_hybrid", "cores_hybrid", ["cores_hybrid", "cores", "baselines/lstm-S3-*", "headline/*-plain-*",
                                              "auto/lstm_attn-S3-*", "group/lstm_attn-Z5-plain-*",
                                              "atlas/lstm_attn-Z5-datauto-*"], ""),
    # where the state lives: the probe of the recurrent part against attention off, and the 3x verdict, per schedule
    # and cell, with the confirmation on new seeds (results/mechanism.py; explore/ repeats atlas/ runs; the groups'
    # runs only, the automata have their own tables)
    ("results/mechanism", "mechanism", [e for e in experiments() if e not in ("explore", *AUTOMATA)],
     "--new mechanism"),
    # beyond groups: the hybrid on automata that are not groups, the atlas's columns per automaton and schedule (and
    # its figure), then entry 71's predictions judged, and post hoc the recall the LSTM learned alone before attention
    # joined, beside the groups at the default setting (results/automata.py)
    ("results/automata_rates", "rates", ["automata"], "--schedules plain,dat5000,datauto"),
    ("results/automata", "automata", ["automata", *GROUPS_AT_DEFAULT], ""),
    # ... and each core alone on them, against entry 70's theory (results/ladder.py)
    ("results/automata_ladder", "ladder", ["automata_cores"], "--theory automata"),
    # every run in one table (the figure itself is thrown away)
    (None, "draw", [e for e in experiments() if e != "explore"], "--summary results/summary.md"),
]
