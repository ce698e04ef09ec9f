"""The registry of result sets: what ``labkit results run NAME`` computes into
``results/NAME.json`` and the notebooks read. "Where is Fig. 3 defined?" has one answer: here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Experiment", "EXPERIMENTS", "experiment", "PRIMARY_SEEDS", "SECONDARY_SEEDS",
           "CONFIRMATORY_TABLE1_SEEDS", "CONFIRMATORY_LAW_SEEDS", "TABLE1_ARMS"]


@dataclass(frozen=True)
class Experiment:
    """A named result set: a point function (``"module:function"``), its grids (a list of
    grids whose union is the set; each a mapping axis -> list or scalar), a one-line purpose,
    and the keys of a row's result that :func:`labkit.cli.verify` compares."""

    point_fn: str
    grids: tuple
    purpose: str
    compare: tuple = ("memorization", "log_likelihood", "train_loss", "null_memorization")
    prefix_key: str | None = "steps"  # the config key that shortens a run (None: rows are atomic)
    curve_steps: str = "steps"  # the result key holding the steps at which curves were evaluated
    prefix_args: dict = field(default_factory=dict)  # extra arguments of a shortened run
    # Bump when a change of the point function (or of what it calls) alters its results: rows
    # stored at another version are then recomputed. A new defaulted parameter needs no bump.
    version: int = 1

    def __post_init__(self):
        from collections.abc import Mapping

        if not isinstance(self.point_fn, str) or self.point_fn.count(":") != 1:
            raise ValueError(f"point_fn must be 'module:function', got {self.point_fn!r}")
        if isinstance(self.grids, Mapping) or not isinstance(self.grids, (tuple, list)) or \
                not all(isinstance(g, Mapping) for g in self.grids):
            raise TypeError("grids must be a tuple of grids, each a mapping axis -> list or scalar, "
                            f"e.g. ({{'n': [16, 32], 'seed': [0, 1]}},); got {self.grids!r:.80}")
        if isinstance(self.compare, str) or not all(isinstance(k, str) for k in self.compare):
            raise TypeError(f"compare must be a tuple of result keys, got {self.compare!r}")
        for name in ("prefix_key",):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a parameter name or None, got {value!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, (int, str)):
            raise TypeError(f"version must be an int or a string, got {self.version!r}")


_STUDY_TRAIN = {"depth": 2, "batch_size": 128, "lr": 3e-3, "num_samples": 1000, "sample_steps": 100}


# The primary family of claims rests on eight seeds (0-7), the secondary on three (0-2).
PRIMARY_SEEDS = list(range(8))
SECONDARY_SEEDS = [0, 1, 2]
# The confirmatory sets: seeds computed only after the claims that read them were frozen
# (``labkit claims freeze``). Table 1's small-t vs random comparison: 24 runs, about 80% power
# at a 3-point effect with the spread of the first eight runs (about 5 points).
CONFIRMATORY_TABLE1_SEEDS = list(range(8, 32))
CONFIRMATORY_LAW_SEEDS = list(range(8, 16))


def _study_grids():
    # The step budget grows with n (500 n, at least 16,000): enough for the curves to flatten if
    # the memorization time grows about linearly in n, and visibly censored if it grows faster.
    # Width 256 on both mixtures is the primary law (eight seeds); the 2-D toy at width 64 is
    # secondary (three seeds).
    grids = []
    for mixture, dim, width, seeds in (("paper", 8, 256, PRIMARY_SEEDS), ("gmm4", 2, 256, PRIMARY_SEEDS),
                                       ("gmm4", 2, 64, SECONDARY_SEEDS)):
        for n in (16, 32, 64, 128):
            grids.append({"mixture": mixture, "dim": dim, "n": n, "width": width,
                          "steps": max(16000, 500 * n), "seed": seeds, **_STUDY_TRAIN})
    # The confirmatory 2-D law (width 256): eight new seeds, n = 128 trained twice as long
    # (128,000 steps), where 5 of the first 8 runs end before memorization reaches its mark.
    for n in (16, 32, 64, 128):
        grids.append({"mixture": "gmm4", "dim": 2, "n": n, "width": 256,
                      "steps": max(16000, (1000 if n == 128 else 500) * n),
                      "seed": CONFIRMATORY_LAW_SEEDS, **_STUDY_TRAIN})
    return tuple(grids)


EXPERIMENTS: dict[str, Experiment] = {
    "training_time": Experiment(
        point_fn="labkit.experiments:mixture_curve",
        grids=_study_grids(),
        purpose="memorization and log-likelihood against training steps, n = 16-128: the d = 8 "
                "mixture and the 2-D toy at width 256 (8 seeds), the 2-D toy at width 64 (3 seeds) "
                "(Bonnaire et al.'s training-time law); the 2-D toy at width 256 on 8 more seeds "
                "(8-15, confirmatory) with n = 128 trained 128,000 steps",
    ),
}

