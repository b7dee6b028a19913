"""The autosave of the map being painted: in the user's data folder keyed by the slide (never
beside it), cheap when nothing changed, due every few seconds, a damaged file moved aside and
reported rather than crashing, and every stroke before the last autosave found again after the
painting process is killed with SIGKILL."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine.focusmap import FocusMap
from engine.focusmap.autosave import AUTOSAVE_INTERVAL_S, FocusMapAutosave, autosave_folder, slide_key
from engine.slides import open_slide
from engine.slides.array import ArraySlide
from tests.engine.focusmap.autosave_child import stroke
from tests.paths import REPO


@pytest.fixture(scope="module")
def slide_file(tmp_path_factory):
    """A small three-plane OME-TIFF in a read-only folder."""
    from engine.export.ome_tiff import write_ome_tiff

    folder = tmp_path_factory.mktemp("slides")
    rng = np.random.default_rng(3)
    planes = [rng.integers(0, 255, (300, 420, 3), np.uint8) for _ in range(3)]
    path = write_ome_tiff(folder / "s.ome.tif", ArraySlide(planes, planes_um=[-1, 0, 1], mpp=(0.25, 0.25)))
    folder.chmod(0o555)
    yield path
    folder.chmod(0o755)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FINEFOCUS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_autosave_lives_in_the_data_folder_keyed_by_the_slide(slide_file, data_dir, tmp_path, monkeypatch):
    with open_slide(slide_file) as slide:
        a = FocusMapAutosave(slide)
        fm = FocusMap(*slide.dimensions)
        fm.paint([(100, 100)], 50, 1.0)
        assert a.save_if_changed(fm)
        assert a.path.parent == data_dir / "focusmaps" and a.path.exists()
        assert sorted(p.name for p in slide_file.parent.iterdir()) == ["s.ome.tif"]   # nothing beside it
        assert str(slide_file.resolve()) in slide_key(slide)
    with open_slide(str(slide_file.parent / ".." / slide_file.parent.name / "s.ome.tif")) as again:
        assert FocusMapAutosave(again).path == a.path                       # the same file, another spelling
        assert FocusMapAutosave(again).restore().digest == fm.digest
    phantom = open_slide("phantom:")
    assert FocusMapAutosave(phantom).path != a.path                         # another slide, another file
    with pytest.raises(ValueError, match="no file path or stable uid"):
        FocusMapAutosave(ArraySlide([np.zeros((8, 8, 3), np.uint8)]))
    monkeypatch.delenv("FINEFOCUS_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert autosave_folder() == tmp_path / "xdg" / "FineFocus" / "focusmaps"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert autosave_folder() == tmp_path / "home" / ".local" / "share" / "FineFocus" / "focusmaps"


def test_saving_is_cheap_when_nothing_changed_and_due_every_interval(slide_file, data_dir):
    with open_slide(slide_file) as slide:
        a = FocusMapAutosave(slide)
        fm = FocusMap(*slide.dimensions)
        assert a.due(100.0) and AUTOSAVE_INTERVAL_S == 5.0
        fm.paint([(100, 100)], 50, 1.0)
        assert a.save_if_changed(fm, now=100.0)
        stamp = a.path.stat().st_mtime_ns
        assert not a.due(104.9) and a.due(105.0)
        assert not a.save_if_changed(fm, now=105.0)                       # same object, same version
        fm.paint([(200, 100)], 50, -1.0)
        fm.undo()                                                          # a new version, the saved content
        assert not a.save_if_changed(fm.frozen(), now=110.0)              # digest unchanged: nothing written
        assert a.path.stat().st_mtime_ns == stamp
        fm.redo()
        assert a.save_if_changed(fm.frozen(), now=115.0)
        assert FocusMap.load(a.path).digest == fm.digest
        assert not list(a.folder.glob("*.part*"))


def test_a_damaged_autosave_is_moved_aside_and_reported_never_raised(slide_file, data_dir):
    with open_slide(slide_file) as slide:
        a = FocusMapAutosave(slide)
        a.folder.mkdir(parents=True)
        a.path.write_bytes(b"PK\x03\x04 not a zip at all")
        assert a.restore() is None
        assert "not a readable focus map" in a.problem and "moved aside" in a.problem
        assert not a.path.exists() and len(list(a.folder.glob("*.damaged-*.npz"))) == 1
        FocusMap(100, 100).save(a.path)                                  # a map of another slide's size
        assert a.restore() is None and "made for a 100 × 100 px slide" in a.problem
        assert a.restore() is None and a.problem is None                  # nothing left: no problem


def test_discard_deletes_the_autosave(slide_file, data_dir):
    with open_slide(slide_file) as slide:
        a = FocusMapAutosave(slide)
        fm = FocusMap(*slide.dimensions)
        fm.paint([(10, 10)], 40, 0.5)
        a.save_if_changed(fm)
        a.discard()
        assert not a.path.exists() and a.restore() is None
        assert a.save_if_changed(fm)                                       # saved again after a discard


def test_a_worker_thread_saves_frozen_versions_while_strokes_go_on(slide_file, data_dir):
    from concurrent.futures import ThreadPoolExecutor

    with open_slide(slide_file) as slide:
        a = FocusMapAutosave(slide)
        fm = FocusMap(*slide.dimensions)
        with ThreadPoolExecutor(1) as worker:
            for k in range(12):
                stroke(fm, k)
                worker.submit(a.save_if_changed, fm.frozen())
        assert FocusMapAutosave(slide).restore().digest == fm.digest


def test_every_stroke_before_the_last_autosave_survives_sigkill(slide_file, tmp_path):
    env = dict(os.environ, FINEFOCUS_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tests.engine.focusmap.autosave_child", str(slide_file)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.split())
            if len(lines) > 25:               # "ready" and 25 saves: kill it mid-loop
                break
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err
    lines += [line.split() for line in rest.splitlines() if line.startswith("saved")]
    saved = [(int(k), digest) for word, k, digest in (l for l in lines if l and l[0] == "saved")]
    assert len(saved) >= 25, (lines, err)
    last_k, last_digest = saved[-1]

    with open_slide(slide_file) as slide:
        restored = FocusMapAutosave(slide, folder=tmp_path / "data" / "focusmaps").restore()
        replay = FocusMap(*slide.dimensions, default_um=0.5)
    assert restored is not None
    for k in range(last_k + 1):
        stroke(replay, k)
    assert replay.digest == last_digest                                   # the replay is the child's map
    if restored.digest != last_digest:        # killed after the next save returned, before it printed
        stroke(replay, last_k + 1)
    assert restored.digest == replay.digest
    np.testing.assert_array_equal(restored.values, replay.values)
    assert restored.default_um == 0.5
