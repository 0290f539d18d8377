"""Image embedding on a GPU ([image] device = "cuda"), to size a night: images/s per batch size,
forward only (ready crops, the copy to the GPU included) and end to end (JPEG files decoded in the
isolated CPU workers, then the encoder, as a run does it), in fp32 and in fp16 and bf16 where the
GPU has them, with each precision's cosine similarity to the CPU's fp32 vectors of the same crops
(the tolerance docs/operations.md#gpus states before CPU and GPU vectors may ever be compared).

    python benchmarks/gpu_throughput.py [--images 2048] [--model ViT-B-32] [--batches 32 128 512] [--workers 8]

On a machine where torch sees no GPU it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from embedding_throughput import end_to_end, make_photos  # noqa: I001 - the sibling harness, run from benchmarks/

from drift.features.embed.clip import ImageEncoder


def crops_of(paths: list[Path], size: int) -> np.ndarray:
    from drift.features.kinds.image import open_image

    limits = {"max_bytes": 25_000_000, "max_pixels": 50_000_000, "crop_size": size}
    return np.stack([open_image(p, limits)["pixels"] for p in paths])


def forward(encoder: ImageEncoder, crops: np.ndarray, batch: int) -> float:
    import torch

    encoder.encode_pixels(crops[:batch])  # warm-up: kernels chosen, memory pooled
    torch.cuda.synchronize()
    started = time.perf_counter()
    for i in range(0, len(crops), batch):
        encoder.encode_pixels(crops[i : i + batch])
    torch.cuda.synchronize()
    return len(crops) / (time.perf_counter() - started)


def cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(c.min()), float(np.median(c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--workers", type=int, default=8, help="decode workers for the end-to-end rows")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA driver or GPU is visible"
        print(f"gpu_throughput: torch sees no GPU on this machine ({why}); nothing to measure", file=sys.stderr)
        raise SystemExit(2)
    name = torch.cuda.get_device_name(0)
    precisions = ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    print(
        f"{name}, torch {torch.__version__} (CUDA {torch.version.cuda}), open_clip {args.model} untrained, {args.images} photos\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        paths = make_photos(Path(folder), args.images)
        cpu = ImageEncoder(args.model, "untrained", device="cpu")
        crops = crops_of(paths, cpu.image_size)
        reference = np.concatenate([cpu.encode_pixels(crops[i : i + 64]) for i in range(0, min(len(crops), 512), 64)])
        print("| precision | batch | forward images/s | end to end images/s | cosine to CPU fp32 (min / median) |")
        print("|---|---:|---:|---:|---|")
        for precision in precisions:
            gpu = ImageEncoder(args.model, "untrained", device="cuda", precision=precision)
            vectors = gpu.encode_pixels(crops[: len(reference)])
            low, mid = cosine(vectors, reference)
            for batch in args.batches:
                fwd = forward(gpu, crops, batch)
                e2e = end_to_end(gpu, paths, args.workers, Path(folder) / f"out-{precision}-{batch}.parquet", batch=batch)
                print(f"| {precision} | {batch} | {fwd:.0f} | {e2e:.0f} | {low:.6f} / {mid:.6f} |")


if __name__ == "__main__":
    main()
