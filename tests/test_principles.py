"""The verdict's principles on traffic shaped unlike the calibration harness (issue 26): labels that
change by design, silent emptiness, changes of units, structure inside maps, tails of one
descriptor, and what a segment can notice. Each instance here differs from the issue's examples
(other field names, label spellings, shares) on purpose."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import polars as pl
import pytest
from scipy import stats

from drift.config import PolicySection
from drift.features.kinds.payload import PayloadFeaturizer, open_payload
from drift.verdict.compare import descriptor_checks, error_rate_checks
from drift.verdict.headline import ranked
from drift.verdict.policy import decide, never_seen_share
from drift.verdict.structure import structure_checks
from drift.verdict.temporal import label_period
from drift.verdict.tests import magnitude_test, tail_test

LIMITS = {"max_bytes": 1_000_000, "max_depth": 32, "max_array": 10_000}
START = datetime(2026, 3, 23, tzinfo=UTC)  # a Monday; the baseline week ends before the clocks change
WIDTH = 50


def ledger(rng: random.Random, received: float, day: int, shift: dict) -> dict:
    """A partner's ledger API: a billing month and quarter, a build tag, a region code, a duration
    in milliseconds, hits of a lookup, warehouse stock keyed by warehouse code."""
    at = datetime.fromtimestamp(received, UTC)
    month = at.strftime("%b %Y")  # "Mar 2026", then "Apr 2026"
    quarter = f"FY{at.year}-Q{(at.month - 1) // 3 + 1}"
    if shift.get("stuck_month"):
        month = "Jan 2026"
    warehouses = {}
    for code in rng.sample(["WH-0042", "WH-0107", "WH-2210", "WH-3301", "WH-5120"], rng.randint(1, 3)):
        stock = {"on_hand": rng.randint(0, 90), "reserved": rng.randint(0, 5)}
        if shift.get("camel_case"):
            stock = {"onHand": stock["on_hand"], "reserved": stock["reserved"]}
        warehouses[code] = stock
    duration_ms = rng.lognormvariate(5.5, 0.4)
    hits = [{"ref": f"R{rng.randint(10000, 99999)}", "score": round(rng.random(), 3)} for _ in range(rng.randint(1, 4))]
    return {
        "billing_month": month,
        "fiscal_quarter": quarter,
        "build": shift.get("build") or "b7711",
        "region": shift.get("region") or rng.choice(["eu-west", "eu-central"]),
        "duration_ms": round(duration_ms / 1000, 4)
        if shift.get("seconds")
        else round(duration_ms * (1.25 if shift.get("slower") else 1), 1),
        "hits": [] if shift.get("empty") else hits,
        "warehouses": warehouses,
    }


def window(days: range, per_day: int, seed: int, shifted: int = 0, **shift):
    rng = random.Random(seed)
    featurizer, ids, times = PayloadFeaturizer(), [], []
    for day in days:
        base = (START + timedelta(days=day)).timestamp()
        for i in range(per_day):
            received = base + rng.uniform(0, 86399)
            doc = ledger(rng, received, day, shift if i < shifted else {})
            input_id = f"{seed}-{day}-{i}"
            featurizer.add(input_id, open_payload(orjson.dumps(doc), LIMITS))
            ids.append(input_id)
            times.append(received)
    features = featurizer.finish()
    features.tables["received"] = pl.DataFrame({"input_id": ids, "received_at": times})
    return features


@pytest.fixture(scope="module")
def baseline():
    return window(range(7), 100, seed=1)  # a week, 700 documents


def verdict(baseline, cur):
    return decide(structure_checks(baseline, cur), PolicySection(), segments=WIDTH)


def paging(v) -> dict:
    return {f.target: f for f in v.findings if f.drifted and f.severity.reaches("warning")}


def drifted(v) -> dict:
    return {f.target: f for f in v.findings if f.drifted}


def test_labels_periods_and_relabels_never_page(baseline):
    """A month label turns ("Mar 2026" -> "Apr 2026"), the fiscal quarter with it, and the build tag
    is bumped: none pages; the build is one info finding naming old and new."""
    v = verdict(baseline, window(range(10, 11), 150, seed=5, shifted=150, build="b7712"))
    assert not paging(v), paging(v)
    found = drifted(v)
    assert not [t for t in found if t.startswith(("$.billing_month", "$.fiscal_quarter"))], found
    relabel = found["$.build relabel"]
    assert relabel.severity == "info" and relabel.principle == "relabel"
    assert "b7711" in relabel.detail["old"] and "b7712" in relabel.detail["new"]


def test_a_value_of_a_new_skeleton_is_breaking(baseline):
    v = verdict(baseline, window(range(10, 11), 150, seed=6, shifted=20, region="ap-south"))
    finding = paging(v)["$.region new value"]
    assert finding.severity == "critical" and finding.principle == "new_value"


def test_a_period_label_that_stops_turning_is_breaking(baseline):
    v = verdict(baseline, window(range(40, 41), 150, seed=7, shifted=150, stuck_month=True))
    finding = paging(v)["$.billing_month stale label"]
    assert finding.principle == "time" and "not current in 100%" in finding.detail["new"]


def test_a_lookup_that_comes_back_empty_pages_with_a_plain_sentence(baseline):
    v = verdict(baseline, window(range(10, 11), 150, seed=8, shifted=18, empty=True))  # 12%
    finding = paging(v)["$.hits emptiness"]
    assert finding.severity == "critical" and finding.principle == "emptiness"
    sentence = ranked("payload", "ledger", v.findings)[0]
    assert sentence.startswith("12% of ledger payloads now come back empty at $.hits"), sentence


def test_a_change_of_units_pages_and_an_ordinary_shift_stays_info(baseline):
    v = verdict(baseline, window(range(10, 11), 150, seed=9, shifted=150, seconds=True))
    finding = paging(v)["$.duration_ms magnitude"]
    assert finding.principle == "magnitude" and finding.detail["ratio"] == pytest.approx(1e-3, rel=0.3)
    assert "993 times smaller" in " ".join(ranked("payload", "ledger", v.findings))
    slower = verdict(baseline, window(range(10, 11), 150, seed=10, shifted=150, slower=True))
    assert "$.duration_ms magnitude" not in paging(slower)


def test_fields_inside_a_map_keyed_by_codes_are_fingerprinted(baseline):
    """Warehouse codes (WH-0042) are map keys; 15% of responses rename a field inside the values."""
    v = verdict(baseline, window(range(10, 11), 150, seed=11, shifted=22, camel_case=True))
    found = paging(v)
    assert "$.warehouses.{*}.on_hand presence" in found, sorted(found)
    assert not [t for t in found if "WH-" in t]


def test_ordinary_nights_of_the_ledger_page_nothing(baseline):
    for day in (8, 9, 12):
        v = verdict(baseline, window(range(day, day + 1), 150, seed=100 + day))
        assert not paging(v), paging(v)


def test_label_periods_in_their_usual_spellings():
    def day(text):
        start, length = label_period(text)
        return datetime.fromtimestamp(start, UTC).date().isoformat(), round(length / 86400)

    assert day("2026-W14") == day("2026W14") == ("2026-03-30", 7)
    assert day("Apr 2026") == day("2026-04") == day("04/2026") == day("april-2026") == ("2026-04-01", 30)
    assert day("Q2 2026") == day("FY2026-Q2") == ("2026-04-01", 91)
    assert day("nightly-20260402") == ("2026-04-02", 1)
    assert label_period("b7711") is None and label_period("eu-west") is None


def test_tail_test_is_exact_under_no_change_and_sees_a_partial_tail():
    """Its false-alarm rate is at most the level (beta-binomial null), and 12% of items beyond the
    baseline's low extreme (the median does not move) is found where KS is not sure."""
    rng = np.random.default_rng(3)
    level, alarms = 0.01, 0
    for _ in range(2000):
        x, y = rng.normal(size=300), rng.normal(size=100)
        alarms += tail_test(x, y, "low").p_value <= level
    assert alarms / 2000 <= level + 3 * np.sqrt(level / 2000)
    x = rng.normal(1.4, 0.05, 750)  # aspect ratios of upright scans
    y = np.r_[rng.normal(1.4, 0.05, 132), rng.normal(0.71, 0.03, 18)]  # 12% rotated
    low = tail_test(x, y, "low")
    assert low.p_value < 1e-8 and low.params["tail_share"] >= 0.12
    assert stats.ks_2samp(x, y).pvalue > low.p_value * 1e3


