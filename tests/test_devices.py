"""Where the encoders run: [image] device and [document] text_device.

On a machine without a GPU (CI's): `cpu` and `auto` give the vectors drift always gave, bit for bit;
`cuda` is a configuration error that says why; the identity records the device and precision, and
a baseline embedded on another device is refused. The tests marked `gpu` need one and skip
cleanly without it (`python -m pytest -m gpu` runs them where there is one).
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from drift.config import load_job
from drift.errors import BaselineError, ConfigError
from drift.features.embed.clip import ImageEncoder
from drift.features.embed.identity import same_encoder
from drift.features.featurize import Context
from drift.progress import QUIET

from .conftest import BASE_DAY
from .test_pipeline import build_baseline


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


needs_gpu = pytest.mark.skipif(not _has_gpu(), reason="torch sees no GPU on this machine")
no_gpu = pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: auto takes it")


def crops(n: int = 6, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def encoder(tiny_clip, **settings) -> ImageEncoder:
    arch, checkpoint = tiny_clip
    return ImageEncoder("drift-tiny", str(checkpoint), architecture=arch, **settings)


@no_gpu
def test_cpu_and_auto_without_a_gpu_give_the_vectors_drift_always_gave(tiny_clip):
    before = encoder(tiny_clip)  # no device named: the CPU, as every baseline so far was embedded
    pixels = crops(size=before.image_size)
    expected = before.encode_pixels(pixels)
    for device in ("cpu", "auto"):
        made = encoder(tiny_clip, device=device)
        assert np.array_equal(made.encode_pixels(pixels), expected), device
        assert made.identity()["device"] == "cpu" and made.identity()["precision"] == "fp32"
        assert same_encoder(made.identity(), before.identity())


@no_gpu
def test_cuda_without_a_gpu_is_a_config_error_that_says_so(tiny_clip):
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=rf"\[image\] device = '{device}', but torch sees no GPU on this machine"):
            encoder(tiny_clip, device=device)


def test_cpu_only_settings_refuse_a_gpu_and_half_precision_on_a_cpu(tiny_clip):
    with pytest.raises(ConfigError, match=r"\[image\] precision = 'fp16' needs a GPU"):
        encoder(tiny_clip, device="cpu", precision="fp16")
    with pytest.raises(ConfigError, match=r"quantize = 'int8' runs on the CPU"):
        encoder(tiny_clip, device="cuda", quantize="int8")
    # auto with a CPU-only path takes the CPU, GPU or not
    assert encoder(tiny_clip, device="auto", quantize="int8").identity()["device"] == "cpu"


def test_an_identity_without_a_device_is_a_cpu_fp32_one_and_devices_are_not_mixed(tiny_clip):
    identity = encoder(tiny_clip, device="cpu").identity()
    recorded_before = {k: v for k, v in identity.items() if k not in ("device", "precision", "device_name")}
    assert same_encoder(recorded_before, identity)
    assert not same_encoder({**identity, "device": "cuda"}, identity)
    assert not same_encoder({**identity, "device": "cuda", "precision": "fp16"}, {**identity, "device": "cuda"})
    # the GPU's name is a label: two machines with different cards of one kind are still comparable
    assert same_encoder({**identity, "device_name": "NVIDIA H200"}, identity)


def test_the_job_files_device_settings_are_checked_and_reach_the_encoders(world, tmp_path):
    _, job = world
    text = job.read_text()
    job.write_text(text.replace("batch_size = 16", 'batch_size = 16\ndevice = "gpu"'))
    with pytest.raises(ConfigError, match=r"\[image\] device: .*expected auto, cpu, cuda or cuda:N \(a GPU's index\), got 'gpu'"):
        load_job(job)
    job.write_text(text.replace("batch_size = 16", 'batch_size = 16\ndevice = "cpu"') + '\n[document]\ntext_device = "cpu"\n')
    config = load_job(job)
    context = Context(config, QUIET)
    assert context.image_encoder().identity()["device"] == "cpu"
    assert context.text_encoder().identity()["device"] == "cpu"
    if not _has_gpu():
        job.write_text(text + '\n[document]\ntext_device = "cuda:0"\n')
        with pytest.raises(ConfigError, match=r"\[document\] text_device = 'cuda:0', but torch sees no GPU"):
            Context(load_job(job), QUIET).text_encoder()


def test_a_baseline_embedded_on_another_device_is_refused_with_what_differs(world):
    _, job = world
    build_baseline(job)
    config = load_job(job)
    manifest_path = config.baseline_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["embedder"]["clip"]["device"] == "cpu"
    manifest["embedder"]["clip"] |= {"device": "cuda", "device_name": "NVIDIA H200"}
    manifest_path.write_text(json.dumps(manifest))
    from drift.pipeline import run_job

    with pytest.raises(BaselineError, match=r"it differs in: device cuda, now cpu; .*\[image\] device and precision"):
        run_job(config, f"{BASE_DAY + timedelta(days=4):%Y-%m-%d}", QUIET)


@pytest.mark.gpu
@needs_gpu
def test_on_a_gpu_vectors_are_the_cpus_within_float_noise(tiny_clip):
    cpu = encoder(tiny_clip, device="cpu")
    pixels = crops(64, cpu.image_size)
    reference = cpu.encode_pixels(pixels)
    for precision, floor in (("fp32", 0.9999), ("fp16", 0.995), ("bf16", 0.98)):
        gpu = encoder(tiny_clip, device="cuda", precision=precision)
        vectors = gpu.encode_pixels(pixels)
        cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        assert vectors.dtype == np.float32 and cosine.min() >= floor, (precision, cosine.min())
        assert gpu.identity()["device"] == "cuda" and gpu.identity()["precision"] == precision
        assert not same_encoder(gpu.identity(), cpu.identity())


@pytest.mark.gpu
@needs_gpu
def test_auto_takes_the_gpu_and_the_text_encoder_runs_there_too(tiny_clip):
    from drift.features.embed.text import TextEncoder

    assert encoder(tiny_clip, device="auto").identity()["device"] == "cuda"
    on_gpu, on_cpu = TextEncoder(device="cuda"), TextEncoder(device="cpu")
    texts = ["invoice 42, total 12.50 EUR", "delivery note for order 7"]
    cosine = (on_gpu.encode(texts) * on_cpu.encode(texts)).sum(1)
    assert cosine.min() >= 0.9999 and on_gpu.identity()["device"] == "cuda"
