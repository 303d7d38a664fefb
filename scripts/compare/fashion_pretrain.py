#!/usr/bin/env python3
"""A network pre-trained in PyTorch on all ten Fashion-MNIST classes, exported to ONNX: the
stand-in for a pre-trained embedder (nothing pre-trained can be downloaded here) in the
fine-tuning comparison of `doppel train --init`.

    scripts/compare/fashion_pretrain.py OUT.onnx [--epochs 4] [--seed 1]

The network is the `fashion` preset's (conv(16,3,pad=1) relu maxpool(2) conv(32,3,pad=1) relu
maxpool(2) flatten dense(64) l2norm), trained with a normalised softmax over the ten classes
(cosine classifier, scale 16) on the 60,000 training images, pixels / 255 as doppel feeds
them. Then:

    doppel import OUT.onnx --out pre.safetensors --input 1x28x28 --metric euclidean
    doppel train --preset fashion --init pre.safetensors --out tuned.safetensors
    doppel train --preset fashion --arch "<the same architecture>" --out scratch.safetensors
    doppel eval --model tuned.safetensors --json   # and scratch: held-out ROC AUC of each
"""
import argparse
import gzip
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def read_idx(path):
    with gzip.open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


class Embedder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.dense = nn.Linear(32 * 7 * 7, 64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.normalize(self.dense(torch.flatten(x, 1)), dim=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    images = torch.from_numpy(read_idx(f"{ROOT}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    labels = torch.from_numpy(read_idx(f"{ROOT}/train-labels-idx1-ubyte.gz").astype(np.int64))
    model = Embedder()
    classes = nn.Parameter(torch.randn(10, 64))
    optimizer = torch.optim.Adam(list(model.parameters()) + [classes], lr=1e-3)
    for epoch in range(args.epochs):
        order = torch.randperm(len(images))
        total, correct = 0.0, 0
        for start in range(0, len(images), 128):
            index = order[start:start + 128]
            logits = 16 * model(images[index]) @ F.normalize(classes, dim=1).T
            loss = F.cross_entropy(logits, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            correct += (logits.argmax(1) == labels[index]).sum().item()
        print(f"epoch {epoch + 1}: loss {total / len(images):.4f}, training accuracy {correct / len(images):.4f}")
    model.eval()
    torch.onnx.export(model, (images[:2],), args.out, input_names=["input"], output_names=["embedding"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
