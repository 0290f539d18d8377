"""The image encoder's three sources, its identity, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from drift.errors import EmbedderError
from drift.features.embed.clip import ImageEncoder
from drift.features.embed.identity import same_encoder


def test_checkpoint_loads_through_open_clip_and_embeds(tiny_clip):
    arch, checkpoint = tiny_clip
    encoder = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch)
    identity = encoder.identity()
    assert identity["source"] == "checkpoint" and identity["pretrained"] == "drift-tiny.pt"
    assert identity["dim"] == 32 and identity["preprocess"]["size"] == 64
    pixels = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    vectors = encoder.encode_pixels(pixels)
    assert vectors.shape == (5, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch)
    assert np.allclose(again.encode_pixels(pixels), vectors)
    assert same_encoder(identity, again.identity())


def test_untrained_is_seeded_and_distinct_from_the_checkpoint(tiny_clip):
    arch, checkpoint = tiny_clip
    a = ImageEncoder("drift-tiny", "untrained", seed=1, architecture=arch)
    b = ImageEncoder("drift-tiny", "untrained", seed=1, architecture=arch)
    c = ImageEncoder("drift-tiny", "untrained", seed=2, architecture=arch)
    loaded = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch)
    assert a.sha256 == b.sha256 != c.sha256
    assert not same_encoder(a.identity(), loaded.identity())
    assert "UNTRAINED" in a.describe() and a.identity()["seed"] == 1


def test_errors_name_the_fix(tiny_clip, tmp_path):
    arch, _ = tiny_clip
    with pytest.raises(EmbedderError, match="not an open_clip model"):
        ImageEncoder("ViT-Nope", "untrained")
    with pytest.raises(EmbedderError, match="checkpoint not found"):
        ImageEncoder("drift-tiny", str(tmp_path / "x.pt"), architecture=arch)
    with pytest.raises(EmbedderError, match="not an open_clip tag for ViT-B-32"):
        ImageEncoder("ViT-B-32", "imagenet-please")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(EmbedderError, match="cannot load checkpoint"):
        ImageEncoder("drift-tiny", str(broken), architecture=arch)


def test_int8_mode_is_close_to_fp32_and_part_of_the_identity(tiny_clip):
    arch, checkpoint = tiny_clip
    fp32 = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch)
    int8 = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch, quantize="int8")
    pixels = np.random.default_rng(1).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    cosine = np.sum(fp32.encode_pixels(pixels) * int8.encode_pixels(pixels), axis=1)
    assert cosine.min() > 0.98
    assert fp32.sha256 == int8.sha256  # the same weights...
    assert not same_encoder(fp32.identity(), int8.identity())  # ...but not the same vectors


def test_int8_vectors_do_not_depend_on_their_batch_partners(tiny_clip):
    """Dynamic int8 scales activations by the batch's range; a quiet day must not look drifted
    because its items were batched with other items than the baseline's."""
    arch, checkpoint = tiny_clip
    int8 = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch, quantize="int8")
    rng = np.random.default_rng(2)
    item = rng.integers(100, 140, (1, 64, 64, 3), dtype=np.uint8)
    quiet_partners = rng.integers(100, 140, (7, 64, 64, 3), dtype=np.uint8)
    loud_partners = rng.integers(0, 255, (7, 64, 64, 3), dtype=np.uint8)
    alone = int8.encode_pixels(item)[0]
    with_quiet = int8.encode_pixels(np.concatenate([item, quiet_partners]))[0]
    with_loud = int8.encode_pixels(np.concatenate([item, loud_partners]))[0]
    assert np.array_equal(alone, with_quiet) and np.array_equal(alone, with_loud)


