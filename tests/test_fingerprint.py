"""JSON-structure fingerprints: what a document is observed as, how windows merge, what is flagged."""

from __future__ import annotations

import random
import uuid

import numpy as np
import orjson
import polars as pl
import pytest

from drift.config import PolicySection
from drift.features.fingerprint import summary
from drift.features.fingerprint.walk import observe, string_format
from drift.features.kinds.payload import PayloadFeaturizer, open_payload
from drift.verdict.policy import decide
from drift.verdict.structure import structure_checks

LIMITS = {"max_bytes": 1_000_000, "max_depth": 32, "max_array": 10_000}


def tool_response(
    rng: random.Random,
    *,
    drop_rate: float = 0.0,
    string_rate: float = 0.0,
    status_extra: str | None = None,
    null_rate: float = 0.0,
    key_pattern: str = "date",
) -> dict:
    """A pricing tool's response: an enum, a map keyed by dates, arrays of records of varying length."""
    offers = [
        {
            "offer_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "price": round(rng.uniform(5, 500), 2),
            "seller": {"name": f"Seller {rng.randint(1, 400)}", "rating": rng.randint(1, 5)},
        }
        for _ in range(rng.randint(1, 9))
    ]
    days = rng.randint(2, 6)
    if key_pattern == "date":
        history = {f"2026-{rng.randint(1, 12):02d}-{d + 1:02d}": round(rng.uniform(5, 500), 2) for d in range(days)}
    else:
        history = {str(uuid.UUID(int=rng.getrandbits(128))): round(rng.uniform(5, 500), 2) for _ in range(days)}
    doc = {
        "product_id": rng.randint(1, 10**9),
        "status": rng.choice(["in_stock", "in_stock", "low_stock", "sold_out"]),
        "title": f"Product {rng.randint(1, 10**6)}",
        "updated_at": f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:15:00Z",
        "stock": rng.randint(0, 900),
        "offers": offers,
        "price_history": history,
    }
    if rng.random() < 0.4:
        doc["promo"] = {"code": rng.choice(["A", "B"]), "ends": "2026-12-01"}
    if rng.random() < string_rate:
        doc["stock"] = str(doc["stock"])
    if rng.random() < drop_rate:
        del doc["updated_at"]
    if status_extra and rng.random() < 0.2:
        doc["status"] = status_extra
    if rng.random() < null_rate:
        doc["title"] = None
    return doc


def features(docs: list[dict], prefix: str):
    featurizer = PayloadFeaturizer()
    for i, doc in enumerate(docs):
        featurizer.add(f"{prefix}-{i:04d}", open_payload(orjson.dumps(doc), LIMITS))
    return featurizer.finish()


def window(seed: int, n: int = 200, **drift) -> list[dict]:
    rng = random.Random(seed)
    return [tool_response(rng, **drift) for _ in range(n)]


def drifted(ref_docs, cur_docs) -> dict[tuple[str, str], object]:
    results = structure_checks(features(ref_docs, "ref"), features(cur_docs, "cur"))
    verdict = decide(results, PolicySection())
    return {(f.check, f.target): f for f in verdict.findings if f.drifted}


def test_string_formats():
    cases = {
        "2026-11-24": "date",
        "2026-11-24T03:00:00Z": "date-time",
        "2026-11-24 03:00:00.123+01:00": "date-time",
        "9f1c2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b": "uuid",
        "ana@example.com": "email",
        "https://x.example/a?b=1": "uri",
        "12.50": "numeric",
        "-3": "numeric",
        '{"a": 1}': "json",
        "[1, 2]": "json",
        "hello": "text",
        "": "text",
        "2026 was a year": "text",
        "{not json}": "text",
    }
    assert {s: string_format(s) for s in cases} == cases


def test_key_classes():
    from drift.features.fingerprint.walk import key_class

    cases = {
        "123": "int",
        "-7": "int",
        "9f1c2e3d-4b5a-6978-8a9b-0c1d2e3f4a5b": "uuid",
        "2026-11-24": "date",
        "2026-11-24T03:00:00Z": "date",
        "0a1b2c3d4e5f": "hex",
        "USD": "currency",
        "id": None,
        "Usd": None,
        "0a1b2c3d4e5": None,
        "": None,
        "١٢٣": None,
    }
    assert {k: key_class(k) for k in cases} == cases


def test_kmv_hashes_are_zlib_crc32_of_the_utf8():
    import zlib

    from drift.features.fingerprint.walk import crc32_text

    for text in ("", "in_stock", "héllo ✓ 𝄞", "x" * 1000, *("0123456789abcdefgh"[:n] for n in range(18))):
        assert crc32_text(text) == zlib.crc32(text.encode())


def test_a_value_is_one_value_whatever_its_json_type():
    import zlib

    # 5 and "5", true and "true": the consumer reads one value; a string still gets its format
    seen = observe({"a": [5, "5", True, "true", -12, "-12", 2**70, str(2**70), "x", "x"]}, 32, 100)
    assert sorted(seen["values"]["$.a[]"]) == sorted(["5", "true", "-12", str(2**70), "x"])
    assert sorted(seen["hashes"]["$.a[]"]) == sorted(zlib.crc32(v.encode()) for v in seen["values"]["$.a[]"])
    assert {(t, f) for p, t, f in seen["tags"] if p == "$.a[]"} == {
        ("int", ""),
        ("bool", ""),
        ("string", "numeric"),
        ("string", "text"),
    }


