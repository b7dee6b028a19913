"""The viewer on real files written by real writers (tifffile, the bad-input corpus): open
through the window, see the file's own pixels for every plane, and a dialog for every bad file
with the window still up."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.slide_files import CORPUS_ENTRIES_THAT_OPEN


def open_in(window, qtbot, path):
    task = window.open_path(path)
    qtbot.waitUntil(task.done, timeout=20000)
    return task.result()


def assert_view_shows(canvas, expected, plane):
    """Displayed tiles of the current level equal the writer's pixels of that level/plane."""
    truth = expected[canvas.level][plane]
    shown = canvas.visible_tiles()
    assert shown
    for (level, col, row), (req, pixels, exact) in shown.items():
        ts = req.tile_size
        assert exact and req.plane == plane
        np.testing.assert_array_equal(pixels, truth[row * ts:row * ts + pixels.shape[0],
                                                     col * ts:col * ts + pixels.shape[1]])


def test_an_ome_tiff_zstack_opens_and_each_plane_shows_the_files_pixels(window, qtbot, ome_zstack):
    """tifffile's 1536×1024 px, 3-plane (-1, 0, +1 µm) tiled pyramidal OME-TIFF."""
    path, expected = ome_zstack
    slide = open_in(window, qtbot, path)
    assert window.slide is slide and slide.planes_um == (-1.0, 0.0, 1.0)
    # It opens at the nominal focus, z = 0 µm (the middle plane), not at the lowest plane.
    assert len(window.focus.slider.tick_values) == 3 and window.focus.plane == 1 and window.focus.on_plane
    assert "z = 0 µm" in window.focus.label.text()
    canvas = window.canvas
    canvas.set_view_rect(300, 200, 800, 500)
    qtbot.waitUntil(canvas.is_settled, timeout=20000)
    assert_view_shows(canvas, expected, plane=1)
    window.focus.step_down()
    qtbot.waitUntil(canvas.is_settled, timeout=20000)
    assert_view_shows(canvas, expected, plane=0)
    assert "-1.00 µm" in window.focus.label.text()
    for plane in (1, 2):
        window.focus.step_up()
        qtbot.waitUntil(canvas.is_settled, timeout=20000)
        assert_view_shows(canvas, expected, plane=plane)
    canvas.fit()
    qtbot.waitUntil(canvas.is_settled, timeout=20000)
    assert canvas.level > 0
    assert_view_shows(canvas, expected, plane=2)
    assert window.recent.paths()[0] == str(path.resolve())
    assert window.recent_menu.actions()[0].text() == str(path.resolve())


def test_a_dicom_zstack_opens_and_steps_planes_with_the_files_pixels(window, qtbot, dicom_zstack):
    folder, expected = dicom_zstack
    slide = open_in(window, qtbot, folder)
    assert window.slide is slide and slide.plane_count == len(expected[0]) > 1
    canvas = window.canvas
    canvas.set_view_rect(200, 200, 600, 400)
    qtbot.waitUntil(canvas.is_settled, timeout=20000)
    assert_view_shows(canvas, expected, plane=slide.nearest_plane(0.0))
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    qtbot.waitUntil(canvas.is_settled, timeout=20000)
    assert_view_shows(canvas, expected, plane=slide.nearest_plane(0.0) - 1)


BAD = ["missing", "zero_bytes", "empty_directory", "text_as_svs", "truncated_svs", "corrupt_tile",
       "absurd_dimensions", "path_under_file", "symlink_loop", "unreadable"]


@pytest.mark.parametrize("entry", BAD)
def test_every_bad_file_gives_an_error_dialog_and_the_window_stays(window, qtbot, zstack, bad_corpus, entry):
    corpus = bad_corpus
    if entry not in corpus:
        pytest.skip(f"{entry}: not in the corpus on this machine (e.g. running as root)")
    assert entry not in CORPUS_ENTRIES_THAT_OPEN
    window.set_slide(zstack)
    path = corpus[entry]
    window.open_path(path)
    qtbot.waitUntil(lambda: window.error_dialog is not None and window.error_dialog.isVisible(),
                    timeout=20000)
    message = window.error_dialog.text()
    assert path.name in message and "\n" not in message
    assert window.isVisible()
    if entry != "corrupt_tile":  # that one opens; its first tile read fails
        assert window.slide is zstack
    window.error_dialog.close()
    window.canvas.zoom(2.0)  # still alive and usable
    qtbot.waitUntil(window.canvas.is_settled, timeout=20000)


def test_a_16_bit_imagej_stack_opens_with_every_plane_and_its_display_range_shown(window, qtbot, tmp_path):
    from tests.zstack_files import write_imagej_grey16

    path, data = write_imagej_grey16(tmp_path / "stack.tif", n_planes=4, spacing=300.0, unit="nm",
                                     display_min_max=(1000, 40000))
    task = window.open_path(path)
    qtbot.waitUntil(task.done, timeout=60000)
    assert window.slide.plane_count == 4 and window.focus.planes_um == pytest.approx((0.0, 0.3, 0.6, 0.9))
    assert "display: 1000 … 40000 → 0 … 255" in window.info.text()
    qtbot.waitUntil(window.canvas.is_settled, timeout=60000)
    window.focus.step_up()
    assert window.focus.on_plane and window.canvas.plane == 1
