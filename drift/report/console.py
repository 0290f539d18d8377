"""A run on the terminal: one line per segment, its alerts, where the report is."""

from __future__ import annotations

from rich.console import Console

COLOURS = {"none": "green", "info": "cyan", "warning": "yellow", "critical": "red"}


def print_run(result, out: Console) -> None:
    """A run's verdicts, alerts and report path, as `drift run` and `drift demo` print them."""
    record = result.record
    out.print(f"run {record.run_id}: window {record.day}, baseline {record.baseline.name}")
    for seg in record.segments:
        if seg.status.tested:
            label = "ok" if seg.severity == "none" else seg.severity.upper()
            verdict = f"[{COLOURS[seg.severity]}]{label:<9}[/]"
        else:
            verdict = f"{seg.status.value:<9}"
        drifted = list(dict.fromkeys(f.target for f in seg.findings if f.drifted))
        extra = f"  drift in: {', '.join(drifted[:4])}" + (" ..." if len(drifted) > 4 else "") if drifted else ""
        out.print(
            f"  {seg.kind:>8}/{seg.source:<20} {verdict} sampled {seg.n_sampled:>4}, errors {seg.n_errors:>3}{extra}",
            highlight=False,
        )
    if record.alerts:
        out.print(f"{len(record.alerts)} alert(s):")
        for alert in record.alerts:
            out.print(f"  [{alert.severity}] {alert.title}", markup=False, highlight=False)
    else:
        out.print("no alerts")
    out.print(f"report: {result.report_paths['html']}  (Markdown: {result.report_paths['md'].name})", highlight=False)
