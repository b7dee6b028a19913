"""The static HTML report of a QC batch: ``report.html`` beside ``qc.tsv``.

One self-contained page (no external scripts, styles or fonts): a summary of the verdicts, the
thresholds and the colour scale, and one table row per slide with its defocus overlay (a relative
link to ``slides/<id>/overlay.png``, so the page stays small for hundreds of slides; clicking it
opens ``defocus.png``, the overlay with its legend), sortable by any column with a little inline JavaScript (click a header;
numbers sort as numbers, empty cells last).
"""
from __future__ import annotations

import html
import time
from pathlib import Path

from ..colormaps import LUTS
from .outputs import REPORT_PICTURE, _atomic_write
from .verdict import OUT_OF_FOCUS_UM, RESCAN_FRACTION, REVIEW_FRACTION

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d232a;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}p.sub{color:#57606a;margin:0 0 16px}
.cards{display:flex;gap:12px;margin:0 0 16px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:90px}
.card b{display:block;font-size:22px}.card span{color:#57606a;font-size:12px;text-transform:uppercase}
details{margin:0 0 16px;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 14px}
table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:middle}
th{background:#f3f5f7;cursor:pointer;user-select:none;position:sticky;top:0;vertical-align:bottom}
th:hover{background:#e7ebef}th.asc::after{content:" \\25B2";font-size:10px}th.desc::after{content:" \\25BC";font-size:10px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{min-width:150px;max-width:300px;overflow-wrap:anywhere}td.name small{color:#57606a}
td.fmt{white-space:nowrap}
.scale{display:flex;align-items:center;gap:10px;margin:0 0 16px;color:#57606a;font-size:12px}
.scale .bar{width:260px;height:12px;border-radius:3px;border:1px solid #d0d7de}
td img{display:block;max-width:180px;max-height:150px;border:1px solid #d0d7de;background:#fff}
.v{display:inline-block;padding:2px 9px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
.v-pass{background:#1a7f37}.v-review{background:#bf8700}.v-rescan{background:#cf222e}.v-error{background:#6e7781}
td.msg{color:#57606a;font-size:12px;min-width:180px;max-width:300px;overflow-wrap:anywhere}td.err{color:#cf222e}
"""

_JS = """
(function(){
  var table=document.getElementById('qc'),body=table.tBodies[0];
  function key(td){var k=td.getAttribute('data-k');if(k===null)k=td.textContent.trim();return k;}
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
    if(th.hasAttribute('data-nosort'))return;
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(th.parentNode.cells,function(c){c.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var num=th.hasAttribute('data-num'),rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=key(a.cells[i]),y=key(b.cells[i]);
        if(x===''&&y==='')return 0;if(x==='')return 1;if(y==='')return -1;
        var r=num?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);
        return asc?r:-r;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
})();
"""

#: Rank of verdicts when sorting by the verdict column (worst last).
_VERDICT_KEY = {"pass": "0", "review": "1", "rescan": "2", "error": "3"}


def _cell(text: str, cls: str = "", key: str | None = None) -> str:
    k = "" if key is None else f' data-k="{html.escape(key)}"'
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{k}>{html.escape(text)}</td>"


def _row(r: dict, out: Path) -> str:
    name = Path(r["path"]).name
    d = Path("slides") / r.get("id", "")
    pic, full = (d / REPORT_PICTURE).as_posix(), (d / "defocus.png").as_posix()
    thumb = (f'<td data-k=""><a href="{html.escape(full)}"><img src="{html.escape(pic)}" '
             f'alt="defocus overlay of {html.escape(name)}" loading="lazy"></a></td>'
             if r.get("id") and (out / pic).is_file() else '<td data-k=""></td>')
    frac = r.get("oof_fraction", "")
    pct = f"{100 * float(frac):.1f} %" if frac else ""
    verdict = r.get("verdict", "")
    msg = r.get("error") or r.get("note", "")
    return ("<tr>" + thumb
            + f'<td class="name" data-k="{html.escape(name.lower())}">{html.escape(name)}<br>'
              f'<small>{html.escape(str(Path(r["path"]).parent))}</small></td>'
            + _cell(r.get("format", ""), "fmt")
            + _cell(r.get("size_px", "").replace("x", " × "), "num",
                    str(_px(r.get("size_px", ""))) if r.get("size_px") else "")
            + _cell(r.get("planes", ""), "num")
            + _cell(r.get("tissue_mm2", "") and f'{float(r["tissue_mm2"]):.2f}', "num", r.get("tissue_mm2", ""))
            + _cell(pct, "num", frac)
            + _cell(r.get("median_defocus_um", ""), "num")
            + f'<td data-k="{_VERDICT_KEY.get(verdict, "9")}"><span class="v v-{html.escape(verdict)}">'
              f'{html.escape(verdict)}</span></td>'
            + _cell(msg, "msg err" if r.get("error") else "msg")
            + "</tr>")


def _px(size: str) -> int:
    try:
        w, h = size.split("x")
        return int(w) * int(h)
    except ValueError:
        return 0


def render_report(rows: list[dict], out: Path) -> str:
    """The report page for ``rows`` (TSV rows of `engine.qc.outputs`) in folder ``out``."""
    counts = {v: sum(1 for r in rows if r.get("verdict") == v) for v in ("pass", "review", "rescan", "error")}
    cards = "".join(f'<div class="card"><b>{counts[v]}</b><span>{v}</span></div>' for v in counts)
    head = ('<tr><th data-nosort>overlay</th><th>slide</th><th>format</th><th data-num>size (px)</th>'
            '<th data-num>planes</th><th data-num>tissue (mm²)</th><th data-num>out of focus</th>'
            '<th data-num>median defocus (µm)</th><th>verdict</th><th>note / error</th></tr>')
    body = "\n".join(_row(r, out) for r in rows)
    rules = (f"<details><summary>How the verdict is made</summary><p>Each 235-px tissue patch (stride 128, "
             f"level 0) gets a FocusLiteNN score, mapped to estimated defocus in µm by a calibration on "
             f"phantom focal stacks (a training-range seed). A patch is <b>out of focus</b> at ≥ "
             f"{OUT_OF_FOCUS_UM:g} µm. Verdict from the out-of-focus share of the tissue: <b>pass</b> below "
             f"{100 * REVIEW_FRACTION:.0f} %, <b>review</b> from {100 * REVIEW_FRACTION:.0f} % (or no tissue), "
             f"<b>rescan</b> from {100 * RESCAN_FRACTION:.0f} %. Overlays: green = sharp, red = ≥ 3 µm. "
             f"Heatmaps (.npy) and fused-IQA / depth overlays are in <code>slides/&lt;id&gt;/</code>; every row "
             f"is in <code>qc.tsv</code>.</p></details>")
    stamp = time.strftime("%Y-%m-%d %H:%M")
    lut = LUTS["focus"]
    stops = ",".join(f"rgb({int(c[0])},{int(c[1])},{int(c[2])}) {100 * i / 4:.0f}%"
                     for i, c in enumerate(lut[[0, 64, 128, 191, 255]]))
    scale = (f'<div class="scale"><span>overlay: estimated defocus</span><span>0 µm</span>'
             f'<span class="bar" style="background:linear-gradient(to right,{stops})"></span>'
             f'<span>3 µm</span><span>(out of focus ≥ {OUT_OF_FOCUS_UM:g} µm, mid-scale; glass uncoloured)</span></div>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>FineFocus focus QC</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head><body>'
            f'<h1>FineFocus focus QC</h1><p class="sub">{len(rows)} slides · {html.escape(stamp)} · '
            f'click a column header to sort</p><div class="cards">{cards}</div>{rules}{scale}'
            f'<table id="qc"><thead>{head}</thead><tbody>\n{body}\n</tbody></table>'
            f"<script>{_JS}</script></body></html>\n")


def write_report(out: Path, rows: list[dict]) -> Path:
    path = Path(out) / "report.html"
    _atomic_write(path, render_report(rows, Path(out)).encode("utf-8"))
    return path
