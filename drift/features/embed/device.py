"""Where an encoder runs: the CPU, or a CUDA GPU when torch sees one.

`auto` takes the first GPU when torch sees one and the CPU otherwise; `cuda` or `cuda:N` on a
machine where torch sees no such GPU is a configuration error that says why, never a silent run on
the CPU. The device's kind and the precision are part of an encoder's identity (identity.py):
fp32 vectors from a CPU and a GPU differ in their last digits, and until that difference is
measured to be below what the tests can see, a baseline embedded on one is not compared with a
night embedded on the other.
"""

from __future__ import annotations

from ...errors import ConfigError


def resolve(requested: str, setting: str) -> str:
    """The torch device for a configured `device` ("cpu" or "cuda:N"). `setting` names it in errors."""
    if requested == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if requested == "auto":
        return "cuda:0" if available else "cpu"
    if not available:
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA driver or GPU is visible to torch"
        raise ConfigError(f"{setting} = {requested!r}, but torch sees no GPU on this machine ({why}); use 'cpu' or 'auto'")
    index = int(requested.split(":", 1)[1]) if ":" in requested else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"{setting} = {requested!r}, but torch sees {count} GPU(s) here (cuda:0 to cuda:{count - 1})")
    return f"cuda:{index}"


def kind_of(device: str) -> str:
    """ "cpu" or "cuda": what an identity records (two GPUs of one machine make the same vectors)."""
    return device.split(":", 1)[0]


def check_precision(precision: str, device: str, setting: str) -> None:
    """Half precisions run on a GPU only: on a CPU they are slower than fp32, and bf16 loses digits for nothing."""
    if precision != "fp32" and kind_of(device) == "cpu":
        raise ConfigError(f"{setting} = {precision!r} needs a GPU; this encoder runs on the CPU: use 'fp32'")


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def device_name(device: str) -> str:
    """What the device is, for reports: the GPU's name, or "cpu"."""
    if kind_of(device) == "cpu":
        return "cpu"
    import torch

    return torch.cuda.get_device_name(int(device.split(":", 1)[1]))
