"""The observation model of thesis Ch. 4: the skew-normal likelihood (Eq. 4.2), the noise
combination it rests on, the encoder's content-adaptive linear weights (Eq. 4.5) and RRF (Eq. 2.27)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from engine.fusion.model import Encoder, ObservationModel, combined_noise, skew_normal_logpdf
from engine.fusion.rrf import descending_ranks, rrf


def test_the_skew_normal_log_density_is_scipys():
    e = np.linspace(-3, 3, 41)
    for scale, shape in [(0.5, 0.0), (1.3, 4.0), (0.2, -2.5)]:
        ours = skew_normal_logpdf(torch.tensor(e), torch.tensor(scale), torch.tensor(shape)).numpy()
        np.testing.assert_allclose(ours, stats.skewnorm.logpdf(e, shape, loc=0, scale=scale), rtol=1e-6, atol=1e-9)


def test_skew_normal_plus_normal_noise_is_skew_normal_with_the_combined_scale_and_shape():
    """Eq. 4.2: SN(0, g, α) + N(0, σ²) = SN(0, √(g² + σ²), α g / √(g² + σ² + α² σ²))."""
    g, sigma, alpha = 0.8, 0.5, 3.0
    rng = np.random.default_rng(0)
    sample = stats.skewnorm.rvs(alpha, scale=g, size=400_000, random_state=rng) + rng.normal(0, sigma, 400_000)
    scale, shape = combined_noise(torch.tensor(g), torch.tensor(sigma), torch.tensor(alpha), torch.tensor(0.0))
    predicted = stats.skewnorm(float(shape), scale=float(scale))
    assert float(scale) == pytest.approx(math.hypot(g, sigma))
    mean, var, skew = predicted.stats(moments="mvs")
    assert sample.mean() == pytest.approx(mean, abs=0.005)
    assert sample.var() == pytest.approx(var, rel=0.01)
    assert stats.skew(sample) == pytest.approx(skew, abs=0.015)
    assert stats.kstest(sample, predicted.cdf).statistic < 0.003
    # a plain normal of the same mean and variance is told apart by the same test
    assert stats.kstest(sample, stats.norm(mean, math.sqrt(var)).cdf).statistic > 0.006


def test_f_has_the_thesis_form_and_g_is_quadratic_or_constant():
    obs = ObservationModel(2)
    with torch.no_grad():
        obs.a.copy_(torch.tensor([-2.0, 1.5]))
        obs.log_amp.copy_(torch.tensor([0.3, -0.4]))
        obs.c.copy_(torch.tensor([1.0, -0.5]))
        obs.g_coef.copy_(torch.tensor([[0.2, 0.1], [-0.3, 0.0], [0.5, 0.4]]))
    z = torch.linspace(0.05, 0.95, 7)
    a, b, c = obs.a, obs.b(), obs.c
    expected = -torch.exp(a * (z[:, None] - b)) + c   # f(z) = −exp(a(z − b)) + c
    torch.testing.assert_close(obs.f(z), expected)
    torch.testing.assert_close(obs.g(z)[:, 0], 0.2 * z * z - 0.3 * z + 0.5)
    model_level = ObservationModel(2, score_level=False)
    with torch.no_grad():
        model_level.g_coef.copy_(obs.g_coef)
    assert torch.equal(model_level.g(z), torch.tensor([[0.5, 0.4]]).expand(7, 2))


def test_the_encoder_fuses_by_content_adaptive_weights_that_sum_to_one():
    enc = Encoder(4, torch.Generator().manual_seed(0), adaptivity=0.3)
    assert len(enc.layers) == 6 and all(lin.in_features == lin.out_features == 4 for lin in enc.layers)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for lin in enc.layers:
            lin.weight.normal_(0, 1.0, generator=gen)
        enc.logits.copy_(torch.tensor([1.0, 0.0, -1.0, 0.5]))
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(2))
    z, w = enc(x)
    torch.testing.assert_close(w.sum(-1), torch.ones(50))
    assert w.std(0).max() > 1e-3                                  # weights change with the content…
    base = torch.softmax(enc.logits.detach(), -1)
    assert ((w / base).log().abs() <= 2 * 0.3 + 1e-5).all()       # …by at most the adaptivity bound
    torch.testing.assert_close(z, torch.sigmoid(enc.log_s.exp() * (w * x).sum(-1) + enc.t))
    assert ((z > 0) & (z < 1)).all()                              # the support of the U(0, 1) prior


def test_leaving_a_model_out_spreads_its_weight_over_the_others():
    enc = Encoder(3, torch.Generator().manual_seed(0))
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w = enc.weights(x)
        loo = enc.leave_one_out(x)
    for j in range(3):
        others = [k for k in range(3) if k != j]
        lin = sum((w[:, k] + w[:, j] / 2) * x[:, k] for k in others)
        torch.testing.assert_close(loo[:, j], torch.sigmoid(enc.log_s.exp() * lin + enc.t))


def test_rrf_sums_reciprocal_ranks_with_rank_one_the_blurriest():
    scores = np.array([[3.0, 0.1], [1.0, 0.3], [2.0, 0.2]])
    np.testing.assert_array_equal(descending_ranks(scores), [[1, 3], [3, 1], [2, 2]])
    np.testing.assert_allclose(rrf(scores), [1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 2 / 62])
    np.testing.assert_allclose(rrf(scores, k=0), [1 + 1 / 3, 1 / 3 + 1, 1.0])
    np.testing.assert_array_equal(descending_ranks(np.array([[1.0], [1.0], [0.0]])), [[1.5], [1.5], [3]])
    with pytest.raises(ValueError):
        rrf(scores, k=-1)
