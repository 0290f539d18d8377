"""What every kind, every input-log format and every engine must do, like scikit-learn's
check_estimator: one parametrised suite that a new kind, format or engine joins by being listed.

  - every sampled row ends as features or as a classified error, and hostile bytes (empty, random,
    truncated, another kind's file) end as a category, never as our own failure;
  - a kind's outputs are what it declares: its descriptors (numbers or categories), its
    embeddings (one float32 row per item, from the encoders it names) and its tables;
  - a kind's size limit holds for a file and for inline bytes alike;
  - the same log written as Parquet, JSON Lines or CSV gives the same sample;
  - every engine gives the local engine's features for the same window.
"""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import orjson
import polars as pl
import pytest

from drift.clock import StageClock
from drift.config import load_job
from drift.demo import world as demo_world
from drift.features.featureset import INTERNAL, InputProblem, is_numeric
from drift.features.featurize import Context
from drift.features.kinds import KINDS
from drift.features.window import analyse_window
from drift.progress import QUIET
from drift.record import InputKind
from drift.sources import sample_log
from drift.sources.log import Window

from .conftest import BASE_DAY, assert_same_analysis, photo, write_job

DAY = BASE_DAY
WINDOW = Window(DAY, DAY + timedelta(days=1))
MAX_BYTES = 1_000_000  # every kind's limit in this world: the oversized file is twice that
FORMATS = ("parquet", "jsonl", "csv")
ENGINES = ("local", "ray")


def good_inputs(kind: str, rng: random.Random) -> list[bytes]:
    if kind == "image":
        return [photo(rng, dark=i % 2 == 0) for i in range(6)]
    if kind == "document":
        return [demo_world.invoice_pdf(rng) for _ in range(4)] + [demo_world.scanned_pdf(rng) for _ in range(2)]
    return [orjson.dumps(demo_world.order_json(rng, drifted=i == 0)) for i in range(6)]


