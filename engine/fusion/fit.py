"""Fit the fusion model of `model.py` to one data set's own scores, with no labels.

`fit_fusion(scores, names, FusionConfig(variant="SF-ms"))` maximises the MAP objective of
Eq. 4.5 (amortised: the encoder is fitted with f, g, σ, α end to end) by full-batch Adam on the
given (N, M) score matrix, deterministic for a given ``seed``; with the default information
weights (below) the model-level weights are not among the optimised parameters but follow the
observation model at every step (a fixed-point scheme: the gradient does not see that a change
of the curves changes the weights). The result fuses the fitted patches and, amortised, any new
patch scored by the same models (`FusionResult.fuse`).

Inputs: each column is one model's scores oriented so that higher = blurrier. Score fusion
("SF") standardises each column (mean 0, s.d. 1 over the fitted patches); rank fusion ("RF",
Eq. 4.6) replaces scores by normalised ranks R/N ∈ (0, 1]. The encoder always sees standardised
values; the likelihood sees the standardised scores (SF) or the ranks (RF).

Two safeguards keep the joint MAP from degenerating (both documented in `model.py`):
leave-one-out (model j's likelihood term sees the fused score of the other models, so z cannot
copy one model to drive its ω̃ to zero) and ``adaptivity``, the bound on how far one patch's
log-weights may move from the model-level ones (unbounded content-adaptive weights chose one
model per patch, which made the fused score noisy and let random models' inputs steer it).

Model-level weights (``model_weights``): "information" (default) sets each model's weight in
the encoder to its share of the Gaussian information f'²/Var about z under the observation model
being fitted (`model.information_shares`, refreshed every step, not a free parameter); "learned"
fits them freely as the other encoder parameters (Eq. 4.5 as written). Free weights are decided
by the leave-one-out likelihood alone: on the tuning seeds they put weak real models and random
ones at the softmax's floor in no meaningful order (random models 0.003, autocorrelation
0.001–0.003) and, with two random models added, moved toward an even split of the two
informative ones (seed 11: FocusLiteNN/DoG 0.30/0.69 without, 0.53/0.46 with them; SRCC −0.016).
Information weights leave a random model at the floor share and kept the SRCC within 0.001 of
the fit without them. Without random models they were not better on SRCC: 0.825 against 0.831 on
tuning seed 11, −0.002 on 101, +0.002 on 102. The f'²/Var weighting, rather than the
factor-analytic f'/Var (Bartlett), was chosen on the tuning seeds (0.003 higher on average).

Hyper-parameters (``steps``, ``lr``, ``scale_floor``, ``adaptivity``, the information weights
and their floor share 1e-3) were chosen on phantom
tuning seeds only (engine/fusion/evaluate.py, TUNING_SEEDS); evaluation seeds are
others.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from .model import Encoder, ObservationModel, information_shares, posterior_sd

VARIANTS = ("SF-ms", "RF-ms", "SF-m", "RF-m")
MODEL_WEIGHTS = ("information", "learned")


@dataclass(frozen=True)
class FusionConfig:
    variant: str = "SF-ms"
    steps: int = 1500
    lr: float = 0.01
    scale_floor: float = 0.05      # ε_j = scale_floor · s.d. of model j's (standardised / rank) inputs
    leave_one_out: bool = True     # model j's likelihood term sees z fused without model j
    seed: int = 0
    threads: int = 1
    max_fit_patches: int = 4_000   # larger sets are fitted on a seeded random subset, then fused whole (amortised)
    adaptivity: float | None = 0.1  # bound (nats) on each patch's deviation from the model-level log-weights
    model_weights: str = "information"  # "information" (share of f'²/Var, `model.information_shares`) or "learned"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown fusion variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.model_weights not in MODEL_WEIGHTS:
            raise ValueError(f"unknown model weights {self.model_weights!r}; choose one of {', '.join(MODEL_WEIGHTS)}")

    @property
    def ranks(self) -> bool:
        return self.variant.startswith("RF")

    @property
    def score_level(self) -> bool:
        return self.variant.endswith("s")


@contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class Normaliser:
    """Maps raw scores (N, M) to the model's inputs: (likelihood input, encoder input)."""

    ranks: bool
    mean: np.ndarray
    std: np.ndarray
    sorted_cols: np.ndarray | None = None   # RF: each column of the fitted data, sorted

    @classmethod
    def fit(cls, x: np.ndarray, ranks: bool) -> "Normaliser":
        std = x.std(0)
        std = np.where(std > 1e-12 * (1 + np.abs(x).max(0)), std, 1.0)
        return cls(ranks, x.mean(0), std, np.sort(x, 0) if ranks else None)

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.ranks:
            s = (x - self.mean) / self.std
            return s, s
        n = self.sorted_cols.shape[0]
        r = np.empty_like(x, dtype=np.float64)
        for j in range(x.shape[1]):  # average rank within the fitted data, as rankdata would
            lo = np.searchsorted(self.sorted_cols[:, j], x[:, j], "left")
            hi = np.searchsorted(self.sorted_cols[:, j], x[:, j], "right")
            r[:, j] = (lo + hi + 1) / 2 / n
        return r, (r - 0.5) * math.sqrt(12)


