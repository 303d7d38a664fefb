#!/usr/bin/env python3
"""Images/s of one ONNX model in onnxruntime (CPU execution provider) and of the same model
imported into doppel, in one run, at the same batch sizes and thread count.

    scripts/compare/onnx_speed.py MODEL.onnx DOPPEL_MODEL.safetensors [--batch 1 32] [--threads 2]
        [--seconds 3] [--doppel .build/release/doppel]

Prints one line per batch size with both figures and doppel's ratio to onnxruntime, and the
JSON of both (onnxruntime with all graph optimisations, NCHWc layouts included).
"""
import argparse
import json
import subprocess
import time

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx")
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--doppel", default=".build/release/doppel")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape[1:]]
    onnxruntime = {}
    for batch in args.batch:
        x = np.random.default_rng(1).standard_normal([batch] + shape).astype(np.float32)
        for _ in range(3):
            session.run(None, {feed.name: x})
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            session.run(None, {feed.name: x})
            runs += 1
        onnxruntime[batch] = batch * runs / (time.perf_counter() - start)

    command = [args.doppel, "bench", "embed", "--model", args.model, "--batch", *map(str, args.batch),
               "--train-pairs", "0", "--seconds", str(args.seconds), "--threads", str(args.threads), "--json"]
    doppel = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    ours = {f["batch"]: f["imagesPerSecond"] for f in doppel["forward"]}
    print(f"{args.onnx}: {doppel['mflopsPerImage']} MFLOP/image, sgemm peak {doppel['sgemmGFLOPs']} GFLOP/s, {args.threads} threads")
    for batch in args.batch:
        print(f"batch {batch:4d}: onnxruntime {onnxruntime[batch]:8.1f} images/s, doppel {ours[batch]:8.1f} images/s, "
              f"ratio {ours[batch] / onnxruntime[batch]:.2f}")
    print(json.dumps({"onnxruntime": onnxruntime, "doppel": doppel["forward"]}))


if __name__ == "__main__":
    main()