def hostile_inputs(kind: str, rng: random.Random) -> dict[str, bytes]:
    good = good_inputs(kind, rng)[0]
    other = {"image": "payload", "document": "image", "payload": "document"}[kind]
    return {
        "empty": b"",
        "random": rng.randbytes(3000),
        "truncated": good[: len(good) // 3],
        "another_kind": good_inputs(other, rng)[0],
        "nul_bytes": b"\x00" * 5000,
    }


@pytest.fixture(scope="module")
def conformance_world(tmp_path_factory, tiny_clip):
    """One day of every kind's good and hostile inputs, its log in every format, a job per format."""
    root = tmp_path_factory.mktemp("conformance")
    rng = random.Random(7)
    rows = []
    for kind in InputKind:
        folder = root / "data" / kind.value
        folder.mkdir(parents=True)
        named = {f"good_{i}": data for i, data in enumerate(good_inputs(kind.value, rng))}
        named |= hostile_inputs(kind.value, rng)
        named["oversized"] = b"\x00" * (2 * MAX_BYTES)
        for name, data in named.items():
            (folder / name).write_bytes(data)
            rows.append(
                {
                    "input_id": f"{kind.value}-{name}",
                    "received_at": (DAY + timedelta(minutes=len(rows))).isoformat(),
                    "kind": kind.value,
                    "source": "conformance",
                    "uri": f"../data/{kind.value}/{name}",
                    "body": None,
                }
            )
    frame = pl.DataFrame(rows, schema={k: pl.Utf8 for k in rows[0]})
    limits = "".join(f"\n[{kind.value}]\nmax_bytes = {MAX_BYTES}\n" for kind in InputKind if kind is not InputKind.IMAGE)
    jobs = {}
    for fmt in FORMATS:
        logs = root / f"logs-{fmt}"
        logs.mkdir()
        path = logs / f"inputs.{fmt}"
        {"parquet": frame.write_parquet, "jsonl": frame.write_ndjson, "csv": frame.write_csv}[fmt](path)
        job_root = root / fmt
        job_root.mkdir()
        job = write_job(job_root, tiny_clip, extra=limits, name=f"conformance-{fmt}")
        text = (
            job.read_text()
            .replace('log = "logs/*.parquet"', f'log = "{logs}/*.{fmt}"')
            .replace('roots = ["data"]', f'roots = ["{root / "data"}"]')
        )
        job.write_text(text.replace("batch_size = 16", f"batch_size = 16\nmax_bytes = {MAX_BYTES}"))
        jobs[fmt] = job
    return root, jobs, {r["input_id"] for r in rows}


@pytest.fixture(scope="module")
def local_analysis(conformance_world):
    _, jobs, _ = conformance_world
    config = load_job(jobs["parquet"])
    return config, analyse_window(config, WINDOW, Context(config, QUIET), StageClock())


def _segment(analysis, kind: str):
    return analysis.segments[(kind, "conformance")]


def test_every_kind_the_record_names_has_an_implementation():
    # the kinds' names are declared once (record.InputKind); each has its implementation in features.kinds
    assert {name: kind.name for name, kind in KINDS.items()} == {kind.value: kind.value for kind in InputKind}


@pytest.mark.parametrize("kind", sorted(InputKind))
def test_every_row_of_a_kind_ends_as_features_or_a_classified_error(local_analysis, conformance_world, kind):
    _, analysis = local_analysis
    _, _, ids = conformance_world
    data = _segment(analysis, kind)
    errors = {e.input_id: e.category for e in data.errors}
    mine = {i for i in ids if i.startswith(f"{kind}-")}
    assert set(data.features.ids) | set(errors) == mine and not set(data.features.ids) & set(errors)
    assert {f"{kind}-good_{i}" for i in range(6)} <= set(data.features.ids)
    for name in hostile_inputs(kind, random.Random(0)):
        input_id = f"{kind}-{name}"
        # Bytes that happen to parse (a truncated JSON can be valid) are items; anything else a category.
        assert input_id in data.features.ids or errors[input_id] not in (INTERNAL, "crashed"), (input_id, errors.get(input_id))
    assert not data.internal_errors


@pytest.mark.parametrize("kind", sorted(InputKind))
def test_a_kind_makes_the_features_it_declares(local_analysis, kind):
    config, analysis = local_analysis
    features = _segment(analysis, kind).features
    implementation = KINDS[kind]
    declared = implementation.descriptors
    assert set(features.descriptors.columns) == {"input_id", *declared}
    assert features.descriptors["input_id"].to_list() == features.ids
    for name, sort in declared.items():
        assert is_numeric(features.descriptors[name].dtype) == (sort == "number"), (name, features.descriptors[name].dtype)
    assert set(features.embeddings) == set(implementation.embeddings(config))
    for name, matrix in features.embeddings.items():
        assert matrix.dtype == np.float32 and matrix.ndim == 2 and len(matrix) == features.n, name
    assert set(implementation.tables) <= set(features.tables)
    for name, columns in implementation.tables.items():
        assert tuple(features.tables[name].columns) == columns, name


@pytest.mark.parametrize("kind", sorted(InputKind))
def test_a_kinds_size_limit_holds_for_files_and_inline_bytes(local_analysis, kind):
    config, analysis = local_analysis
    errors = {e.input_id: e.category for e in _segment(analysis, kind).errors}
    assert errors[f"{kind}-oversized"] == "too_large"
    limits = KINDS[kind].limits(Context(config, QUIET))
    assert limits["max_bytes"] == MAX_BYTES
    with pytest.raises(InputProblem) as refused:
        KINDS[kind].open_input(b"\x00" * (MAX_BYTES + 1), limits)
    assert refused.value.category == "too_large"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_log_format_gives_the_same_sample(conformance_world, fmt):
    _, jobs, ids = conformance_world

    def sampled(job):
        sample = sample_log(load_job(job), WINDOW)
        return sample.rows.select("input_id", "kind", "source", "uri").sort("input_id"), sample.rejects

    rows, rejects = sampled(jobs[fmt])
    reference, reference_rejects = sampled(jobs["parquet"])
    assert set(rows["input_id"]) == ids
    assert rows.equals(reference) and rejects.equals(reference_rejects)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_gives_the_local_engines_features(request, local_analysis, conformance_world, engine):
    _, jobs, _ = conformance_world
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
    config = load_job(jobs["parquet"])
    config.engine.kind = engine
    if engine == "ray":
        config.engine.address = "local"
    there = analyse_window(config, WINDOW, Context(config, QUIET), StageClock())
    assert_same_analysis(local_analysis[1], there)