def test_a_rotated_share_of_scans_pages_through_the_descriptor_tail():
    rng = np.random.default_rng(4)
    ref = pl.DataFrame({"input_id": [f"r{i}" for i in range(750)], "aspect_ratio": rng.normal(1.41, 0.02, 750)})
    values = np.r_[rng.normal(1.41, 0.02, 132), rng.normal(0.71, 0.02, 18)]
    cur = pl.DataFrame({"input_id": [f"c{i}" for i in range(150)], "aspect_ratio": values})
    v = decide(descriptor_checks(ref, cur), PolicySection(), segments=WIDTH)
    finding = {f.target: f for f in v.findings}["aspect_ratio low tail"]
    assert finding.drifted and finding.principle == "tail" and finding.severity == "warning"
    assert "13% of scans images are taller in shape than all but 1% of the baseline" in ranked("image", "scans", v.findings)[0]
    quiet = cur.with_columns(pl.Series("aspect_ratio", rng.normal(1.41, 0.02, 150)))
    assert not [f for f in decide(descriptor_checks(ref, quiet), PolicySection(), segments=WIDTH).findings if f.drifted]


def test_magnitude_effect_on_known_cases():
    x = np.random.default_rng(5).lognormal(8, 0.3, 600)
    assert magnitude_test(x, x[:150] / 100).effect_size == pytest.approx(2.0, abs=0.01)  # cents -> units
    assert magnitude_test(x, x[:150] * 1.3).effect_size < 1.0


