"""`finefocus qc SLIDES_OR_FOLDERS... --out DIR [--scheduler ADDRESS] [--workers N]` through the
engine's CLI entry point, on real files (the product's settings: the full fused-IQA fit)."""
import pytest

from engine.cli import main
from engine.qc.outputs import read_tsv
from tests import slide_files
from tests.cli import one_error_line
from tests.engine.qc.cluster import dask_cluster


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    path, _ = slide_files.write_svs_like(tmp_path_factory.mktemp("qc-cli") / "scan.svs", size=(896, 640))
    return path


@pytest.mark.slow
def test_qc_writes_rows_report_and_progress_and_exits_1_for_a_bad_slide(scan, tmp_path, capsys):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"\x00" * 64)
    out = tmp_path / "qc"
    assert main(["qc", str(scan), str(bad), "--out", str(out), "--workers", "0"]) == 1
    cap = capsys.readouterr()
    assert cap.out.strip().startswith("2 slides (1 error, 1 pass)")
    assert f"qc 1/2 {scan}: pass" in cap.err and f"qc 2/2 {bad}: error" in cap.err  # progress, one line a slide
    rows = read_tsv(out / "qc.tsv")
    assert [r["verdict"] for r in rows] == ["pass", "error"]
    assert rows[1]["error"].startswith(str(bad))
    html = (out / "report.html").read_text()
    assert html.count("<tr>") == 1 + 2 and "scan.svs" in html and "broken.svs" in html

    assert main(["qc", str(scan), str(bad), "--out", str(out), "--workers", "0", "--quiet"]) == 1
    cap = capsys.readouterr()
    assert "1 checked now, 1 done before" in cap.out and cap.err == ""  # the finished slide was skipped


@pytest.mark.slow
def test_qc_on_an_existing_scheduler_by_its_scheduler_file(scan, tmp_path, capsys):
    with dask_cluster(tmp_path) as sched:
        assert main(["qc", str(scan), "--out", str(tmp_path / "qc"), "--scheduler", str(sched), "--quiet"]) == 0
    assert [r["verdict"] for r in read_tsv(tmp_path / "qc" / "qc.tsv")] == ["pass"]
    assert capsys.readouterr().out.startswith("1 slides (1 pass)")


def test_a_missing_input_is_one_line_naming_it(tmp_path, capsys):
    assert main(["qc", str(tmp_path / "nope.svs"), "--out", str(tmp_path / "qc"), "--workers", "0"]) == 2
    one_error_line(capsys, "nope.svs", "no such file or folder")


def test_a_folder_without_slides_is_one_line_naming_it(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["qc", str(tmp_path / "empty"), "--out", str(tmp_path / "qc"), "--workers", "0"]) == 2
    one_error_line(capsys, "empty", "no slides found")


@pytest.mark.parametrize("args,words", [
    (["--workers", "-1"], ["--workers -1", "0 or more"]),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], ["--workers", "--scheduler"]),
])
def test_bad_options_are_one_line(scan, tmp_path, capsys, args, words):
    assert main(["qc", str(scan), "--out", str(tmp_path / "qc"), *args]) == 2
    one_error_line(capsys, *words)


def test_an_output_path_that_is_a_file_is_one_line(scan, tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    assert main(["qc", str(scan), "--out", str(f), "--workers", "0"]) == 2
    one_error_line(capsys, "taken")
