"""How big must a network be? Helpers for the approximation separation (Theorem 5.1, notebook 02).

- Width needed to fit a score. :func:`random_feature_errors` fits one-hidden-layer ReLU networks
  of growing width (noise prediction) to a closed-form score over a small-t window and returns
  the relative L2 error ``E||eps_net - eps*||^2 / E||eps*||^2`` on fresh draws, where
  ``eps* = -sigma_t * score`` is the target score in noise units. Fitting the empirical score
  (target ``labkit.scores.empirical_score``) is memorizing; fitting the true score (target
  ``gmm.score``) is generalizing. :func:`crossing_width` turns an error-against-width curve
  into the width at which the error first falls below a threshold (log-log interpolation).
  :func:`fit_point` is the sweep point used by notebook 02.
- Lipschitz contrast. ``Hess log p_t = -I / sigma_t^2 + (alpha_t^2 / sigma_t^4) Cov[X_0 | X_t]``
  (the book's Background page, ``docs/background.md``): :func:`empirical_hessian` and
  :func:`mixture_hessian` evaluate it in closed form (checked against autograd by :func:`autograd_hessian`); :func:`lipschitz_constant`
  measures the largest Jacobian spectral norm of a trained score network.
- Duplication. :func:`effective_sample_size` is Kish's ``(sum c)^2 / sum c^2`` over the
  multiplicities ``c`` of distinct training points: duplicates lower it.

The paper's memorization experiments (Figs. 2-3) that use these helpers live in
:mod:`labkit.experiments`.
"""

from __future__ import annotations

import math

import torch

from . import _checks, _moved
from .process import alpha_sigma

__all__ = [
    "sample_window_times",
    "random_feature_errors",
    "crossing_width",
    "fit_point",
    "empirical_hessian",
    "mixture_hessian",
    "autograd_hessian",
    "lipschitz_constant",
    "effective_sample_size",
]


def sample_window_times(m: int, t_min: float, t_max: float, generator=None, dtype=torch.float32) -> torch.Tensor:
    """``m`` times log-uniform on ``[t_min, t_max]`` (the small-t window); returns (m,)."""
    u = torch.rand(m, generator=generator, dtype=torch.float64)
    t = t_min * (t_max / t_min) ** u
    return t.to(dtype)


def _draw(x0: torch.Tensor, m: int, t_min: float, t_max: float, generator):
    """``x_t`` from the diffused law of a data sampler or a fixed set: returns (x_t (m, d), t (m,))."""
    t = sample_window_times(m, t_min, t_max, generator, x0.dtype)
    idx = torch.randint(x0.shape[0], (m,), generator=generator)
    alpha_t, sigma_t = alpha_sigma(t)
    z = torch.randn(m, x0.shape[1], generator=generator, dtype=x0.dtype)
    return alpha_t[:, None] * x0[idx] + sigma_t[:, None] * z, t  # (m, d), (m,)


