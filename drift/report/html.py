"""The HTML report of a run: segment verdicts first, then each segment's findings and evidence.

Everything that comes from inputs (sources, JSON paths and values, file names, PDF metadata,
example ids) passes through `esc`, so a payload key like `<script>` renders as text. The page is
self-contained: inline CSS, no scripts, no external requests.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..record import SHOWN_STATUSES
from .text import encoder_line, number, states

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:22px;margin-bottom:.2em}h2{font-size:17px;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #e2e2e2;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;padding:1px 8px;border-radius:9px;font-weight:600;font-size:12px}
.none{background:#e6f4ea;color:#1e6b34}.info{background:#e8f0fe;color:#1a4d99}.warning{background:#fff4d6;color:#7a5300}
.critical{background:#fde2e1;color:#9b1c1c}.muted{color:#777}.enc{background:#f6f6f6;padding:.5em .8em;border-radius:4px}
code{font-size:12px}
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def badge(severity: str, label: str | None = None) -> str:
    return f'<span class="sev {esc(severity)}">{esc(label or severity)}</span>'


def html(summary: dict[str, Any]) -> str:
    window = summary["window"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>drift report: {esc(summary['job'])} {esc(window['start'][:10])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Drift report: {esc(summary['job'])}, {esc(window['start'][:10])}</h1>",
        f"<p class='muted'>Run <code>{esc(summary['run_id'])}</code>, window {esc(window['start'])} to {esc(window['end'])}; "
        f"baseline <code>{esc(summary['baseline']['name'])}</code> ({esc(summary['baseline']['window']['start'][:10])} to "
        f"{esc(summary['baseline']['window']['end'][:10])}).</p>",
        f"<p class='enc'>{esc(encoder_line(summary.get('encoder')))}</p>",
        *([f"<p class='enc'>False pages: {esc(summary['error_control']['statement'])}.</p>"] if summary.get("error_control") else []),
        "<h2>Verdicts</h2><table><tr><th>segment</th><th>verdict</th><th>sampled</th><th>errors</th><th>checks</th><th>drift in</th></tr>",
    ]
    for seg in summary["segments"]:
        verdict = badge(seg["severity"], "ok" if seg["severity"] == "none" else None) if seg["status"] == "ok" else esc(seg["status"].replace("_", " "))
        drifted = list(dict.fromkeys(f["target"] for f in seg["findings"] if f["status"] == "drift"))
        parts.append(
            f"<tr><td>{esc(seg['kind'])}/{esc(seg['source'])}</td><td>{verdict}</td><td class='n'>{seg['n_sampled']}</td>"
            f"<td class='n'>{seg['n_errors']}</td><td class='n'>{seg['n_checks']}</td><td>{esc(', '.join(drifted[:6]))}</td></tr>"
        )
    parts.append("</table>")
    if summary["alerts"]:
        parts.append("<h2>Alerts</h2><ul>")
        parts += [f"<li>{badge(a['severity'])} {esc(a['title'])} <code>{esc(a['dedup_key'])}</code></li>" for a in summary["alerts"]]
        parts.append("</ul>")
    for seg in summary["segments"]:
        if not seg["findings"]:
            continue
        parts.append(f"<h2>{esc(seg['kind'])}/{esc(seg['source'])}</h2>")
        if seg.get("errors"):
            errors = ", ".join(f"{esc(k)} {v}" for k, v in sorted(seg["errors"].items()))
            parts.append(f"<p class='muted'>Input errors: {errors}</p>")
        parts.append(
            "<table><tr><th>check</th><th>target</th><th>status</th><th>method</th><th>p</th><th>p (BH)</th>"
            "<th>effect</th><th>threshold</th><th>was</th><th>now</th><th>examples</th></tr>"
        )
        for f in seg["findings"]:
            if f["status"] not in SHOWN_STATUSES:
                continue
            d = f.get("detail", {})
            was, now = states(d)
            examples = "<br>".join(esc(e) for e in d.get("examples", [])[:5])
            parts.append(
                f"<tr><td>{esc(f['check'])}</td><td><code>{esc(f['target'])}</code></td>"
                f"<td>{badge(f['severity'], f['status']) if f['status'] == 'drift' else esc(f['status'])}</td>"
                f"<td>{esc(f['method'])}</td><td class='n'>{number(f['p_value'])}</td><td class='n'>{number(f['p_adjusted'])}</td>"
                f"<td class='n'>{number(f['effect_size'])}</td><td class='n'>{number(f['effect_threshold'])}</td>"
                f"<td>{esc(was)}</td><td>{esc(now)}</td><td><code>{examples}</code></td></tr>"
            )
        parts.append("</table>")
    if summary.get("internal_errors"):
        parts.append(
            f"<h2>Inputs drift's own code failed on</h2><p>{len(summary['internal_errors'])} input(s) met a bug in drift, not "
            "a problem with the input; they are left out of the error-rate checks. Please report it with the traceback "
            "in summary.json.</p><table><tr><th>segment</th><th>input</th><th>error</th></tr>"
        )
        parts += [f"<tr><td>{esc(e['kind'])}/{esc(e['source'])}</td><td>{esc(e['input_id'])}</td><td>{esc(e['message'])}</td></tr>"
                  for e in summary["internal_errors"][:20]]
        parts.append("</table>")
    if summary.get("log_rejects"):
        parts.append("<h2>Log rows that broke the contract</h2><table><tr><th>reason</th><th>rows</th><th>examples</th></tr>")
        parts += [f"<tr><td>{esc(r['reason'])}</td><td class='n'>{r['n_rows']}</td><td>{esc(r['examples'])}</td></tr>" for r in summary["log_rejects"]]
        parts.append("</table>")
    if summary.get("stages"):
        parts.append("<h2>Cost of this run</h2><table><tr><th>stage</th><th>seconds</th><th>items</th><th>CPU s</th><th>peak RSS MB</th></tr>")
        parts += [
            f"<tr><td>{esc(s['stage'])}</td><td class='n'>{s['seconds']:.2f}</td><td class='n'>{s['items']}</td>"
            f"<td class='n'>{s['cpu_seconds']:.2f}</td><td class='n'>{s['peak_rss_mb']:.0f}</td></tr>"
            for s in summary["stages"]
        ]
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