def test_a_wide_spread_number_a_hundred_times_smaller_is_significant():
    """Sums of a few lines' prices (a spread as wide as the values): divided by 100 they move towards
    zero, where no resolution margin may hide them (the nights harness's statements API, power 0.00
    when it did)."""
    rng = np.random.default_rng(8)
    sums = np.array([sum(rng.integers(1, 12) * rng.integers(150, 9900) for _ in range(rng.integers(1, 6))) for _ in range(900)])
    ref, cur = sums[:750].astype(float), (sums[750:] // 100).astype(float)
    units = magnitude_test(ref, cur)
    assert units.p_value < 1e-10 and units.effect_size > 1.5  # about two orders of magnitude
    same = magnitude_test(ref, sums[750:].astype(float))
    assert same.effect_size < 0.5 and same.p_value > 1e-3


def test_the_minimum_detectable_shift_is_the_exact_test_at_the_segment_level():
    """The share that pages with probability 0.9: the smallest count k whose hypergeometric
    p-value (k of n against 0 of m) is under the level, reached by Binomial(n, s) with 90%."""
    m, n, level = 750, 150, 3.3e-5
    share = never_seen_share(m, n, level, PolicySection())
    k = next(k for k in range(1, n) if stats.hypergeom.sf(k - 1, m + n, k, n) <= level)
    assert stats.binom.sf(k - 1, n, share) == pytest.approx(0.9, abs=1e-6)
    assert never_seen_share(150, n, level, PolicySection()) > share  # a smaller baseline notices less
    checks = error_rate_checks({}, m, {"corrupt": 2}, n)
    v = decide(checks, PolicySection(), segments=WIDTH)
    assert v.detectable.never_seen == pytest.approx(never_seen_share(m, n, v.detectable.level, PolicySection()))


def test_a_shift_under_the_resolution_of_a_clustered_descriptor_is_no_news():
    """Payload sizes cluster by line count; a label two letters shorter moves every size by 2 bytes:
    neither the tails nor the items' novelty may call that a change. Half a spread does."""
    rng = np.random.default_rng(6)

    def sizes(n, shift=0.0):
        lines = rng.integers(1, 6, n)
        return pl.DataFrame(
            {
                "input_id": [f"i{i}" for i in range(n)],
                "bytes": 180 + 61 * lines + rng.integers(0, 3, n) + shift,
                "node_count": (6 + 4 * lines).astype(float),
            }
        )

    ref = sizes(750)
    quiet = decide(descriptor_checks(ref, sizes(150, shift=-2)), PolicySection(), segments=WIDTH)
    assert not [f.target for f in quiet.findings if f.drifted]
    moved = decide(descriptor_checks(ref, sizes(150, shift=-40)), PolicySection(), segments=WIDTH)
    assert {"bytes low tail", "all descriptors"} <= {f.target for f in moved.findings if f.drifted}
