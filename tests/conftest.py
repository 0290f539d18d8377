"""Shared fixtures: a tiny open_clip checkpoint and small worlds of inputs with a log."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
from PIL import Image, ImageDraw, ImageFilter

from drift.demo import world as demo_world

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

TINY_ARCH = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny open_clip architecture file and a checkpoint of it, saved the way users save CLIP weights."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny_clip")
    arch = folder / "drift-tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    open_clip.add_model_config(str(arch))
    torch.manual_seed(123)
    model = open_clip.create_model("drift-tiny", pretrained=None)
    checkpoint = folder / "drift-tiny.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return arch, checkpoint


def photo(rng: random.Random, dark: bool = False, blur: bool = False) -> bytes:
    """A small, fast stand-in for a document photo: paper with text-like strokes on a table."""
    img = Image.new("RGB", (160, 120), tuple(rng.randint(90, 160) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    x0, y0 = rng.randint(10, 40), rng.randint(5, 20)
    draw.rectangle((x0, y0, x0 + 90, y0 + 95), fill=(245, 245, 240))
    for line in range(8):
        y = y0 + 8 + line * 10
        draw.line((x0 + 6, y, x0 + rng.randint(30, 84), y), fill=(20, 20, 20), width=2)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(3))
    arr = np.asarray(img, dtype=np.float32)
    if dark:
        arr *= 0.3
    buffer = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def write_day(
    root: Path,
    day: datetime,
    *,
    n: int = 40,
    seed: int = 0,
    degrade_images: bool = False,
    break_orders: bool = False,
    new_template: float = 0.0,
    scans: float = 0.0,
    extra_rows: list[dict] | None = None,
) -> Path:
    """One day of inputs (images, PDFs, orders) and its Parquet log under root/logs."""
    rng = random.Random(seed)
    data = root / "data" / f"{day:%Y-%m-%d}"
    data.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    rows = []

    def add(kind: str, source: str, name: str, payload: bytes) -> None:
        (data / name).write_bytes(payload)
        rows.append(
            {
                "input_id": f"{source}-{day:%Y%m%d}-{len(rows):04d}",
                "received_at": (day + timedelta(seconds=rng.randint(0, 86399))).isoformat(),
                "kind": kind,
                "source": source,
                "uri": f"../data/{day:%Y-%m-%d}/{name}",
                "body": None,
            }
        )

    for i in range(n):
        bad = degrade_images and i % 2 == 0
        add("image", "app", f"img_{i}.jpg", photo(rng, dark=bad, blur=bad))
    for i in range(n):
        # The first share of the day's documents come from the new template or the scanner.
        if i < new_template * n:
            pdf = demo_world.delivery_note_pdf(rng)
        elif i < (new_template + scans) * n:
            pdf = demo_world.scanned_pdf(rng)
        else:
            pdf = demo_world.invoice_pdf(rng)
        add("document", "partner", f"doc_{i}.pdf", pdf)
    for i in range(n):
        order = demo_world.order_json(rng, drifted=False)
        if break_orders and i % 2 == 0:
            order["total"] = str(order["total"])
        add("payload", "orders", f"order_{i}.json", orjson.dumps(order))
    rows += extra_rows or []
    path = root / "logs" / f"inputs-{day:%Y-%m-%d}.parquet"
    pl.DataFrame(rows, schema={k: pl.Utf8 for k in ("input_id", "received_at", "kind", "source", "uri", "body")}).write_parquet(
        path
    )
    return path


def write_job(root: Path, tiny_clip: tuple[Path, Path], extra: str = "", name: str = "t") -> Path:
    arch, checkpoint = tiny_clip
    job = root / "job.toml"
    job.write_text(
        textwrap.dedent(
            f"""
            [job]
            name = "{name}"

            [inputs]
            log = "logs/*.parquet"
            roots = ["data"]

            [sampling]
            max_per_segment = 200
            seed = 1

            [baseline]
            name = "ref"

            [image]
            model = "drift-tiny"
            architecture = "{arch}"
            pretrained = "{checkpoint}"
            batch_size = 16

            [policy]
            min_samples = 10

            [[alerts.sinks]]
            name = "alerts-file"
            type = "file"
            path = "alerts.jsonl"
            """
        )
        + extra
    )
    return job


BASE_DAY = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def world(tmp_path, tiny_clip):
    """Three baseline days, then day 4 like them and day 5 with broken orders and degraded photos."""
    for d in range(3):
        write_day(tmp_path, BASE_DAY + timedelta(days=d), seed=d)
    write_day(tmp_path, BASE_DAY + timedelta(days=3), seed=10)
    write_day(tmp_path, BASE_DAY + timedelta(days=4), seed=11, degrade_images=True, break_orders=True)
    return tmp_path, write_job(tmp_path, tiny_clip)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """`drift demo` run once for the session, as the README's first command runs it."""
    from typer.testing import CliRunner

    from drift.cli import app

    folder = tmp_path_factory.mktemp("demo") / "drift-demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--quiet"])
    assert result.exit_code == 0, result.output
    # The records of the demo's own runs, before any test runs a night again (tests/test_record_golden.py)
    first = folder.parent / "first-records"
    first.mkdir()
    for summary in sorted((folder / "reports" / "demo").glob("*/summary.json")):
        day, run_id = summary.parent.name, json.loads(summary.read_text())["run_id"]
        (first / f"{day}.summary.json").write_text(summary.read_text())
        stored = CliRunner().invoke(app, ["report", str(folder / "demo.toml"), run_id, "--format", "json"])
        assert stored.exit_code == 0, stored.output
        (first / f"{day}.stored.json").write_text(stored.stdout)
    return folder, result.output