def random_feature_errors(target_score, inputs: torch.Tensor, widths, *, t_min: float, t_max: float,
                          num_fit: int = 12000, num_eval: int = 4000, ridge: float = 1e-8,
                          stop_below: float | None = None,
                          generator: torch.Generator | None = None) -> list[float]:
    """Relative L2 error of one-hidden-layer ReLU networks of growing width fitted to a score.

    The network maps ``u = (x_t, log t)`` to ``sum_j c_j relu(a_j . u + b_j) + linear(x_t) + c_0``
    and predicts the noise ``eps* = -sigma_t target_score(x_t, t)``. Its hidden layer is drawn at
    random (unit directions scaled log-uniformly between 1 and ``1 / sigma_{t_min}``, hyperplanes
    placed through random training inputs) and its output layer is solved exactly by ridge
    least squares, so each width is fitted without optimizer noise and the width-``w`` network
    reuses the first ``w`` hidden units of the wider ones (errors fall monotonically up to
    sampling noise). A network of the reported width reaching the reported error exists, so the
    widths found this way are upper bounds on the smallest width that can reach it.

    ``target_score(x_t, t) -> (m, d)`` with ``t`` an (m,) tensor; ``inputs`` (N, d) the clean
    points whose diffusion ``x_t = alpha_t x + sigma_t z``, ``log t ~ U[log t_min, log t_max]``,
    gives ``num_fit`` regression and ``num_eval`` held-out inputs. ``widths`` increasing.
    Returns ``E||eps_net - eps*||^2 / E||eps*||^2`` on the held-out inputs for each width, stopping
    after the first width whose error is at most ``stop_below`` (when given).
    """
    inputs = _checks.points(inputs, "inputs")
    t_min, t_max = _checks.positive_float(t_min, "t_min"), _checks.positive_float(t_max, "t_max")
    if t_min > t_max:
        raise ValueError(f"t_min must not exceed t_max, got {t_min} > {t_max}")
    widths = [_checks.positive_int(w, "widths") for w in widths]
    if not widths or any(b <= a for a, b in zip(widths, widths[1:])):
        raise ValueError(f"widths must be a non-empty increasing list, got {widths}")
    num_fit, num_eval = _checks.positive_int(num_fit, "num_fit"), _checks.positive_int(num_eval, "num_eval")
    _checks.generator(generator)
    d = inputs.shape[1]
    x_fit, t_fit = _draw(inputs, num_fit, t_min, t_max, generator)
    x_eval, t_eval = _draw(inputs, num_eval, t_min, t_max, generator)
    with torch.no_grad():
        y_fit = -alpha_sigma(t_fit)[1][:, None] * target_score(x_fit, t_fit)  # (N, d) noise units
        y_eval = -alpha_sigma(t_eval)[1][:, None] * target_score(x_eval, t_eval)
    u_fit = torch.cat([x_fit, torch.log(t_fit)[:, None]], 1)  # (N, d + 1)
    u_eval = torch.cat([x_eval, torch.log(t_eval)[:, None]], 1)

    width = widths[-1]
    directions = torch.randn(d + 1, width, generator=generator, dtype=inputs.dtype)
    directions = directions / directions.norm(dim=0, keepdim=True)
    sharpness = (1.0 / alpha_sigma(t_min)[1].item()) ** torch.rand(width, generator=generator, dtype=inputs.dtype)
    a = directions * sharpness  # (d + 1, W)
    anchors = u_fit[torch.randint(num_fit, (width,), generator=generator)]  # (W, d + 1)
    b = -(anchors * a.T).sum(1)  # (W,): each hyperplane passes through a training input

    def features(u, x):
        return torch.cat([torch.ones(len(x), 1, dtype=x.dtype), x, torch.relu(u @ a + b)], 1).double()

    phi_fit, phi_eval = features(u_fit, x_fit), features(u_eval, x_eval)  # (N, 1 + d + W)
    y_fit, y_eval = y_fit.double(), y_eval.double()
    scale = (y_eval**2).sum(1).mean()
    errors = []
    for w in widths:
        k = 1 + d + w
        gram = phi_fit[:, :k].T @ phi_fit[:, :k] / num_fit  # (k, k); geometric widths: ~1.3x the last
        rhs = phi_fit[:, :k].T @ y_fit / num_fit  # (k, d)
        coef = torch.linalg.solve(gram + ridge * torch.eye(k, dtype=gram.dtype), rhs)
        errors.append(float(((phi_eval[:, :k] @ coef - y_eval) ** 2).sum(1).mean() / scale))
        if stop_below is not None and errors[-1] <= stop_below:
            break
    return errors


