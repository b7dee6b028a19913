"""A slide seen at any focus by the shipped refocusing model, as a computed slide source: exact
captured pixels on a captured plane, the model's own output tile for tile (no seams from the
block grid), closer to the phantom's ground truth than blending planes, each block encoded once
and only decoded again when the focus moves, and readable through the tile store."""
import threading

import numpy as np
import pytest
import torch

from engine.refocus.baselines import linear_weights
from engine.refocus.image_metrics import as_tensor, ssim
from engine.refocus.refocused_slide import BLOCK, HALO, RadianceCache, RefocusedSlide, shipped_model
from engine.slides.array import ArraySlide
from engine.tiles import TileStore
from tests.engine.refocus.phantom_region import SIZE

def test_on_a_captured_plane_it_shows_that_planes_pixels_at_every_level(base, cache):
    rs = RefocusedSlide(base, 1.0, cache=cache)
    for level in range(base.level_count):
        lv = base.levels[level]
        np.testing.assert_array_equal(rs.read_region(level, 0, 0, lv.width, lv.height),
                                      base.read_region(level, 0, 0, lv.width, lv.height, 2))
    assert cache.computed == 0 and rs.planes_um == (1.0,) and rs.levels == base.levels


def test_level_0_is_the_models_output_block_by_block_with_its_margin(base, cache):
    rs = RefocusedSlide(base, 0.5, cache=cache)
    got = rs.read_region(0, 0, 0, *SIZE)
    # Block (1, 0) by hand: the model on the block plus its margin, margin cropped; the margin
    # past the slide's top and right edges repeats the edge pixels.
    x0, bw, bh = BLOCK, SIZE[0] - BLOCK, BLOCK
    assert x0 + bw == SIZE[0] and bh + HALO <= SIZE[1]
    planes = np.stack([np.pad(base.read_region(0, x0 - HALO, 0, bw + HALO, bh + HALO, i),
                              ((HALO, 0), (0, HALO), (0, 0)), mode="edge") for i in range(3)])
    want = shipped_model().refocus_arrays(planes, np.array(base.planes_um, np.float32), 0.5)
    np.testing.assert_allclose(got[:bh, x0:].astype(int), want[HALO:HALO + bh, HALO:HALO + bw].astype(int), atol=1)
    assert cache.computed == 4  # every block of the region encoded once


def test_no_seam_at_block_edges_and_closer_to_the_truth_than_blending(phantom, base, cache):
    z = 0.5
    got = RefocusedSlide(base, z, cache=cache).read_region(0, 0, 0, *SIZE)
    truth = phantom.truth(0, 0, 0, *SIZE, z)
    planes = torch.stack([as_tensor(base.read_region(0, 0, 0, *SIZE, i))[0] for i in range(3)])[None]
    w = linear_weights(torch.tensor([base.planes_um])[..., None, None], torch.tensor([z]))
    blend = (planes * w[:, :, None]).sum(1)
    s_model, s_blend = float(ssim(as_tensor(got), as_tensor(truth))), float(ssim(blend, as_tensor(truth)))
    assert s_model > s_blend, (s_model, s_blend)
    err = np.abs(got.astype(float) - truth.astype(float)).mean(-1)
    seam = err[:, BLOCK - 2:BLOCK + 2].mean()  # columns on both sides of the block edge
    assert seam < 1.5 * err.mean() + 1, (seam, err.mean())


