"""WSI-DISTS with the shipped weights on real phantom focal stacks, and the LSGAN training path."""
import json

import numpy as np
import pytest
import torch

from engine.refocus.discriminator import FocusDiscriminator, lsgan_d_loss, lsgan_g_loss, relative_target
from engine.refocus.dists_train import spearman
from engine.refocus.train import TrainConfig, train
from engine.refocus.wsi_dists import SHIPPED_DISTS, load_dists, shipped_dists

pytestmark = pytest.mark.skipif(shipped_dists() is None, reason="no shipped WSI-DISTS weights")


@pytest.fixture(scope="module")
def dists():
    return load_dists(shipped_dists())[0]


@pytest.fixture(scope="module")
def stack(refocus_checkpoints):
    """A real phantom crop cache (seed 1 000 000): grid (K, 5, 64, 64, 3) at −1 … +1 µm, z* maps."""
    c = np.load(refocus_checkpoints / "data" / "1000000.npz")
    return {k: c[k] for k in ("grid", "z", "zstar")}


def _img(a):
    return torch.from_numpy(np.ascontiguousarray(a)).float().permute(2, 0, 1)[None] / 255.0


def test_weights_load_with_weights_only_and_alpha_beta_are_normalised(dists):
    blob = torch.load(SHIPPED_DISTS, map_location="cpu", weights_only=True)
    assert set(blob) >= {"config", "features", "logits", "meta"}
    assert SHIPPED_DISTS.stat().st_size < 4 << 20
    alpha, beta = dists.weights()
    assert [len(a) for a in alpha] == [3, 16, 32, 64, 96] == [len(b) for b in beta]
    w = torch.cat([*alpha, *beta])
    assert bool((w >= 0).all()) and abs(float(w.sum()) - 1) < 1e-5
    assert sum(p.numel() for p in dists.features.parameters()) < 500_000
    report = json.loads(blob["meta"]["report"])
    assert report["heldout"]["seeds"][0] >= 1_000_000 and report["fit"]["seeds"][0] >= 1_000_000


def test_distance_is_zero_on_itself_non_negative_and_symmetric(dists, stack):
    g = stack["grid"]
    x = torch.cat([_img(g[0, 0]), _img(g[1, 2]), _img(g[0, 4])])
    y = torch.cat([_img(g[0, 3]), _img(g[1, 0]), _img(g[1, 4])])
    with torch.no_grad():
        assert torch.allclose(dists(x, x), torch.zeros(3), atol=1e-5)
        d, back = dists(x, y), dists(y, x)
    assert bool((d > 1e-3).all())
    assert torch.allclose(d, back, atol=1e-6)
    with torch.no_grad():      # one reference against a batch: the same as the pairwise distances
        assert torch.allclose(dists(x, y[:1]), dists(x, y[:1].expand_as(x).contiguous()), atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        dists(x, y[:, :, :32])


def test_larger_defocus_difference_gives_larger_distance(dists, stack):
    """Over the pairs of planes of each crop on one side of focus, D ranks with |q1 − q2|
    (q = mean |z − z*|, µm), and from the sharpest plane D grows with every further step away on
    either side."""
    grid, z, zstar = stack["grid"], stack["z"], stack["zstar"]
    ds, dq = [], []
    for k in range(len(grid)):
        q = np.abs(z[:, None, None] - zstar[k][None]).mean((1, 2))
        best, centre = int(np.argmin(q)), float(zstar[k].mean())
        pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z)) if (z[i] - centre) * (z[j] - centre) >= 0]
        planes = torch.cat([_img(p) for p in grid[k]])
        with torch.no_grad():
            d = dists(planes[[i for i, _ in pairs]], planes[[j for _, j in pairs]]).tolist()
            from_best = dists(planes[[best] * len(z)], planes).tolist()
        ds += d
        dq += [abs(q[i] - q[j]) for i, j in pairs]
        for side in (from_best[best + 1:], from_best[:best][::-1]):
            assert all(a < b for a, b in zip(side, side[1:])), (k, best, from_best)
    assert spearman(ds, dq) > 0.8


def test_lsgan_losses_and_conditional_discriminator():
    disc = FocusDiscriminator()
    x = torch.rand(2, 3, 32, 32)
    rel = relative_target(torch.full((2, 32, 32), 0.5), torch.tensor([[-1.0, 1.0], [0.0, 1.0]]))
    assert torch.allclose(rel[:, 0, 0], torch.tensor([0.5, 0.0]))
    s = disc(x, rel)
    assert s.shape == (2, 1, 8, 8)
    assert float(lsgan_d_loss(torch.ones(3), torch.zeros(3))) == 0.0
    assert float(lsgan_g_loss(torch.ones(3))) == 0.0 and float(lsgan_g_loss(torch.zeros(3))) == 0.5
    # the score depends on the condition
    assert (disc(x, rel) - disc(x, rel + 1.0)).abs().max() > 1e-4


def _checkpoints(src, dst):
    dst.mkdir()
    for sub in ("data", "val"):
        (dst / sub).mkdir()
        for f in (src / sub).glob("*.npz"):
            (dst / sub / f.name).symlink_to(f)
    return dst


def _cfg(tmp_path, ck, **kw):
    return TrainConfig(out=tmp_path / f"{ck.name}.pt", checkpoints=ck, slides=1, steps=4, batch=2, crop=32,
                       val_every=2, val_examples=1, channels=(4, 8, 8), depth=4, consistency_every=1, **kw)


def test_gan_run_with_wsi_dists_resumes_exactly_where_an_uninterrupted_one_ends(refocus_checkpoints, tmp_path):
    logs = []
    whole = _cfg(tmp_path, _checkpoints(refocus_checkpoints, tmp_path / "whole"), recon="wsi-dists", gan=True)
    train(whole, log=logs.append)
    split = _cfg(tmp_path, _checkpoints(refocus_checkpoints, tmp_path / "split"), recon="wsi-dists", gan=True,
                 until=2)
    train(split, log=logs.append)
    split.resume, split.until = True, None
    train(split, log=logs.append)
    a = torch.load(whole.checkpoints / "last.pt", weights_only=True)
    b = torch.load(split.checkpoints / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    assert json.loads(a["losses"])["weights"] == {"l1": 0.0, "ssim": 0.0, "dists": 15.0, "consistency": 1.0,
                                                  "gan": 1.0}
    for part in ("state", "disc_state"):
        for k, v in a[part].items():
            assert torch.allclose(v, b[part][k], atol=1e-6), (part, k)
    moved = [k for k, v in a["disc_state"].items() if not torch.equal(v, FocusDiscriminator().state_dict()[k])]
    assert moved


def test_a_checkpoint_without_discriminator_resumes_into_a_gan_run(refocus_checkpoints, tmp_path):
    ck = _checkpoints(refocus_checkpoints, tmp_path / "old")
    cfg = _cfg(tmp_path, ck, until=2)
    train(cfg, log=lambda m: None)
    blob = torch.load(ck / "last.pt", weights_only=True)
    for key in ("random_states", "sampler_gen", "torch_rng", "losses"):    # the format before LSGAN
        del blob[key]
    torch.save(blob, ck / "last.pt")
    logs = []
    cfg.resume, cfg.until, cfg.gan = True, None, True
    result = train(cfg, log=logs.append)
    assert result["step"] == 4 and any("has no discriminator" in m for m in logs)
    assert "disc_state" in torch.load(ck / "last.pt", weights_only=True)
