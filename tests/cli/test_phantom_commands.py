"""`finefocus phantom write` and `finefocus phantom truth` through the engine's CLI entry point.

Small slides (640×480 px, seed 7 has tissue in its middle) keep each render to a few blocks."""
import numpy as np
import ome_types
import pytest
import tifffile
from PIL import Image

from engine.cli import main
from engine.phantom import PhantomSlide
from engine.slides import open_slide

SEED, SIZE = 7, (640, 480)
REGION = (128, 96, 200, 150)          # x, y, w, h in level-0 px, inside the small slide


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "stack.ome.tiff"
    assert main(["phantom", "write", str(out), "--seed", str(SEED), "--size", *map(str, SIZE),
                 "--planes", "3", "--spacing", "0.5"]) == 0
    return out


@pytest.fixture(scope="module")
def reference():
    """The same small phantom, computed in this process (noise-free truth, no scanner error)."""
    return PhantomSlide(seed=SEED, size=SIZE, planes=1, noise=False, scanner_error=False)


def test_write_makes_a_tiled_pyramidal_ome_zstack_that_our_reader_reopens(written):
    slide = open_slide(str(written))
    assert slide.format == "ome-tiff"
    assert slide.planes_um == (-0.5, 0.0, 0.5)
    assert [(lv.width, lv.height) for lv in slide.levels] == [(640, 480), (320, 240)]
    assert slide.mpp == pytest.approx((0.25, 0.25))
    with tifffile.TiffFile(written) as tif:
        ome = ome_types.from_xml(tif.ome_metadata, validate=True)
        page = tif.pages[0]
        assert page.is_tiled and page.tilewidth == 512
        assert len(page.subifds or ()) == 1                        # one coarser level per plane
    pixels = ome.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_z) == (640, 480, 3)
    assert [p.position_z for p in pixels.planes] == [-0.5, 0.0, 0.5]
    assert pixels.physical_size_z == pytest.approx(0.5)


def test_written_planes_are_the_phantoms_captured_planes_bit_for_bit(written):
    slide = open_slide(str(written))
    phantom = PhantomSlide(seed=SEED, size=SIZE, planes=3, spacing_um=0.5)
    for plane in range(3):
        assert np.array_equal(slide.read_region(1, 0, 0, 320, 240, plane),
                              phantom.read_region(1, 0, 0, 320, 240, plane))
    level0 = [slide.read_region(0, 0, 0, 640, 480, p).astype(int) for p in range(3)]
    assert (level0[1].mean(-1) < 220).mean() > 0.2              # tissue, not only glass
    assert np.abs(level0[0] - level0[2]).mean() > 1.0            # a real z-stack: planes differ


def test_write_ihc_uses_the_ihc_stain(tmp_path):
    out = tmp_path / "ihc.ome.tiff"
    assert main(["phantom", "write", str(out), "--seed", str(SEED), "--size", "576", "384",
                 "--planes", "1", "--spacing", "1", "--stain", "ihc", "--no-noise"]) == 0
    got = open_slide(str(out)).read_region(1, 0, 0, 288, 192, 0)
    ihc = PhantomSlide(seed=SEED, size=(576, 384), planes=1, stain="ihc", noise=False)
    assert ihc.stain == "ihc" and ihc.volume.stains.name == "ihc"
    assert np.array_equal(got, ihc.read_region(1, 0, 0, 288, 192, 0))


def _truth_args(tmp_path, *mode):
    out = tmp_path / "truth.png"
    return out, ["phantom", "truth", "--seed", str(SEED), "--size", *map(str, SIZE),
                 "--region", ",".join(map(str, REGION)), *mode, "--out", str(out)]


def test_truth_at_a_uniform_focus(tmp_path, reference):
    out, args = _truth_args(tmp_path, "--z", "0.7")
    assert main(args) == 0
    assert np.array_equal(np.asarray(Image.open(out)), reference.truth(0, *REGION, 0.7))


def test_truth_with_a_focus_map_from_a_tiff(tmp_path, reference):
    x, y, w, h = REGION
    fmap = np.add.outer(np.linspace(-1.5, 1.5, h), np.linspace(0.0, 1.0, w)).astype(np.float32)
    tifffile.imwrite(tmp_path / "map.tiff", fmap)
    out, args = _truth_args(tmp_path, "--focus-map", str(tmp_path / "map.tiff"))
    assert main(args) == 0
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, reference.truth(0, *REGION, fmap.astype(np.float64)))
    assert not np.array_equal(got, reference.truth(0, *REGION, 0.0))


def test_truth_all_in_focus(tmp_path, reference):
    out, args = _truth_args(tmp_path, "--all-in-focus")
    assert main(args) == 0
    assert np.array_equal(np.asarray(Image.open(out)), reference.all_in_focus(0, *REGION))


@pytest.mark.parametrize("argv, needle", [
    (["phantom", "truth", "--size", "640", "480", "--region", "1,2,3", "--z", "0", "--out", "{tmp}/a.png"],
     "--region must be X,Y,W,H"),
    (["phantom", "truth", "--size", "640", "480", "--region", "0,0,0,10", "--z", "0", "--out", "{tmp}/a.png"],
     "size must be positive"),
    (["phantom", "truth", "--size", "640", "480", "--region", "600,0,100,100", "--z", "0", "--out", "{tmp}/a.png"],
     "not inside the 640x480 px slide"),
    (["phantom", "truth", "--size", "640", "480", "--region", "0,0,64,64", "--level", "5", "--z", "0",
      "--out", "{tmp}/a.png"], "--level must be 0..1"),
    (["phantom", "truth", "--size", "640", "480", "--region", "0,0,64,64", "--focus-map", "{tmp}/missing.tiff",
      "--out", "{tmp}/a.png"], "missing.tiff"),
    (["phantom", "truth", "--size", "640", "480", "--region", "0,0,64,64", "--focus-map", "{tmp}/small.tiff",
      "--out", "{tmp}/a.png"], "small.tiff: focus map is 8x4 px, the region is 64x64"),
    (["phantom", "truth", "--size", "640", "480", "--region", "0,0,64,64", "--focus-map", "{tmp}/junk.tiff",
      "--out", "{tmp}/a.png"], "junk.tiff: not a readable TIFF focus map"),
    (["phantom", "write", "{tmp}/x.ome.tiff", "--size", "640", "480", "--planes", "0"], "--planes must be >= 1"),
    (["phantom", "write", "{tmp}/x.ome.tiff", "--size", "640", "480", "--spacing", "-1"], "--spacing > 0"),
    (["phantom", "write", "{tmp}/x.ome.tiff", "--size", "10", "10"], "at least 64x64"),
    (["phantom", "write", "{tmp}", "--size", "640", "480"], "is a directory"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    tifffile.imwrite(tmp_path / "small.tiff", np.zeros((4, 8), np.float32))
    (tmp_path / "junk.tiff").write_bytes(b"not a tiff at all")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("finefocus: error: ")
    assert needle in err
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "x.ome.tiff").exists()
