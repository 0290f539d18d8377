"""The feature cache: work done once, and never a different verdict (invariant 14).

A window analysed through the cache, cold or warm, is the window analysed without it; anything
that changes what an item's bytes become (encoder, limits, featurizer code) reads no old entry; a
torn or foreign part is ignored; errors of the bytes are cached, drift's own failures never.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from drift.cli import app
from drift.clock import StageClock
from drift.config import load_job
from drift.features import cache as feature_cache
from drift.features import featurize as featurize_module
from drift.features.featurize import Context
from drift.features.kinds import InputError
from drift.features.window import analyse_window
from drift.pipeline import run_job
from drift.progress import QUIET
from drift.sources.log import Window

from .conftest import BASE_DAY, assert_same_analysis, write_day, write_job

DAY = BASE_DAY + timedelta(days=4)


@pytest.fixture
def night(tmp_path, tiny_clip):
    """One night of photos, PDFs and orders, with a corrupt photo and a file that is not there."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00\x13" * 900)
    good = {"received_at": (DAY + timedelta(hours=2)).isoformat(), "source": "app", "body": None}
    extra = [
        {**good, "input_id": "corrupt", "kind": "image", "uri": "../data/corrupt.jpg"},
        {**good, "input_id": "gone", "kind": "image", "uri": "../data/nowhere.jpg"},
    ]
    write_day(tmp_path, DAY, seed=11, n=16, degrade_images=True, break_orders=True, extra_rows=extra)
    job = write_job(tmp_path, tiny_clip)
    plain = tmp_path / "plain.toml"
    plain.write_text(job.read_text() + "\n[cache]\nenabled = false\n")
    return job, plain


def _opened(monkeypatch) -> list[int]:
    """Counts the items each analysis hands to the workers."""
    counts: list[int] = []
    real = featurize_module._open_and_featurize

    def counting(rows, context, *args):
        counts.append(len(rows))
        return real(rows, context, *args)

    monkeypatch.setattr(featurize_module, "_open_and_featurize", counting)
    return counts


def _analyse(job, **overrides):
    config = load_job(job)
    for section, values in overrides.items():
        for key, value in values.items():
            setattr(getattr(config, section), key, value)
    clock = StageClock()
    analysis = analyse_window(config, Window(DAY, DAY + timedelta(days=1)), Context(config, QUIET), clock)
    [stage] = [s for s in clock.stages if s.stage == "open_and_featurize"]
    return analysis, stage


def test_a_window_through_the_cache_cold_or_warm_is_the_window_without_it(night, monkeypatch):
    job, plain = night
    without, stage = _analyse(plain)
    assert stage.cache_hits is None  # no cache, no hit rate
    opened = _opened(monkeypatch)
    cold, cold_stage = _analyse(job)
    warm, warm_stage = _analyse(job)

    assert_same_analysis(without, cold)
    assert_same_analysis(without, warm)
    n = sum(d.n_sampled for d in without.segments.values())
    # cold: everything is opened; warm: only the missing file (it has no bytes to key, and fails again)
    assert opened == [n, 1]
    assert (cold_stage.cache_hits, cold_stage.cache_misses) == (0, n)
    assert (warm_stage.cache_hits, warm_stage.cache_misses) == (n - 1, 1)
    # the corrupt photo's error came from the cache, as the bytes' own property
    errors = {e.input_id: e.category for d in warm.segments.values() for e in d.errors}
    assert errors["corrupt"] == "corrupt" and errors["gone"] == "missing"
    # the run's vectors beside the report are written for read items too
    context_dir = Path(job).parent
    assert not any(context_dir.glob("feature-cache/*/.tmp-*"))


def test_what_changes_an_items_features_never_reads_old_entries(night, monkeypatch):
    job, _ = night
    _analyse(job)
    opened = _opened(monkeypatch)
    _analyse(job, image={"max_pixels": 40_000_000})  # a limit of the image kind: its entries are new
    _analyse(job, image={"seed": 7, "pretrained": "untrained"})  # another encoder
    monkeypatch.setattr(feature_cache, "featurizer_version", lambda: "another version of the code")
    _analyse(job)
    n = sum(d.n_sampled for d in _analyse(job)[0].segments.values())  # with the new code's entries: all read
    photos, pdfs, gone = 16 + 1, 16, 1  # the night's photos and the corrupt one; the missing file is opened every time
    assert opened[:3] == [photos + gone, photos + pdfs + gone, n]
    assert opened[3] == gone
    folders = sorted(
        p.name.split("-")[0] for p in (Path(job).parent / "feature-cache").iterdir() if p.name not in ("uses", "encoders")
    )
    # photos: 4 identities (first, the limit, the encoder, the code); PDFs' pages: 3; orders: 2
    assert folders == ["document"] * 3 + ["image"] * 4 + ["payload"] * 2


def _parts(job) -> list[Path]:
    return sorted((Path(job).parent / "feature-cache").glob("*/part-*.parquet"))


