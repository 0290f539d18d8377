"""A run on the terminal: one line per segment, its alerts, where the report is."""

from __future__ import annotations

from rich.console import Console


def print_run(result, out: Console) -> None:
    """A run's verdicts, alerts and report path, as `drift run` and `drift demo` print them."""
    summary = result.summary
    out.print(f"run {summary['run_id']}: window {summary['window']['start'][:10]}, baseline {summary['baseline']['name']}")
    colours = {"none": "green", "info": "cyan", "warning": "yellow", "critical": "red"}
    for seg in summary["segments"]:
        if seg["status"] == "ok":
            label = "ok" if seg["severity"] == "none" else seg["severity"].upper()
            verdict = f"[{colours[seg['severity']]}]{label:<9}[/]"
        else:
            verdict = f"{seg['status']:<9}"
        drifted = list(dict.fromkeys(f["target"] for f in seg["findings"] if f["status"] == "drift"))
        extra = f"  drift in: {', '.join(drifted[:4])}" + (" ..." if len(drifted) > 4 else "") if drifted else ""
        out.print(
            f"  {seg['kind']:>8}/{seg['source']:<20} {verdict} sampled {seg['n_sampled']:>4}, errors {seg['n_errors']:>3}{extra}",
            highlight=False,
        )
    if summary["alerts"]:
        out.print(f"{len(summary['alerts'])} alert(s):")
        for alert in summary["alerts"]:
            out.print(f"  [{alert['severity']}] {alert['title']}", markup=False, highlight=False)
    else:
        out.print("no alerts")
    out.print(f"report: {result.report_paths['html']}  (Markdown: {result.report_paths['md'].name})", highlight=False)
