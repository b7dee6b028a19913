"""The static HTML report (engine/qc/report.py): one self-contained page, a row per slide."""
from html.parser import HTMLParser

import pytest

from engine.qc.driver import run_qc
from engine.qc.outputs import error_row

from .conftest import FAST


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.rows, self.headers, self.scripts, self.tags = [], 0, [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.refs += [a[k] for k in ("src", "href") if k in a]
        self.rows += tag == "tr"
        self.scripts += tag == "script"
        if tag == "link":
            self.refs.append(a.get("href", ""))


@pytest.fixture(scope="module")
def page(qc_slides, bad_slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("qc-report")
    run = run_qc([qc_slides / "scan.svs", bad_slide], out, workers=0, config=FAST, progress=False)
    text = (out / "report.html").read_text(encoding="utf-8")
    p = _Page()
    p.feed(text)
    return out, run, text, p


def test_the_page_uses_no_external_asset_and_its_images_exist_beside_it(page):
    out, _, text, p = page
    assert p.refs, "thumbnails are linked"
    for ref in p.refs:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (out / ref).is_file(), ref
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert p.scripts == 1 and "addEventListener('click'" in text  # the inline sorter


def test_one_row_per_slide_with_verdict_badges_and_the_error_text(page, bad_slide):
    out, run, text, p = page
    assert p.rows == 1 + len(run.rows) == 3
    assert 'class="v v-pass"' in text and 'class="v v-error"' in text
    assert f"{bad_slide}: unrecognised content" in text
    assert "≥ 1.5 µm" in text and "10 %" in text and "30 %" in text  # the thresholds are stated


def test_text_from_files_is_escaped(tmp_path):
    from engine.qc.report import render_report

    html = render_report([error_row("/data/<script>alert(1)</script>.svs", "bad & <b>worse</b>")], tmp_path)
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "bad &amp; &lt;b&gt;" in html