def test_the_bundled_text_model_is_checked_before_it_is_loaded(monkeypatch):
    from drift.errors import EmbedderError
    from drift.features.embed import text

    encoder = text.TextEncoder()  # the installed package's weights match the published sha256
    assert encoder.dim == 384 and encoder.identity()["source"] == "bundled"
    monkeypatch.setattr(text, "BUNDLED_SHA256", "0" * 64)  # as if the package shipped other weights
    with pytest.raises(EmbedderError, match="not the published all-MiniLM-L6-v2 weights"):
        text.TextEncoder()


def test_loading_the_encoders_leaves_the_processes_logging_and_environment_alone(tiny_clip, monkeypatch):
    """`drift schedule` went quiet after its first job: the image encoder raised the root logger to
    ERROR for good; the text encoder left Hugging Face's offline switches set for the whole process."""
    import logging
    import os

    from drift.features.embed.text import OFFLINE_ENV, TextEncoder

    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.INFO)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    arch, _ = tiny_clip
    ImageEncoder("drift-tiny", "untrained", seed=0, architecture=str(arch))
    TextEncoder()
    assert root.level == logging.INFO and not root.filters
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    assert set(OFFLINE_ENV) >= {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}


def test_pretrained_is_read_one_way_by_the_config_and_the_encoder(tmp_path):
    """ "v1.0" was a hub tag to the config and a checkpoint path to the encoder."""
    from drift.config import load_job
    from drift.features.embed.clip import source_of

    job = tmp_path / "job.toml"
    base = '[job]\nname = "s"\n[inputs]\nlog = "l/*.parquet"\nroots = ["d"]\n[baseline]\nname = "b"\n[image]\n'
    for value, source in [
        ("v1.0", "hub"),
        ("laion2b_s34b_b79k", "hub"),
        ("clip.pt", "checkpoint"),
        ("w/clip.bin", "checkpoint"),
        ("untrained", "untrained"),
    ]:
        job.write_text(base + f'pretrained = "{value}"\n')
        config = load_job(job)
        assert source_of(config.image.pretrained) == source, value
        assert (config.image.pretrained == value) == (source != "checkpoint"), value  # only files are resolved


def test_onnx_runtime_gives_the_torch_vectors_from_a_graph_cached_by_the_weights(tiny_clip, tmp_path, monkeypatch):
    import shutil

    arch, checkpoint = tiny_clip
    local = tmp_path / checkpoint.name  # a checkpoint of our own: its cache folder is beside it
    shutil.copy(checkpoint, local)
    torch_encoder = ImageEncoder("drift-tiny", str(local), architecture=arch)
    onnx_encoder = ImageEncoder("drift-tiny", str(local), architecture=arch, backend="onnxruntime")
    graph = onnx_encoder.onnx.path
    assert graph.parent == tmp_path / ".drift-onnx" and torch_encoder.sha256[:16] in graph.name
    pixels = np.random.default_rng(2).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    ours, theirs = torch_encoder.encode_pixels(pixels), onnx_encoder.encode_pixels(pixels)
    assert np.sum(ours * theirs, axis=1).min() >= 0.99999
    # each vector a function of its item: alone or in a batch, the same to float precision
    alone = np.concatenate([onnx_encoder.encode_pixels(pixels[i : i + 1]) for i in range(len(pixels))])
    assert np.abs(alone - theirs).max() < 1e-5

    # the graph and the runtime are pinned: a baseline made with PyTorch is not compared with it
    identity = onnx_encoder.identity()
    assert identity["backend"]["runtime"] == "onnxruntime" and len(identity["backend"]["graph_sha256"]) == 64
    assert not same_encoder(torch_encoder.identity(), identity) and "backend" not in torch_encoder.identity()
    exported = graph.stat().st_mtime_ns
    again = ImageEncoder("drift-tiny", str(local), architecture=arch, backend="onnxruntime")
    assert graph.stat().st_mtime_ns == exported and same_encoder(identity, again.identity())  # exported once

    with pytest.raises(EmbedderError, match="calibrated on the baseline's own items: build the baseline"):
        ImageEncoder("drift-tiny", str(local), architecture=arch, backend="onnxruntime", quantize="int8")
    import drift.features.embed.onnx_visual as onnx_visual

    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(EmbedderError, match=r"pip install -e '.\[onnx\]'"):
        onnx_visual._runtime()


