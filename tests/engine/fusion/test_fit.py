"""Unsupervised fits on real scores: the models of `engine.fusion.inputs` scoring small phantom
focal stacks (exact labels |z − z*| in µm, which the fit never sees)."""
import numpy as np
import pytest
import torch

from engine.evaluation import srcc
from engine.fusion import FusionConfig, fit_fusion, rrf
from engine.fusion.evaluate import compare_methods, linear_fusion_ceiling
from engine.fusion.inputs import random_models
from tests.engine.fusion.phantom_scores import SEED, phantom_scores

#: Few optimisation steps keep the tests fast; the figures reported use the defaults.
STEPS = 400


@pytest.fixture(scope="module")
def data():
    return phantom_scores()


@pytest.fixture(scope="module")
def with_random(data):
    names, noise = random_models(len(data.labels), 2, SEED)
    return np.concatenate([data.scores, noise], 1), list(data.names) + names


@pytest.fixture(scope="module")
def fitted(with_random):
    scores, names = with_random
    return fit_fusion(scores, names, FusionConfig("SF-ms", steps=STEPS))


def test_the_fused_score_follows_the_defocus_it_never_saw(data, fitted):
    singles = [srcc(data.scores[:, j], data.labels) for j in range(data.scores.shape[1])]
    fused = srcc(fitted.fused, data.labels)
    assert fused > 0.3
    assert fused > np.median(singles)
    assert ((fitted.fused > 0) & (fitted.fused < 1)).all()


