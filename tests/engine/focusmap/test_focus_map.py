"""A focus map as a pathologist paints it: a soft round brush, an eraser, auto-fill from a depth
map, undo and redo of whole strokes, frozen versions for the renderers, files that survive."""
import numpy as np
import pytest

from engine.focusmap import FocusMap, FocusMapError


def test_an_unpainted_map_follows_the_knob():
    fm = FocusMap(1000, 700, default_um=0.4)
    assert fm.shape == (22, 32) and not fm.painted.any()
    np.testing.assert_array_equal(fm.z_region(0, 0, 1000, 700, 50, 35), np.float32(0.4))


def test_the_brush_paints_its_depth_inside_and_fades_out_smoothly_at_the_rim():
    fm = FocusMap(2000, 2000, default_um=0.0, stride=16)
    fm.paint([(1000, 1000)], radius=400, z_um=-2.0, hardness=0.5)
    # sample along a ray from the centre: full strength within 200 px, fading to nothing at 400
    xs = np.arange(1000, 1600, 16) + 8
    z = fm.z_region(xs[0] - 8, 1000 - 8, xs[-1] - xs[0] + 16, 16, len(xs), 1)[0]
    r = xs - 1000
    assert np.allclose(z[r < 180], -2.0, atol=1e-5)
    assert np.allclose(z[r > 420], 0.0, atol=1e-5)
    ring = z[(r > 200) & (r < 400)]
    assert (np.diff(ring) >= -1e-6).all() and ring.min() > -2.0 and ring.max() < 0.0
    assert fm.painted.sum() > 0 and not fm.painted[0, 0]


def test_a_stroke_is_one_undo_step_and_redo_puts_it_back():
    fm = FocusMap(1000, 1000, default_um=0.0)
    fm.paint([(200, 200)], radius=100, z_um=1.0, hardness=1.0)
    first = fm.values.copy()
    fm.paint([(x, 600) for x in range(100, 900, 50)], radius=80, z_um=-1.5, hardness=1.0)
    v = fm.version
    assert fm.undo() and fm.version == v + 1
    np.testing.assert_array_equal(fm.values, first)
    assert fm.redo()
    assert np.isclose(fm.z_region(500, 600, 1, 1, 1, 1)[0, 0], -1.5, atol=0.05)
    assert fm.undo() and fm.undo() and not fm.painted.any()
    assert not fm.undo() and fm.can_redo


def test_the_eraser_returns_cells_to_the_knob():
    fm = FocusMap(1000, 1000, default_um=0.3)
    fm.paint([(500, 500)], radius=300, z_um=-1.0, hardness=1.0)
    fm.erase([(500, 500)], radius=100)
    assert np.isclose(fm.z_region(490, 490, 20, 20, 1, 1)[0, 0], 0.3)
    assert np.isclose(fm.z_region(700, 500, 1, 1, 1, 1)[0, 0], -1.0)