def test_a_torn_or_foreign_part_is_ignored_and_its_items_made_again(night, monkeypatch):
    job, plain = night
    without, _ = _analyse(plain)
    _analyse(job)
    parts = _parts(job)
    torn = next(p for p in parts if p.parent.name.startswith("payload"))
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])  # a writer killed mid-file (not ours: we rename)
    image_part = next(p for p in parts if p.parent.name.startswith("image"))
    foreign = pl.read_parquet(image_part).with_columns(pl.lit("image-somebody-else").alias("identity"))
    image_part.unlink()
    foreign.write_parquet(image_part.parent / "part-1-foreign.parquet")  # rows that claim another identity

    opened = _opened(monkeypatch)
    again, stage = _analyse(job)
    assert_same_analysis(without, again)
    photos, orders, gone = 17, 16, 1
    assert opened == [photos + orders + gone]  # the PDFs still came from the cache
    assert stage.cache_hits == 16
    _, stage = _analyse(job)  # and the items made again were cached again
    assert stage.cache_misses == gone


def test_errors_of_the_bytes_are_cached_drifts_own_failures_never(night, monkeypatch):
    job, _ = night
    real = featurize_module._open_and_featurize

    def failing_on_order_3(rows, context, advance, checkpoint, every):
        """As if drift's own code had failed on one order (a bug, not the order's fault)."""

        def failing(pieces, errors):
            for features in pieces.values():
                victim = next((i for i in features.ids if i.endswith("-0035")), None)
                if victim is not None:
                    keep = pl.Series([i != victim for i in features.ids])
                    features.ids = [i for i in features.ids if i != victim]
                    features.descriptors = features.descriptors.filter(keep)
                    features.tables = {n: t.filter(pl.col("input_id") != victim) for n, t in features.tables.items()}
                    errors = [*errors, InputError(victim, "internal", "RuntimeError: a bug", "Traceback ...")]
            checkpoint(pieces, errors)

        return real(rows, context, advance, failing, every)

    monkeypatch.setattr(featurize_module, "_open_and_featurize", failing_on_order_3)
    first, _ = _analyse(job)
    [internal] = [e for d in first.segments.values() for e in d.errors if e.internal]
    monkeypatch.setattr(featurize_module, "_open_and_featurize", real)
    opened = _opened(monkeypatch)
    second, _ = _analyse(job)
    assert opened == [2]  # the missing file, and the order drift failed on: opened again, not read
    assert internal.input_id in second.segments[("payload", "orders")].features.ids
    errors = {e.input_id: e.category for d in second.segments.values() for e in d.errors}
    assert errors == {"corrupt": "corrupt", "gone": "missing"}


def test_byte_identical_copies_in_a_window_are_opened_once(tmp_path, tiny_clip, monkeypatch):
    write_day(tmp_path, DAY, seed=3, n=20)
    data = tmp_path / "data" / f"{DAY:%Y-%m-%d}"
    log = pl.read_parquet(tmp_path / "logs" / f"inputs-{DAY:%Y-%m-%d}.parquet")
    copies = []
    for kind, ext in (("image", "jpg"), ("document", "pdf"), ("payload", "json")):
        rows = log.filter(pl.col("kind") == kind).head(6)  # 6 copies of 20 per kind: 30% of the window
        for i, row in enumerate(rows.iter_rows(named=True)):
            name = f"copy_{kind}_{i}.{ext}"
            shutil.copy(data / row["uri"].rsplit("/", 1)[1], data / name)
            copies.append({**row, "input_id": f"copy-{kind}-{i}", "uri": f"../data/{DAY:%Y-%m-%d}/{name}"})
    pl.concat([log, pl.DataFrame(copies, schema=log.schema)]).write_parquet(tmp_path / "logs" / f"inputs-{DAY:%Y-%m-%d}.parquet")
    job = write_job(tmp_path, tiny_clip)
    plain = tmp_path / "plain.toml"
    plain.write_text(job.read_text() + "\n[cache]\nenabled = false\n")

    without, _ = _analyse(plain)
    opened = _opened(monkeypatch)
    through, stage = _analyse(job)
    assert_same_analysis(without, through)
    assert opened == [60]  # 78 sampled, 18 of them copies
    assert (stage.cache_hits, stage.cache_misses) == (18, 60)
    assert {d.cache_copies for d in through.segments.values()} == {6}


def test_the_cache_stays_under_its_size_evicting_what_was_used_longest_ago(night, monkeypatch):
    job, _ = night
    _analyse(job)
    first = {p.parent.name: p for p in _parts(job)}
    # a new featurizer version: a second set of parts, and the first set not read since
    monkeypatch.setattr(feature_cache, "featurizer_version", lambda: "next")
    _analyse(job)
    second = [p for p in _parts(job) if p not in first.values()]
    assert len(second) == 3
    runner = CliRunner()
    stats = runner.invoke(app, ["cache", "stats", str(job)])
    assert stats.exit_code == 0, stats.output
    assert stats.output.count("items in 1 parts") == 6
    size = sum(p.stat().st_size for p in second)
    pruned = runner.invoke(app, ["cache", "prune", str(job), "--max-size", f"{size + 100}B"])
    assert pruned.exit_code == 0, pruned.output
    assert "removed 3 parts" in pruned.output
    assert _parts(job) == sorted(second)  # the ones this code reads stayed
    _, stage = _analyse(job)
    assert stage.cache_misses == 1  # the missing file; all else still read
    bad = runner.invoke(app, ["cache", "prune", str(job), "--max-size", "a lot"])
    assert bad.exit_code != 0 and "--max-size" in bad.output
    cleared = runner.invoke(app, ["cache", "prune", str(job), "--all"])
    assert cleared.exit_code == 0 and not _parts(job)