def test_static_int8_on_onnx_runtime_is_close_to_fp32_and_a_function_of_the_item_alone(tiny_clip, tmp_path):
    import shutil

    arch, checkpoint = tiny_clip
    local = tmp_path / checkpoint.name
    shutil.copy(checkpoint, local)
    rng = np.random.default_rng(5)
    calibration = rng.integers(0, 255, (24, 64, 64, 3), dtype=np.uint8)
    fp32 = ImageEncoder("drift-tiny", str(local), architecture=arch, backend="onnxruntime")
    int8 = ImageEncoder(
        "drift-tiny", str(local), architecture=arch, backend="onnxruntime", quantize="int8", calibration=calibration
    )
    pixels = rng.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8)
    batch = int8.encode_pixels(pixels)
    # Random pixels through a tiny random tower are int8's worst case: 0.988 at worst on one of this
    # project's CPUs, 0.99+ on another (ONNX Runtime's int8 kernels differ by CPU); ViT-B-32 on photos
    # keeps 0.9996 (benchmarks/RESULTS.md).
    assert np.sum(batch * fp32.encode_pixels(pixels), axis=1).min() >= 0.98
    # scales calibrated once: alone, in any batch and in any order, bit for bit the same vector
    alone = np.concatenate([int8.encode_pixels(pixels[i : i + 1]) for i in range(len(pixels))])
    shuffled = int8.encode_pixels(pixels[::-1])[::-1]
    assert np.array_equal(alone, batch) and np.array_equal(shuffled, batch)
    identity = int8.identity()["backend"]
    assert identity["precision"] == "int8-static" and len(identity["calibration_sha256"]) == 64
    # another calibration set is another encoder: its vectors are not compared with these
    other = ImageEncoder(
        "drift-tiny", str(local), architecture=arch, backend="onnxruntime", quantize="int8", calibration=calibration[:12]
    )
    assert not same_encoder(int8.identity(), other.identity())
    assert same_encoder(
        int8.identity(),
        ImageEncoder(
            "drift-tiny", str(local), architecture=arch, backend="onnxruntime", quantize="int8", calibration=calibration.copy()
        ).identity(),
    )


def test_a_baseline_carries_its_calibration_set_and_a_run_embeds_with_it(world):
    """Static int8 end to end: the baseline build calibrates on its own window before embedding,
    stores the crops with their sha256, and the night's run rebuilds the same encoder from them."""
    from datetime import timedelta

    from drift.baselines import CALIBRATION, build, open_baseline
    from drift.clock import StageClock
    from drift.config import load_job
    from drift.features.featurize import Context
    from drift.pipeline import run_job
    from drift.progress import QUIET

    from .conftest import BASE_DAY

    root, job = world
    job.write_text(job.read_text().replace("batch_size = 16", 'batch_size = 16\nbackend = "onnxruntime"\nquantize = "int8"'))
    config = load_job(job)
    clock = StageClock()
    manifest = build(config, BASE_DAY, BASE_DAY + timedelta(days=3), Context(config, QUIET), clock)
    assert "calibrate" in [t.stage for t in clock.stages]
    assert CALIBRATION in manifest["files"]
    crops = open_baseline(config).calibration()
    assert crops.dtype == np.uint8 and 8 <= len(crops) <= 64
    assert manifest["embedder"]["clip"]["backend"]["precision"] == "int8-static"
    result = run_job(config, f"{BASE_DAY + timedelta(days=3):%Y-%m-%d}")  # refused if its encoder differed
    assert (
        result.summary["encoder"]["clip"]["backend"]["calibration_sha256"]
        == manifest["embedder"]["clip"]["backend"]["calibration_sha256"]
    )
    assert any(s["status"] == "ok" for s in result.summary["segments"])