def crossing_width(widths, errors, threshold: float) -> float:
    """Smallest width at which the error falls to ``threshold``, interpolated in log-log.

    ``widths`` increasing, ``errors`` the measured relative errors. Returns the width where the
    straight line (in log width, log error) between the last width above the threshold and the
    first width at or below it crosses the threshold; ``widths[0]`` when the smallest width
    already fits; ``inf`` when no width fits (a censored measurement: report it as such).
    """
    widths, errors = [float(w) for w in widths], [float(e) for e in errors]
    if len(widths) != len(errors) or not widths:
        raise ValueError(f"widths and errors must be non-empty and of equal length, got {len(widths)}, {len(errors)}")
    if any(b <= a for a, b in zip(widths, widths[1:])):
        raise ValueError(f"widths must be increasing, got {widths}")
    threshold = _checks.positive_float(threshold, "threshold")
    for i, e in enumerate(errors):
        if e <= threshold:
            if i == 0:
                return widths[0]
            lw0, lw1 = math.log(widths[i - 1]), math.log(widths[i])
            le0, le1 = math.log(errors[i - 1]), math.log(max(e, 1e-12))
            frac = (le0 - math.log(threshold)) / (le0 - le1)
            return math.exp(lw0 + frac * (lw1 - lw0))
    return math.inf


def _finite_or_none(v: float):
    return v if math.isfinite(v) else None  # JSON has no inf: a censored width is null


def fit_point(n: int, target: str, seed: int = 0, threshold: float = 0.1, t_min: float = 0.002,
              t_max: float = 0.004, min_width: int = 2, max_width: int = 2048, num_fit: int = 12000,
              duplicate_fraction: float = 0.0, duplicate_copies: int = 1) -> dict:
    """Sweep point of notebook 02's width measurement, on the 2-D K = 4 toy mixture.

    Draws ``n`` training points (seed ``seed``) from ``toy_mixture("gmm4")``, diffuses them over
    the window ``[t_min, t_max]`` and fits ReLU networks of widths ``min_width``, twice that, ...,
    ``max_width`` (powers of two) to
    the ``target`` score there (:func:`random_feature_errors`): ``"empirical"`` (the empirical
    score of the n points), ``"true"`` (the mixture's score, at the same inputs) or
    ``"true_law"`` (the mixture's score at inputs from the mixture itself, 20,000 fresh draws: the
    n-independent reference, where ``n`` is ignored). Returns the
    widths tried, their errors, and the width crossing ``threshold`` (None when none does).
    With ``duplicate_fraction`` of the points repeated ``duplicate_copies`` times, both the
    inputs and the empirical score follow the duplicated set (its effective size is smaller).
    """
    from .data import toy_mixture, with_duplicates
    from .scores import empirical_score

    _checks.choice(target, "target", ("empirical", "true", "true_law"))
    gmm = toy_mixture("gmm4")
    g = torch.Generator().manual_seed(seed)
    train = gmm.sample(20000 if target == "true_law" else n, generator=g)
    if duplicate_fraction > 0 and duplicate_copies > 1:
        train = with_duplicates(train, duplicate_fraction, duplicate_copies, generator=g)
    score = (lambda x, t: empirical_score(x, t, train)) if target == "empirical" else gmm.score
    widths = [2**k for k in range(int(math.log2(min_width)), int(math.log2(max_width)) + 1)]
    errors = random_feature_errors(score, train, widths, t_min=t_min, t_max=t_max, num_fit=num_fit,
                                   stop_below=threshold, generator=torch.Generator().manual_seed(seed + 1))
    return {"widths": widths[:len(errors)], "errors": errors,
            "width_needed": _finite_or_none(crossing_width(widths[:len(errors)], errors, threshold))}


# ----------------------------------------------------------------------------------------------
# Hessians and Lipschitz constants

