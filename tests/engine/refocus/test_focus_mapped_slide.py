"""A slide with each place at its own focus (a painted or auto-filled `FocusMap`), rendered by the
shipped refocusing model from the same cached radiance fields as the focus knob: a uniform map is
exactly the knob's view, a painted disc shows its own depth, and a map filled from the phantom's
best-focus depths gives an all-in-focus image closer to the truth than any captured plane and
than classical focus stacking."""
import numpy as np
import pytest
import torch

from engine.focusmap import FocusMap
from engine.refocus.baselines import focus_stack
from engine.refocus.focus_mapped_slide import FocusMappedSlide
from engine.refocus.image_metrics import as_tensor, ssim
from engine.refocus.refocused_slide import RefocusedSlide
from engine.slides.array import ArraySlide
from tests.engine.refocus.phantom_region import SIZE


def test_a_uniform_map_is_the_focus_knobs_view_at_every_level(base, cache):
    fm = FocusMap(*SIZE, default_um=0.5)
    mapped = FocusMappedSlide(base, fm, cache=cache)
    knob = RefocusedSlide(base, 0.5, cache=cache)
    for level in range(base.level_count):
        lv = base.levels[level]
        np.testing.assert_array_equal(mapped.read_region(level, 0, 0, lv.width, lv.height),
                                      knob.read_region(level, 0, 0, lv.width, lv.height))
    assert cache.computed == 4 and mapped.uid != knob.uid   # the knob reused the map's fields


def test_a_painted_disc_shows_its_depth_and_the_rest_the_knob(base, cache):
    fm = FocusMap(*SIZE, default_um=0.5)
    fm.paint([(200, 300)], radius=160, z_um=-0.6, hardness=0.7)
    before = cache.computed
    got = FocusMappedSlide(base, fm, cache=cache).read_region(0, 0, 0, *SIZE)
    deep = RefocusedSlide(base, -0.6, cache=cache).read_region(0, 0, 0, *SIZE)
    knob = RefocusedSlide(base, 0.5, cache=cache).read_region(0, 0, 0, *SIZE)
    assert cache.computed == before                          # painting only reran the decoder
    inside = np.s_[260:340, 160:240]
    far = np.s_[:, 512:]                                     # the next block of the grid
    near, off = (np.abs(got[inside].astype(int) - other[inside]).mean() for other in (deep, knob))
    assert near < 0.5 and off > 4 * near, (near, off)
    np.testing.assert_array_equal(got[far], knob[far])


def test_a_later_stroke_makes_a_new_slide_and_leaves_the_old_ones_pixels(base, cache):
    fm = FocusMap(*SIZE, default_um=0.0)
    first = FocusMappedSlide(base, fm, cache=cache)
    a = first.read_region(0, 100, 100, 64, 64)
    fm.paint([(130, 130)], radius=100, z_um=1.0)
    second = FocusMappedSlide(base, fm, cache=cache)
    assert second.uid != first.uid
    np.testing.assert_array_equal(first.read_region(0, 100, 100, 64, 64), a)
    assert not np.array_equal(second.read_region(0, 100, 100, 64, 64), a)


def test_all_in_focus_from_the_best_focus_depths_beats_every_plane_and_focus_stacking(phantom, base, cache):
    zstar = phantom.best_focus_map(0, 0, 0, *SIZE)
    truth = as_tensor(phantom.all_in_focus(0, 0, 0, *SIZE))
    fm = FocusMap(*SIZE, default_um=0.0, stride=16)
    fm.fill(zstar[8::16, 8::16], origin=(8, 8), spacing=16)
    got = FocusMappedSlide(base, fm, cache=cache).read_region(0, 0, 0, *SIZE)
    planes = [base.read_region(0, 0, 0, *SIZE, i) for i in range(3)]
    stacked = focus_stack(torch.stack([as_tensor(p)[0] for p in planes])[None])
    ours = float(ssim(as_tensor(got), truth))
    baselines = [float(ssim(as_tensor(p), truth)) for p in planes] + [float(ssim(stacked, truth))]
    assert ours > max(baselines) + 0.02, (ours, baselines)


def test_a_map_for_another_slide_is_refused(base):
    with pytest.raises(ValueError, match="the focus map is for a 100 × 100 px slide"):
        FocusMappedSlide(base, FocusMap(100, 100))


def test_coarse_levels_blend_the_planes_around_the_maps_depth_at_each_place():
    """Planes of one flat colour each (−1, 0, +1 µm): at level 1, the left half painted at
    −0.5 µm shows the even mix of the first two, the unpainted right half (knob at +1 µm) the
    third alone, each at the place the map gives it (level px ≠ level-0 px)."""
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    planes = [np.full((1024, 2048, 3), c, np.uint8) for c in colours]
    flat = ArraySlide(planes, planes_um=[-1.0, 0.0, 1.0], mpp=(0.25, 0.25))
    fm = FocusMap(2048, 1024, default_um=1.0)
    fm.paint([(x, y) for x in range(0, 1024, 32) for y in range(0, 1024, 64)], radius=48, z_um=-0.5,
             hardness=1.0)
    level = 1
    img = FocusMappedSlide(flat, fm).read_region(level, 0, 0, 1024, 512)
    np.testing.assert_allclose(img[100:400, 50:400].reshape(-1, 3).mean(0), (100, 100, 0), atol=1)
    np.testing.assert_array_equal(img[100:400, 600:1000], np.broadcast_to((0, 0, 200), (300, 400, 3)))
    # a sub-region across the painted edge (x, y in level-0 px) is the same pixels as the whole read there
    part = FocusMappedSlide(flat, fm).read_region(level, 960, 400, 100, 50)
    np.testing.assert_array_equal(part, img[200:250, 480:580])
    assert len(np.unique(part[..., 0])) > 3                      # the soft edge runs through it
