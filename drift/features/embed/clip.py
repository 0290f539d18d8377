"""The open_clip image encoder, from a hub tag, a local checkpoint, or seeded random weights.

The encoder's identity (model, weight source, sha256 of the weights, preprocessing) is stored with
every baseline and run (see drift.features.embed.identity).

`untrained` is a deliberate choice, not a fallback: a seeded, randomly initialised network is a
fair dimensionality reducer for shift detection (Rabanser et al., "Failing Loudly", NeurIPS 2019),
and it is the only encoder a machine without a model hub can build. Reports say which was used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, EmbedderError
from .device import check_precision, device_name, kind_of, resolve, torch_dtype
from .identity import weights_sha256

UNTRAINED = "untrained"


def source_of(pretrained: str) -> str:
    from ...config import pretrained_source

    return pretrained_source(pretrained)


@contextmanager
def _root_warnings_muted():
    root = logging.getLogger()

    def below_error(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    root.addFilter(below_error)
    try:
        yield
    finally:
        root.removeFilter(below_error)


class ImageEncoder:
    def __init__(
        self,
        model_name: str,
        pretrained: str,
        seed: int = 0,
        threads: int | None = None,
        architecture: Path | None = None,
        quantize: str = "none",
        backend: str = "torch",
        calibration: np.ndarray | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        """`calibration`: (n, size, size, 3) uint8 crops of the baseline's own items, which static
        int8 on ONNX Runtime calibrates its scales on (required then, ignored otherwise).
        `device`: auto, cpu, cuda or cuda:N ([image] device); `precision`: fp32, fp16 or bf16 (a GPU's)."""
        import open_clip
        import torch

        self.device = self._device(device, backend, quantize)
        check_precision(precision, self.device, "[image] precision")
        self.precision = precision

        self.model_name = model_name
        self.pretrained = pretrained
        self.source = source_of(pretrained)
        if architecture is not None:
            # open_clip registers an architecture file under its stem: architecture x/tiny.json -> model "tiny".
            if not Path(architecture).is_file():
                raise EmbedderError(f"[image] architecture file not found: {architecture}")
            if Path(architecture).stem != model_name:
                raise EmbedderError(
                    f"[image] model {model_name!r} must match the architecture file name {Path(architecture).name!r}"
                )
            open_clip.add_model_config(str(architecture))
        if model_name not in open_clip.list_models():
            raise EmbedderError(f"[image] model {model_name!r} is not an open_clip model; for example 'ViT-B-32' or 'RN50'")
        torch.set_num_threads(threads or os.cpu_count() or 1)
        if self.source == "untrained":
            # open_clip warns about random weights on the root logger; we say so ourselves, in every
            # report. Only that call is filtered: the process's logging is not ours to change.
            with torch.random.fork_rng(devices=[]), _root_warnings_muted():
                torch.manual_seed(seed)
                model = open_clip.create_model(model_name, pretrained=None)
        elif self.source == "checkpoint":
            path = Path(pretrained)
            if not path.is_file():
                raise EmbedderError(f"[image] pretrained checkpoint not found: {path}")
            try:
                model = open_clip.create_model(model_name, pretrained=str(path))
            except Exception as exc:  # noqa: BLE001 - torch and open_clip raise many kinds here
                raise EmbedderError(
                    f"[image] cannot load checkpoint {path} into {model_name}: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:300]}"
                ) from None
        else:
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            if pretrained not in tags:
                raise EmbedderError(
                    f"[image] pretrained {pretrained!r} is not an open_clip tag for {model_name} "
                    f"(tags: {', '.join(tags) or 'none'}); give a tag, a checkpoint path, or 'untrained'"
                )
            try:
                model = open_clip.create_model(model_name, pretrained=pretrained)
            except Exception as exc:  # noqa: BLE001
                raise EmbedderError(
                    f"[image] cannot load open_clip weights {model_name}/{pretrained} (no model hub reachable?): "
                    f"{str(exc).splitlines()[0][:200]}. Fix: on a machine with network, save the weights with "
                    f"torch.save(model.state_dict(), 'clip.pt') and set pretrained = '/path/to/clip.pt', "
                    f"or set pretrained = 'untrained'"
                ) from None
        model.eval()
        self.sha256 = weights_sha256(model)  # of the weights as loaded, before any quantisation
        self.quantize = quantize
        if quantize == "int8" and backend == "torch":
            # Dynamic int8 Linear layers, one item at a time (see encode_pixels): faster than fp32
            # batches on a CPU (benchmarks/RESULTS.md). Part of the identity: int8 and fp32 vectors
            # are not compared.
            with warnings.catch_warnings():  # torch announces a future move of this API to torchao
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                model.visual = torch.ao.quantization.quantize_dynamic(model.visual, {torch.nn.Linear}, dtype=torch.qint8)
        if self.device != "cpu":
            model = model.to(self.device, dtype=torch_dtype(precision))
        self.model = model
        cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.backend = backend
        self.onnx = None
        self.mean = np.array(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)), dtype=np.float32)
        self.std = np.array(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)), dtype=np.float32)
        if backend == "onnxruntime":
            from .onnx_visual import OnnxVisual

            static = None
            if quantize == "int8":
                if calibration is None or not len(calibration):
                    raise EmbedderError(
                        "[image] quantize = 'int8' with backend = 'onnxruntime' is calibrated on the baseline's own items: "
                        "build the baseline with these [image] settings first (drift baseline build)"
                    )
                static = (
                    self.normalised(calibration),
                    hashlib.sha256(np.ascontiguousarray(calibration, dtype=np.uint8).tobytes()).hexdigest(),
                )
            self.onnx = OnnxVisual(
                model,
                model_name=model_name,
                weights_sha256=self.sha256,
                pretrained=pretrained,
                source=self.source,
                image_size=self.image_size,
                threads=threads,
                calibration=static,
            )
        self.dim = int(model.visual.output_dim)
        self.seed = seed if self.source == "untrained" else None

    @staticmethod
    def _device(requested: str, backend: str, quantize: str) -> str:
        """The torch device: ONNX Runtime (its CPU build) and torch's dynamic int8 run on the CPU."""
        cpu_only = (
            "backend = 'onnxruntime'" if backend == "onnxruntime" else ("quantize = 'int8'" if quantize == "int8" else None)
        )
        if cpu_only is None:
            return resolve(requested, "[image] device")
        if requested not in ("auto", "cpu"):
            raise ConfigError(f"[image] device = {requested!r}, but {cpu_only} runs on the CPU; use device = 'cpu' or 'auto'")
        return "cpu"

    def identity(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "source": self.source,
            "pretrained": self.pretrained if self.source != "checkpoint" else Path(self.pretrained).name,
            "seed": self.seed,
            "weights_sha256": self.sha256,
            "dim": self.dim,
            "preprocess": {
                "resize": "longest side 512 (box), then shortest side to size (bicubic), center crop",
                "size": self.image_size,
                "mean": [round(float(v), 8) for v in self.mean],
                "std": [round(float(v), 8) for v in self.std],
                "normalise_output": "l2",
            },
            "quantize": self.quantize
            + (
                ("" if self.quantize == "none" else " (static, calibrated on the baseline's items)")
                if self.onnx is not None
                else (" (dynamic, one item per forward pass)" if self.quantize == "int8" else "")
            ),
            # PyTorch eager has no entry, so baselines made before backends existed still match it
            **({"backend": self.onnx.identity()} if self.onnx is not None else {}),
            "device": kind_of(self.device),
            "precision": self.precision,
            "device_name": device_name(self.device),
        }

    def describe(self) -> str:
        label = {
            "untrained": f"UNTRAINED (random weights, seed {self.seed})",
            "checkpoint": f"checkpoint {Path(self.pretrained).name}",
            "hub": f"open_clip tag {self.pretrained}",
        }[self.source]
        mode = (", int8" if self.quantize == "int8" else "") + (f", ONNX Runtime {self.onnx.version}" if self.onnx else "")
        mode += (
            f", on {device_name(self.device)}" + (f" ({self.precision})" if self.precision != "fp32" else "")
            if self.device != "cpu"
            else ""
        )
        return f"open_clip {self.model_name}, {label}{mode}, weights sha256 {self.sha256[:12]}"

    def normalised(self, pixels: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 crops -> (n, 3, size, size) float32, as the model takes them."""
        x = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
        return (x - self.mean[:, None, None]) / self.std[:, None, None]

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 crops -> (n, dim) float32, L2-normalised."""
        import torch

        x = torch.from_numpy(self.normalised(pixels))
        if self.device != "cpu":
            # pinned, so that the copy to the GPU runs beside the host's next batch
            x = x.pin_memory().to(self.device, dtype=torch_dtype(self.precision), non_blocking=True)
            with torch.inference_mode():
                out = torch.nn.functional.normalize(self.model.encode_image(x).float(), dim=-1)
            return out.cpu().numpy().astype(np.float32, copy=False)
        if self.onnx is not None:
            out = self.onnx.run(x.numpy())
            return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32, copy=False)
        # Dynamic int8 scales each layer's input by its range over the whole batch, so an item's
        # vector would depend on its batch partners: measured 0.011 of movement against 0.022
        # between two near-identical invoice pages, enough to page on a quiet day. One item at a
        # time keeps every vector a function of its own pixels.
        chunks = x.split(1) if self.quantize == "int8" else (x,)
        with torch.inference_mode():
            out = torch.cat([self.model.encode_image(chunk) for chunk in chunks])
            out = torch.nn.functional.normalize(out, dim=-1)
        return out.numpy().astype(np.float32, copy=False)