def test_a_crowded_path_keeps_the_smallest_hashes_of_its_distinct_values():
    import zlib

    from drift.features.fingerprint.walk import DOC_VALUE_CAP, KMV_K

    ids = [f"id-{i}" for i in range(3000)]
    seen = observe({"ids": ids + ids[:500]}, 32, 10_000)  # repeats count once
    assert seen["values"]["$.ids[]"] is None  # more than DOC_VALUE_CAP: no enum
    assert sorted(seen["hashes"]["$.ids[]"]) == sorted(zlib.crc32(i.encode()) for i in ids)[:KMV_K]
    few = observe({"ids": ids[:DOC_VALUE_CAP] * 3}, 32, 10_000)
    assert sorted(few["values"]["$.ids[]"]) == sorted(ids[:DOC_VALUE_CAP])


def test_a_document_contributes_the_lower_median_of_what_it_holds_at_a_path():
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101, 1000):
        values = [rng.choice([rng.randint(-50, 50), round(rng.uniform(-50, 50), 3)]) for _ in range(n)]
        seen = observe({"v": values, "s": ["x" * (abs(int(v)) % 40) for v in values]}, 32, 10_000)
        assert seen["numbers"]["$.v[]"] == sorted(values)[(n - 1) // 2]
        assert seen["lengths"]["$.s[]"] == sorted(abs(int(v)) % 40 for v in values)[(n - 1) // 2]


def test_a_batch_keeps_each_document_apart_and_refused_ones_out():
    from drift.features.kinds.payload import open_payloads

    docs = [orjson.dumps({"a": 1, "tags": ["x", "y"]}), b"{oops", orjson.dumps({"b": "2026-11-24"})]
    opened = open_payloads(docs, LIMITS)
    assert isinstance(opened[1], Exception) and opened[1].category == "invalid_json"
    featurizer = PayloadFeaturizer()
    featurizer.add("first", opened[0])
    featurizer.add("third", opened[2])
    tables = featurizer.finish().tables
    assert sorted(tables["tags"].rows()) == [
        ("first", "$", "object", ""),
        ("first", "$.a", "int", ""),
        ("first", "$.tags", "array", ""),
        ("first", "$.tags[]", "string", "text"),
        ("third", "$", "object", ""),
        ("third", "$.b", "string", "date"),
    ]
    assert sorted(tables["values"].rows()) == [
        ("first", "$.a", "1"),
        ("first", "$.tags[]", "x"),
        ("first", "$.tags[]", "y"),
        ("third", "$.b", "2026-11-24"),
    ]
    assert tables["arrays"].rows() == [("first", "$.tags", 2.0)] and tables["shapes"]["input_id"].to_list() == ["first", "third"]


def test_paths_maps_and_shapes():
    doc = {
        "id": 1,
        "items": [{"price": 1.5}, {"price": 2}],
        "by_id": {"9f1c2e3d4b5a6978": {"n": 1}, "0a1b2c3d4e5f6789": {"n": None}},
        "rates": {"USD": 1.0, "EUR": 0.9},
        "meta": {"next": None},
        "big": 2**60,
        "raw": '{"x": 1}',
    }
    seen = observe(doc, 32, 100)
    tags = {(p, t) for p, t, _ in seen["tags"]}
    assert {
        ("$.items[].price", "float"),
        ("$.items[].price", "int"),
        ("$.by_id.{*}.n", "int"),
        ("$.by_id.{*}.n", "null"),
        ("$.rates.{*}", "float"),
        ("$.meta.next", "null"),
        ("$.id", "int"),
    } <= tags
    assert not any("9f1c" in p or "USD" in p for p, _ in tags)
    assert ("$.by_id", "hex") in seen["keys"] and ("$.rates", "currency") in seen["keys"] and ("$", "record") in seen["keys"]
    assert ("$.raw", "string", "json") in seen["tags"] and seen["big_ints"] == 1 and seen["depth"] == 3
    assert seen["arrays"]["$.items"] == 2  # the document's median array length
    # Other ids, values and array lengths: the same shape. Another type: another shape.
    same = {
        **doc,
        "id": 7,
        "items": [{"price": 9.0}, {"price": 3}, {"price": 4.25}],
        "by_id": {"ffffeeeeddddcccc": {"n": 2}, "aaaa0000bbbb1111": {"n": None}, "1234567890abcdef": {"n": 5}},
    }
    assert observe(same, 32, 100)["shape"] == seen["shape"]
    assert observe({**doc, "id": "1"}, 32, 100)["shape"] != seen["shape"]


def test_limits_become_input_errors():
    from drift.features.kinds.base import InputProblem

    for data, category in ((b"[" * 40 + b"]" * 40, "too_deep"), (orjson.dumps(list(range(10_001))), "too_large")):
        with pytest.raises(InputProblem) as caught:
            open_payload(data, LIMITS)
        assert caught.value.category == category


def test_fingerprints_merge_exactly_across_days():
    docs = window(1, 300)
    day1, day2 = features(docs[:120], "day1"), features(docs[120:], "day2")
    both = {k: pl.concat([day1.tables[k], day2.tables[k]]) for k in day1.tables}
    merged = summary.merge(summary.build(day1.tables), summary.build(day2.tables))
    direct = summary.build(both)
    assert merged.columns == direct.columns and merged["path"].to_list() == direct["path"].to_list()
    for column in merged.columns:
        if column != "values":
            assert merged[column].to_list() == direct[column].to_list(), column
    # Top values are exact while the values fit the cap; past it, the path is marked as no enum.
    for m, d in zip(merged.iter_rows(named=True), direct.iter_rows(named=True)):
        if d["values_overflow"]:
            assert m["values_overflow"]
        else:
            assert sorted(map(str, m["values"])) == sorted(map(str, d["values"])), d["path"]


def test_distinct_estimate_is_exact_when_small_and_close_when_large():
    rng = np.random.default_rng(0)
    for n, tolerance in ((50, 0), (20_000, 0.15)):
        docs = [{"id": int(v)} for v in rng.choice(10**12, size=n, replace=False)]
        row = summary.row_of(summary.build(features(docs, "d").tables))["$.id"]
        assert abs(summary.distinct_estimate(row["kmv"]) - n) <= tolerance * n


def test_a_fifth_of_responses_losing_or_retyping_a_field_is_breaking_with_the_path():
    base = window(1)
    removed = drifted(base, window(2, drop_rate=0.2))
    assert ("schema_breaking", "$.updated_at presence") in removed
    finding = removed[("schema_breaking", "$.updated_at presence")]
    assert finding.severity == "critical" and finding.detail["old"] == "present 100%"
    assert len(finding.detail["examples"]) == 5
    retyped = drifted(base, window(3, string_rate=0.2))
    finding = retyped[("schema_breaking", "$.stock type")]
    assert finding.detail["old"] == "int 100%" and "string" in finding.detail["new"]
    example = finding.detail["examples"][0]
    assert example.startswith("cur-")


def test_the_same_api_with_new_ids_values_and_lengths_is_not_flagged():
    base = window(1)
    for seed in (2, 3, 4):
        assert drifted(base, window(seed)) == {}


def test_new_enum_values_nulls_and_key_patterns_are_breaking():
    base = window(1)
    assert ("schema_breaking", "$.status new value") in drifted(base, window(2, status_extra="discontinued"))
    assert ("schema_breaking", "$.title nulls") in drifted(base, window(3, null_rate=0.2))
    keys = drifted(base, window(4, key_pattern="uuid"))
    assert ("schema_breaking", "$.price_history key pattern") in keys
    assert keys[("schema_breaking", "$.price_history key pattern")].detail["new"].startswith("uuid keys")


def test_the_union_schema_drift_fingerprint_writes_is_the_windows():
    """The schema the payload featurizer builds for `drift fingerprint` (test_cli checks the files)."""
    import json

    featurizer = PayloadFeaturizer(keep_schema=True)
    for i, doc in enumerate(window(1, 50)):
        featurizer.add(f"w-{i:04d}", open_payload(orjson.dumps(doc), {**LIMITS, "keep_document": True}))
    schema = json.loads(featurizer.finish().tables["schema"]["schema"][0])
    assert schema["type"] == "object" and "status" in schema["properties"]
    assert set(schema["required"]) >= {"product_id", "status", "offers"} and "promo" not in schema["required"]


def test_values_within_a_document_are_not_counted_as_independent():
    """The document is the unit: the 40 string lengths of one response are one observation. Counted
    as 40, KS flagged every pair of same-distribution windows of these real API responses."""
    from .conftest import CORPUS

    folder = CORPUS / "json" / "quicktype"
    if not folder.is_dir():
        pytest.skip("../shared/corpus is not beside this clone")
    docs = []
    for path in sorted(folder.glob("*.json")):
        try:
            docs.append(orjson.loads(path.read_bytes()))
        except orjson.JSONDecodeError:
            continue
    rng = random.Random(0)
    flagged = []
    for _ in range(5):
        rng.shuffle(docs)
        half = len(docs) // 2
        flagged += [key for key in drifted(docs[:half], docs[half:]) if key[1].endswith(("numbers", "lengths"))]
    assert flagged == []


def test_sampling_priorities_are_pinned_values_not_a_librarys_hash():
    """polars' hash is not stable across polars versions: an upgrade would sample other payload
    values from the same window. The priorities are blake2b and splitmix64, pinned here."""
    import polars as pl

    from drift.features.fingerprint.summary import _mix, _stable_hash

    priorities = _mix(_stable_hash(pl.Series(["doc-1", "doc-2"])), _stable_hash(pl.Series(["$.total", "$.total"])))
    assert priorities.tolist() == PINNED_PRIORITIES


PINNED_PRIORITIES = [9704366318285366067, 603745606368506030]