def test_a_size_past_the_limit_is_pruned_by_the_run_itself(night):
    job, _ = night
    job.write_text(job.read_text() + '\n[cache]\nmax_size = "1B"\n')
    _, stage = _analyse(job)
    assert stage.cache_misses and not _parts(job)  # nothing fits: nothing kept, and the run is whole
    _, stage = _analyse(job)
    assert stage.cache_hits == 0


def test_a_run_through_the_cache_records_what_a_run_without_it_records(world):
    root, job = world
    from drift.baselines import build

    plain = root / "plain.toml"
    plain.write_text(job.read_text() + '\n[cache]\nenabled = false\n[store]\ndatabase = "plain.duckdb"\n')
    records = {}
    for name, path in (("plain", plain), ("cold", job), ("warm", job)):
        config = load_job(path)
        if name != "warm":
            build(config, BASE_DAY, BASE_DAY + timedelta(days=3), Context(config, QUIET), StageClock())
        records[name] = run_job(config, "2026-03-05").record
    rows = {
        name: [
            (
                s.kind,
                s.source,
                s.status,
                s.drifted,
                s.severity,
                [(f.check, f.target, f.status, f.severity, f.principle) for f in s.findings],
            )
            for s in record.segments
        ]
        for name, record in records.items()
    }
    assert rows["cold"] == rows["plain"] and rows["warm"] == rows["plain"]
    assert any(drifted for _, _, _, drifted, _, _ in rows["plain"])
    p_values = {name: [f.p_value for s in r.segments for f in s.findings] for name, r in records.items()}
    assert p_values["warm"] == pytest.approx(p_values["plain"], rel=1e-6, abs=1e-12)
    featurized = {name: next(s for s in r.stages if s.stage == "open_and_featurize") for name, r in records.items()}
    assert featurized["plain"].hit_rate is None and featurized["warm"].hit_rate == 1.0


def test_a_run_killed_halfway_keeps_the_features_it_made(night, monkeypatch):
    """The cache is written as the window is opened, a piece at a time, not at the end."""
    job, plain = night
    without, _ = _analyse(plain)
    monkeypatch.setattr(featurize_module, "CHECKPOINT_ITEMS", 10)
    real = featurize_module._open_and_featurize
    seen = []

    def killed_after_three_pieces(rows, context, advance=lambda n=1: None, checkpoint=None, every=0):
        def counting(pieces, errors):
            checkpoint(pieces, errors)
            seen.append(sum(p.n for p in pieces.values()) + len(errors))
            if len(seen) == 3:
                raise KeyboardInterrupt  # as the OOM killer or a timeout would stop the run

        return real(rows, context, advance, counting, every)

    monkeypatch.setattr(featurize_module, "_open_and_featurize", killed_after_three_pieces)
    with pytest.raises(KeyboardInterrupt):
        _analyse(job)
    monkeypatch.setattr(featurize_module, "_open_and_featurize", real)
    again, stage = _analyse(job)
    assert stage.cache_hits == sum(seen) == 30  # the three pieces made before the kill were read
    assert_same_analysis(without, again)


def test_a_run_whose_items_are_all_cached_loads_no_encoder(night, tmp_path):
    job, _ = night
    _analyse(job)
    config = load_job(job)
    context = Context(config, QUIET)
    analysis = analyse_window(config, Window(DAY, DAY + timedelta(days=1)), context, StageClock())
    assert (context._image_encoder, context._text_encoder) == (None, None)
    identity = context.embedder_identity({"image", "document"})
    assert identity["clip"]["model"] == "drift-tiny" and (context._image_encoder, context._text_encoder) == (None, None)
    # the identity it remembered is the loaded encoder's
    assert identity["clip"] == context.image_encoder().identity()
    assert analysis.segments[("image", "app")].cache_hits == 17
    # an encoder whose configuration names another checkpoint file is loaded and remembered anew
    checkpoint = Path(config.image.pretrained)
    moved = tmp_path / "moved" / checkpoint.name
    moved.parent.mkdir()
    shutil.copy(checkpoint, moved)
    config.image.pretrained = str(moved)
    other = Context(config, QUIET)
    assert other.encoder_identity("clip")["weights_sha256"] == identity["clip"]["weights_sha256"]
    assert other._image_encoder is not None


def test_another_quantisation_reads_no_old_vectors(night, monkeypatch):
    job, _ = night
    _analyse(job)
    opened = _opened(monkeypatch)
    _, stage = _analyse(job, image={"quantize": "int8"})
    photos, pdfs, gone = 17, 16, 1  # the PDFs' first pages are embedded by the image encoder too
    assert opened == [photos + pdfs + gone]
    assert stage.cache_hits == 16  # the orders