def test_auto_fill_takes_the_depth_map_where_it_knows_and_can_keep_what_was_painted():
    fm = FocusMap(1024, 512, default_um=0.0, stride=32)
    fm.paint([(100, 100)], radius=40, z_um=2.0, hardness=1.0)
    depth = np.full((4, 8), 0.7, np.float32)            # a depth map every 128 px from (64, 64)
    depth[:, 4:] = np.nan                                # glass on the right half
    fm.fill(depth, origin=(64, 64), spacing=128, only_unpainted=True)
    assert np.isclose(fm.z_region(100, 100, 1, 1, 1, 1)[0, 0], 2.0)     # painted: kept
    assert np.isclose(fm.z_region(300, 300, 1, 1, 1, 1)[0, 0], 0.7)     # filled
    assert np.isclose(fm.z_region(900, 300, 1, 1, 1, 1)[0, 0], 0.0)     # glass: still the knob
    far = FocusMap(4096, 4096)
    far.fill(np.full((2, 2), 1.5, np.float32), origin=(1000, 1000), spacing=100)
    assert far.painted[31, 31] and not far.painted[0, 0] and not far.painted[100, 100]  # only its extent
    # with a region: exactly the cells centred in it, each from its nearest depth cell however far
    edge = FocusMap(4096, 4096)
    edge.paint([(1500, 1500)], radius=40, z_um=-2.0, hardness=1.0)
    edge.fill(np.array([[0.5, 1.0]], np.float32), origin=(1200, 1100), spacing=200, region=(1000, 1000, 512, 256))
    rows, cols = np.nonzero(edge.painted & (edge.values != -2.0))
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (1000 // 32, 1256 // 32, 1000 // 32, 1512 // 32)
    assert np.isclose(edge.values[31, 31], 0.5) and np.isclose(edge.values[38, 46], 1.0)
    assert np.isclose(edge.z_region(1500, 1500, 1, 1, 1, 1)[0, 0], -2.0)   # outside the region: kept
    assert edge.undo() and edge.undo() and not edge.painted.any()
    fm.undo()
    assert np.isclose(fm.z_region(300, 300, 1, 1, 1, 1)[0, 0], 0.0)


def test_a_frozen_version_does_not_see_later_strokes():
    fm = FocusMap(500, 500)
    fm.paint([(250, 250)], radius=100, z_um=1.0)
    snap = fm.frozen()
    digest = snap.digest
    fm.paint([(250, 250)], radius=100, z_um=-1.0)
    assert snap.digest == digest != fm.digest
    with pytest.raises(ValueError):
        snap.values[0, 0] = 5.0


def test_save_and_load_round_trip_and_bad_files_name_themselves(tmp_path):
    fm = FocusMap(1200, 900, default_um=-0.25, stride=24)
    fm.paint([(600, 450), (700, 450)], radius=150, z_um=1.25, hardness=0.3)
    path = fm.save(tmp_path / "case.focusmap.npz")
    back = FocusMap.load(path, size=(1200, 900))
    np.testing.assert_array_equal(back.values, fm.values)
    assert (back.width, back.height, back.stride, back.default_um) == (1200, 900, 24, -0.25)
    assert back.digest == fm.digest
    assert list(tmp_path.iterdir()) == [path]               # no temporary file left behind
    with pytest.raises(FocusMapError, match="made for a 1200 × 900 px slide"):
        FocusMap.load(path, size=(1000, 900))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])     # an interrupted copy
    with pytest.raises(FocusMapError, match="truncated.npz: not a readable focus map"):
        FocusMap.load(truncated)
    plain = tmp_path / "plain.npz"
    with open(plain, "wb") as f:
        np.save(f, np.zeros(3))                                           # an .npy under another name
    with pytest.raises(FocusMapError, match="plain.npz: not a FineFocus focus map"):
        FocusMap.load(plain)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(FocusMapError, match="junk.npz"):
        FocusMap.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, values=np.zeros((2, 2)))
    with pytest.raises(FocusMapError, match="other.npz: not a FineFocus focus map"):
        FocusMap.load(other)
    with pytest.raises(FocusMapError, match="missing.npz: no such file"):
        FocusMap.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("call, words", [
    (lambda fm: fm.paint([(1, 1)], radius=0, z_um=0), "radius"),
    (lambda fm: fm.paint([(1, 1)], radius=5, z_um=float("nan")), "finite"),
    (lambda fm: fm.paint([(1, 1)], radius=5, z_um=0, hardness=2), "hardness"),
    (lambda fm: fm.erase([(1, 1)], radius=-1), "radius"),
])
def test_bad_brush_settings_are_refused(call, words):
    with pytest.raises(ValueError, match=words):
        call(FocusMap(100, 100))


def test_the_all_in_focus_evaluation_compares_the_export_with_the_truth_and_the_baselines():
    """One phantom region: every method's SSIM against the exact all-in-focus image; the export
    with estimated depths beats the scan as it is (plane 0), and the exact depths are the limit."""
    from engine.focusmap.evaluate import METHODS, evaluate_all_in_focus

    report = evaluate_all_in_focus(5, regions=1, size=256)
    ssims = {r["method"]: r["ssim"] for r in report["rows"]}
    assert list(ssims) == list(METHODS) and len(report["regions"]) == 1
    assert all(0 < v <= 1 for v in ssims.values())
    assert ssims["all-in-focus (estimated depths)"] > ssims["plane 0"]
    assert ssims["true z*"] >= ssims["all-in-focus (estimated depths)"] - 0.01
    with pytest.raises(ValueError, match="training seeds"):
        evaluate_all_in_focus(1_000_001)