def assert_same_analysis(here, there) -> None:
    """Two analyses of one window agree: outcomes, errors, ids, descriptors, tables, and embeddings
    within float noise (the engines' conformance, tests/test_conformance.py and test_engines.py)."""
    import numpy as np

    assert there.outcomes == here.outcomes
    assert set(there.segments) == set(here.segments)
    for segment, mine in here.segments.items():
        theirs = there.segments[segment]
        assert (theirs.n_sampled, theirs.n_population) == (mine.n_sampled, mine.n_population)
        assert [(e.input_id, e.category) for e in theirs.errors] == [(e.input_id, e.category) for e in mine.errors]
        assert theirs.features.ids == mine.features.ids
        assert theirs.features.descriptors.equals(mine.features.descriptors.select(theirs.features.descriptors.columns))
        assert set(theirs.features.descriptors.columns) == set(mine.features.descriptors.columns)
        assert sorted(theirs.features.tables) == sorted(mine.features.tables)
        for name, table in mine.features.tables.items():  # payload fingerprints, times, paths
            assert theirs.features.tables[name].equals(table), (segment, name)
        assert sorted(theirs.features.embeddings) == sorted(mine.features.embeddings)
        for name, vectors in mine.features.embeddings.items():
            other = theirs.features.embeddings[name]
            ok = ~np.isnan(vectors).any(axis=1)
            assert (ok == ~np.isnan(other).any(axis=1)).all()
            if not ok.any():
                continue
            cosine = (vectors[ok] * other[ok]).sum(1) / np.linalg.norm(vectors[ok], axis=1) / np.linalg.norm(other[ok], axis=1)
            assert cosine.min() >= 1 - 1e-5, (segment, name, cosine.min())


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs on 127.0.0.1 for the module that asks, stopped when it ends."""
    if os.environ.get("CI"):
        import ray  # CI installs the extra: a missing Ray is a failure there, not a skip
    else:
        ray = pytest.importorskip("ray")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_server(program: str, argv: list[str], port: int):
    """A real server (Debian's Pushgateway, Alertmanager) on 127.0.0.1:port, started here, ready
    (its /-/ready answers) before the test goes on, and stopped after it. Skipped where the program
    is not installed, but in CI, which installs it (.ci/run): there that is a failure."""
    import shutil
    import subprocess
    import time

    import httpx

    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is not installed; .ci/run installs it")
        pytest.skip(f"{program} is not installed (apt-get install {program})")
    server = subprocess.Popen([path, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"{program} did not start on {url}")
        yield url
    finally:
        server.terminate()
        server.wait(10)
