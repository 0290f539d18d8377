"""The image tower on ONNX Runtime: the configured open_clip model exported once, run on the CPU.

The graph is exported from the loaded weights by PyTorch's exporter and cached under the weights'
sha256 (beside a checkpoint file, or in the user's cache folder for untrained or hub weights), so
the export is paid once per set of weights, not per run. Its own sha256 and the runtime's version
are part of the encoder's identity: a baseline made on one graph or runtime is not compared with
vectors from another. One session per encoder, with its thread counts set: intra-op threads as
`[image] threads`, one inter-op thread (the graph is a chain; parallel branches only contend).

ONNX Runtime is an extra: pip install -e '.[onnx]'.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EmbedderError
from .identity import file_sha256

OPSET = 17


def cache_folder(pretrained: str, source: str) -> Path:
    """Beside the checkpoint it was made from; elsewhere the user's cache (XDG_CACHE_HOME)."""
    if source == "checkpoint":
        return Path(pretrained).parent / ".drift-onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drift" / "onnx"


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise EmbedderError("[image] backend = 'onnxruntime' needs ONNX Runtime: pip install -e '.[onnx]'") from None
    return onnxruntime


def export(model, image_size: int, path: Path) -> None:
    """The visual tower's forward pass, pixels (n, 3, size, size) normalised -> (n, dim), as ONNX."""
    import torch

    class Visual(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, pixels):
            return self.clip.encode_image(pixels)

    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: a reader never sees half a graph, and two runs exporting at once
    # both end with a whole one.
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    os.close(handle)
    try:
        # With gradients on: under no_grad, nn.MultiheadAttention takes its fused fast path, an
        # operator ONNX has no export for.
        with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing and its deprecation
            torch.onnx.export(
                Visual(model).eval(),
                (torch.zeros(2, 3, image_size, image_size),),
                partial,
                input_names=["pixels"],
                output_names=["embedding"],
                dynamic_axes={"pixels": {0: "n"}, "embedding": {0: "n"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def quantize_static_graph(source: Path, pixels: np.ndarray, path: Path) -> None:
    """The fp32 graph with int8 matrix products, their activation scales calibrated once on
    `pixels` (normalised, (n, 3, size, size)): a vector is then a function of its item alone.

    Only MatMul and Gemm, QDQ, per-channel int8 weights, uint8 activations, MinMax: quantising
    every operator measured slower and worse (cosine 0.970; benchmarks/RESULTS.md)."""
    _runtime()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"pixels": pixels[i : i + 8]} for i in range(0, len(pixels), 8)])

        def get_next(self):
            return next(self.batches, None)

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".quantise-") as tmp:
        prepared, partial = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # symbolic shape inference's Reshape rule fails on the ViT; the rest of the preparation holds
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(partial),
                Calibration(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"],
            )
        os.replace(partial, path)


class OnnxVisual:
    """A session over the exported graph of one set of weights (fp32), or over that graph with its
    matrix products quantised to int8 on a calibration set (`calibration`: normalised pixels and
    the sha256 of the crops they came from)."""

    def __init__(
        self,
        model,
        *,
        model_name: str,
        weights_sha256: str,
        pretrained: str,
        source: str,
        image_size: int,
        threads: int | None,
        calibration: tuple[np.ndarray, str] | None = None,
    ):
        runtime = _runtime()
        folder = cache_folder(pretrained, source)
        self.path = folder / f"{model_name}-{weights_sha256[:16]}-opset{OPSET}-fp32.onnx"
        try:
            if not self.path.is_file():
                export(model, image_size, self.path)
            self.precision, self.calibration_sha256 = "fp32", None
            if calibration is not None:
                pixels, self.calibration_sha256 = calibration
                quantised = (
                    folder / f"{model_name}-{weights_sha256[:16]}-opset{OPSET}-int8-static-{self.calibration_sha256[:16]}.onnx"
                )
                if not quantised.is_file():
                    quantize_static_graph(self.path, pixels, quantised)
                self.path, self.precision = quantised, "int8-static"
        except OSError as exc:
            raise EmbedderError(f"[image] cannot write the ONNX graph to {folder}: {exc}") from None
        self.graph_sha256 = file_sha256(self.path)
        options = runtime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = runtime.ExecutionMode.ORT_SEQUENTIAL
        self.session = runtime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.version = runtime.__version__

    def identity(self) -> dict[str, Any]:
        return {
            "runtime": "onnxruntime",
            "version": self.version,
            "graph_sha256": self.graph_sha256,
            "opset": OPSET,
            "precision": self.precision,
            **({"calibration_sha256": self.calibration_sha256} if self.calibration_sha256 else {}),
        }

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Normalised pixels (n, 3, size, size) float32 -> (n, dim) float32, not yet L2-normalised."""
        return self.session.run(["embedding"], {"pixels": np.ascontiguousarray(pixels, dtype=np.float32)})[0]
