"""The HTML report of a run: what changed first, in words; then the verdicts; then the evidence.

The first screen answers "what changed, how much, since when": one headline per drifted segment
(report.headline), then every segment's verdict beside its last 30 nights. Each drifted segment
then shows its evidence as pictures: distributions and category mixes (report.plots, inline SVG),
thumbnails of the items least like the baseline beside typical baseline items (report.pictures),
and for payloads one example with the changed path marked. The statistics of every check follow,
folded, for those who want them.

Everything that comes from inputs (sources, JSON paths and values, file names, labels) passes
through `esc`, so a payload key like `<script>` renders as text. The page is self-contained and
inert: inline CSS, pictures as data: URIs, no scripts, and a Content-Security-Policy that forbids
them and any request. It stays under MAX_BYTES however many findings there are: pictures past the
budget are left out, and the page says how many.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..record import Evidence, InputKind, PayloadExample, PicturedItem, RunRecord, Segment
from ..verdict.headline import CATEGORY_WORDS, NUMERIC_WORDS, noticeable
from . import plots
from .text import encoder_line, hit_rate, number, states

MAX_BYTES = 5_000_000
PICTURE_BUDGET = 4_500_000  # what pictures may take of it; text and tables have the rest
MAX_FIGURES = 150
MIN_FIGURE_BYTES = 8_000  # about the smallest plot
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:22px;margin-bottom:.2em}h2{font-size:17px;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:14px;margin:1.2em 0 .4em}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #e2e2e2;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:9px;font-weight:600;font-size:12px}
.none{background:#e6f4ea;color:#1e6b34}.info{background:#e8f0fe;color:#1a4d99}.warning{background:#fff4d6;color:#7a5300}
.critical{background:#fde2e1;color:#9b1c1c}.muted{color:#777}.enc{background:#f6f6f6;padding:.5em .8em;border-radius:4px}
code{font-size:12px}
.headlines{list-style:none;padding:0}.headlines li{margin:.5em 0;font-size:15px}
.strip{display:inline-flex;gap:2px;vertical-align:middle}.strip i{display:inline-block;width:9px;height:14px;border-radius:2px;background:#e6f4ea}
.strip i.info{background:#a8c7fa}.strip i.warning{background:#f5c451}.strip i.critical{background:#e5534b}.strip i.untested{background:#ddd}
.strip i.today{outline:2px solid #222;outline-offset:1px}
.figs{display:flex;flex-wrap:wrap;gap:12px}.figs figure{margin:0}.figs svg{max-width:100%;height:auto}
.thumbs{display:flex;flex-wrap:wrap;gap:8px;margin:.3em 0 .8em}.thumbs figure{margin:0;width:150px;font-size:11px;color:#555;word-break:break-all}
.thumbs img{display:block;max-width:144px;max-height:144px;border:1px solid #ccc;background:#fff}
.thumbs .gone{width:144px;height:60px;border:1px dashed #bbb;display:flex;align-items:center;justify-content:center;text-align:center}
pre.payload{background:#fafafa;border:1px solid #e2e2e2;padding:.6em;font-size:12px;overflow:auto}pre.payload mark{background:#ffe08a}
details{margin:.6em 0}summary{cursor:pointer;color:#1a4d99}
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def badge(severity: str, label: str | None = None) -> str:
    return f'<span class="sev {esc(severity)}">{esc(label or severity)}</span>'


class _Budget:
    """What the page's pictures may still take: bytes, and a number of figures (drawing one costs
    time whatever its size). Past either, pictures are counted as left out instead of made."""

    def __init__(self, limit: int, figures: int = MAX_FIGURES):
        self.left = limit
        self.figures = figures
        self.dropped = 0

    def take(self, picture: str) -> str:
        if len(picture) > self.left:
            self.dropped += 1
            return ""
        self.left -= len(picture)
        return picture

    def draw(self, make) -> str:
        if self.figures <= 0 or self.left < MIN_FIGURE_BYTES:
            self.dropped += 1
            return ""
        self.figures -= 1
        return self.take(make())


def html(record: RunRecord, pictures: dict[tuple[str, str], str] | None = None) -> str:
    """`pictures`: (kind, input_id) -> data: URI thumbnails (report.pictures); without them the
    items are listed by id."""
    window = record.window
    budget = _Budget(PICTURE_BUDGET)
    drifted = [s for s in record.segments if s.drifted and s.changes]
    anchors = {s.name: f"seg-{i}" for i, s in enumerate(record.segments)}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        f"<title>drift report: {esc(record.job)} {esc(record.day)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Drift report: {esc(record.job)}, {esc(record.day)}</h1>",
        f"<p class='muted'>Run <code>{esc(record.run_id)}</code>, window {esc(window.start)} to {esc(window.end)}; "
        f"compared with baseline <code>{esc(record.baseline.name)}</code> ({esc(record.baseline.window.start[:10])} to "
        f"{esc(record.baseline.window.end[:10])}).</p>",
        "<h2>What changed</h2>",
        *_headlines(record, drifted, anchors),
        "<h2>Verdicts</h2><table><tr><th>segment</th><th>verdict</th><th>last 30 nights</th><th>sampled</th><th>input errors</th>"
        "<th>what changed</th><th>power (90% chance of a page)</th></tr>",
    ]
    for seg in record.segments:
        name = f"{esc(seg.kind)}/{esc(seg.source)}"
        if seg in drifted:
            name = f"<a href='#{anchors[seg.name]}'>{name}</a>"
        parts.append(
            f"<tr><td>{name}</td><td>{_verdict(seg)}</td><td>{_strip(record, seg)}</td><td class='n'>{seg.n_sampled}</td>"
            f"<td class='n'>{seg.n_errors}</td><td>{esc(seg.headline) if seg.changes else ''}</td>"
            f"<td class='muted'>{esc(noticeable(seg.kind, seg.detectable))}</td></tr>"
        )
    parts.append("</table>")
    if record.alerts:
        parts.append("<h2>Alerts</h2><ul>")
        parts += [f"<li>{badge(a.severity)} {esc(a.title)} <code>{esc(a.dedup_key)}</code></li>" for a in record.alerts]
        parts.append("</ul>")
    for seg in drifted:
        parts += _segment(record, seg, anchors[seg.name], pictures or {}, budget)
    quiet = [s for s in record.segments if s not in drifted and s.findings]
    if quiet:
        parts.append("<h2>Other segments' checks</h2><p class='muted'>Findings below the paging bar or without enough data.</p>")
        for seg in quiet:
            parts += [f"<h3>{esc(seg.kind)}/{esc(seg.source)}</h3>", _findings_table(seg)]
    if budget.dropped:
        parts.append(
            f"<p class='muted'>{budget.dropped} picture(s) were left out to keep this page under "
            f"{MAX_BYTES // 1_000_000} MB; summary.json and the store hold every finding.</p>"
        )
    parts += _about(record)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _headlines(record: RunRecord, drifted: list[Segment], anchors: dict) -> list[str]:
    tested = [s for s in record.segments if s.status.tested]
    untested = [s for s in record.segments if not s.status.tested]
    out = []
    if not drifted:
        out.append(
            f"<p>Nothing changed: {len(tested)} of {len(record.segments)} segments were tested and match the baseline.</p>"
        )
    else:
        out.append("<ul class='headlines'>")
        for seg in drifted:
            since = _since(record, seg)
            out.append(
                f"<li>{badge(seg.severity)} <a href='#{anchors[seg.name]}'>{esc(seg.kind)}/{esc(seg.source)}</a>: "
                f"{esc(seg.headline)}{f' <span class=muted>({esc(since)})</span>' if since else ''}</li>"
            )
        out.append("</ul>")
        out.append(f"<p class='muted'>The other {len(tested) - len(drifted)} tested segment(s) match the baseline.</p>")
    if untested:
        names = ", ".join(f"{esc(s.kind)}/{esc(s.source)} ({esc(s.status.label)})" for s in untested)
        out.append(f"<p class='muted'>Not tested this window: {names}.</p>")
    return out


def _verdict(seg: Segment) -> str:
    if not seg.status.tested:
        return esc(seg.status.label)
    if seg.drifted and seg.severity == "none":
        return badge("info", "drift (below paging)")
    return badge(seg.severity, "ok" if seg.severity == "none" else None)


def _strip(record: RunRecord, seg: Segment) -> str:
    """One mark per night, oldest first, this window outlined: green clean, coloured by severity
    when drifted, grey when not tested."""
    marks = []
    for night in record.nights(seg):
        if not night.status.tested:
            cls, what = "untested", night.status.label
        elif night.drifted:
            cls, what = (night.severity.value if night.severity != "none" else "info"), f"drift ({night.severity})"
        else:
            cls, what = "", "ok"
        today = " today" if night.window_start == record.day else ""
        marks.append(f"<i class='{cls}{today}' title='{esc(night.window_start)}: {esc(what)}'></i>")
    return f"<span class='strip'>{''.join(marks)}</span>" if marks else ""


def _since(record: RunRecord, seg: Segment) -> str:
    """How long the segment has drifted, from its nights: `since 2026-10-30, 3 nights`."""
    nights = record.nights(seg)
    if not nights:
        return ""
    run = 0
    for night in reversed(nights):
        if not (night.status.tested and night.drifted):
            break
        run += 1
    if run <= 1:
        clean = sum(1 for n in nights[:-1] if n.status.tested and not n.drifted)
        return f"new tonight; {clean} clean night(s) before it" if len(nights) > 1 else "the first night on record"
    return f"since {nights[-run].window_start}, {run} nights"


def _segment(record: RunRecord, seg: Segment, anchor: str, pictures: dict, budget: _Budget) -> list[str]:
    evidence = seg.evidence or Evidence()
    since = _since(record, seg)
    out = [
        f"<h2 id='{anchor}'>{esc(seg.kind)}/{esc(seg.source)} {badge(seg.severity)}</h2>",
        f"<p>{_strip(record, seg)} <span class='muted'>{esc(since)}</span></p>" if since else "",
        "<ul>" + "".join(f"<li>{esc(c)}</li>" for c in seg.changes) + "</ul>",
    ]
    if seg.errors:
        errors = ", ".join(f"{esc(k.replace('_', ' '))} {v}" for k, v in sorted(seg.errors.items()))
        out.append(f"<p class='muted'>Inputs that could not be read: {errors} (of {seg.n_sampled} sampled).</p>")
    figures = [budget.draw(lambda p=p: _figure(plots.distribution(p, _label(p.target)))) for p in evidence.distributions]
    figures += [budget.draw(lambda p=p: _figure(plots.bars(p, _label(p.target)))) for p in evidence.bars]
    if any(figures):
        out.append("<div class='figs'>" + "".join(figures) + "</div>")
    noun = InputKind(seg.kind).noun
    for items, title in (
        (evidence.unlike, f"Today's {noun} least like the baseline"),
        (evidence.typical, f"Typical {noun} of the baseline"),
    ):
        if items:
            out.append(
                f"<h3>{title}</h3><div class='thumbs'>" + "".join(_thumb(seg.kind, i, pictures, budget) for i in items) + "</div>"
            )
    if evidence.payload_example is not None:
        out.append(_payload(evidence.payload_example))
    out.append(f"<details><summary>Statistics of {len(seg.findings)} check(s)</summary>{_findings_table(seg)}</details>")
    return out


def _label(target: str) -> str:
    words = NUMERIC_WORDS.get(target)
    if words:
        return f"{words[0]} ({target})"
    return f"{CATEGORY_WORDS[target]} ({target})" if target in CATEGORY_WORDS else target


def _figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"


def _thumb(kind: str, item: PicturedItem, pictures: dict, budget: _Budget) -> str:
    uri = pictures.get((kind, item.input_id))
    picture = budget.take(f"<img src='{esc(uri)}' alt='{esc(item.input_id)}'>") if uri else ""
    if not picture:
        picture = "<div class='gone'>no picture: file gone or left out</div>"
    return f"<figure>{picture}<figcaption>{esc(item.input_id)}</figcaption></figure>"


def _payload(example: PayloadExample) -> str:
    lines = [f"<mark>{esc(text)}</mark>" if hit else esc(text) for text, hit in example.lines]
    more = "\n…" if example.truncated else ""
    return (
        f"<h3>One payload behind <code>{esc(example.target)}</code>: <code>{esc(example.input_id)}</code></h3>"
        f"<pre class='payload'>{chr(10).join(lines)}{more}</pre>"
    )


def _findings_table(seg: Segment) -> str:
    rows = [
        "<table><tr><th>check</th><th>target</th><th>status</th><th>method</th><th>p</th><th>p (BH)</th>"
        "<th>effect</th><th>threshold</th><th>was</th><th>now</th><th>examples</th></tr>"
    ]
    for f in seg.findings:
        if not f.status.shown:
            continue
        was, now = states(f.detail)
        examples = "<br>".join(esc(e) for e in f.detail.get("examples", [])[:5])
        rows.append(
            f"<tr><td>{esc(f.check)}</td><td><code>{esc(f.target)}</code></td>"
            f"<td>{badge(f.severity, f.status) if f.drifted else esc(f.status)}</td>"
            f"<td>{esc(f.method)}</td><td class='n'>{number(f.p_value)}</td><td class='n'>{number(f.p_adjusted)}</td>"
            f"<td class='n'>{number(f.effect_size)}</td><td class='n'>{number(f.effect_threshold)}</td>"
            f"<td>{esc(was)}</td><td>{esc(now)}</td><td><code>{examples}</code></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _about(record: RunRecord) -> list[str]:
    parts = ["<h2>About this run</h2>", f"<p class='enc'>{esc(encoder_line(record.encoder))}</p>"]
    if record.error_control:
        parts.append(f"<p class='enc'>False pages: {esc(record.error_control.statement)}.</p>")
    if record.internal_errors:
        parts.append(
            f"<h3>Inputs drift's own code failed on</h3><p>{len(record.internal_errors)} input(s) met a bug in drift, not "
            "a problem with the input; they are left out of the error-rate checks. Please report it with the traceback "
            "in summary.json.</p><table><tr><th>segment</th><th>input</th><th>error</th></tr>"
        )
        parts += [
            f"<tr><td>{esc(e.kind)}/{esc(e.source)}</td><td>{esc(e.input_id)}</td><td>{esc(e.message)}</td></tr>"
            for e in record.internal_errors[:20]
        ]
        parts.append("</table>")
    if record.log_rejects:
        parts.append("<h3>Log rows that broke the contract</h3><table><tr><th>reason</th><th>rows</th><th>examples</th></tr>")
        parts += [
            f"<tr><td>{esc(r.reason)}</td><td class='n'>{r.n_rows}</td><td>{esc(r.examples)}</td></tr>"
            for r in record.log_rejects
        ]
        parts.append("</table>")
    if record.stages:
        parts.append(
            "<h3>Cost of this run</h3><table><tr><th>stage</th><th>seconds</th><th>items</th><th>CPU s</th>"
            "<th>peak RSS MB</th><th>cache hits</th></tr>"
        )
        parts += [
            f"<tr><td>{esc(s.stage)}</td><td class='n'>{s.seconds:.2f}</td><td class='n'>{s.items}</td>"
            f"<td class='n'>{s.cpu_seconds:.2f}</td><td class='n'>{s.peak_rss_mb:.0f}</td><td class='n'>{esc(hit_rate(s))}</td></tr>"
            for s in record.stages
        ]
        parts.append("</table>")
    return parts
