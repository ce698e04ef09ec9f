"""Notebook 04's protocols: four open questions of the 2024-2026 literature at the lab's scale.

The point functions (one row of a result set each) and their grids, as :data:`OPEN_EXPERIMENTS`
(name -> :class:`labkit.experiments.Experiment`), and every conclusion the notebook draws, as
:data:`OPEN_CLAIMS` (:class:`labkit.experiments.claims.Claim`, notebook ``"04"``):

1. *Where in noise memorization lives.* :func:`window_arm`: a Table 1 arm (20% of the heads,
   fine-tuned, 400 samples) pruned by Algorithm 2's importance computed in one window of t
   (:data:`labkit.pruning.WINDOWS`), on the cached base DiT of a Table 1 run; and
   :func:`window_hybrid`: on the 2-D toy, a sampler that follows the empirical score only inside
   one window of t and the true score elsewhere (the switched score of notebook 01, twice).
2. *Does pruning remove memorization or hide it?* :func:`search_arm`: an arm of Table 1 rebuilt
   exactly (same base, heads, fine-tuning) and searched for copies with
   :func:`labkit.recovery.noise_search`; the overlap of the pruned head sets is in the rows of
   :func:`window_arm` (:func:`labkit.pruning.jaccard`).
3. *A threshold-free test of generalization.* :func:`halves_point`: two score networks trained
   on disjoint halves of 2 n draws of the 2-D toy; the agreement of their denoisers and of
   their samples from the same noise (:mod:`labkit.denoisers`) beside the 1/3-rule
   memorization rate.
4. *Closed-form denoisers against the network.* :func:`denoiser_match`: the base DiT of a Table 1
   run against the empirical, Gaussian and patch-based local denoisers at each t, on held-out
   noisy digits.

The DiT rows read the base models of Table 1's confirmatory runs (seeds 8-15), which
``labkit results run table1`` caches; computed before those, each run trains its base first.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import replace

import torch

from .. import _checks
from ..pruning import WINDOWS
from .registry import CONFIRMATORY_TABLE1_SEEDS, PRIMARY_SEEDS, Experiment
from .table1 import _DIGITS, ARMS, Protocol, _base_dir, _table1_base

__all__ = ["TOY_WINDOWS", "window_bounds", "window_hybrid", "window_arm", "search_arm",
           "halves_point", "denoiser_match", "OPEN_EXPERIMENTS", "OPEN_SEEDS",
           "HALVES_NS", "MATCH_TIMES", "PATCH_SIZES"]

# The DiT questions use the base models of eight confirmatory Table 1 runs (cached by Table 1).
OPEN_SEEDS = list(CONFIRMATORY_TABLE1_SEEDS[:8])
TOY_WINDOWS = ("none", "small", "medium", "large", "all")


def window_bounds(window: str) -> tuple[float, float]:
    """The OU-time interval ``[low, high)`` of a window of :data:`labkit.pruning.WINDOWS` (the
    DDPM step fractions mapped by :func:`labkit.dit.ddpm_time`), ``"all"`` (every t) or
    ``"none"`` (no t): the windows in which :func:`window_hybrid` uses the empirical score."""
    from ..dit import ddpm_time

    _checks.choice(window, "window", TOY_WINDOWS)
    if window == "none":
        return (0.0, 0.0)
    if window == "all":
        return (0.0, math.inf)
    low, high = WINDOWS[window]
    to_t = lambda u: float(ddpm_time(torch.tensor([u], dtype=torch.float64))[0])  # noqa: E731
    return (0.0 if low == 0 else to_t(low), math.inf if high == 1 else to_t(high))


def _protocol(**settings) -> Protocol:
    return Protocol(**{**settings, "ratio": _DIGITS.ratio}, seeds=1)


@functools.lru_cache(maxsize=4)
def _classifier(n: int, steps: int):
    from ..images import load_digits, train_classifier

    data = load_digits(n, generator=torch.Generator().manual_seed(0))
    return train_classifier(data.held_out, data.held_out_labels, steps=steps,
                            generator=torch.Generator().manual_seed(5))


# ----------------------------------------------------------------------------------------------
# Question 1: where in noise memorization lives

def window_hybrid(window: str, seed: int, n: int = 16, toy: str = "gmm4",
                  num_samples: int = 1000, sample_steps: int = 100, t_min: float = 1e-3,
                  t_max: float = 10.0) -> dict:
    """The 2-D toy's true score everywhere except in one window of t, where the sampler follows
    the empirical score of ``n`` training points (drawn with ``seed``) instead: how much of the
    full empirical sampler's memorization does that window alone produce?

    ``window``: ``"small"``, ``"medium"``, ``"large"`` (:func:`window_bounds`), ``"all"`` (the
    empirical score throughout: everything memorized) or ``"none"`` (the true score throughout:
    the null rate). The score is :func:`labkit.scores.switched_score` applied twice. Reverse SDE
    (``sample_steps`` steps from ``t_max`` to ``t_min``). Returns ``memorization`` (fraction, the
    1/3 rule), ``null_memorization`` (the rule on fresh draws of the law) and the window's
    ``t_low`` / ``t_high`` (``None`` for an open end).
    """
    from ..data import toy_mixture
    from ..metrics import memorization_ratio
    from ..sampling import sample
    from ..scores import empirical_score, switched_score

    start = time.perf_counter()
    low, high = window_bounds(window)
    law = toy_mixture(toy)
    g = torch.Generator().manual_seed(seed)
    train = law.sample(_checks.positive_int(n, "n"), generator=g)
    empirical = functools.partial(empirical_score, train=train)
    true = law.score
    if window == "none":
        score = true
    else:
        inner = empirical if low == 0 else switched_score(empirical, true, low)
        score = inner if math.isinf(high) else switched_score(true, inner, high)
    samples = sample(score, num_samples, 2, steps=sample_steps, t_min=t_min, t_max=t_max,
                     generator=g)
    fresh = law.sample(num_samples, generator=g)
    return {"memorization": memorization_ratio(samples, train),
            "null_memorization": memorization_ratio(fresh, train),
            "t_low": low if low > 0 else None,
            "t_high": None if math.isinf(high) or window == "none" else high,
            "wall_s": round(time.perf_counter() - start, 2)}


def _arm_model(base, data, protocol, method: str, seed: int, ratio: float, dev):
    """The model and heads of an arm, built as :func:`labkit.experiments.pruned_arm` builds
    them (same importance generators, fine-tuning generator 3000 + seed). ``method``: an arm of
    :data:`labkit.experiments.ARMS` or ``"window-<w> importance"``."""
    from ..pruning import fine_tune, importance, prune_heads, select_heads

    model, heads = copy.deepcopy(base).requires_grad_(True), {}
    if method.startswith("window-"):
        criterion, per_seed, tune = method.removesuffix(" importance"), False, True
    else:
        arm = ARMS[method]
        criterion, per_seed, tune = arm.importance, arm.per_seed, arm.fine_tune
    if criterion is not None and ratio > 0:
        if per_seed:
            score = importance(criterion, base, generator=torch.Generator().manual_seed(1000 + seed))
        else:
            score = importance(criterion, base, data.train.to(dev),
                               batches=protocol.importance_batches, batch_size=protocol.batch_size,
                               generator=torch.Generator(device=dev).manual_seed(2))
        heads = select_heads(score, ratio)
        model = prune_heads(base, heads)
    if tune:
        fine_tune(model, data.train.to(dev), protocol.fine_tuning(),
                  generator=torch.Generator(device=dev).manual_seed(3000 + seed))
    return model, heads


def window_arm(n: int, seed: int, window: str, ratio: float = _DIGITS.ratio,
               preset: str = _DIGITS.preset, train_steps: int = _DIGITS.train_steps,
               train_lr: float = _DIGITS.train_lr, batch_size: int = _DIGITS.batch_size,
               finetune_steps: int = _DIGITS.finetune_steps,
               finetune_lr: float = _DIGITS.finetune_lr, num_samples: int = _DIGITS.num_samples,
               sample_steps: int = _DIGITS.sample_steps,
               importance_batches: int = _DIGITS.importance_batches,
               classifier_steps: int = _DIGITS.classifier_steps, probe_samples: int = 200,
               first_probe: int = 250, device: str = "cpu") -> dict:
    """A Table 1 arm pruned by Algorithm 2 in one window of t: run ``seed``'s cached base DiT
    (:func:`labkit.experiments.table1_arm`'s, trained first if absent), ``ratio`` of its heads
    with the lowest ``window-<window>`` importance removed, fine-tuned and sampled with the
    generators Table 1's arms use (so its samples start from the same noise as the random and
    small-t arms of that run).

    Returns the arm's ``memorization`` (percent), ``fd``, ``precision``, ``recall``, ``params``,
    ``heads``, ``method`` (``"window-<window> importance"``) and the head sets' overlaps
    (:func:`labkit.pruning.jaccard`): ``jaccard_small_t`` (with the small-t importance arm's set
    of the run), ``jaccard_random`` (with the random arm's) and ``jaccard_random_small_t`` (of
    the random and small-t sets: the chance level).
    """
    from ..dit import sample_images
    from ..images import evaluate_images
    from ..pruning import importance, jaccard, select_heads

    _checks.choice(window, "window", tuple(WINDOWS))
    ratio = _checks.unit_interval(ratio, "ratio", closed_left=True, closed_right=False)
    start = time.perf_counter()
    dev = _checks.device(device)
    protocol = _protocol(preset=preset, train_steps=train_steps, train_lr=train_lr,
                         batch_size=batch_size, finetune_steps=finetune_steps,
                         finetune_lr=finetune_lr, num_samples=num_samples,
                         sample_steps=sample_steps, importance_batches=importance_batches,
                         classifier_steps=classifier_steps)
    base, data, _ = _table1_base(n, seed, protocol, probe_samples, first_probe, dev)
    method = f"window-{window} importance"
    model, heads = _arm_model(base, data, protocol, method, seed, ratio, dev)
    samples = sample_images(model, num_samples, steps=sample_steps,
                            generator=torch.Generator(device=dev).manual_seed(4000 + seed)).cpu()
    result = evaluate_images(samples, data, _classifier(n, classifier_steps))
    small = select_heads(importance("small-t", base, data.train.to(dev),
                                    batches=importance_batches, batch_size=batch_size,
                                    generator=torch.Generator(device=dev).manual_seed(2)), ratio)
    rand = select_heads(importance("random", base,
                                   generator=torch.Generator().manual_seed(1000 + seed)), ratio)
    return {**result, "params": model.num_parameters(), "method": method,
            "heads": {str(k): v for k, v in heads.items()},
            "jaccard_small_t": jaccard(heads, small), "jaccard_random": jaccard(heads, rand),
            "jaccard_random_small_t": jaccard(rand, small),
            "wall_s": round(time.perf_counter() - start, 2)}


# ----------------------------------------------------------------------------------------------
# Question 2: does pruning remove memorization or hide it?

SEARCH_ARMS = ("original", "fine-tuned control", "small-t importance", "random")


def search_arm(n: int, seed: int, arm: str, ratio: float = _DIGITS.ratio, draws: int = 1024,
               refine_steps: int = 8, search_lr: float = 0.05, search_steps: int = 20,
               preset: str = _DIGITS.preset, train_steps: int = _DIGITS.train_steps,
               train_lr: float = _DIGITS.train_lr, batch_size: int = _DIGITS.batch_size,
               finetune_steps: int = _DIGITS.finetune_steps,
               finetune_lr: float = _DIGITS.finetune_lr,
               importance_batches: int = _DIGITS.importance_batches, probe_samples: int = 200,
               first_probe: int = 250, device: str = "cpu") -> dict:
    """Search the starting noise of an arm of Table 1 for copies of its training digits.

    The arm's model is rebuilt as Table 1 builds it (run ``seed``'s cached base; the same
    heads, fine-tuning and generators), then :func:`labkit.recovery.noise_search` runs on
    its probability-flow ODE sampler (``search_steps`` Heun steps, t from 10 to 1e-3): ``draws``
    noises, then ``refine_steps`` Adam steps (``search_lr``) per training digit from its
    nearest draw.

    Returns ``reproduced_draws`` and ``reproduced_search`` (distinct training digits copied by a
    draw / by a draw or a refined noise), ``draws_curve`` and ``draws_at``, ``targets`` (n),
    ``draw_memorization`` (percent of the first 256 draws that are copies), ``method`` (the arm)
    and ``heads``. ``reproduced_search_null`` / ``reproduced_draws_null``: the same search aimed
    at ``n`` held-out digits (the 1/3 rule against those), which the model never saw: the
    count the search reaches by the generator's reach alone.
    """
    from ..recovery import copied_index, dit_generator, noise_search

    _checks.choice(arm, "arm", SEARCH_ARMS)
    ratio = _checks.unit_interval(ratio, "ratio", closed_left=True, closed_right=False)
    start = time.perf_counter()
    dev = _checks.device(device)
    protocol = _protocol(preset=preset, train_steps=train_steps, train_lr=train_lr,
                         batch_size=batch_size, finetune_steps=finetune_steps,
                         finetune_lr=finetune_lr, importance_batches=importance_batches)
    base, data, _ = _table1_base(n, seed, protocol, probe_samples, first_probe, dev)
    model, heads = _arm_model(base, data, protocol, arm, seed, ratio, dev)
    generate = dit_generator(model, steps=search_steps)
    train = data.train.flatten(1).to(dev)
    found = noise_search(generate, train, draws=draws, refine_steps=refine_steps, lr=search_lr,
                         generator=torch.Generator().manual_seed(6000 + seed))
    # The same search aimed at as many held-out digits: what the search reaches without memory
    held = data.held_out[:train.shape[0]].flatten(1).to(dev)
    null = noise_search(generate, held, draws=draws, refine_steps=refine_steps, lr=search_lr,
                        generator=torch.Generator().manual_seed(6000 + seed))
    with torch.no_grad():
        first = generate(torch.randn(min(draws, 256), train.shape[1],
                                     generator=torch.Generator().manual_seed(6000 + seed)))
    share = 100 * (copied_index(first, train) >= 0).double().mean().item()
    return {**{k: found[k] for k in ("reproduced_draws", "reproduced_search", "draws_curve",
                                     "draws_at", "targets")},
            "reproduced_search_null": null["reproduced_search"],
            "reproduced_draws_null": null["reproduced_draws"],
            "draw_memorization": share, "method": arm,
            "heads": {str(k): v for k, v in heads.items()},
            "wall_s": round(time.perf_counter() - start, 2)}


# ----------------------------------------------------------------------------------------------
# Question 3: disjoint halves

HALVES_NS = (4, 8, 16, 32, 64, 128)
HALVES_TIMES = (0.01, 0.1, 1.0)


def halves_point(n: int, seed: int, toy: str = "gmm4", width: int = 128, depth: int = 2,
                 steps: int = 2000, batch_size: int = 128, lr: float = 3e-3,
                 num_samples: int = 500, sample_steps: int = 50, t_min: float = 1e-3,
                 t_max: float = 8.0, times=HALVES_TIMES) -> dict:
    """Two ``ScoreMLP``s trained on disjoint halves (``n`` points each) of ``2 n`` draws of a 2-D
    toy (seed ``seed``; the two nets' initial weights and training noise differ too).

    Returns ``memorization`` (the mean over the two nets of the 1/3 rule against each net's own
    half, fraction), ``memorization_a`` / ``_b``, ``null_memorization`` (fresh draws against
    half A), ``denoiser_mse`` (per t of ``times``: the symmetric relative MSE of the two nets'
    denoisers on the true law's noisy draws, :func:`labkit.denoisers.relative_mse`),
    ``denoiser_mse_mean`` (their mean), ``truth_mse`` (per t: net A's denoiser against the true
    posterior mean), and ``sample_distance`` (:func:`labkit.denoisers.paired_distance` of the
    two nets' probability-flow samples from the same ``num_samples`` noises).
    """
    from ..data import toy_mixture
    from ..denoisers import paired_distance, relative_mse
    from ..metrics import memorization_ratio
    from ..nets import ScoreMLP
    from ..process import denoiser_from_score, diffuse
    from ..recovery import flow_map
    from ..sampling import sample
    from ..losses import LogUniformTime, dsm_noise_loss
    from ..train import TrainConfig, train

    start = time.perf_counter()
    n = _checks.positive_int(n, "n")
    law = toy_mixture(toy)
    g = torch.Generator().manual_seed(seed)
    points = law.sample(2 * n, generator=g)
    halves = (points[:n], points[n:])
    nets = []
    for k, half in enumerate(halves):
        gk = torch.Generator().manual_seed(100 * seed + k)
        net = ScoreMLP(2, width=width, depth=depth, generator=gk)
        tiled = half.repeat(math.ceil(batch_size / n), 1)
        train(net, functools.partial(dsm_noise_loss, t_sampler=LogUniformTime(t_min, t_max)),
              tiled, TrainConfig(steps=steps, batch_size=batch_size, lr=lr), generator=gk,
              progress=False)
        nets.append(net.eval())
    ge = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        mem = [memorization_ratio(sample(net.score, num_samples, 2, steps=sample_steps,
                                         t_min=t_min, t_max=t_max, generator=ge), half)
               for net, half in zip(nets, halves)]
        fresh = law.sample(num_samples, generator=ge)
        denoiser_mse, truth_mse = [], []
        for t in times:
            x, _ = diffuse(law.sample(num_samples, generator=ge), t, generator=ge)
            d_a, d_b = (denoiser_from_score(net.score(x, t), x, t) for net in nets)
            denoiser_mse.append(relative_mse(d_a, d_b, symmetric=True))
            truth_mse.append(relative_mse(d_a, law.denoiser(x, t)))
        noise = torch.randn(num_samples, 2, generator=ge)
        s_a, s_b = (flow_map(net.score, noise, steps=sample_steps, t_min=t_min, t_max=t_max)
                    for net in nets)
    return {"memorization": sum(mem) / 2, "memorization_a": mem[0], "memorization_b": mem[1],
            "null_memorization": memorization_ratio(fresh, halves[0]),
            "denoiser_mse": denoiser_mse, "denoiser_mse_mean": sum(denoiser_mse) / len(times),
            "truth_mse": truth_mse, "times": list(times),
            "sample_distance": paired_distance(s_a, s_b),
            "wall_s": round(time.perf_counter() - start, 2)}


# ----------------------------------------------------------------------------------------------
# Question 4: closed-form denoisers against the trained DiT

MATCH_TIMES = (0.01, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0)
PATCH_SIZES = (3, 5, 7, 11)


def denoiser_match(n: int, seed: int, num_inputs: int = 128, times=MATCH_TIMES,
                   patch_sizes=PATCH_SIZES, preset: str = _DIGITS.preset,
                   train_steps: int = _DIGITS.train_steps, train_lr: float = _DIGITS.train_lr,
                   batch_size: int = _DIGITS.batch_size, probe_samples: int = 200,
                   first_probe: int = 250, device: str = "cpu") -> dict:
    """Run ``seed``'s base DiT of Table 1 (cached) against four closed-form denoisers of its
    ``n`` training digits at each t of ``times``, on ``num_inputs`` held-out digits noised to t
    (noise drawn with seed 7000 + seed).

    Closed forms: the empirical denoiser (memorizing), the Gaussian (Wiener) denoiser of the
    training set's mean and covariance, and the equivariant local denoiser at each patch size
    of ``patch_sizes`` (:mod:`labkit.denoisers`). For each, per t, ``mse_<name>``: the relative
    MSE of the closed form as a predictor of the network's denoiser (``1 - r^2``, reference the
    network); ``mse_local`` is the best patch size's, ``patch_size`` the size chosen per t,
    ``mse_best`` the smallest of all and ``nearest`` its name. Also ``mse_truth``: the network
    against the clean held-out digit (its own denoising error).
    """
    from ..denoisers import fit_gaussian, gaussian_denoiser, local_denoiser, relative_mse
    from ..process import alpha_sigma, diffuse
    from ..scores import empirical_denoiser

    start = time.perf_counter()
    dev = _checks.device(device)
    protocol = _protocol(preset=preset, train_steps=train_steps, train_lr=train_lr,
                         batch_size=batch_size)
    base, data, _ = _table1_base(n, seed, protocol, probe_samples, first_probe, dev)
    base = base.eval()
    train = data.train.double()
    flat = train.flatten(1)
    mean, cov = fit_gaussian(flat)
    clean = data.held_out[:_checks.positive_int(num_inputs, "num_inputs")].double()
    g = torch.Generator().manual_seed(7000 + seed)
    out = {k: [] for k in ("mse_empirical", "mse_gaussian", "mse_local", "patch_size",
                           "mse_best", "nearest", "mse_truth",
                           *(f"mse_local{p}" for p in patch_sizes))}
    for t in times:
        x, _ = diffuse(clean, t, generator=g)
        with torch.no_grad():
            eps = base(x.float().to(dev), torch.tensor(float(t))).double().cpu()
        alpha_t, sigma_t = (float(v) for v in alpha_sigma(torch.tensor(float(t))))
        net = (x - sigma_t * eps) / alpha_t
        forms = {"empirical": empirical_denoiser(x.flatten(1), t, flat).reshape(x.shape),
                 "gaussian": gaussian_denoiser(x.flatten(1), t, mean, cov).reshape(x.shape)}
        local = {p: relative_mse(local_denoiser(x, t, train, p), net) for p in patch_sizes}
        best_p = min(local, key=local.get)
        for p, v in local.items():
            out[f"mse_local{p}"].append(v)
        mse = {k: relative_mse(v, net) for k, v in forms.items()} | {"local": local[best_p]}
        out["mse_empirical"].append(mse["empirical"])
        out["mse_gaussian"].append(mse["gaussian"])
        out["mse_local"].append(mse["local"])
        out["patch_size"].append(best_p)
        nearest = min(mse, key=mse.get)
        out["mse_best"].append(mse[nearest])
        out["nearest"].append(nearest)
        out["mse_truth"].append(relative_mse(net, clean))
    return {**out, "times": list(times), "wall_s": round(time.perf_counter() - start, 2)}


# ----------------------------------------------------------------------------------------------
# The result sets and the claims

_TABLE1_ROWS = ("memorization", "fd", "precision", "recall", "params", "heads")
OPEN_EXPERIMENTS: dict[str, Experiment] = {
    "open_hybrid": Experiment(
        point_fn="labkit.experiments.open_questions:window_hybrid",
        grids=({"window": list(TOY_WINDOWS), "seed": PRIMARY_SEEDS, "n": 16},),
        purpose="the 2-D toy (n = 16) sampled with the empirical score only inside one window "
                "of t (small, medium, large; all; none), the true score elsewhere: 8 seeds",
        compare=("memorization", "null_memorization"), prefix_key=None),
    "open_windows": Experiment(
        point_fn="labkit.experiments.open_questions:window_arm",
        grids=({"n": 32, "seed": OPEN_SEEDS, "window": list(WINDOWS)},),
        purpose="Table 1 arms (20% of heads) pruned by Algorithm 2 in one window of t (small, "
                "medium, large, uniform) on the cached base DiTs of Table 1 runs 8-15",
        compare=(*_TABLE1_ROWS, "jaccard_small_t", "jaccard_random"), prefix_key=None),
    "open_search": Experiment(
        point_fn="labkit.experiments.open_questions:search_arm",
        grids=({"n": 32, "seed": OPEN_SEEDS, "arm": list(SEARCH_ARMS)},),
        purpose="noise search for copies of the 32 training digits (1,024 draws, then 8 "
                "gradient steps per digit; and aimed at 32 held-out digits) in four arms of "
                "Table 1 runs 8-15",
        compare=("reproduced_draws", "reproduced_search", "reproduced_search_null",
                 "draw_memorization"), prefix_key=None),
    "open_halves": Experiment(
        point_fn="labkit.experiments.open_questions:halves_point",
        grids=({"n": list(HALVES_NS), "seed": PRIMARY_SEEDS},),
        purpose="two score networks on disjoint halves of 2n draws of the 2-D toy, n = 4-128, "
                "8 seeds: agreement of their denoisers and samples beside memorization",
        compare=("memorization", "denoiser_mse", "sample_distance"), prefix_key=None),
    "open_denoisers": Experiment(
        point_fn="labkit.experiments.open_questions:denoiser_match",
        grids=({"n": 32, "seed": OPEN_SEEDS},),
        purpose="the base DiTs of Table 1 runs 8-15 against the empirical, Gaussian and local "
                "patch denoisers (patches 3-11) at seven t, on 128 held-out noisy digits",
        compare=("mse_empirical", "mse_gaussian", "mse_local"), prefix_key=None),
}
