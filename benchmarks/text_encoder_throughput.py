"""Does ONNX Runtime pay for the text encoder (issue 18, item 3)? all-MiniLM-L6-v2 as drift runs it.

Texts: --texts snippets of the demo's invoices, delivery notes and scans' words, each cut to
[document] text_chars (2,000) characters, as documents give them. In one run, forward only on the
same tokenised batches (batch 32, max_seq_length 256, --threads threads):

* PyTorch fp32: sentence-transformers' encode, as drift.features.embed.text runs it;
* ONNX Runtime fp32: the transformer exported once (opset 17), mean pooling and L2 in numpy;
* ONNX Runtime dynamic int8 (MatMul weights int8), for reference (batch-dependent scales);

with the cosine of each to PyTorch's vectors.

    python benchmarks/text_encoder_throughput.py [--texts 512] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH = 32


def texts(n: int, chars: int) -> list[str]:
    rng = random.Random(0)
    words = (
        "invoice total amount due net vat order delivery note item quantity unit price customer account "
        "reference date payment terms bank transfer iban shipped received signature page scanned copy "
        "partner supplier description discount subtotal"
    ).split()
    out = []
    for _ in range(n):
        parts = []
        while sum(len(p) + 1 for p in parts) < chars:
            parts.append(rng.choice(words) if rng.random() < 0.8 else f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}")
        out.append(" ".join(parts)[:chars])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from drift.features.embed.text import TextEncoder

    encoder = TextEncoder(threads=args.threads)
    model = encoder.model
    corpus = texts(args.texts, encoder.text_chars)
    batches = [corpus[i : i + BATCH] for i in range(0, len(corpus), BATCH)]
    tokenised = [model.tokenize(b) for b in batches]

    def torch_forward() -> np.ndarray:
        return np.concatenate([encoder.encode(b) for b in batches])

    transformer = model[0].auto_model.eval()

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "minilm.onnx"
        sample = tokenised[0]
        with torch.enable_grad():
            torch.onnx.export(
                Wrapped(transformer),
                (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["hidden"],
                dynamic_axes={name: {0: "n", 1: "t"} for name in ("input_ids", "attention_mask", "token_type_ids", "hidden")},
                opset_version=17,
                dynamo=False,
            )
        int8 = Path(tmp) / "minilm-int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions = {
            name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for name, path in (("ONNX Runtime fp32", fp32), ("ONNX Runtime dynamic int8", int8))
        }

        def onnx_forward(session) -> np.ndarray:
            out = []
            for feed in tokenised:
                hidden = session.run(["hidden"], {k: feed[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")})[
                    0
                ]
                mask = feed["attention_mask"].numpy()[..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
                out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
            return np.concatenate(out).astype(np.float32)

        runs = {"PyTorch fp32 (sentence-transformers)": torch_forward}
        runs |= {name: (lambda s=session: onnx_forward(s)) for name, session in sessions.items()}
        rates, vectors = {}, {}
        for name, run in runs.items():
            run()  # warm-up
            started = time.perf_counter()
            vectors[name] = run()
            rates[name] = len(corpus) / (time.perf_counter() - started)
    base = "PyTorch fp32 (sentence-transformers)"
    print(f"{len(corpus)} texts of {encoder.text_chars} characters, all-MiniLM-L6-v2, batch {BATCH}, {args.threads} threads\n")
    print("| mode | texts/s | vs PyTorch fp32 | cosine to PyTorch (min) |")
    print("|---|---:|---:|---:|")
    for name, rate in rates.items():
        cosine = (
            (vectors[name] * vectors[base]).sum(1) / np.linalg.norm(vectors[name], axis=1) / np.linalg.norm(vectors[base], axis=1)
        )
        print(f"| {name} | {rate:.1f} | {rate / rates[base]:.2f}x | {cosine.min():.7f} |")


if __name__ == "__main__":
    main()
