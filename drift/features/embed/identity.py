"""What makes two encoders interchangeable: the same vectors for the same input.

Every baseline and run records the identity of each encoder it used; vectors from two different
identities are never compared (distances between them mean nothing).
"""

from __future__ import annotations

import hashlib

# Everything that shapes a vector; labels such as a tag, a file name or the GPU's name may differ.
_SHAPING = ("model", "source", "weights_sha256", "dim", "preprocess", "quantize", "backend", "device", "precision")
# What an identity recorded before it had the field: encoders ran on the CPU, in fp32.
_BEFORE = {"device": "cpu", "precision": "fp32"}


def weights_sha256(model) -> str:
    """sha256 over every tensor of the state dict in key order: the same weights give the same hash
    whatever file format or source they came from."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shaping(identity: dict) -> dict:
    """The parts of an identity that shape its vectors: what a cached vector is keyed by."""
    return {k: identity.get(k, _BEFORE.get(k)) for k in _SHAPING}


def same_encoder(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(a.get(k, _BEFORE.get(k)) == b.get(k, _BEFORE.get(k)) for k in _SHAPING)


def difference(a: dict, b: dict) -> str:
    """What differs between two identities, for an error message: "device cpu, now cuda"."""
    keys = [k for k in _SHAPING if a.get(k, _BEFORE.get(k)) != b.get(k, _BEFORE.get(k))]
    return "; ".join(
        f"{k} {a.get(k, _BEFORE.get(k))}, now {b.get(k, _BEFORE.get(k))}"
        if k in ("device", "precision", "model", "source")
        else k
        for k in keys
    )
