"""The image encoder's three sources, its identity, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from drift.embed.clip import ImageEncoder, same_embedder
from drift.errors import EmbedderError


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
    assert same_embedder(identity, again.identity())


def test_untrained_is_seeded_and_distinct_from_the_checkpoint(tiny_clip):
    arch, checkpoint = tiny_clip
    a = ImageEncoder("drift-tiny", "untrained", seed=1, architecture=arch)
    b = ImageEncoder("drift-tiny", "untrained", seed=1, architecture=arch)
    c = ImageEncoder("drift-tiny", "untrained", seed=2, architecture=arch)
    loaded = ImageEncoder("drift-tiny", str(checkpoint), architecture=arch)
    assert a.sha256 == b.sha256 != c.sha256
    assert not same_embedder(a.identity(), loaded.identity())
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
    assert not same_embedder(fp32.identity(), int8.identity())  # ...but not the same vectors
