#!/usr/bin/env python3
"""PyTorch's side of `doppel bench embed`, for the issue notes only (torch is not a Doppel
dependency). Loads a model saved by `doppel bench embed --save-model FILE` with
safetensors' PyTorch loader into an nn.Sequential built from the file's architecture string
(strict: every name and shape must match), then times the same measurements with the same
thread count:

    python3 scripts/compare/torch_embed.py FILE --batch 256 32 1 --train-pairs 180 --threads 2
"""
import argparse
import json
import re
import time

import torch
from safetensors import safe_open
from safetensors.torch import load_file


class L2Norm(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.normalize(x, dim=1, eps=1e-12)


def build(architecture, input_shape):
    """nn.Sequential for the subset of Doppel's layers the benchmarks use."""
    layers, (c, h, w) = [], input_shape
    features = None
    for token in architecture.split():
        name, _, args = token.partition("(")
        args = [a for a in args.rstrip(")").split(",") if a]
        positional = [a for a in args if "=" not in a]
        named = dict(a.split("=") for a in args if "=" in a)
        if name == "conv":
            k_out, k = int(positional[0]), int(positional[1])
            stride, pad = int(named.get("stride", 1)), int(named.get("pad", 0))
            layers.append(torch.nn.Conv2d(c, k_out, k, stride=stride, padding=pad))
            c, h, w = k_out, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        elif name == "maxpool":
            size = int(positional[0]); stride = int(named.get("stride", size))
            layers.append(torch.nn.MaxPool2d(size, stride))
            h, w = (h - size) // stride + 1, (w - size) // stride + 1
        elif name == "relu":
            layers.append(torch.nn.ReLU())
        elif name == "flatten":
            layers.append(torch.nn.Flatten()); features = c * h * w
        elif name == "dense":
            units = int(positional[0])
            layers.append(torch.nn.Linear(features, units)); features = units
        elif name == "l2norm":
            layers.append(L2Norm())
        else:
            raise SystemExit(f"torch_embed.py does not build '{token}'")
    return torch.nn.Sequential(*layers)


def rate(seconds, body):
    for _ in range(2):
        body()
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            body(); calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 3:
                break
        best = max(best, calls / elapsed)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 32, 1])
    parser.add_argument("--train-pairs", type=int, default=180)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)

    with safe_open(options.model, framework="pt") as f:
        meta = f.metadata()
    shape = tuple(int(v) for v in meta["input_shape"].split("x"))
    net = build(meta["architecture"], shape)
    net.load_state_dict(load_file(options.model), strict=True)
    net.eval()

    report = {"torch": torch.__version__, "threads": options.threads, "architecture": meta["architecture"],
              "loaded": "strict load_state_dict of the Doppel file: every name and shape matched", "forward": []}
    with torch.inference_mode():
        for n in options.batch:
            x = torch.rand(n, *shape)
            r = rate(options.seconds, lambda: net(x))
            report["forward"].append({"batch": n, "imagesPerSecond": round(r * n)})
    if options.train_pairs:
        net.train()
        pairs = options.train_pairs
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
        x = torch.rand(2 * pairs, *shape)
        y = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(pairs)])

        def step():
            optimizer.zero_grad()
            e = net(x)
            d = torch.nn.functional.pairwise_distance(e[:pairs], e[pairs:])
            loss = (y * d.pow(2) + (1 - y) * torch.clamp(0.3 - d, min=0).pow(2)).mean() / 2
            loss.backward()
            optimizer.step()

        report["trainStep"] = {"pairs": pairs, "millisecondsPerStep": round(1000 / rate(options.seconds, step), 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