def test_random_models_get_the_smallest_weights_and_the_largest_scales(data, fitted):
    names = fitted.names
    real = [n for n in names if not n.startswith("random-")]
    random = ["random-1", "random-2"]
    top = max(real, key=lambda n: fitted.weights[n])
    # the smallest weights of all, below every real model's, however weak (thesis Table 4.4)
    assert max(fitted.weights[n] for n in random) < min(fitted.weights[n] for n in real)
    assert max(fitted.weights[n] for n in random) < min(0.05, fitted.weights[top] / 10)
    # ω̃ of a random model is about the s.d. of its standardised scores (1): nothing explains them,
    # while the model that carries the fused score most has a smaller scale
    assert min(fitted.scales[n] for n in random) > 0.8
    assert min(fitted.scales[n] for n in random) > fitted.scales[top]
    assert sum(fitted.weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(fitted.summary()[names[0]]) >= {"weight", "scale", "a", "b", "c", "sigma", "alpha", "g"}


def test_model_weights_are_the_models_shares_of_the_information_about_z(with_random, fitted):
    """By default a model's weight is its share of Σ_j f_j'(z)² / Var n_j(z) over the fitted
    patches, recomputed here from the fitted curves and noise; its content-adaptive part moves
    each patch's weights by at most ± ``adaptivity`` nats."""
    from engine.fusion.model import information_shares

    assert fitted.config.model_weights == "information"
    with torch.no_grad():
        z = torch.as_tensor(fitted.fused, dtype=torch.float32)
        shares = information_shares(fitted.observation, z, fitted.floor).numpy()
        model_level = torch.softmax(fitted.encoder.logits, 0).numpy()
    np.testing.assert_allclose(model_level, shares, rtol=1e-3, atol=1e-7)
    ratio = fitted.patch_weights / model_level
    a = fitted.config.adaptivity
    assert (np.abs(np.log(ratio / np.exp(np.log(ratio).mean(1, keepdims=True)))) <= 2 * a + 1e-5).all()


def test_learned_model_weights_are_free_parameters_of_the_fit(with_random, fitted):
    scores, names = with_random
    learned = fit_fusion(scores, names, FusionConfig("SF-ms", steps=STEPS, model_weights="learned"))
    assert learned.encoder.logits.requires_grad
    assert learned.encoder.logits.detach().abs().max() > 0.05   # they start at 0: the fit moved them
    assert not np.allclose(learned.fused, fitted.fused)
    assert sum(learned.weights.values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="unknown model weights"):
        FusionConfig(model_weights="equal")


def test_a_model_pointing_the_wrong_way_gets_the_floor_weight(data):
    """Scores oriented higher = sharper (a metric passed without its blur orientation) have a
    falling fitted curve: the encoder only adds scores, so such a model gets the floor share."""
    flipped = data.scores.copy()
    j = list(data.names).index("difference_of_gaussians")
    flipped[:, j] = -flipped[:, j]
    res = fit_fusion(flipped, data.names, FusionConfig("SF-ms", steps=STEPS))
    with torch.no_grad():
        assert float(res.observation.f_prime(torch.tensor([0.5]))[0, j]) < 0
    assert res.weights["difference_of_gaussians"] < 0.002
    assert res.weights["difference_of_gaussians"] < min(w for n, w in res.weights.items()
                                                        if n != "difference_of_gaussians")


def test_amortised_fusion_of_new_patches_reproduces_the_fit(with_random, fitted):
    scores, _ = with_random
    z, u, w = fitted.fuse(scores[:7])
    np.testing.assert_allclose(z, fitted.fused[:7], rtol=1e-6)
    np.testing.assert_allclose(u, fitted.uncertainty[:7], rtol=1e-6)
    assert (u > 0).all() and w.shape == (7, scores.shape[1])


def test_a_fit_is_deterministic_for_its_seed(with_random, fitted):
    scores, names = with_random
    again = fit_fusion(scores, names, FusionConfig("SF-ms", steps=STEPS))
    np.testing.assert_array_equal(again.fused, fitted.fused)


def test_rank_fusion_only_sees_ranks(data):
    """RF-ms (Eq. 4.6) gives the same fused scores after any increasing change of a model's scores."""
    cfg = FusionConfig("RF-ms", steps=150)
    warped = data.scores.copy()
    warped[:, 0] = np.exp(3 * warped[:, 0] / np.abs(warped[:, 0]).max())
    a = fit_fusion(data.scores, data.names, cfg)
    b = fit_fusion(warped, data.names, cfg)
    np.testing.assert_allclose(a.fused, b.fused, atol=1e-5)
    assert not np.allclose(fit_fusion(warped, data.names, FusionConfig("SF-ms", steps=150)).fused, a.fused)


def test_the_comparison_lists_every_model_variant_and_rrf(data, with_random):
    scores, names = with_random
    out = compare_methods(scores, data.labels, names, variants=("SF-m",), config=FusionConfig(steps=150))
    methods = [r["method"] for r in out["rows"]]
    assert methods == names + ["SF-m", "RRF"]
    rrf_row = out["rows"][-1]
    assert rrf_row["srcc"] == pytest.approx(srcc(rrf(scores), data.labels))
    assert set(out["weights"]["SF-m"]) == set(names)
    ceiling = out["linear_ceiling"]
    assert ceiling["srcc"] >= max(r["srcc"] for r in out["rows"] if r["kind"] == "single") - 1e-12
    assert sum(ceiling["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert min(ceiling["weights"].values()) >= 0
    check = out["uncertainty"]["SF-m"]
    assert check["top_decile_patches"] >= len(data.labels) // 10
    assert {"top_decile_rank_error", "rest_rank_error", "top_decile_error_um", "rest_error_um"} <= set(check)


def test_the_linear_ceiling_finds_the_weighting_that_averages_independent_errors_away():
    """Two equally good views of the labels with independent errors and a useless third: the
    label-chosen weighting is about half and half, nothing on the third, and beats either view."""
    rng = np.random.default_rng(5)
    labels = rng.uniform(0, 3, 600)
    scores = np.stack([labels + rng.normal(0, 1, 600), 10 * labels + rng.normal(0, 10, 600),
                       rng.uniform(0, 1, 600)], 1)
    out = linear_fusion_ceiling(scores, labels, ["a", "b", "noise"])
    assert out["srcc"] > max(srcc(scores[:, j], labels) for j in range(2)) + 0.03
    assert 0.3 <= out["weights"]["a"] <= 0.7 and out["weights"]["noise"] <= 0.05
    # a model with constant scores (SRCC undefined) neither starts a search nor poisons it
    with_constant = np.concatenate([scores, np.ones((600, 1))], 1)
    again = linear_fusion_ceiling(with_constant, labels, ["a", "b", "noise", "constant"])
    assert np.isfinite(again["srcc"]) and again["srcc"] == pytest.approx(out["srcc"], abs=2e-3)


def test_scores_fusion_cannot_use_are_refused(data):
    with pytest.raises(ValueError, match="NaN"):
        bad = data.scores.copy()
        bad[3, 1] = np.nan
        fit_fusion(bad, data.names)
    with pytest.raises(ValueError, match="at least 8 patches and 2 models"):
        fit_fusion(data.scores[:5], data.names)
    with pytest.raises(ValueError, match="model names"):
        fit_fusion(data.scores, data.names[:-1])
    with pytest.raises(ValueError, match="unknown fusion variant"):
        FusionConfig("XF-ms")


def test_uncertainty_is_the_posterior_sd_of_z_under_the_fitted_model(data, fitted):
    """1 / √(Σ_j f_j'(z)² / Var n_j(z)): recomputed here from the fitted curves and noise by
    finite differences of f and the skew-normal variance ω̃²(1 − 2δ²/π)."""
    obs = fitted.observation
    z = torch.as_tensor(fitted.fused, dtype=torch.float32)
    h = 1e-3
    with torch.no_grad():
        slope = (obs.f(z + h) - obs.f(z - h)) / (2 * h)
        scale, shape = obs.noise(z, fitted.floor)
        delta = shape / torch.sqrt(1 + shape ** 2)
        var = scale ** 2 * (1 - 2 * delta ** 2 / np.pi)
        want = (1 / torch.sqrt((slope ** 2 / var).sum(-1))).numpy()
    np.testing.assert_allclose(fitted.uncertainty, want, rtol=2e-3)
    assert (fitted.uncertainty > 0).all() and fitted.uncertainty.std() > 0


@pytest.mark.parametrize("variant", ["SF-ms", "RF-ms"])
def test_large_sets_are_fitted_on_a_subset_and_fused_whole(data, variant):
    n = len(data.labels)
    res = fit_fusion(data.scores, data.names, FusionConfig(variant, steps=100, max_fit_patches=n // 2))
    assert res.fused.shape == res.uncertainty.shape == (n,)
    assert np.isfinite(res.fused).all() and ((res.fused > 0) & (res.fused < 1)).all()
    np.testing.assert_allclose(res.fuse(data.scores)[0], res.fused, rtol=1e-6)
