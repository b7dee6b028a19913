"""`finefocus --self-test` from the venv: the built-in slide, one refocused tile, one heatmap tile."""
import pytest

from app.cli import main


@pytest.mark.slow
def test_self_test_passes_every_step_and_exits_0(capsys):
    assert main(["--self-test"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split(" (")[0] for ln in out[:4]] == [
        "self-test: ok   open the built-in slide", "self-test: ok   refocus a tile",
        "self-test: ok   compute a heatmap tile", "self-test: ok   load Qt"]
    assert out[-1].startswith("self-test: passed")
