"""What changed in a segment, in sentences a person reads without a statistics background.

Each drifted finding becomes one sentence on a scale people hold: shares of the window, percentage
points, ratios of medians. They are ranked by severity, then by how much of the window moved (a
share too: the change in a rate, the share of items beyond the baseline's range, the KS distance),
so the first sentence of a segment is its headline. The reports, the alerts and the notebooks all
take their words from here.
"""

from __future__ import annotations

import math

from ..record import Aspect, Detectable, Family, Finding, InputKind

# Numeric descriptors: (what it measures, the word for lower, the word for higher).
NUMERIC_WORDS: dict[str, tuple[str, str, str]] = {
    "brightness_mean": ("brightness", "darker", "brighter"),
    "contrast": ("contrast", "flatter", "more contrasted"),
    "saturation": ("saturation", "greyer", "more saturated"),
    "entropy": ("detail (entropy)", "plainer", "busier"),
    "blur_laplacian": ("sharpness", "blurrier", "sharper"),
    "edge_density": ("edge density", "smoother", "busier in edges"),
    "dark_fraction": ("share of dark pixels", "less dark", "darker"),
    "overexposed_fraction": ("share of blown-out pixels", "less overexposed", "more overexposed"),
    "white_background": ("share of white background", "less white", "whiter"),
    "width": ("width", "narrower", "wider"),
    "height": ("height", "shorter", "taller"),
    "megapixels": ("resolution", "lower-resolution", "higher-resolution"),
    "aspect_ratio": ("aspect ratio", "taller in shape", "wider in shape"),
    "file_bytes": ("file size", "smaller", "larger"),
    "bytes_per_pixel": ("bytes per pixel", "more compressed", "less compressed"),
    "pages": ("page count", "shorter", "longer"),
    "text_chars_per_page": ("text per page", "sparser in text", "denser in text"),
    "image_area_share": ("share of the page under images", "less image-covered", "more image-covered"),
    "image_dpi": ("scan resolution", "lower-resolution", "higher-resolution"),
    "invisible_text_share": ("share of invisible text", "less hidden in text", "more hidden in text"),
    "form_fields": ("form fields", "with fewer form fields", "with more form fields"),
    "attachments": ("attachments", "with fewer attachments", "with more attachments"),
    "risky_keys": ("risky PDF keys", "with fewer risky keys", "with more risky keys"),
}

# Yes/no descriptors: (what a yes means, what a no means), as verbs of the items.
BINARY_WORDS: dict[str, tuple[str, str]] = {
    "text_layer": ("have a text layer", "have no text layer"),
    "exif_present": ("carry EXIF metadata", "carry no EXIF metadata"),
    "rotated": ("have rotated pages", "have no rotated page"),
    "mixed_page_sizes": ("mix page sizes", "keep one page size"),
    "risky_keys": ("hold risky PDF keys (JavaScript, OpenAction, Launch, attachments, XFA)", "hold none of the risky PDF keys"),
    "image_area_share": ("have their pages covered by images (scans)", "have no page image (born-digital)"),
    "form_fields": ("have form fields", "have no form field"),
    "attachments": ("carry attachments", "carry no attachment"),
}

# Categorical descriptors: what the category is of.
CATEGORY_WORDS = {
    "format": "file format",
    "mode": "colour mode",
    "orientation": "EXIF orientation",
    "camera_make": "camera maker",
    "producer_family": "producing software",
    "page_size": "page size",
    "pdf_version": "PDF version",
}

# Among findings of one severity, the ones that say most plainly what happened come first.
FAMILY_ORDER = {
    Family.ERROR_RATE: 0,
    Family.SCHEMA_BREAKING: 1,
    Family.DESCRIPTOR: 2,
    Family.SCHEMA_SHIFT: 3,
    Family.SCHEMA_ADDITIVE: 4,
    Family.EMBEDDING: 5,
}
# Methods that say that items differ but not how: after the findings that name a change.
INDIRECT = {"conformal", "classifier", "mmd", "pca_ks"}


def pct(share: float) -> str:
    """A share as people say it: 46%, 0.4%, none."""
    if share <= 0:
        return "0%"
    if round(100 * share) < 1:
        return f"{100 * share:.1f}%"
    return f"{100 * share:.0f}%"


