"""The mixture protocols of notebook 02: a training curve (:func:`mixture_curve`), one trained
network measured once (:func:`memorization_point`) and the paper's full Fig. 3 grids.

Every run of the committed mixture result sets is :func:`mixture_curve`: a ``ScoreMLP``
trained by denoising score matching on ``n`` draws of a Gaussian mixture, evaluated on a
geometric grid of training steps (:func:`eval_steps`). At each evaluation it samples the
reverse SDE and records

- ``memorization``: the 1/3 rule against the training set (its ``null_memorization`` is the same
  rule on fresh draws of the true law, so only the excess ``memorization - null`` means
  memorizing);
- ``log_likelihood``: the mean log-density of the samples under the true mixture
  (``reference_log_likelihood``: of fresh draws), the dashed curves of the paper's Fig. 3b;
- ``train_loss``: the mean training loss since the previous evaluation.

Training is deterministic given ``seed`` and the evaluations draw from their own generator, so the
curve of a shorter run is exactly the prefix of a longer one: ``labkit verify --max-steps``
recomputes a prefix of a row and compares it.

The data is a named law (``mixture="paper"``, or any 2-D toy of :data:`labkit.data.TOYS`:
``"gmm4"``, ``"ring"``, ``"moons"``) or, from Python, ``data=``: a researcher's own points (a
tensor, an array, or a :class:`labkit.data.PointCloud` with an optional sampler of fresh draws
and log-density). Memorization needs only the points; its null rate needs fresh draws; the
log-likelihood columns are present only with a log-density. :func:`training_time_study` runs
the curve over seeds and reads off the training times in one call.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from functools import partial

import numpy as np
import torch

from .. import _checks
from ..store import run_dir

__all__ = ["eval_steps", "mixture_curve", "training_time_study", "memorization_point",
           "PAPER_GRIDS", "paper_grid", "MIXTURES"]

# Part of the name of a curve's checkpoint folder: bumped when a change alters what it holds.
CURVE_VERSION = 1


def eval_steps(steps: int, first: int = 125, per_octave: int = 2) -> list[int]:
    """The evaluation steps of a run of ``steps`` steps: 0, then ``first * 2^(k / per_octave)``
    rounded, up to and including ``steps``. The grid depends only on ``first`` and
    ``per_octave``, so a shorter run's grid is a prefix of a longer one's."""
    steps = _checks.positive_int(steps, "steps")
    first = _checks.positive_int(first, "first")
    per_octave = _checks.positive_int(per_octave, "per_octave")
    out, k = [0], 0
    while True:
        s = int(round(first * 2 ** (k / per_octave)))
        if s >= steps:
            break
        if s > out[-1]:
            out.append(s)
        k += 1
    out.append(steps)
    return out


class _Mixtures(Sequence):
    """The names a protocol's ``mixture`` takes, read when used: ``"paper"``, then every toy
    registered in :data:`labkit.data.TOYS` at that moment (a toy added later is accepted)."""

    def _names(self) -> tuple[str, ...]:
        from ..data import TOYS

        return ("paper", *TOYS)

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __eq__(self, other) -> bool:
        return isinstance(other, (tuple, list, _Mixtures)) and self._names() == tuple(other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._names())


# The named laws a protocol's ``mixture`` takes: the paper's d-dimensional mixture, then every
# registered 2-D toy (labkit.data.TOYS). A live view: it equals ("paper", *TOYS) whenever read.
MIXTURES = _Mixtures()


def _training_set(mixture: str, data, dim, n, num_components: int, mean_std: float, generator):
    """``(points, sample, log_prob, dim)``: the training points (n, d) of a named law (drawn
    with ``generator``: the paper's mixture first draws its means) or of ``data``, with the
    sampler of fresh draws and the log-density where there are ones (else None)."""
    from ..data import TOYS, PointCloud, make_gmm, toy_2d

    if data is not None:
        if mixture != "paper":
            raise ValueError(f"pass mixture (a registered name) or data (your own points), not "
                             f"both; got mixture={mixture!r} and data")
        cloud = data if isinstance(data, PointCloud) else PointCloud(data)
        if dim is not None and dim != cloud.dim:
            raise ValueError(f"dim={dim} but the data's points have {cloud.dim} columns; omit dim")
        if n is not None and n != cloud.n:
            raise ValueError(f"n={n} but the data holds {cloud.n} points; omit n")
        cloud.check()  # the sampler and the log-density on a small draw, before any training
        draw = None if cloud.sample is None else partial(_float_draw, cloud.sample)
        return cloud.points.float(), draw, cloud.log_prob, cloud.dim
    _checks.choice(mixture, "mixture", MIXTURES)
    if dim is None or n is None:
        raise ValueError(f"mixture={mixture!r} needs dim and n (or pass data=your points)")
    n = _checks.positive_int(n, "n")
    if mixture == "paper":
        law = make_gmm(num_components, dim, mean_std, generator=generator)
    else:
        if dim != 2:
            raise ValueError(f"dim must be 2 for the {mixture} toy, got {dim}")
        toy = TOYS[mixture]
        law = None if toy.law is None else toy.law(torch.float32)
        if law is None:
            return toy_2d(mixture, n, generator), partial(toy_2d, mixture), None, dim
    return law.sample(n, generator=generator), law.sample, law.log_prob, dim


def _float_draw(sample, m: int, generator=None) -> torch.Tensor:
    """A user's sampler's draws as a float32 tensor (the networks' dtype)."""
    return torch.as_tensor(sample(m, generator=generator)).float()


def _describe_data(data) -> dict:
    """What a run on ``data`` depends on, as JSON (for its checkpoint folder's name)."""
    from ..data import PointCloud
    from ..train import _describe

    cloud = data if isinstance(data, PointCloud) else PointCloud(data)
    out = {"points": _describe(cloud.points), "sample": _describe(cloud.sample),
           "log_prob": _describe(cloud.log_prob)}
    for key in ("sample", "log_prob"):  # an edited function gets a checkpoint of its own
        fn = getattr(cloud, key)
        while isinstance(fn, partial):
            fn = fn.func
        if fn is not None:
            out[key + "_source"] = _source_digest(getattr(fn, "__func__", fn))
        if inspect.ismethod(fn):  # a law's method: the law's parameters too
            out[key + "_of"] = _describe(fn.__self__)
    return out


def _source_digest(fn) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        return None


def _training_points(mixture: str, data, dim, n, num_components: int, mean_std: float,
                     duplicate_fraction: float, duplicate_copies: int, generator):
    """:func:`_training_set`, with ``duplicate_fraction`` of the points then repeated
    ``duplicate_copies`` times (drawn with ``generator``)."""
    from ..data import with_duplicates

    points, draw, log_prob, dim = _training_set(mixture, data, dim, n, num_components,
                                                mean_std, generator)
    if duplicate_fraction > 0 and duplicate_copies > 1:
        points = with_duplicates(points, duplicate_fraction, duplicate_copies,
                                 generator=generator)
    return points, draw, log_prob, dim


def _train_score(model, points, steps: int, batch_size: int, lr: float, weight_decay: float,
                 t_min: float, t_max: float, generator, **options):
    """Train ``model`` on ``points`` by noise prediction (DSM weighted by sigma_t^2, times
    log-uniform on ``[t_min, t_max]``) with AdamW (:func:`labkit.train.train`; ``options``:
    its callbacks, evaluation steps and checkpoint); the training history.

    :func:`labkit.train.train` draws batches without replacement (a batch is at most the
    whole set), so a small set is tiled up to one batch: every step sees ``batch_size`` noisy
    copies, and the empirical law (uniform over the rows) is unchanged."""
    from ..losses import LogUniformTime, dsm_noise_loss
    from ..train import TrainConfig, train

    tiled = points.repeat(math.ceil(batch_size / points.shape[0]), 1)
    return train(model, partial(dsm_noise_loss, t_sampler=LogUniformTime(t_min, t_max)), tiled,
                 TrainConfig(steps=steps, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay),
                 generator=generator, progress=False, **options)


def _lipschitz(model, points, t: float, generator, device) -> dict:
    """``lipschitz_max`` and ``lipschitz_median``: the spectral norm of the trained score's
    Jacobian at time ``t`` over 64 diffused training points (drawn with ``generator``; see
    :func:`labkit.capacity.lipschitz_constant`), what weight decay acts on."""
    from ..capacity import _draw, lipschitz_constant

    probe, _ = _draw(points, 64, t, t, generator)
    lip = lipschitz_constant(model.score, probe.to(device), t).cpu()
    return {"lipschitz_max": float(lip.max()), "lipschitz_median": float(lip.median())}


def _curve_results(history, model, points, fresh, log_prob, generator, device) -> dict:
    """The result of :func:`mixture_curve` but its samples and ``wall_s``: the curves (one
    value per evaluation), the final network's Lipschitz constants at t = 0.01, the null
    rate and reference log-likelihood of the ``fresh`` draws, ``params`` and ``n_total``."""
    from ..metrics import memorization_ratio

    curve = {"steps": [int(e["step"]) for e in history.evals],
             "memorization": [e["memorization"] for e in history.evals]}
    if log_prob is not None:
        curve["log_likelihood"] = [e["log_likelihood"] for e in history.evals]
    # mean training loss since the previous evaluation (at step 0: the first batch's loss)
    bounds = [0] + curve["steps"][1:]
    curve["train_loss"] = [float(np.mean(history.loss[max(a, 0):max(b, 1)]))
                           for a, b in zip([0] + bounds[:-1], bounds)]
    out = {
        **curve,
        **_lipschitz(model, points, 0.01, generator, device),
        "null_memorization": None if fresh is None else memorization_ratio(fresh, points),
        "reference_log_likelihood": None if fresh is None or log_prob is None
        else float(log_prob(fresh).mean()),
        "params": model.num_parameters(),
        "n_total": int(points.shape[0]),
    }
    return {k: v for k, v in out.items() if v is not None}


def mixture_curve(dim: int | None = None, n: int | None = None, width: int = 256, depth: int = 2,
                  weight_decay: float = 0.0,
                  steps: int = 4000, batch_size: int = 128, lr: float = 3e-3,
                  num_samples: int = 1000, sample_steps: int = 100, t_min: float = 1e-3,
                  t_max: float = 8.0, mixture: str = "paper", num_components: int = 8,
                  mean_std: float = 2.0, duplicate_fraction: float = 0.0, duplicate_copies: int = 1,
                  first_eval: int = 125, evals_per_octave: int = 2, keep_samples: bool = False,
                  device: str = "cpu", seed: int = 0, data=None) -> dict:
    """Train a ``ScoreMLP(dim, width, depth)`` by DSM on ``n`` training points, evaluating it
    on the step grid :func:`eval_steps` (``first_eval``, ``evals_per_octave``).

    The points: ``n`` draws of ``mixture`` (see :data:`MIXTURES`): ``"paper"``,
    ``make_gmm(num_components, dim, mean_std)`` (the paper: K = 8, means ~ N(0, 4 I), identity
    covariance) drawn with ``seed``; a 2-D toy of :data:`labkit.data.TOYS` (``"gmm4"``, the
    K = 4 toy of the paper's Fig. 2, ``"ring"``, ``"moons"``; ``dim=2``). Or ``data``, your own:
    a :class:`labkit.data.PointCloud` (points, optional fresh-draw sampler and log-density), or
    an (n, d) tensor or array of points (then ``dim`` and ``n`` may be omitted; a result set's
    config names a registered ``mixture`` instead, since it must be JSON).
    ``duplicate_fraction`` of the points repeated ``duplicate_copies`` times.
    Training: noise prediction (DSM weighted by sigma_t^2), times log-uniform on
    ``[t_min, t_max]``, AdamW with ``weight_decay``, batches of ``batch_size`` (a small set is
    tiled up to one batch, which leaves the empirical law unchanged). Each evaluation samples
    ``num_samples`` points with the reverse SDE (``sample_steps`` steps, stopped at ``t_min``).

    Returns a JSON-ready dict: ``steps`` (list), ``memorization``, ``log_likelihood``,
    ``train_loss`` (lists, one per evaluation; the loss at step 0 is the first batch's),
    ``null_memorization``, ``reference_log_likelihood``, ``params``, ``n_total``,
    ``lipschitz_max`` / ``lipschitz_median`` (the spectral norm of the final network's score
    Jacobian at t = 0.01 over 64 diffused training points), ``wall_s``, and with
    ``keep_samples`` the final ``samples`` and the ``train`` set (rounded to 1e-4). Data without
    a sampler has no ``null_memorization``; without a log-density, no ``log_likelihood`` and
    ``reference_log_likelihood``.
    """
    from ..nets import ScoreMLP

    start = time.perf_counter()
    args = locals()
    config = {k: args[k] for k in inspect.signature(mixture_curve).parameters
              if k != "device" and not (k == "data" and args[k] is None)}
    if data is not None:
        config["data"] = _describe_data(data)
    width = _checks.positive_int(width, "width")
    grid = eval_steps(steps, first_eval, evals_per_octave)
    dev = _checks.device(device)
    g = torch.Generator().manual_seed(seed)
    points, draw, log_prob, dim = _training_points(mixture, data, dim, n, num_components,
                                                   mean_std, duplicate_fraction,
                                                   duplicate_copies, g)
    fresh = None if draw is None else draw(num_samples, generator=g)
    model = ScoreMLP(dim, width=width, depth=depth, generator=g).to(dev)
    g_train = torch.Generator(device=dev).manual_seed(seed + 1)

    evaluator = _CurveProbe(points, log_prob, num_samples,
                            dict(steps=sample_steps, t_min=t_min, t_max=t_max),
                            torch.Generator(device=dev).manual_seed(seed + 2), dev)
    # resumable: the checkpoint (weights, optimizer, the probe's generator and every evaluation
    # so far) lives in a cache folder named by this run's arguments
    folder = run_dir("mixture_curve", {"config": config, "version": CURVE_VERSION})
    checkpoint = folder / "train.pt"
    history = _train_score(model, points, steps, batch_size, lr, weight_decay, t_min, t_max,
                           g_train, callbacks=(evaluator,), eval_at=grid, checkpoint=checkpoint)
    out = _curve_results(history, model, points, fresh, log_prob, g, dev)
    if keep_samples:  # rounded to 1e-4: enough for a scatter plot, a quarter of the file size
        out["samples"] = [[round(v, 4) for v in p] for p in evaluator.samples.tolist()]
        out["train"] = [[round(v, 4) for v in p] for p in points.tolist()]
    checkpoint.unlink(missing_ok=True)
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


def training_time_study(data, *, width: int = 256, steps: int = 16000, seeds=(0, 1, 2),
                        gen_nats: float | None = None, mem_points: float | None = None,
                        null_memorization: float | None = None, holdout=None, ns=None,
                        log=None, **curve):
    """The training-time study on ``data`` in one call: :func:`mixture_curve` once per seed of
    ``seeds`` (``width``, ``steps`` and any other of its keywords in ``curve``; ``data`` your
    points, a :class:`labkit.data.PointCloud`, or a registered name such as ``"ring"``), each
    curve's training times read off by the declared rules of :mod:`labkit.experiments.stats`:
    ``tau_mem``, the first step where memorization exceeds its null rate by ``mem_points``,
    and ``tau_gen``, the first step where the samples' log-likelihood comes within
    ``gen_nats`` of fresh draws' (needs a log-density); None where the run never got there or
    the data cannot tell.

    The null rate of memorization (``null_source`` in each row): ``"sampler"``, the 1/3 rule on
    fresh draws of the data's sampler; ``"given"``, the rate passed as ``null_memorization``
    (a number in [0, 1], e.g. measured on data of your own); ``"held-out split"``, with
    ``holdout`` (a fraction in (0, 1) or a count of points): that many of the points, picked
    by a fixed random split (seed 0, the same for every seed of the study), are held out of
    training and the rule is applied to them, the only fresh draws points alone provide
    (``n`` is then the training points, ``n_held_out`` the others). Without any of the three,
    ``null_source`` is None, ``tau_mem`` None, and a warning says so.

    ``ns``: several training-set sizes (a list), for a law in n: the study runs at each, on
    the first ``n`` of the data's (training) points, nested subsets of one set (or ``n`` draws
    of a registered law); :func:`labkit.experiments.time_law` fits the law to the rows.

    Returns a :class:`labkit.sweeps.Table`, one row per (n, seed): the run's whole config (every
    argument of :func:`mixture_curve` with its value, ``data``: the data's name, ``n``,
    ``dim``; the budget is the last of ``steps``), the curve's results, ``null_source``,
    ``tau_mem`` and ``tau_gen``, so :func:`labkit.experiments.time_law` and the other readers
    take the rows as they are. Each curve resumes from its checkpoint after an interruption.
    ``log`` receives one line per finished run. The data's sampler and log-density are
    checked on a small draw before any training (:meth:`labkit.data.PointCloud.check`)."""
    import warnings

    from ..data import PointCloud
    from ..metrics import memorization_ratio
    from .._table import Table
    from . import stats

    gen_nats = stats.GEN_NATS if gen_nats is None else gen_nats
    mem_points = stats.MEM_POINTS if mem_points is None else mem_points
    null_memorization = _check_study(data, seeds, null_memorization, holdout, ns, curve)
    named = isinstance(data, str)
    if named and "dim" not in curve:
        curve["dim"] = 2
    held = None
    if not named:
        cloud = data if isinstance(data, PointCloud) else PointCloud(data)
        if holdout is not None:
            cloud, held = _split(cloud, holdout)
        data = cloud
    source = ("given" if null_memorization is not None else "held-out split" if held is not None
              else "sampler" if named or data.sample is not None else None)
    if source is None:
        warnings.warn("the data has no sampler of fresh draws, so memorization has no null rate "
                      "and tau_mem is None; pass null_memorization=RATE, or holdout=FRACTION to "
                      "measure it on points held out of training", stacklevel=2)
    sizes = _sizes(ns, data, curve, split=held is not None)
    rows = []
    for size in sizes:
        run_on, extra = data, dict(curve)
        if named and size is not None:
            extra["n"] = size
        elif size is not None:  # the first `size` training points: nested subsets
            run_on = PointCloud(data.points[:size], data.sample, data.log_prob, data.name)
        config = _study_config(run_on, width, steps, extra)
        null = (null_memorization if source == "given" else
                memorization_ratio(held, run_on.points.float()) if held is not None else None)
        for seed in seeds:
            where = {"mixture": run_on} if named else {"data": run_on}
            row = mixture_curve(width=width, steps=steps, seed=seed, **where, **extra)
            row = _study_row(row, config, seed, source, null, held, gen_nats, mem_points)
            rows.append(row)
            if log is not None:
                log(f"n {row['n']}, seed {seed}: tau_mem {row['tau_mem']}, tau_gen "
                    f"{row['tau_gen']} ({row['wall_s']:.0f} s)")
    return Table(rows)


def _check_study(data, seeds, null_memorization, holdout, ns, curve) -> float | None:
    """The arguments of :func:`training_time_study` checked (ValueError naming the wrong
    one); ``null_memorization`` as a float (or None)."""
    if isinstance(seeds, int) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if null_memorization is not None and holdout is not None:
        raise ValueError("pass null_memorization (a rate) or holdout (points to measure it "
                         "on), not both")
    if null_memorization is not None:
        if (isinstance(null_memorization, bool) or not isinstance(null_memorization, (int, float))
                or not 0 <= null_memorization <= 1):
            raise ValueError(f"null_memorization must be a rate in [0, 1], got "
                             f"{null_memorization!r}")
        null_memorization = float(null_memorization)
    for key in ("data", "mixture", "seed", "width", "steps"):
        if key in curve:
            raise ValueError(f"{key} is set by training_time_study itself, not through curve")
    named = isinstance(data, str)
    if named and "n" not in curve and ns is None:
        raise ValueError(f"data={data!r} is a registered law: pass n (how many training points) "
                         "or ns (several sizes)")
    if named and holdout is not None:
        raise ValueError(f"holdout needs your own points; data={data!r} is a registered law "
                         "whose sampler gives fresh draws")
    return null_memorization


def _study_row(row: dict, config: dict, seed: int, source, null, held, gen_nats: float,
               mem_points: float) -> dict:
    """One row of :func:`training_time_study`: the curve ``row`` with the run's ``config``,
    the null rate it used (``null``, from ``source``; the sampler's kept beside it), the
    held-out count and the training times read off."""
    from . import stats

    if source in ("given", "held-out split"):
        if "null_memorization" in row:  # the sampler's, kept beside the one used
            row["sampler_null_memorization"] = row["null_memorization"]
        row["null_memorization"] = null
    row = {**config, **row, "seed": seed, "null_source": source}
    if held is not None:
        row["n_held_out"] = int(held.shape[0])
    wanted = [t for t, cols in stats.COLUMNS_NEEDED.items() if all(c in row for c in cols)]
    times = stats.training_times(row, gen_nats, mem_points, times=wanted) if wanted else {}
    row["tau_mem"], row["tau_gen"] = times.get("tau_mem"), times.get("tau_gen")
    return row


def _sizes(ns, data, curve, split: bool = False) -> list:
    """The training-set sizes of a study: ``[None]`` (the data as given) or ``ns`` checked."""
    if ns is None:
        return [None]
    if isinstance(ns, (int, str)) or not ns or len(set(ns)) != len(ns):
        raise ValueError(f"ns must be a list of distinct training-set sizes, got {ns!r}")
    if isinstance(data, str):
        if "n" in curve:
            raise ValueError("pass n (one size) or ns (several), not both")
        return [_checks.positive_int(n, "ns") for n in ns]
    for n in ns:
        if _checks.positive_int(n, "ns") > data.n:
            raise ValueError(f"ns holds {n}, more than the {data.n} training points the data "
                             "provides" + (" after the held-out split" if split else ""))
    return list(ns)


def _split(cloud, holdout):
    """``(training cloud, held-out points)``: ``holdout`` (a fraction in (0, 1) or a count)
    of the points, by a fixed random permutation (seed 0)."""
    from ..data import PointCloud

    n = cloud.n
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)):
        raise ValueError(f"holdout must be a fraction in (0, 1) or a count of points, got "
                         f"{holdout!r}")
    count = int(round(holdout * n)) if isinstance(holdout, float) else holdout
    if isinstance(holdout, float) and not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction in (0, 1) or a count of points, got "
                         f"{holdout!r}")
    if not 1 <= count <= n - 1:
        raise ValueError(f"holdout={holdout!r} holds out {count} of {n} points; hold out at "
                         "least 1 and keep at least 1 for training")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    train = PointCloud(cloud.points[order[count:]], cloud.sample, cloud.log_prob, cloud.name)
    return train, cloud.points[order[:count]].float()