def test_a_focus_change_only_decodes_and_a_block_is_encoded_once_for_many_readers(base):
    cache = RadianceCache()
    out = {}

    def read(z):
        out[z] = RefocusedSlide(base, z, cache=cache).read_region(0, 0, 0, 256, 256)

    threads = [threading.Thread(target=read, args=(z,)) for z in (-0.5, 0.25, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.computed == 1 and len(cache) == 1  # one block, three foci, one encoding
    assert not np.array_equal(out[-0.5], out[2.0])
    read(-1.75)  # beyond the planes: only the decoder runs
    assert cache.computed == 1 and out[-1.75].shape == (256, 256, 3)
    assert cache.nbytes < 100 << 20  # float16 by default


def test_coarse_levels_blend_the_two_nearest_planes(base, cache):
    rs = RefocusedSlide(base, 0.25, cache=cache)
    lv = base.levels[1]
    got = rs.read_region(1, 0, 0, lv.width, lv.height).astype(float)
    a, b = (base.read_region(1, 0, 0, lv.width, lv.height, i).astype(float) for i in (1, 2))
    np.testing.assert_allclose(got, 0.75 * a + 0.25 * b, atol=0.51)


def test_the_tile_store_serves_it_like_any_slide(base, cache):
    rs = RefocusedSlide(base, -0.5, cache=cache)
    store = TileStore(workers=2)
    try:
        req = store.request(rs, 0, 1, 0, tile_size=256)
        tile = store.fetch(req).result(timeout=120)
    finally:
        store.close()
    np.testing.assert_array_equal(tile, rs.read_region(0, 256, 0, 256, 256))
    assert "refocus" in rs.uid and rs.uid != RefocusedSlide(base, -0.25, cache=cache).uid


def test_its_stand_in_blends_the_cached_tiles_of_the_planes_around_z(base, cache):
    rs = RefocusedSlide(base, 0.25, cache=cache)
    store = TileStore(workers=1)
    try:
        req = store.request(rs, 0, 1, 1, tile_size=256)
        assert store.best_available(req) is None  # nothing cached yet
        encoded = cache.computed
        planes = {}
        for i in (1, 2):
            planes[i] = store.fetch(store.request(base, 0, 1, 1, i, tile_size=256)).result(timeout=30)
        quick = store.best_available(req)
        want = 0.75 * planes[1].astype(float) + 0.25 * planes[2].astype(float)
        np.testing.assert_allclose(quick.astype(float), want, atol=0.51)
        assert cache.computed == encoded  # made from cached tiles: no block was encoded for it
    finally:
        store.close()


def test_a_uniform_field_stays_uniform_up_to_its_edges():
    """Past the slide's edges the encoder sees the edge pixels, not white: no bright frame."""
    grey = np.full((150, 200, 3), 128, np.uint8)
    rs = RefocusedSlide(ArraySlide([grey] * 3, planes_um=[-1.0, 0.0, 1.0], mpp=(0.25, 0.25)), 0.5,
                        cache=RadianceCache())
    out = rs.read_region(0, 0, 0, 200, 150).astype(int)
    assert np.abs(out - 128).max() <= 3


def test_a_non_finite_focus_is_refused(base):
    with pytest.raises(ValueError, match="finite"):
        RefocusedSlide(base, float("nan"))


def test_a_deep_stack_feeds_the_encoder_its_16_planes_nearest_the_middle():
    from engine.refocus.refocused_slide import encode_planes

    planes_um = tuple(0.25 * i for i in range(-10, 11))  # 21 planes, −2.5 … +2.5 µm
    got = encode_planes(planes_um)
    assert len(got) == 16 and got == sorted(got) and {0, 1, 19, 20}.isdisjoint(got) and 10 in got
    assert encode_planes((-1.0, 0.0, 1.0)) == [0, 1, 2]


def test_coarse_levels_line_up_with_the_base_at_a_non_integer_downsample(tmp_path):
    """An odd-sized OME-TIFF pyramid (1025 → 513 px: downsample 1.998): every level-1 column of
    the refocused slide is the base's own column, on a captured plane and in the blend."""
    from engine.slides import open_slide
    from engine.tiles.grid import level_px_to_level0
    from tests.slide_files import write_ome_zstack

    path, expected = write_ome_zstack(tmp_path / "odd.ome.tiff", (-1.0, 0.0, 1.0), size=(1025, 771))
    with open_slide(path) as slide:
        ds = slide.levels[1].downsample
        assert ds != int(ds)
        on_plane, between = RefocusedSlide(slide, 1.0), RefocusedSlide(slide, 0.5)
        for lx in range(0, 500, 7):
            x0 = level_px_to_level0(slide, 1, lx)
            np.testing.assert_array_equal(on_plane.read_region(1, x0, 0, 3, 4), expected[1][2][:4, lx:lx + 3])
            want = 0.5 * expected[1][1][:4, lx:lx + 3].astype(float) + 0.5 * expected[1][2][:4, lx:lx + 3]
            np.testing.assert_allclose(between.read_region(1, x0, 0, 3, 4).astype(float), want, atol=0.51)


def test_a_block_is_decoded_once_for_every_tile_that_reads_it(base):
    cache = RadianceCache()
    rs = RefocusedSlide(base, 0.3, cache=cache)
    tiles = [rs.read_region(0, x, y, 200, 200) for x in (0, 200) for y in (0, 200)]  # four tiles, one block
    assert rs.decoded_blocks.computed == 1 and all(t.shape == (200, 200, 3) for t in tiles)
    np.testing.assert_array_equal(tiles[0], rs.block(0, 0)[:200, :200])


def test_a_custom_models_fields_are_keyed_by_its_weights_not_its_address(base):
    a, b = shipped_model(), copy_with_noise(shipped_model())
    assert RefocusedSlide(base, 0.5, model=a).uid != RefocusedSlide(base, 0.5, model=b).uid
    assert RefocusedSlide(base, 0.5, model=b).uid == RefocusedSlide(base, 0.5, model=copy_with_noise(shipped_model())).uid


def copy_with_noise(model):
    import copy

    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 1e-3)
    return out


def test_the_blend_stand_in_is_preferred_to_an_upsampled_coarser_tile(base, cache):
    rs = RefocusedSlide(base, 0.25, cache=cache)
    store = TileStore(workers=1)
    try:
        store.fetch(store.request(rs, 2, 0, 0, tile_size=256)).result(timeout=30)  # the coarse backdrop
        for i in (1, 2):
            store.fetch(store.request(base, 0, 1, 1, i, tile_size=256)).result(timeout=30)
        quick = store.best_available(store.request(rs, 0, 1, 1, tile_size=256))
        planes = [store.cache.peek(store.request(base, 0, 1, 1, i, tile_size=256)).astype(float) for i in (1, 2)]
        np.testing.assert_allclose(quick.astype(float), 0.75 * planes[0] + 0.25 * planes[1], atol=0.51)
    finally:
        store.close()


def test_forgetting_a_slide_forgets_its_refocused_tiles(base, cache):
    rs = RefocusedSlide(base, 1.0, cache=cache)
    store = TileStore(workers=1)
    try:
        store.fetch(store.request(rs, 0, 0, 0, tile_size=128)).result(timeout=30)
        store.fetch(store.request(base, 0, 0, 0, 2, tile_size=128)).result(timeout=30)
        assert store.forget(base) == 2
        assert store.cache.peek(store.request(rs, 0, 0, 0, tile_size=128)) is None
    finally:
        store.close()
