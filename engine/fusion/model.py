"""The observation model of unsupervised score fusion (thesis Ch. 4, Eqs. 4.1–4.6).

M quality models score N patches: ``x[i, j]`` is model j's score of patch i. Each score is a
noisy view of one latent quality z_i ∈ (0, 1) (Eq. 4.1):

    x_i^j = f^j(z_i) + n_i^j + n̂^j,   n_i^j ~ SN(0, ω_i^j, α^j),  n̂^j ~ N(0, σ_j²),
    f^j(z) = −exp(a_j (z − b_j)) + c_j,   ω_i^j = g^j(z_i) = p_j z_i² + q_j z_i + r_j.

The sum of the two noises is skew normal SN(0, ω̃_i^j, α̃_i^j) (Eq. 4.2) with
ω̃ = √(g² + σ²) and α̃ = α g / √(g² + σ² + α² σ²). The MAP objective (Eqs. 4.3–4.4) with the
uniform prior z ~ U(0, 1) is the summed skew-normal log-likelihood; the prior's support is
enforced by construction (z = sigmoid(·)), so log p(z) = 0 wherever z can go.

Amortised inference (Eq. 4.5): an encoder of six fully connected M → M layers (LeakyReLU
between them, none after the last) turns a patch's M scores into M content-adaptive weights
(softmax of per-model logits plus the layers' output, bounded to ± ``adaptivity`` nats), and
z_i = sigmoid(s · Σ_j w_ij x_ij + t): a linear combination one can inspect. The per-model
logits are either free parameters of the fit or, by default (`fit.FusionConfig.model_weights`),
the logs of each model's share of the (Gaussian) information about z under the fitted
observation model (`information_shares`, f'²/Var): a model whose fitted curve is flat (random
numbers) gets next to none. This weighting was chosen empirically, on the tuning seeds; the
factor-analytic (Bartlett) weights f'/Var were tried too.

Leave-one-out: in the objective, model j's likelihood term is evaluated at z_i^(−j), the fused
score with model j's weight handed to the others in equal shares (`Encoder.leave_one_out`), so
no model is rewarded for being copied by z (without it, z copies one model and drives that
model's ω̃ to the floor).

Variants (thesis Sec. 4.3.2): score-level uncertainty (g quadratic, "-s") or model-level only
(g constant, "-m"); score fusion ("SF", on standardised scores) or rank fusion ("RF", Eq. 4.6,
on normalised ranks R/N). A scale floor ε_j = ``scale_floor`` · std(x^j) is added in quadrature
to ω̃ (ω̃² = g² + σ² + ε²): without it the joint MAP is unbounded (a model copied exactly by z
would reach ω̃ → 0, the Heywood case of factor analysis).

Orientation: inputs are oriented so that higher = worse (blurrier), as `Metric.blur_score`
and FocusLiteNN are; z then also means higher = blurrier.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def skew_normal_logpdf(e: torch.Tensor, scale: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """log SN(e; 0, scale, shape) = log 2 − log ω + log φ(e/ω) + log Φ(α e/ω) (Eq. 4.2)."""
    u = e / scale
    return _LOG2 - torch.log(scale) - _HALF_LOG_2PI - 0.5 * u * u + torch.special.log_ndtr(shape * u)


def combined_noise(g: torch.Tensor, sigma: torch.Tensor, alpha: torch.Tensor,
                   floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ω̃ and shape α̃ of SN(0, g, α) + N(0, σ²) (+ the floor ε in quadrature), Eq. 4.2."""
    g2 = g * g
    s2 = sigma * sigma
    scale = torch.sqrt(g2 + s2 + floor * floor)
    shape = alpha * g / torch.sqrt(g2 + s2 + alpha * alpha * s2 + 1e-12)
    return scale, shape


def _per_model(z: torch.Tensor) -> torch.Tensor:
    return z[:, None] if z.ndim == 1 else z