def _study_config(data, width, steps, curve) -> dict:
    """Every argument of :func:`mixture_curve` a study row ran with (its defaults filled in),
    less ``device`` and the data object, plus ``data`` (the data's name), ``n`` and ``dim``."""
    params = inspect.signature(mixture_curve).parameters
    config = {k: p.default for k, p in params.items() if k not in ("device", "data", "seed")}
    config.update(curve, width=width, steps=steps)
    config.pop("device", None)
    if isinstance(data, str):
        config.update(data=data, mixture=data)
    else:  # the paper mixture's own parameters do not apply to your points
        for key in ("mixture", "num_components", "mean_std"):
            config.pop(key)
        config.update(data=data.name, n=data.n, dim=data.dim)
    return config


class _CurveProbe:
    """The evaluation of :func:`mixture_curve`: sample the reverse SDE with the network's score,
    measure memorization against the training set and the log-likelihood under the true law
    (when there is a ``log_prob``).
    Its generator and last samples are its state, checkpointed with the training run."""

    def __init__(self, data, log_prob, num_samples: int, sampler: dict, generator, device):
        self.data, self.log_prob, self.num_samples = data, log_prob, num_samples
        self.sampler, self.generator, self.device = sampler, generator, device
        self.samples = None

    def __call__(self, step, net):
        from ..metrics import memorization_ratio
        from ..sampling import sample

        with torch.no_grad():
            x = sample(net.score, self.num_samples, self.data.shape[1], method="sde",
                       generator=self.generator, device=self.device, **self.sampler).cpu()
        self.samples = x
        out = {"memorization": memorization_ratio(x, self.data)}
        if self.log_prob is not None:
            values = torch.as_tensor(self.log_prob(x))
            if values.shape != (x.shape[0],) or not torch.isfinite(values).all():
                bad = int((~torch.isfinite(values)).sum()) if values.numel() else 0
                raise ValueError(f"log_prob returned shape {tuple(values.shape)} with {bad} NaN "
                                 f"or infinite values on the {x.shape[0]} samples generated at "
                                 f"step {step}; it must return one finite value per point "
                                 "anywhere a network may sample (a density of full support)")
            out["log_likelihood"] = float(values.mean())
        return out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "samples": self.samples}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.samples = state["samples"]