@dataclass
class FusionResult:
    """Fused scores of the fitted patches and everything needed to fuse new ones.

    ``fused`` (N,) z ∈ (0, 1), higher = blurrier; ``uncertainty`` (N,) posterior s.d. of z (same
    units); ``patch_weights`` (N, M) the encoder's weights; ``weights`` {model: mean weight};
    ``scales`` {model: overall ω̃^j, the RMS of ω̃_i^j over patches, in units of the model's
    standardised scores (SF) or ranks (RF)}; ``losses`` the objective every 100 steps.
    """

    names: list[str]
    config: FusionConfig
    fused: np.ndarray
    uncertainty: np.ndarray
    patch_weights: np.ndarray
    weights: dict[str, float]
    scales: dict[str, float]
    params: dict[str, dict[str, float]]
    losses: list[float]
    encoder: Encoder = field(repr=False)
    observation: ObservationModel = field(repr=False)
    normaliser: Normaliser = field(repr=False)
    floor: torch.Tensor = field(repr=False)

    def fuse(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fuse new patches scored by the same models: (N, M) → (z, uncertainty, weights)."""
        x = _check_scores(scores, len(self.names))
        obs_in, enc_in = self.normaliser.apply(x)
        with torch.no_grad(), torch_threads(self.config.threads):
            xo = torch.as_tensor(obs_in, dtype=torch.float32)
            z, w = self.encoder(torch.as_tensor(enc_in, dtype=torch.float32))
            u = posterior_sd(self.observation, xo, z, self.floor)
        return z.numpy().astype(np.float64), u.numpy().astype(np.float64), w.numpy().astype(np.float64)

    def summary(self) -> dict:
        """Per model: weight, overall scale ω̃ and the fitted f, g parameters (JSON-ready)."""
        return {n: {"weight": self.weights[n], "scale": self.scales[n], **self.params[n]} for n in self.names}


def _check_scores(scores, m: int | None = None) -> np.ndarray:
    x = np.asarray(scores, np.float64)
    if x.ndim != 2:
        raise ValueError(f"scores must be (patches, models), got shape {x.shape}")
    if m is not None and x.shape[1] != m:
        raise ValueError(f"scores have {x.shape[1]} models, the fit has {m}")
    if not np.isfinite(x).all():
        raise ValueError("scores contain NaN or infinity; pass tissue patches only")
    return x


def _warm_start(obs: ObservationModel, x: torch.Tensor, z0: torch.Tensor) -> None:
    """f^j ≈ the least-squares line of x^j on the equal-weight guess z0, with mild curvature;
    g and σ at the residual s.d."""
    with torch.no_grad():
        zc = z0 - z0.mean()
        slope = (zc[:, None] * (x - x.mean(0))).sum(0) / (zc * zc).sum().clamp_min(1e-12)
        a = -torch.sign(slope) * 1.0 + (slope == 0) * -1.0
        amp = (slope.abs() / torch.exp(a * 0.5)).clamp_min(1e-3)
        obs.a.copy_(a)
        obs.log_amp.copy_(torch.log(amp))
        obs.c.copy_(x.mean(0) + amp * torch.exp(a * z0.mean()))
        resid = (x - obs.f(z0)).std(0).clamp_min(1e-3)
        obs.g_coef.zero_()
        obs.g_coef[2] = 0.7 * resid
        sigma = 0.7 * resid
        obs.sigma_raw.copy_(torch.log(torch.expm1(sigma)))


def fit_fusion(scores: np.ndarray, names: Sequence[str], config: FusionConfig | None = None) -> FusionResult:
    """Fit ``config.variant`` to ``scores`` (N patches × M models, higher = blurrier)."""
    cfg = config or FusionConfig()
    x = _check_scores(scores)
    n, m = x.shape
    names = list(names)
    if len(names) != m:
        raise ValueError(f"{m} score columns but {len(names)} model names")
    if n < 8 or m < 2:
        raise ValueError(f"fusion needs at least 8 patches and 2 models, got {n} × {m}")
    rng = np.random.default_rng(cfg.seed)
    fit_rows = np.sort(rng.choice(n, cfg.max_fit_patches, replace=False)) if n > cfg.max_fit_patches else np.arange(n)
    norm = Normaliser.fit(x[fit_rows], cfg.ranks)
    if cfg.ranks:  # exact ranks of the fitted rows (ties averaged), R/N
        obs_fit = np.stack([rankdata(c) for c in x[fit_rows].T], 1) / len(fit_rows)
        enc_fit = (obs_fit - 0.5) * math.sqrt(12)
    else:
        obs_fit, enc_fit = norm.apply(x[fit_rows])

    with torch_threads(cfg.threads):
        gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        xo = torch.as_tensor(obs_fit, dtype=torch.float32)
        xe = torch.as_tensor(enc_fit, dtype=torch.float32)
        floor = torch.as_tensor(cfg.scale_floor * obs_fit.std(0).clip(1e-6), dtype=torch.float32)
        enc = Encoder(m, gen, cfg.adaptivity)
        obs = ObservationModel(m, score_level=cfg.score_level)
        with torch.no_grad():
            z0, _ = enc(xe)
        _warm_start(obs, xo, z0)
        tied = cfg.model_weights == "information"
        enc.logits.requires_grad_(not tied)
        trained = [p for p in enc.parameters() if p.requires_grad] + list(obs.parameters())
        opt = torch.optim.Adam(trained, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr * 0.05)

        def tie_weights():   # the model-level weights: each model's information share at the current fit
            if tied:
                with torch.no_grad():
                    enc.logits.copy_(torch.log(information_shares(obs, enc(xe)[0], floor)))

        losses = []
        for step in range(cfg.steps):
            tie_weights()
            opt.zero_grad()
            z = enc.leave_one_out(xe) if cfg.leave_one_out else enc(xe)[0]
            loss = -obs.log_likelihood(xo, z, floor).mean()   # −(Eq. 4.5) / (N·M); log U(0,1) = 0
            loss.backward()
            opt.step()
            sched.step()
            if step % 100 == 0 or step == cfg.steps - 1:
                losses.append(float(loss.detach()))
        tie_weights()
        enc.eval()

    result = FusionResult(names, cfg, np.empty(0), np.empty(0), np.empty((0, m)), {}, {}, {}, losses,
                          enc, obs, norm, floor)
    if cfg.ranks and len(fit_rows) == n:   # the fitted rows themselves: exact ranks
        with torch.no_grad(), torch_threads(cfg.threads):
            z, w = enc(xe)
            u = posterior_sd(obs, xo, z, floor)
        z, u, w = (t.numpy().astype(np.float64) for t in (z, u, w))
    else:
        z, u, w = result.fuse(x)
    result.fused, result.uncertainty, result.patch_weights = z, u, w
    with torch.no_grad():
        zt = torch.as_tensor(z, dtype=torch.float32)
        scale, _ = obs.noise(zt, floor)
        rms = torch.sqrt((scale * scale).mean(0))
        b = obs.b()
        for j, name in enumerate(names):
            result.weights[name] = float(w[:, j].mean())
            result.scales[name] = float(rms[j])
            result.params[name] = {"a": float(obs.a[j]), "b": float(b[j]), "c": float(obs.c[j]),
                                   "sigma": float(obs.sigma[j]), "alpha": float(obs.alpha[j]),
                                   "g": [float(v) for v in obs.g_coef[:, j]]}
    return result
