"""The window: status read-outs, overview, recent files, drag and drop, jobs with Cancel."""
import asyncio

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.recent import RecentFiles


def test_the_status_bar_tells_position_in_px_and_um_and_magnification(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(1000, 1000, 400, 300)
    qtbot.waitUntil(canvas.is_settled, timeout=10000)
    vp = canvas.viewport()
    qtbot.mouseMove(vp, QPoint(vp.width() // 2, vp.height() // 2))
    qtbot.waitUntil(lambda: window.readouts.position.text() != "", timeout=5000)
    text = window.readouts.position.text()
    x, y = (float(v) for v in text.split(" px")[0].replace("x", "").split("y"))
    assert abs(x - 1200) < 20 and abs(y - 1150) < 20
    ux, uy = (float(v) for v in text.split("(")[1].split(" µm")[0].split(","))
    assert abs(ux - x * 0.25) < 0.2 and abs(uy - y * 0.25) < 0.2
    # 0.25 µm/px is a 40× scan; the view is zoomed in past 1:1 here.
    mag = window.readouts.magnification.text()
    assert "scan 40×" in mag and "level 0" in mag


def test_the_overview_shows_the_slide_and_moves_the_view_when_clicked(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(0, 0, 300, 200)
    qtbot.waitUntil(lambda: window.overview._image is not None, timeout=10000)
    target = window.overview._target()
    click = QPointF(target.x() + target.width() * 0.75, target.y() + target.height() * 0.5)
    qtbot.mouseClick(window.overview, Qt.MouseButton.LeftButton, pos=click.toPoint())
    x, y, w, h = canvas.view_rect()
    assert abs(x + w / 2 - 2250) < 30 and abs(y + h / 2 - 1000) < 30


def test_a_long_job_shows_progress_and_can_be_cancelled(window, qtbot):
    never = asyncio.get_event_loop().create_future()

    async def job(progress):
        progress(0.25)
        await never

    task = window.jobs.run("Working…", job)
    qtbot.waitUntil(lambda: window.jobs.bar.value() == 250, timeout=5000)
    assert window.jobs.isVisible()
    qtbot.mouseClick(window.jobs.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.cancelled() and not window.jobs.isVisible()


def test_recent_files_are_remembered_most_recent_first(settings):
    recent = RecentFiles(settings, limit=3)
    for p in ["/a.svs", "/b.svs", "/a.svs", "/c.svs", "/d.svs"]:
        recent.add(p)
    assert recent.paths() == ["/d.svs", "/c.svs", "/a.svs"]


def test_dropping_a_file_opens_it(window, qtbot, tmp_path):
    missing = tmp_path / "dropped.svs"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(missing))])
    pos = QPointF(100, 100)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    # The dropped path went to the opener: a missing file gives the error dialog naming it.
    qtbot.waitUntil(lambda: window.error_dialog is not None and window.error_dialog.isVisible(),
                    timeout=10000)
    assert "dropped.svs" in window.error_dialog.text()