# ----------------------------------------------------------------------------------------------
# One trained network, measured once at the end (the paper-scale Fig. 3 sweeps' point function)

def memorization_point(dim: int | None = None, n: int | None = None, width: int = 256,
                       depth: int = 3, weight_decay: float = 0.0,
                       steps: int = 2000, batch_size: int = 256, lr: float = 2e-3,
                       num_samples: int = 1000, sample_steps: int = 100, t_min: float = 1e-3,
                       t_max: float = 8.0, mixture: str = "paper", num_components: int = 8,
                       mean_std: float = 2.0, duplicate_fraction: float = 0.0,
                       duplicate_copies: int = 1, keep_samples: bool = False,
                       lipschitz_t: float = 0.01, device: str = "cpu", seed: int = 0,
                       data=None) -> dict:
    """Train, sample, measure: one point of the paper's mixture experiments (Figs. 2-3).

    ``mixture="paper"``: ``make_gmm(num_components, dim, mean_std)`` (paper: K = 8, means
    ~ N(0, 4 I), identity covariance) drawn with seed ``seed``; a 2-D toy of
    :data:`labkit.data.TOYS` (``"gmm4"``, the K = 4 toy of Fig. 2, ``"ring"``, ``"moons"``;
    ``dim`` must be 2); or ``data``, your own points (a :class:`labkit.data.PointCloud` or an
    (n, d) tensor, as in :func:`mixture_curve`: no null rate without a sampler, no
    log-likelihood without a log-density). ``n`` training points, optionally with a
    ``duplicate_fraction``
    of them repeated ``duplicate_copies`` times. A ``ScoreMLP(dim, width, depth)`` is trained by
    :func:`labkit.train.train` with :func:`labkit.losses.dsm_noise_loss` (noise prediction, i.e.
    DSM weighted by sigma_t^2; times log-uniform on ``[t_min, t_max]``), AdamW with
    ``weight_decay``; then ``num_samples`` samples from the reverse SDE stopped at ``t_min``.

    Returns a JSON-ready dict: ``memorization`` (1/3 rule against the training set),
    ``null_memorization`` (the same rule on fresh draws of the law), ``log_likelihood`` (mean
    log-density of the samples under the true law) and ``reference_log_likelihood`` (of fresh
    draws), ``params``, ``train_loss`` (mean of the last 10% of steps), ``n_total`` (with
    duplicates), ``lipschitz_max`` / ``lipschitz_median`` (spectral norm of the Jacobian of the
    network's score at ``lipschitz_t``, over 64 diffused training points: see
    :func:`lipschitz_constant`), and with ``keep_samples`` the samples and the training set as
    nested lists.
    """
    from ..metrics import memorization_ratio
    from ..nets import ScoreMLP
    from ..sampling import sample

    dev = _checks.device(device)
    g = torch.Generator().manual_seed(seed)
    data, draw, log_prob, dim = _training_points(mixture, data, dim, n, num_components, mean_std,
                                                 duplicate_fraction, duplicate_copies, g)
    model = ScoreMLP(dim, width=width, depth=depth, generator=g).to(dev)
    gd = torch.Generator(device=dev).manual_seed(seed + 1)
    history = _train_score(model, data, steps, batch_size, lr, weight_decay, t_min, t_max, gd)
    model.eval()
    with torch.no_grad():
        samples = sample(model.score, num_samples, dim, steps=sample_steps, t_min=t_min, t_max=t_max,
                         method="sde", generator=gd, device=dev).cpu()
        fresh = None if draw is None else draw(num_samples, generator=g)
        tail = history.loss[-max(steps // 10, 1):]
    lip = _lipschitz(model, data, lipschitz_t, g, dev)
    with torch.no_grad():
        out = {
            "memorization": memorization_ratio(samples, data),
            "null_memorization": None if fresh is None else memorization_ratio(fresh, data),
            "log_likelihood": None if log_prob is None else float(log_prob(samples).mean()),
            "reference_log_likelihood": None if log_prob is None or fresh is None
            else float(log_prob(fresh).mean()),
            "params": model.num_parameters(),
            "train_loss": sum(tail) / len(tail),
            "n_total": int(data.shape[0]),
            **lip,
        }
        out = {k: v for k, v in out.items() if v is not None}
    if keep_samples:
        out["samples"] = samples.tolist()
        out["train"] = data.tolist()
    return out


# ----------------------------------------------------------------------------------------------
# The paper's Fig. 3 grids, for a bigger machine (the notebook runs CPU-sized versions).

PAPER_GRIDS = {
    # Fig. 3a left: memorization over (network size, n) at d = 32; ScoreMLP widths 64..4096 at
    # depth 4 span about 25K to 51M parameters (the paper's nets: 24K to 44M).
    "fig3a_size_n": dict(dim=32, n=[1000, 3200, 10000, 32000, 100000],
                         width=[64, 256, 1024, 2048, 4096], depth=4, weight_decay=0.0),
    # Fig. 3a right: a fixed network of about 13M parameters (the paper's: 12M), d from 8 to 64.
    "fig3a_n_dim": dict(dim=[8, 16, 32, 64], n=[1000, 3200, 10000, 32000, 100000],
                        width=2048, depth=4, weight_decay=0.0),
    # Fig. 3b: width and weight-decay sweeps at n = 3.2K and 10K.
    "fig3b_width": dict(dim=32, n=[3200, 10000], width=[256, 512, 1024, 2048, 4096], depth=4,
                        weight_decay=0.0),
    "fig3b_decay": dict(dim=32, n=[3200, 10000], width=2048, depth=4,
                        weight_decay=[0.0, 1e-4, 1e-3, 1e-2, 1e-1]),
}


def paper_grid(name: str, steps: int = 20000, batch_size: int = 1024, num_samples: int = 10000,
               seed: int = 0) -> dict:
    """The full grid ``labkit-sweep NAME`` runs (its defaults): one of :data:`PAPER_GRIDS` plus
    the training settings. Notebook 02 reads these points back with ``missing="skip"``. The
    device is not part of a point's configuration (it is bound by the command line), so results
    computed on a GPU are found from a CPU session."""
    if name not in PAPER_GRIDS:
        raise ValueError(f"name must be one of {sorted(PAPER_GRIDS)}, got {name!r}")
    return {**PAPER_GRIDS[name], "steps": steps, "batch_size": batch_size, "num_samples": num_samples,
            "seed": seed}
