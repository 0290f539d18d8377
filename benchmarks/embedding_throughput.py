"""Image embedding throughput on this machine, in one run:

* forward only: the open_clip image tower on ready 224x224 crops, batch 32, inference mode;
* end to end: JPEG files on disk -> worker processes (read, safe decode, descriptors, crop)
  -> the encoder in the parent, batch 32 -> embeddings written to Parquet, as a run does it;
* int8: `[image] quantize = "int8"` as a run uses it (dynamic int8 Linear layers, one item per
  forward pass so that a vector does not depend on its batch partners), its speed-up and the
  cosine similarity of its embeddings to fp32; and, for reference, the same layers on whole
  batches, which is faster but batch-dependent and therefore not what drift runs;
* ONNX Runtime: `[image] backend = "onnxruntime"` forward only and end to end, its cosine to
  PyTorch fp32, and whether a vector depends on its batch (an item alone against in its batch);
* static int8 on ONNX Runtime (`quantize = "int8"` with `backend = "onnxruntime"`): the exported
  graph quantised with scales calibrated once on 64 of the photos (QDQ, MatMul and Gemm only,
  per-channel int8 weights, uint8 activations, MinMax), forward only and end to end, its cosine to
  fp32 and its batch dependence.

    python benchmarks/embedding_throughput.py [--images 256] [--model ViT-B-32] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from drift.demo import world
from drift.features.embed.clip import ImageEncoder
from drift.features.isolation import Task, open_all
from drift.features.kinds import InputError
from drift.features.kinds.image import ImageFeaturizer, open_image

BATCH = 32


def _write_photo(args) -> None:
    path, seed = args
    rng = random.Random(seed)
    Path(path).write_bytes(world.jpeg_bytes(world.receipt_photo(rng), 85))


def make_photos(folder: Path, n: int) -> list[Path]:
    paths = [folder / f"photo_{i:05d}.jpg" for i in range(n)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_write_photo, [(str(p), i) for i, p in enumerate(paths)], chunksize=8))
    return paths


def forward_only(encode, crops: np.ndarray, repeats: int) -> float:
    encode(crops[:BATCH])  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(crops), BATCH):
            encode(crops[i : i + BATCH])
    return repeats * len(crops) / (time.perf_counter() - started)


def end_to_end(encoder: ImageEncoder, paths: list[Path], workers: int, out: Path, batch: int = BATCH) -> float:
    limits = {"max_bytes": 25_000_000, "max_pixels": 50_000_000, "crop_size": encoder.image_size}
    started = time.perf_counter()
    featurizer = ImageFeaturizer(encoder, batch, spool=out)
    tasks = (Task(str(p), open_image, p, limits, 30) for p in paths)
    for input_id, opened in open_all(tasks, workers=workers, memory_mb=2048, tasks_per_worker=10_000):
        if isinstance(opened, InputError):
            raise SystemExit(f"{input_id}: {opened.category}: {opened.message}")
        featurizer.add(input_id, opened)
    featurizer.finish()  # the vectors were streamed to `out`, batch by batch
    return len(paths) / (time.perf_counter() - started)


def alone_vs_batch(encode, crops: np.ndarray) -> float:
    """The largest change of any coordinate of a vector made alone against in its batch."""
    batched = encode(crops[:BATCH])
    alone = np.concatenate([encode(crops[i : i + 1]) for i in range(min(BATCH, len(crops)))])
    return float(np.abs(alone - batched).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    # torch is imported here, not at the top: spawned decode workers re-import this module, and
    # torch would take several GB of their address space before they open a file.
    import torch

    encoder = ImageEncoder(args.model, "untrained", seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_photos(folder, args.images)
        limits = {"max_bytes": 25_000_000, "max_pixels": 50_000_000, "crop_size": encoder.image_size}
        crops = np.stack([open_image(p, limits)["pixels"] for p in paths])
        fp32 = forward_only(encoder.encode_pixels, crops, repeats=1)
        rows.append(("forward only, fp32", fp32, 1.0, ""))
        for workers in args.workers:
            e2e = end_to_end(encoder, paths, workers, folder / f"e2e_{workers}.parquet")
            rows.append((f"end to end, fp32, {workers} decode worker(s)", e2e, e2e / fp32, ""))
        reference = encoder.encode_pixels(crops)
        int8 = ImageEncoder(args.model, "untrained", seed=0, quantize="int8")
        int8_rate = forward_only(int8.encode_pixels, crops, repeats=1)
        cosine = float(np.mean(np.sum(reference * int8.encode_pixels(crops), axis=1)))
        rows.append(("forward only, int8, one item per pass (what drift runs)", int8_rate, int8_rate / fp32, f"{cosine:.4f}"))
        int8.quantize = "batched"  # encode_pixels splits batches only for "int8"
        batched_rate = forward_only(int8.encode_pixels, crops, repeats=1)
        rows.append(("forward only, int8, whole batches (batch-dependent; not used)", batched_rate, batched_rate / fp32, ""))
        del int8
        onnx = ImageEncoder(args.model, "untrained", seed=0, backend="onnxruntime")
        onnx_rate = forward_only(onnx.encode_pixels, crops, repeats=1)
        cosine = float(np.min(np.sum(reference * onnx.encode_pixels(crops), axis=1)))
        rows.append(
            (
                "forward only, ONNX Runtime fp32",
                onnx_rate,
                onnx_rate / fp32,
                f"{cosine:.7f} (min)",
                f"{alone_vs_batch(onnx.encode_pixels, crops):.1e}",
            )
        )
        shares = []
        for workers in args.workers:
            e2e = end_to_end(onnx, paths, workers, folder / f"onnx_e2e_{workers}.parquet")
            rows.append((f"end to end, ONNX Runtime fp32, {workers} decode worker(s)", e2e, e2e / fp32, ""))
            shares.append(f"{workers} worker(s) {e2e / onnx_rate:.2f}")
        # calibrated as a baseline build does: on a seeded draw of 64 of the window's crops
        chosen = np.random.default_rng(0).choice(len(crops), size=min(64, len(crops)), replace=False)
        static = ImageEncoder(args.model, "untrained", seed=0, backend="onnxruntime", quantize="int8", calibration=crops[chosen])
        static_rate = forward_only(static.encode_pixels, crops, repeats=1)
        cosine = float(np.min(np.sum(reference * static.encode_pixels(crops), axis=1)))
        rows.append(
            (
                "forward only, ONNX Runtime static int8",
                static_rate,
                static_rate / fp32,
                f"{cosine:.4f} (min)",
                f"{alone_vs_batch(static.encode_pixels, crops):.1e}",
            )
        )
        for workers in args.workers:
            e2e = end_to_end(static, paths, workers, folder / f"int8_e2e_{workers}.parquet")
            rows.append((f"end to end, ONNX Runtime static int8, {workers} decode worker(s)", e2e, e2e / fp32, ""))
            shares.append(f"static int8 with {workers} worker(s) {e2e / static_rate:.2f}")
    print(
        f"{args.model}, untrained weights, {args.images} receipt photos 600x800 JPEG, batch {BATCH}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| mode | images/s | vs forward-only fp32 | cosine to PyTorch fp32 | alone vs in batch, max abs |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, ratio, cosine, *batch in rows:
        print(f"| {name} | {rate:.1f} | {ratio:.2f} | {cosine} | {batch[0] if batch else ''} |")
    print(f"\nEnd to end on ONNX Runtime as a share of its own forward-only rate: {', '.join(shares)}.")


if __name__ == "__main__":
    main()
