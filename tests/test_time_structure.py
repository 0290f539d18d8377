"""Time is part of the data: payload values that change every night by design are compared by what
they mean, and never-seen events get exact tests that survive a wide job's error control."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import polars as pl

from drift.config import PolicySection
from drift.features.kinds.payload import PayloadFeaturizer, open_payload
from drift.verdict.compare import error_rate_checks
from drift.verdict.policy import decide
from drift.verdict.structure import skeleton, structure_checks
from drift.verdict.temporal import parse_time

LIMITS = {"max_bytes": 1_000_000, "max_depth": 32, "max_array": 10_000}
START = datetime(2026, 11, 2, tzinfo=UTC)
WIDTH = 50  # decided as one segment of a 50-segment job


def fx_response(
    rng: random.Random,
    received: float,
    day: int,
    *,
    stale_days: int = 0,
    millis: bool = False,
    balance_as_string: bool = False,
    new_status: bool = False,
    version: str | None = None,
) -> dict:
    """A daily FX-rates API as the issue met it: the day's date and epoch second, a growing
    sequence number, a version bumped now and then, an enum, a balance."""
    date = datetime.fromtimestamp(received, UTC) - timedelta(days=stale_days)
    stamp = int(received - rng.uniform(0, 600))
    return {
        "date": date.strftime("%Y-%m-%d"),
        "timestamp": stamp * 1000 if millis else stamp,
        "seq": 5_000_000 + int((received - START.timestamp()) / 30),
        "version": version or f"3.{1 + day // 4}.0",
        "status": "held" if new_status else rng.choice(["ok", "ok", "ok", "partial"]),
        "balance": f"{rng.uniform(0, 900):.2f}" if balance_as_string else round(rng.uniform(0, 900), 2),
        "rates": {c: round(rng.uniform(0.5, 150), 4) for c in ("USD", "GBP", "JPY", "CHF")},
    }


def window(days: range, per_day: int, seed: int, shifted: int = 0, **shift) -> tuple:
    """Documents and the features of consecutive days; `shifted` documents per day carry `shift`."""
    rng = random.Random(seed)
    featurizer, ids, times = PayloadFeaturizer(), [], []
    for day in days:
        base = (START + timedelta(days=day)).timestamp()
        for i in range(per_day):
            received = base + rng.uniform(0, 86399)
            doc = fx_response(rng, received, day, **(shift if i < shifted else {}))
            input_id = f"{seed}-{day}-{i}"
            featurizer.add(input_id, open_payload(orjson.dumps(doc), LIMITS))
            ids.append(input_id)
            times.append(received)
    features = featurizer.finish()
    features.tables["received"] = pl.DataFrame({"input_id": ids, "received_at": times})
    return features


BASELINE = None


def baseline():
    global BASELINE
    if BASELINE is None:
        BASELINE = window(range(7), 50, seed=1)  # a week, 350 documents
    return BASELINE


def findings(cur, segments: int = WIDTH) -> dict:
    verdict = decide(structure_checks(baseline(), cur), PolicySection(), segments=segments)
    return {(f.check, f.target): f for f in verdict.findings}


def drifted(cur, segments: int = WIDTH) -> dict:
    return {key: f for key, f in findings(cur, segments).items() if f.drifted}


def test_consecutive_nights_of_a_daily_api_raise_nothing_that_pages():
    """Today's date, today's epoch second, a growing counter and next week's version are no news."""
    for day in range(7, 19, 3):  # nights after the baseline week, one of them after a version bump
        changes = drifted(window(range(day, day + 1), 150, seed=100 + day))
        assert not [k for k, f in changes.items() if f.severity in ("warning", "critical")], changes
        assert not [k for k in changes if k[1].startswith(("$.date", "$.timestamp", "$.seq"))], changes


def test_times_that_track_receipt_are_compared_by_their_lag():
    checks = findings(window(range(8, 9), 150, seed=7))
    assert checks[("schema_breaking", "$.date lag to receipt")].method == "lag_ks"
    assert checks[("schema_breaking", "$.timestamp lag to receipt")].status != "drift"
    # no enum, no value level, no new-value test for a date, an epoch or a counter
    assert not [
        k
        for k in checks
        if k[1] in ("$.date new value", "$.date values", "$.timestamp numbers", "$.seq numbers", "$.seq new value")
    ]


def test_a_date_that_goes_stale_and_seconds_that_become_milliseconds_are_breaking():
    stale = drifted(window(range(8, 9), 150, seed=8, shifted=150, stale_days=3))
    finding = stale[("schema_breaking", "$.date lag to receipt")]
    assert finding.severity == "critical" and finding.effect_size > 3  # three days late, in sds of a day's spread
    assert finding.detail["old"].endswith(" h") and finding.detail["new"].endswith(" d")  # hours -> days
    assert len(finding.detail["examples"]) == 5
    millis = drifted(window(range(8, 9), 150, seed=9, shifted=150, millis=True))
    assert ("schema_breaking", "$.timestamp lag to receipt") in millis


def test_a_never_seen_type_in_a_fifteenth_of_responses_pages_a_50_segment_job():
    """The issue's case: `balance` as a string in 10 of 150 responses, never in the baseline's 350."""
    changes = drifted(window(range(8, 9), 150, seed=10, shifted=10, balance_as_string=True))
    finding = changes[("schema_breaking", "$.balance type")]
    assert finding.method == "rule_of_three" and finding.severity == "critical"
    assert finding.n_ref == 350 and finding.detail["examples"]


def test_a_new_enum_value_in_a_fifteenth_of_responses_pages_a_50_segment_job():
    changes = drifted(window(range(8, 9), 150, seed=11, shifted=10, new_status=True))
    finding = changes[("schema_breaking", "$.status new value")]
    assert finding.method == "rule_of_three" and "'held'" in finding.detail["new"]


def test_a_new_version_is_news_and_a_new_version_format_is_breaking():
    released = findings(window(range(8, 9), 150, seed=12, shifted=150, version="3.9.0"))
    assert released[("schema_additive", "$.version relabel")].severity in ("info", "none")
    assert ("schema_breaking", "$.version new value") not in released
    renamed = drifted(window(range(8, 9), 150, seed=13, shifted=150, version="release-2026.11"))
    assert renamed[("schema_breaking", "$.version new value")].severity == "critical"


def test_an_error_category_the_baseline_never_had_gets_the_exact_test():
    """6% truncated photos (9 of 150) where the baseline's 350 had only unsupported files."""
    checks = error_rate_checks({"unsupported": 2}, 350, {"unsupported": 1, "corrupt": 9}, 150)
    corrupt = next(r for r in checks if r.target == "input errors: corrupt")
    assert corrupt.method == "rule_of_three"
    verdict = decide(checks, PolicySection(), segments=WIDTH)
    assert [f.target for f in verdict.findings if f.drifted] == ["input errors: corrupt"]


def test_parsing_times_and_digit_skeletons():
    assert parse_time("2026-11-02") == START.timestamp()
    assert parse_time("2026-11-02T01:00:00Z") == START.timestamp() + 3600
    assert parse_time("2026-11-02T03:00:00+02:00") == START.timestamp() + 3600
    assert parse_time("yesterday") is None
    assert skeleton("3.10.2") == skeleton("3.1.0") == "#.#.#"
    assert skeleton("v2.0.1-rc1") == "v#.#.#-rc#"
    assert skeleton("EUR") == "EUR" and skeleton("release-7") == "release-#"