# Fig. 2 (2-D, K = 4): widths from 2 to 256, three seeds, trained 32,000 steps: twice the study's
# budget at n = 16-32, where memorization still rose by 5-15 points per doubling of steps at 16,000
# (no plateau within reach on a CPU), so every width is far past its memorization time.
_FIG2 = {"mixture": "gmm4", "dim": 2, "width": [2, 4, 8, 16, 64, 256], "steps": 32000, **_STUDY_TRAIN}
EXPERIMENTS["fig2"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=({**_FIG2, "n": 16, "seed": 0, "keep_samples": True}, {**_FIG2, "n": 16, "seed": [1, 2]}),
    purpose="the paper's Fig. 2 on the 2-D toy at n = 16: widths 2-256, 3 seeds, 32,000 steps "
            "(samples kept for seed 0)",
)

# Fig. 3 at CPU scale (d = 8 unless said): 16,000 steps, the study's budget at n <= 32.
_FIG3 = {"mixture": "paper", "steps": 16000, "seed": [0, 1, 2], **_STUDY_TRAIN}
EXPERIMENTS["fig3"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=(
        {**_FIG3, "dim": 8, "n": [16, 256], "width": [16, 64, 256], "weight_decay": 0.0},  # 3a left, 3b width
        {**_FIG3, "dim": 8, "n": 64, "width": 256, "weight_decay": 0.0},  # the middle n (and 0% duplication)
        {**_FIG3, "dim": [4, 16], "n": 16, "width": 256, "weight_decay": 0.0},  # 3a right
        {**_FIG3, "dim": 8, "n": [16, 256], "width": 256, "weight_decay": [0.1, 1.0]},  # 3b decay
        # the settings of the primary claims (width, n and decay trends) on five more seeds
        {**_FIG3, "dim": 8, "n": [16, 256], "width": [16, 256], "weight_decay": 0.0, "seed": PRIMARY_SEEDS[3:]},
        {**_FIG3, "dim": 8, "n": 16, "width": 256, "weight_decay": [0.1, 1.0], "seed": PRIMARY_SEEDS[3:]},
        {**_FIG3, "dim": 8, "n": 256, "width": 256, "weight_decay": 1.0, "seed": PRIMARY_SEEDS[3:]},
    ),
    purpose="the paper's Fig. 3 at CPU scale: d = 8 (4 and 16 for the dimension panel), n = 16-256, "
            "widths 16-256, weight decay 0-1, 16,000 steps; 3 seeds, 8 for the settings of the "
            "width, n and decay trends",
)

EXPERIMENTS["duplication"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=({**_FIG3, "dim": 8, "n": 64, "width": 256, "duplicate_fraction": [0.1, 0.3],
            "duplicate_copies": 10},),
    purpose="duplicated training points (10 copies of 10% or 30% of 64 points), d = 8, width 256, "
            "3 seeds (0% is the matching Fig. 3 row)",
)


def experiment(name: str) -> Experiment:
    """The registered :class:`Experiment` called ``name`` (see :data:`EXPERIMENTS`)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


# Table 1, one row per (run, arm, ratio); a run's arms share its cached base DiT, so a new arm
# adds its own rows and leaves the others valid. Runs 0-7: every arm at 20% and the 10-50% sweep
# of small-t importance and random pruning; runs 8-31 (confirmatory): the paper's arms and the
# fine-tuned control at 20%. The confirmatory grid lists the arm before the seed (the last axis
# varies fastest): the rows run arm by arm, each first arm of a run training that run's base, so
# two workers never train the same base and an interrupted run holds the paper's two arms first.
TABLE1_ARMS = ["original", "fine-tuned control", "small-t importance", "uniform-t importance",
               "random", "magnitude"]
_CONFIRMATORY_ARMS = ["small-t importance", "random", "original", "fine-tuned control"]
EXPERIMENTS["table1"] = Experiment(
    point_fn="labkit.experiments:table1_arm",
    grids=({"n": 32, "seed": PRIMARY_SEEDS, "arm": TABLE1_ARMS},
           {"n": 32, "seed": PRIMARY_SEEDS, "arm": ["small-t importance", "random"],
            "ratio": [0.1, 0.3, 0.4, 0.5]},
           {"n": 32, "arm": _CONFIRMATORY_ARMS, "seed": CONFIRMATORY_TABLE1_SEEDS}),
    purpose="Table 1 on 32 digits, one row per (run, arm, ratio): runs 0-7 with every arm and "
            "the 10-50% ratio sweep, runs 8-31 (confirmatory) with the paper's arms and the "
            "fine-tuned control",
    compare=("probe_memorization", "null_memorization", "memorization", "fd", "precision",
             "recall", "params", "heads"),
    prefix_key="train_steps", curve_steps="probe_steps", prefix_args={"curve_only": True},
)

# How long until the original DiT's memorization levels off, at n = 32 and at a larger n? The
# base's memorization probe alone (no arms), 20,000 steps in batches of 32 (full-batch at n = 32).
EXPERIMENTS["table1_larger_n"] = Experiment(
    point_fn="labkit.experiments:table1_seed",
    grids=({"n": [32, 128], "seed": 0, "train_steps": 20000, "curve_only": True},),
    purpose="the original DiT's memorization during 20,000 training steps on 32 and 128 digits (probe only): "
            "where does it level off, and is there a larger n where Table 1 can be run on a CPU?",
    compare=("probe_memorization", "null_memorization"),
    prefix_key="train_steps", curve_steps="probe_steps",
)