def empirical_hessian(x: torch.Tensor, t, train: torch.Tensor) -> torch.Tensor:
    """``Hess_x log p^_t(x) = -I / sigma_t^2 + (alpha_t^2 / sigma_t^4) Cov_w[x_i]``, (m, d, d).

    ``Cov_w`` is the covariance of the training points under the posterior weights
    ``w = softmax_i(-||x - alpha_t x_i||^2 / (2 sigma_t^2))``; t a float or 0-d tensor > 0.
    Dense over the training set: (m, n) weights, fine for the sizes notebook 02 uses.
    """
    train = _checks.points(train, "train")
    x = _checks.points(x, "x", dim=train.shape[1])
    t = _checks.time(t, "t", x)
    if t.ndim:
        raise ValueError("t must be a scalar for empirical_hessian")
    alpha_t, sigma_t = alpha_sigma(t)
    d = x.shape[1]
    logits = -torch.cdist(x, alpha_t * train) ** 2 / (2 * sigma_t**2)  # (m, n)
    w = torch.softmax(logits, dim=1)
    mean = w @ train  # (m, d)
    second = torch.einsum("mn,nd,ne->mde", w, train, train)  # (m, d, d)
    cov = second - mean[:, :, None] * mean[:, None, :]
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return -eye / sigma_t**2 + (alpha_t**2 / sigma_t**4) * cov


def mixture_hessian(x: torch.Tensor, t, gmm) -> torch.Tensor:
    """Closed-form Hessian of ``log p_t`` for a mixture with isotropic covariance ``c I``, (m, d, d).

    With ``s^2 = alpha_t^2 c + sigma_t^2`` the diffused components are ``N(alpha_t mu_k, s^2 I)``
    and ``Hess = -I / s^2 + (alpha_t^2 / s^4) Cov_pi[mu_k]`` (responsibilities ``pi``).
    """
    if not getattr(gmm, "isotropic", False):
        raise ValueError("mixture_hessian needs a mixture with isotropic covariance c * I")
    x = _checks.points(x, "x", dim=gmm.dim)
    t = _checks.time(t, "t", x)
    alpha_t, sigma_t = alpha_sigma(t)
    c = float(gmm.eigvals[0])
    s2 = alpha_t**2 * c + sigma_t**2
    pi = gmm.responsibilities(x, t)  # (m, K)
    mu = gmm.means.to(x)
    mean = pi @ mu  # (m, d)
    cov = torch.einsum("mk,kd,ke->mde", pi, mu, mu) - mean[:, :, None] * mean[:, None, :]
    eye = torch.eye(gmm.dim, dtype=x.dtype, device=x.device)
    return -eye / s2 + (alpha_t**2 / s2**2) * cov


def autograd_hessian(log_prob, x: torch.Tensor) -> torch.Tensor:
    """Hessian of a log-density ``log_prob(x) -> (m,)`` at each row of x, by autograd; (m, d, d)."""
    x = _checks.points(x, "x")

    def single(v):
        return log_prob(v[None, :])[0]

    return torch.stack([torch.autograd.functional.hessian(single, v) for v in x])


def lipschitz_constant(score_fn, x: torch.Tensor, t) -> torch.Tensor:
    """Spectral norm of the Jacobian ``d score / d x`` at each row of x (m, d); returns (m,).

    ``score_fn(x, t) -> (m, d)`` is any differentiable score (a network's ``.score``, a closed
    form). The maximum over a cloud of points is a lower bound on the Lipschitz constant in x.
    """
    x = _checks.points(x, "x")

    def single(v):
        return score_fn(v[None, :], t)[0]

    with torch.enable_grad():
        jac = torch.stack([torch.autograd.functional.jacobian(single, v) for v in x])  # (m, d, d)
    return torch.linalg.matrix_norm(jac.detach(), ord=2)


def effective_sample_size(train: torch.Tensor) -> float:
    """Kish's effective size ``(sum c)^2 / sum c^2`` over multiplicities of distinct points.

    Equals n for n distinct points and falls as points are duplicated (the empirical law puts
    weight ``c / n`` on a point repeated c times).
    """
    from .data import deduplicate

    _, counts = deduplicate(train)
    counts = counts.to(torch.float64)
    return float(counts.sum() ** 2 / (counts**2).sum())


# memorization_point moved to labkit.experiments (the paper's protocols live there)
__getattr__ = _moved(__name__, {"memorization_point": "labkit.experiments.memorization_point"},
                     remove_in="0.3")
