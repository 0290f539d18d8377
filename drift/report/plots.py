"""The report's pictures, drawn by matplotlib as inline SVG: no script, no external request.

Text in them comes from inputs (category labels, payload types), so it is drawn as SVG text that
matplotlib escapes, with mathtext off (a `$` in a label is a dollar, not a formula). Figures are
made without pyplot: no global state, safe in any process.
"""

from __future__ import annotations

import io
import itertools
import re

from ..record import Bars, Distribution

BASELINE_COLOUR = "#9aa5b1"
CURRENT_COLOUR = "#d9480f"
MAX_LABEL = 28  # characters of a category label on an axis

_counter = itertools.count()
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _style():
    import matplotlib

    return matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # text stays text: small, selectable, escaped
            "text.parse_math": False,
            "svg.hashsalt": f"drift-{next(_counter)}",  # ids unique across the page's figures
            "font.size": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def _svg(figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return _METADATA.sub("", _PROLOGUE.sub("", out.getvalue(), count=1), count=1)


def distribution(plot: Distribution, label: str) -> str:
    """Baseline and current shares on shared bins, overlaid (evidence.distribution)."""
    from matplotlib.figure import Figure

    with _style():
        figure = Figure(figsize=(4.4, 2.0))
        axes = figure.add_subplot()
        edges = plot.edges
        axes.stairs(plot.ref, edges, fill=True, color=BASELINE_COLOUR, alpha=0.55, label=f"baseline (n={plot.n_ref})")
        axes.stairs(plot.cur, edges, color=CURRENT_COLOUR, linewidth=1.6, label=f"this window (n={plot.n_cur})")
        if plot.log:
            axes.set_xscale("log")
        axes.set_xlabel(label + (" (log scale)" if plot.log else ""))
        axes.set_ylabel("share of items")
        axes.yaxis.set_major_formatter(_percent())
        axes.legend(frameon=False, fontsize=7)
        return _svg(figure)


def bars(plot: Bars, label: str) -> str:
    """Each category's share in the baseline and in the window, side by side."""
    from matplotlib.figure import Figure

    labels = list(dict.fromkeys([*plot.cur, *plot.ref]))
    labels.sort(key=lambda k: -(plot.ref.get(k, 0.0) + plot.cur.get(k, 0.0)))
    labels = labels[:10]
    with _style():
        figure = Figure(figsize=(4.4, 0.45 + 0.32 * len(labels)))
        axes = figure.add_subplot()
        rows = range(len(labels))
        ref = [plot.ref.get(k, 0.0) for k in labels]
        cur = [plot.cur.get(k, 0.0) for k in labels]
        axes.barh([r + 0.2 for r in rows], ref, height=0.4, color=BASELINE_COLOUR, label="baseline")
        axes.barh([r - 0.2 for r in rows], cur, height=0.4, color=CURRENT_COLOUR, label="this window")
        for r, value in zip(rows, cur):
            axes.annotate(
                f"{100 * value:.0f}%", (value, r - 0.2), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7
            )
        axes.set_yticks(list(rows), [_short(k) for k in labels])
        axes.invert_yaxis()
        axes.set_xlim(0, 1.12)
        axes.xaxis.set_major_formatter(_percent())
        axes.set_title(label, fontsize=8, loc="left")
        axes.legend(frameon=False, fontsize=7, loc="lower right")
        return _svg(figure)


def _short(text: str) -> str:
    text = str(text).replace("\n", " ")
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)