def quantity(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def _binary(name: str, noun: str, source: str, ref: float, cur: float) -> str:
    yes, no = BINARY_WORDS.get(name, (f"have {name} yes", f"have {name} no"))
    if cur >= ref:
        return f"{pct(cur)} of {source} {noun} now {yes}, against {_was(ref)} in the baseline."
    return f"{pct(1 - cur)} of {source} {noun} now {no}, against {_was(1 - ref)} in the baseline."


def _was(share: float) -> str:
    return "none" if share <= 0 else pct(share)


def _numeric(name: str, noun: str, source: str, detail: dict, distance: float) -> tuple[float, str]:
    """`distance`: the KS statistic, the largest gap between the two shares below any value."""
    label, lower, higher = NUMERIC_WORDS.get(name, (name, f"lower in {name}", f"higher in {name}"))
    ref_median, cur_median = detail.get("ref_median"), detail.get("cur_median")
    if ref_median is None or cur_median is None:
        return 0.0, f"The {label} of {source} {noun} moved."
    ratio = f", {cur_median / ref_median:.2g}x" if ref_median > 0 and cur_median > 0 else ""
    medians = f"median {quantity(cur_median)} against {quantity(ref_median)} in the baseline{ratio}"
    below, above = detail.get("below_ref_p01", 0.0), detail.get("above_ref_p99", 0.0)
    tail, word = (above, higher) if above >= below else (below, lower)
    if tail >= 0.05:
        return tail - 0.01, f"{pct(tail)} of {source} {noun} are {word} than 99% of the baseline ({label}: {medians})."
    beyond = f"; {pct(tail)} are {word} than 99% of the baseline" if tail >= 0.02 else ""
    return distance, f"The {label} of {source} {noun} moved: {medians}{beyond}."


def _categorical(name: str, noun: str, source: str, detail: dict) -> tuple[float, str]:
    ref, cur = detail.get("ref_top", {}), detail.get("cur_top", {})
    moves = {label: cur.get(label, 0.0) - ref.get(label, 0.0) for label in {*ref, *cur}}
    if not moves:
        return 0.0, f"The {CATEGORY_WORDS.get(name, name)} of {source} {noun} changed."
    label = max(moves, key=lambda k: (abs(moves[k]), k))
    what = CATEGORY_WORDS.get(name, name)
    was = _was(ref.get(label, 0.0))
    return abs(
        moves[label]
    ), f"{pct(cur.get(label, 0.0))} of {source} {noun} now have {what} '{label}', against {was} in the baseline."


def sentence(kind: str, source: str, finding: Finding) -> tuple[float, str]:
    """(how much of the window moved, as a share; the sentence) for one finding."""
    detail = finding.detail
    noun = InputKind(kind).noun
    family, method, target = finding.check, finding.method, finding.target
    if family is Family.ERROR_RATE:
        ref, cur = detail.get("ref_rate", 0.0), detail.get("cur_rate", 0.0)
        category = finding.subject
        what = "could not be read" if category == "all" else f"failed as {category.replace('_', ' ')}"
        _, failed = finding.counts  # an error-rate check always counts its failures (verdict.compare)
        return (
            cur - ref,
            f"{pct(cur)} of {source} {noun} {what} ({failed} of {finding.n_cur}), against {_was(ref)} in the baseline.",
        )
    if family is Family.DESCRIPTOR:
        if method == "tail":
            return _tail(target, finding.subject, noun, source, detail)
        if method == "conformal":
            return _novel(noun, source, detail, "by their descriptors")
        if method == "fisher":
            ref, cur = detail.get("ref_rate", 0.0), detail.get("cur_rate", 0.0)
            return abs(cur - ref), _binary(target, noun, source, ref, cur)
        if method == "chi2":
            return _categorical(target, noun, source, detail)
        return (
            _numeric(target, noun, source, detail, finding.statistic or 0.0)
            if method == "ks"
            else (0.0, f"{target} of {source} {noun} moved.")
        )
    if family is Family.EMBEDDING:
        if method == "conformal":
            return _novel(noun, source, detail, f"in their {target} embedding")
        if method == "classifier":
            auc = 0.5 + (finding.effect_size or 0) / 2
            return (
                0.0,
                f"A classifier tells today's {source} {noun} from the baseline's by their {target} embedding (AUC {auc:.2f}).",
            )
        return 0.0, f"The {target} embedding of {source} {noun} moved away from the baseline's ({method})."
    # payload checks: their own words are in old/new
    if finding.aspect is Aspect.EMPTINESS:
        ref, cur = detail.get("ref_rate", 0.0), detail.get("cur_rate", 0.0)
        return (
            cur - ref,
            f"{pct(cur)} of {source} {noun} now come back empty at {finding.subject}, against {_was(ref)} in the baseline.",
        )
    if finding.aspect is Aspect.MAGNITUDE and detail.get("ref_median") is not None:
        ref, cur = detail["ref_median"], detail["cur_median"]
        ratio = detail.get("ratio")
        times = f" ({_times(ratio)})" if ratio else ""
        return (
            detail.get("outside_share", 0.0),
            f"{finding.subject} in {source} {noun} changed its units or scale: median {quantity(cur)}, against "
            f"{quantity(ref)} in the baseline{times}.",
        )
    if finding.aspect is Aspect.SHAPE and "cur_rate" in detail:
        return _share(detail), f"{pct(detail['cur_rate'])} of {source} {noun} have a shape never seen in the baseline."
    if finding.aspect is Aspect.PRESENCE and "cur_rate" in detail:
        path = finding.subject
        ref, cur = detail["ref_rate"], detail["cur_rate"]
        if cur < ref:
            return (
                ref - cur,
                f"{path} is missing from {pct(1 - cur)} of {source} {noun}, against {_was(1 - ref)} in the baseline.",
            )
        return cur - ref, f"{path} now appears in {pct(cur)} of {source} {noun}, against {_was(ref)} in the baseline."
    moved = (
        _share(detail)
        if "cur_rate" in detail
        else (finding.effect_size or 0.0 if detail.get("effect") == "total_variation" else 0.0)
    )
    if "old" in detail and "new" in detail:
        return moved, f"{target} in {source} {noun} is now {detail['new']}; in the baseline, {detail['old']}."
    return moved, f"{target} in {source} {noun} changed ({method})."


def _times(ratio: float) -> str:
    factor = ratio if ratio >= 1 else 1 / ratio
    return f"{factor:,.0f} times {'as large' if ratio >= 1 else 'smaller'}" if factor >= 10 else f"{factor:.2g} times"


def _tail(target: str, name: str, noun: str, source: str, detail: dict) -> tuple[float, str]:
    label, lower, higher = NUMERIC_WORDS.get(name, (name, f"lower in {name}", f"higher in {name}"))
    share, expected = detail.get("tail_share", 0.0), detail.get("expected_share", 0.01)
    word = lower if detail.get("side") == "low" else higher
    edge = detail.get("edge")
    beyond = f", beyond {quantity(edge)}" if edge is not None else ""
    return (
        share - expected,
        f"{pct(share)} of {source} {noun} are {word} than all but {pct(expected)} of the baseline ({label}{beyond}), "
        f"against {pct(expected)} expected.",
    )


def _share(detail: dict) -> float:
    return abs(detail.get("cur_rate", 0.0) - detail.get("ref_rate", 0.0))


def _novel(noun: str, source: str, detail: dict, how: str) -> tuple[float, str]:
    share, expected = detail.get("novel_share", 0.0), detail.get("expected_share", 0.01)
    return share - expected, f"{pct(share)} of {source} {noun} are unlike any baseline item {how} ({pct(expected)} expected)."


def ordered(kind: str, source: str, findings: list[Finding]) -> list[tuple[str, Finding]]:
    """The drifted findings with their sentences, the most telling first: by severity, then the
    findings that name a change before those that only say items differ, then by how much moved."""
    scored = []
    for finding in findings:
        if not finding.drifted:
            continue
        moved, text = sentence(kind, source, finding)
        order = len(FAMILY_ORDER) if finding.method in INDIRECT else FAMILY_ORDER.get(finding.check, len(FAMILY_ORDER))
        if finding.method == "tail":
            order += 0.5  # a descriptor's whole move, with its medians, says more than one tail of it
        scored.append(((-finding.severity.rank, order, -moved), text, finding))
    scored.sort(key=lambda s: s[0])
    return [(text, finding) for _, text, finding in scored]


def ranked(kind: str, source: str, findings: list[Finding]) -> list[str]:
    """The segment's drifted findings as sentences, the most telling first, one per target."""
    out: list[str] = []
    seen: set[str] = set()
    for text, finding in ordered(kind, source, findings):
        # Several methods test one embedding or descriptor set, and a descriptor has its tails
        # beside its distribution: one sentence each is enough.
        said = finding.subject if finding.check is Family.DESCRIPTOR and finding.subject else finding.target
        if said in seen or text in out:
            continue
        seen.add(said)
        out.append(text)
    return out


def headline(kind: str, source: str, findings: list[Finding]) -> str | None:
    sentences = ranked(kind, source, findings)
    return sentences[0] if sentences else None


def noticeable(kind: str, detectable: Detectable | None) -> str:
    """What the segment can notice at this run's level: "a wave of 6% broken photos; 9% unlike the baseline"."""
    if detectable is None:
        return ""
    noun = InputKind(kind).noun
    broken = (
        f"a wave of {pct(detectable.never_seen)} broken {noun}"
        if detectable.never_seen is not None
        else f"no wave of broken {noun} (too few items)"
    )
    novel = f"; {pct(detectable.novel)} unlike any baseline item" if detectable.novel is not None else ""
    return f"would notice {broken}{novel}"
