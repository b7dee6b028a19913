"""The design card's one hard rule: the engine computes, the app draws. engine/ never imports Qt
or app/, so every engine module is importable and testable headless."""
import ast
import subprocess
import sys

from tests.paths import REPO

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qasync", "app")


def _engine_imports():
    for path in sorted((REPO / "engine").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module


def test_engine_source_never_imports_qt_or_app():
    offenders = [f"{p.relative_to(REPO)}: import {m}" for p, m in _engine_imports()
                 if m.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_every_engine_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if m.name != 'engine.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in %r]\n"
        "print(','.join(bad))\n" % (FORBIDDEN,)
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
