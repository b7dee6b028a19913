"""Fixtures for driving the real viewer offscreen: the qasync loop on pytest-qt's QApplication,
a window with throw-away settings, and slides (in memory and real files)."""
import asyncio
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from engine.slides.array import ArraySlide  # noqa: E402
from engine.tiles import TileStore  # noqa: E402


@pytest.fixture(scope="session")
def qt_loop(qapp):
    """A qasync loop over the test QApplication, marked running so the app's asyncio tasks run
    whenever pytest-qt processes Qt events (qtbot.waitUntil)."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.stop()
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    loop.close()  # while the QApplication still exists


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "finefocus.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, qt_loop, settings):
    from app.window import MainWindow

    w = MainWindow(store=TileStore(workers=2), settings=settings)
    qtbot.addWidget(w)
    w.resize(900, 650)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.error_dialog is not None:
        w.error_dialog.close()
    w.store.close()


def gradient_planes(width=3000, height=2000, n_planes=3):
    """Planes that differ everywhere: each has its own colour ramp."""
    yy, xx = np.mgrid[0:height, 0:width]
    return [np.stack([(xx // 4 + 40 * i) % 256, (yy // 4) % 256, np.full_like(xx, 60 * i)], -1).astype(np.uint8)
            for i in range(n_planes)]


@pytest.fixture(scope="session")
def zstack():
    """A 3000×2000 px, three-plane in-memory slide at 0.25 µm/px (planes at -1, 0, +1.5 µm)."""
    return ArraySlide(gradient_planes(), planes_um=[-1.0, 0.0, 1.5], mpp=(0.25, 0.25))


@pytest.fixture(scope="module")
def stack():
    """Three captured planes (−1, 0, +1 µm) of a phantom region, 1024 × 768 px at 0.25 µm/px."""
    from engine.phantom import PhantomSlide

    ph = PhantomSlide(seed=5, size=(2048, 2048), planes=3)
    return ArraySlide([ph.read_region(0, 0, 0, 1024, 768, i) for i in range(3)],
                      planes_um=list(ph.planes_um), mpp=(0.25, 0.25))
