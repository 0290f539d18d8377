"""Folders replaced whole (baselines, a run's embeddings): readers see the old one or the new one."""

from __future__ import annotations

import pytest

from drift import versions
from drift.baselines import build
from drift.clock import StageClock
from drift.config import load_job
from drift.errors import StoreLockedError
from drift.features.featurize import Context
from drift.progress import QUIET
from drift.store import writer_lock

from .conftest import BASE_DAY


def test_a_new_version_replaces_the_old_in_one_rename_and_the_old_stays_readable(tmp_path):
    link = tmp_path / "baseline"
    first = versions.new_version(link)
    (first / "manifest.json").write_text("first")
    versions.publish(first, link)
    reader = link.resolve()  # a run that loaded the baseline before the next build

    second = versions.new_version(link)
    (second / "manifest.json").write_text("second")
    assert (link / "manifest.json").read_text() == "first"  # not visible until published
    versions.publish(second, link)
    assert (link / "manifest.json").read_text() == "second"
    assert (reader / "manifest.json").read_text() == "first"  # the version before is kept

    third = versions.new_version(link)
    (third / "manifest.json").write_text("third")
    versions.publish(third, link)
    assert not reader.exists()  # older ones are removed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["baseline", second.name, third.name])


def test_a_version_that_is_not_published_leaves_the_current_one(tmp_path):
    link = tmp_path / "embeddings"
    good = versions.new_version(link)
    (good / "a.parquet").write_text("a")
    versions.publish(good, link)
    failed = versions.new_version(link)
    (failed / "half.parquet").write_text("half")
    versions.discard(failed)
    assert [p.name for p in link.iterdir()] == ["a.parquet"] and not failed.exists()


def test_a_folder_from_before_versions_becomes_one(tmp_path):
    link = tmp_path / "baseline"
    link.mkdir()
    (link / "manifest.json").write_text("old layout")
    new = versions.new_version(link)
    (new / "manifest.json").write_text("new")
    versions.publish(new, link)
    assert link.is_symlink() and (link / "manifest.json").read_text() == "new"


def test_baseline_build_holds_the_writer_lock(world):
    _, job = world
    config = load_job(job)
    with writer_lock(config.store.database):
        with pytest.raises(StoreLockedError, match="another run holds the store"):
            build(config, BASE_DAY, BASE_DAY.replace(day=4), Context(config, QUIET), StageClock())
    assert not config.baseline_dir.exists()
