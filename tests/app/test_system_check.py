"""First run on X11: `finefocus` names a missing system library of Qt's xcb plugin in one line
and exits 2 before any window; offscreen and non-Linux platforms skip the check."""
import shutil
import subprocess
import sys

import pytest

from app.system_check import (REQUIRE_ENV, XCB_LIBRARIES, check_xcb, missing_libraries, required_libraries,
                              uses_xcb)
from tests.paths import REPO

#: A soname no system has: the dynamic loader really fails to find it.
ABSENT = "libfinefocus-absent-test.so.7"


def test_a_library_the_loader_cannot_find_is_reported_and_one_it_can_is_not():
    assert missing_libraries(["libc.so.6", ABSENT, "libm.so.6", ABSENT]) == [ABSENT]


def test_only_an_xcb_window_on_linux_is_checked():
    assert uses_xcb({}, "linux") and uses_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux")
    assert not uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not uses_xcb({"QT_QPA_PLATFORM": "wayland"}, "linux")
    assert not uses_xcb({}, "darwin")
    assert check_xcb([ABSENT], {"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    line = check_xcb([ABSENT, "libc.so.6"], {}, "linux")
    assert line is not None and ABSENT in line and "libc.so.6" not in line and "make deps" in line


def test_the_line_names_the_debian_package_of_a_known_soname():
    from app.system_check import missing_message

    line = missing_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "\n" not in line
    assert "apt-get install -y libxcb-icccm4 libxcb-keysyms1" in line and "make deps" in line


def test_the_hook_adds_required_sonames():
    assert required_libraries({REQUIRE_ENV: f"{ABSENT}, libz.so.1"})[-2:] == [ABSENT, "libz.so.1"]
    assert required_libraries({}) == list(XCB_LIBRARIES)


def test_the_list_covers_what_the_installed_xcb_plugin_links():
    """Every system library that libqxcb.so and libQt6XcbQpa link directly is in XCB_LIBRARIES
    (libc, libm, libstdc++, libgcc_s, the loader and Qt's own libraries aside)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    from pathlib import Path

    import PySide6

    root = Path(PySide6.__file__).parent / "Qt"
    files = [root / "plugins" / "platforms" / "libqxcb.so", root / "lib" / "libQt6XcbQpa.so.6",
             root / "lib" / "libQt6Gui.so.6", root / "lib" / "libQt6DBus.so.6"]
    base = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
            "libz.so.1", "libzstd.so.1"}
    needed = set()
    for f in files:
        out = subprocess.run([readelf, "-d", str(f)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if "(NEEDED)" in line:
                name = line.rsplit("[", 1)[1].rstrip("]")
                if not name.startswith(("libQt6", "libicu")) and name not in base:
                    needed.add(name)
    assert needed, "readelf found no NEEDED entries"
    assert needed <= set(XCB_LIBRARIES), sorted(needed - set(XCB_LIBRARIES))


def test_finefocus_prints_one_line_for_a_missing_library_and_exits_2():
    """The real console entry point, on X11 (QT_QPA_PLATFORM unset), with the test hook naming
    a library that does not exist: one line naming it and the fix, exit 2, no window, no
    Qt message."""
    code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO), REQUIRE_ENV: ABSENT}
    run = subprocess.run([sys.executable, "-c", code, "view", "phantom:size=2048x2048"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert ABSENT in lines[0] and "make deps" in lines[0] and lines[0].startswith("finefocus: error:")
    assert "Reinstalling" not in run.stderr and "Traceback" not in run.stderr
