"""Every zoom refocuses: a coarser level of a refocused slide shows the optics' prediction where
the defocus blur spans more than a pixel there, and the plane blend where it does not; checked
against the phantom's own truth at that level."""
import numpy as np
import pytest

from engine.phantom import PhantomSlide
from engine.refocus.image_metrics import as_tensor, psnr, ssim
from engine.refocus.refocused_slide import BLUR_PX, LEVEL_NA, RefocusedSlide


def _ssim(a, b) -> float:
    return float(ssim(as_tensor(a), as_tensor(b))[0])


@pytest.fixture(scope="module")
def single_plane():
    """A single-plane phantom scan (its plane at the slide's best focus, 0 µm), noise-free."""
    return PhantomSlide(seed=5, size=(4096, 4096), planes=1, scanner_error=False, noise=False)


def test_the_rule_follows_the_blur_in_pixels_of_each_level(single_plane):
    view = RefocusedSlide(single_plane, 2.0)
    assert view.level_mode(0) == "model"
    for level in range(1, single_plane.level_count):
        px = view.level_pitch_um(level)
        want = "optics" if 2.0 * LEVEL_NA / px > BLUR_PX else "blend"
        assert view.level_mode(level) == want
    assert view.level_mode(1) == "optics"                      # 0.5 µm px: a 1.5 µm blur
    assert view.level_mode(single_plane.level_count - 1) == "blend"
    assert RefocusedSlide(single_plane, 0.0).level_mode(2) == "plane"
    assert RefocusedSlide(single_plane, 2.0, blend_only=True).level_mode(1) == "blend"


@pytest.mark.parametrize("level", [1, 2])
def test_a_coarser_level_off_the_plane_is_closer_to_the_truth_than_the_plane(single_plane, level):
    z = 2.5
    view = RefocusedSlide(single_plane, z)
    side = 1024 // int(single_plane.levels[level].downsample)
    x = y = 1536                                                     # level-0 px, on tissue
    got = view.read_region(level, x, y, side, side)
    truth = single_plane.truth(level, x, y, side, side, z)
    plane = single_plane.read_region(level, x, y, side, side, 0)
    assert got.shape == plane.shape
    assert _ssim(got, truth) > _ssim(plane, truth) + 0.005
    assert float(psnr(as_tensor(got), as_tensor(truth))[0]) > float(psnr(as_tensor(plane), as_tensor(truth))[0]) + 1.0


def test_tiles_of_a_level_join_without_seams(single_plane):
    view = RefocusedSlide(single_plane, -2.5)
    whole = view.read_region(1, 0, 0, 256, 256)
    parts = np.concatenate([np.concatenate([view.read_region(1, 256 * c, 256 * r, 128, 128) for c in (0, 1)], 1)
                            for r in (0, 1)], 0)
    assert np.abs(whole.astype(int) - parts.astype(int)).max() <= 2