class Encoder(nn.Module):
    """e(x; θ_e) of Eq. 4.5: six M → M fully connected layers predicting content-adaptive
    weights w_i (softmax), then z_i = sigmoid(s · ⟨w_i, x_i⟩ + t) ∈ (0, 1)."""

    LAYERS = 6

    def __init__(self, m: int, generator: torch.Generator | None = None, adaptivity: float | None = None):
        super().__init__()
        #: Bound on the content-adaptive part of the log-weights (None: unbounded). Weights are
        #: softmax(b + adaptivity · tanh(h(x))): a per-model b (the model-level weight) plus a
        #: per-patch deviation of at most ± ``adaptivity`` nats from the six layers' output h(x).
        self.adaptivity = adaptivity
        self.logits = nn.Parameter(torch.zeros(m))
        self.layers = nn.ModuleList(nn.Linear(m, m) for _ in range(self.LAYERS))
        with torch.no_grad():
            for lin in self.layers:
                bound = 1.0 / math.sqrt(m)
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)
            # Start from equal weights: the last layer outputs zeros.
            self.layers[-1].weight.zero_()
            self.layers[-1].bias.zero_()
        self.log_s = nn.Parameter(torch.zeros(()))
        self.t = nn.Parameter(torch.zeros(()))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for k, lin in enumerate(self.layers):
            h = lin(h)
            if k < self.LAYERS - 1:
                h = F.leaky_relu(h, 0.2)
        if self.adaptivity is not None:
            h = self.adaptivity * torch.tanh(h)
        return torch.softmax(self.logits + h, dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(x)
        z = torch.sigmoid(self.log_s.exp() * (w * x).sum(-1) + self.t)
        return z, w

    def leave_one_out(self, x: torch.Tensor) -> torch.Tensor:
        """z_i^(−j): the fused score of patch i with model j's term left out of the linear
        combination and its weight shared equally by the others, (N, M). (Sharing in proportion
        to the others' weights would leave the near-zero weights' ratios free to fit model j
        alone; equal shares leave no such freedom.)"""
        w = self.weights(x)
        m = x.shape[-1]
        wx = w * x
        # Model j's weight goes to the others in equal shares: w_k + w_j / (M − 1).
        share = w / max(m - 1, 1)
        total = x.sum(-1, keepdim=True)
        rest = wx.sum(-1, keepdim=True) - wx + share * (total - x)
        return torch.sigmoid(self.log_s.exp() * rest + self.t)


class ObservationModel(nn.Module):
    """Per-model f^j, g^j, σ_j, α_j of Eq. 4.1 for M models. ``score_level`` False makes g^j
    a constant (the "-m" variants)."""

    def __init__(self, m: int, score_level: bool = True):
        super().__init__()
        self.score_level = score_level
        # f(z) = c − A·exp(a z), A = exp(log_amp): the same family as −exp(a(z − b)) + c, b = −log A / a.
        self.a = nn.Parameter(torch.full((m,), -1.0))
        self.log_amp = nn.Parameter(torch.zeros(m))
        self.c = nn.Parameter(torch.zeros(m))
        self.g_coef = nn.Parameter(torch.zeros(3, m))      # p, q, r of g(z) = p z² + q z + r
        self.sigma_raw = nn.Parameter(torch.full((m,), -2.0))
        self.alpha = nn.Parameter(torch.zeros(m))

    def f(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructed scores f^j(z_i): z (N,) or per model (N, M) → (N, M)."""
        return self.c - torch.exp(self.log_amp + self.a * _per_model(z))

    def f_prime(self, z: torch.Tensor) -> torch.Tensor:
        return -self.a * torch.exp(self.log_amp + self.a * _per_model(z))

    def g(self, z: torch.Tensor) -> torch.Tensor:
        """Score-level scale g^j(z_i): z (N,) or (N, M) → (N, M)."""
        p, q, r = self.g_coef
        if not self.score_level:
            return r.expand(z.shape[0], -1)
        zz = _per_model(z)
        return p * zz * zz + q * zz + r

    @property
    def sigma(self) -> torch.Tensor:
        return F.softplus(self.sigma_raw)

    def noise(self, z: torch.Tensor, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ω̃, α̃), each (N, M)."""
        return combined_noise(self.g(z), self.sigma, self.alpha, floor)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        """log p(x_i^j | z_i), (N, M) (Eq. 4.2)."""
        scale, shape = self.noise(z, floor)
        return skew_normal_logpdf(x - self.f(z), scale, shape)

    def b(self) -> torch.Tensor:
        """b_j of the thesis form −exp(a(z − b)) + c."""
        return -self.log_amp / torch.where(self.a.abs() < 1e-8, torch.full_like(self.a, 1e-8), self.a)


def information(obs: ObservationModel, z: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """How much each model's score tells about z_i under the fitted observation model, (N, M):
    f_j'(z_i)² / v_j(z_i), with v the variance of model j's skew-normal noise,
    v = ω̃² (1 − 2δ²/π), δ = α̃ / √(1 + α̃²): the Fisher information of a Gaussian noise of that
    variance (it leaves out the skewness and the z-dependence of g, which the exact skew-normal
    information would include). A model tells little where its curve is flat (a change of z barely
    moves its score) or its fitted score-level noise g_j(z) and model-level noise σ_j are large,
    the thesis' fine- and coarse-grained uncertainties (Sec. 4.2); a model that outputs random
    numbers has a flat curve and so carries next to none."""
    scale, shape = obs.noise(z, floor)
    delta = shape / torch.sqrt(1 + shape * shape)
    var = scale * scale * (1 - 2 * delta * delta / math.pi)
    return obs.f_prime(z) ** 2 / var


def information_shares(obs: ObservationModel, z: torch.Tensor, floor: torch.Tensor,
                       floor_share: float = 1e-3) -> torch.Tensor:
    """Each model's share of the `information` about z, averaged over patches, (M,), summing to 1.

    A model whose fitted curve falls with z (its scores point the wrong way: higher = sharper)
    gets the floor, not a share: the encoder adds scores with non-negative weights. Shares below
    ``floor_share`` × the largest are raised to it (the encoder's weights are a softmax: a
    log-weight must stay finite), so a model that carries nothing sits at that floor."""
    info = information(obs, z, floor).mean(0) * (obs.f_prime(z).mean(0) > 0)
    info = info.clamp_min(floor_share * info.max().clamp_min(1e-12))
    return info / info.sum()


def posterior_sd(obs: ObservationModel, x: torch.Tensor, z: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """Uncertainty of each fused z_i (N,): the Gaussian (Laplace/Fisher) posterior s.d. of z_i
    given its M scores under the fitted observation model, 1 / √(Σ_j f_j'(z_i)² / v_j(z_i)),
    the summed `information` of the models: a patch is uncertain where the models' curves are
    flat or their noise is large. (Inflating it by the patch's own disagreement, the reduced χ²
    of its residuals, was tried and dropped: on tuning seed 101 the most disagreed-on decile had
    the *smaller* error.) ``x`` is accepted for the signature's sake: the s.d. depends on z and
    the fitted model only.
    """
    precision = information(obs, z, floor).sum(-1).clamp_min(1e-12)
    return 1.0 / torch.sqrt(precision)
