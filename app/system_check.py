"""Before a window opens on X11: are the system libraries of Qt's xcb platform plugin there?

The PySide6 wheel bundles Qt but not the X11/XCB, OpenGL, fontconfig and D-Bus libraries that
its ``xcb`` platform plugin links (``platforms/libqxcb.so`` and ``libQt6XcbQpa.so.6``; Qt's
own message when one is missing is "Reinstalling the application may fix this problem", which
it will not). ``missing_libraries`` tries to load each soname of ``XCB_LIBRARIES`` (the direct
dependencies of those two files and of ``libQt6Gui``/``libQt6DBus`` outside Qt, read with
``readelf -d`` from PySide6 6.11) and ``check_xcb`` turns the result into one line naming what
is missing and the fix (``make deps``, or the ``apt-get`` command it runs). The check runs only
when Qt will use xcb: on Linux with ``QT_QPA_PLATFORM`` unset or ``xcb``; ``offscreen`` (the
screenshots and tests) and other platforms skip it.

Test hook: ``FINEFOCUS_REQUIRE_LIBS`` (sonames separated by spaces, commas or colons) adds
libraries the check must find, so a test can run the real ``finefocus`` with a library that
does not exist and see the line.
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, Mapping

__all__ = ["XCB_LIBRARIES", "EXIT_MISSING_LIBRARIES", "REQUIRE_ENV", "uses_xcb", "missing_libraries",
           "missing_message", "check_xcb", "apt_command"]

#: Exit status when a required system library is missing (the CLI's user-error status).
EXIT_MISSING_LIBRARIES = 2
#: Environment variable naming extra sonames the check requires (a test hook).
REQUIRE_ENV = "FINEFOCUS_REQUIRE_LIBS"

#: soname -> Debian/Ubuntu package, for every system library the xcb plugin needs.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """True when Qt will load its xcb plugin: on Linux with ``QT_QPA_PLATFORM`` unset, empty or
    ``xcb`` (options after a colon, ``xcb:…``, allowed)."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if not plat.startswith("linux"):
        return False
    return env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower() in ("", "xcb")


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(sonames: Iterable[str]) -> list[str]:
    """The sonames of ``sonames`` the dynamic loader cannot load (in order, without repeats)."""
    seen, out = set(), []
    for name in sonames:
        if name not in seen:
            seen.add(name)
            if not _loadable(name):
                out.append(name)
    return out


def required_libraries(environ: Mapping[str, str] | None = None) -> list[str]:
    """``XCB_LIBRARIES`` plus the sonames of ``FINEFOCUS_REQUIRE_LIBS`` (the test hook)."""
    env = os.environ if environ is None else environ
    extra = env.get(REQUIRE_ENV, "").replace(",", " ").replace(":", " ").split()
    return list(XCB_LIBRARIES) + extra


def apt_command(packages: Iterable[str] | None = None) -> str:
    """The apt-get command that installs ``packages`` (default: every package of ``XCB_LIBRARIES``)."""
    pkgs = dict.fromkeys(XCB_LIBRARIES.values() if packages is None else packages)
    return "sudo apt-get install -y " + " ".join(pkgs)


def missing_message(missing: list[str]) -> str:
    """One line: which libraries are missing, and the fix."""
    pkgs = [XCB_LIBRARIES[s] for s in missing if s in XCB_LIBRARIES]
    fix = (f"run `make deps` or `{apt_command(pkgs)}`" if pkgs
           else "run `make deps` or install the package that provides it")
    return (f"finefocus: error: Qt's xcb platform plugin needs system libraries that are missing: "
            f"{', '.join(missing)}; {fix} (or set QT_QPA_PLATFORM=offscreen for no window)")


def check_xcb(sonames: Iterable[str] | None = None, environ: Mapping[str, str] | None = None,
              platform: str | None = None) -> str | None:
    """None when no window will use xcb or every library of ``sonames`` (default:
    ``required_libraries()``) loads; otherwise the one-line message for what is missing."""
    if not uses_xcb(environ, platform):
        return None
    missing = missing_libraries(required_libraries(environ) if sonames is None else sonames)
    return missing_message(missing) if missing else None
