#!/usr/bin/env python3
"""A yardstick for the `fashion` preset's open-set figure: a hand-made histogram of oriented
gradients (HOG: 4x4-pixel cells, 9 unsigned orientations, 2x2-cell blocks, L2-normalised), which
no training has seen, scored like the model on the classes the model never trained on.

    python3 scripts/compare/fashion_hog.py [--doppel BIN] MODEL.safetensors...

For each model: its held-out classes (from `doppel eval --json`), their Fashion-MNIST test
images embedded by `doppel gallery import`, then the ROC AUC over all same/different pairs of
the model's distances, of HOG distances, and of the two added (each divided by its standard
deviation). For the README's comparison only: numpy is not a Doppel dependency."""
import argparse
import itertools
import json
import struct
import os
import sqlite3
import subprocess
import sys
import tempfile
import zlib

import numpy as np


def decode_gray_png(data):
    """The 8-bit grayscale, non-interlaced PNGs `doppel dataset export` writes -> [H, W] uint8."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, compressed = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, color, interlace) != (8, 0, 0):
                raise ValueError("only 8-bit grayscale, non-interlaced PNGs are read here")
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    raw = zlib.decompress(compressed)
    pixels = np.zeros((height, width), dtype=np.int32)
    previous = np.zeros(width, dtype=np.int32)
    for row in range(height):
        start = row * (width + 1)
        kind, line = raw[start], np.frombuffer(raw[start + 1:start + 1 + width], dtype=np.uint8).astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) & 255
        else:  # Sub, Average, Paeth depend on the pixel to the left: one at a time
            current = np.zeros(width, dtype=np.int32)
            for x in range(width):
                left = current[x - 1] if x else 0
                up, up_left = previous[x], previous[x - 1] if x else 0
                if kind == 1:
                    predictor = left
                elif kind == 3:
                    predictor = (left + up) // 2
                else:
                    estimate = left + up - up_left
                    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                    predictor = (left, up, up_left)[distances.index(min(distances))]
                current[x] = (line[x] + predictor) & 255
        pixels[row] = previous = current
    return pixels.astype(np.uint8)


def hog(images, cell=4, bins=9):
    """images: [N, H, W] floats in [0, 1] -> [N, D] L2-normalised HOG descriptors."""
    n, h, w = images.shape
    gx = np.zeros_like(images)
    gy = np.zeros_like(images)
    gx[:, :, 1:-1] = images[:, :, 2:] - images[:, :, :-2]
    gy[:, 1:-1, :] = images[:, 2:, :] - images[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * bins
    low = np.floor(angle)
    upper_weight = angle - low
    low = low.astype(int) % bins
    cells = np.zeros((n, h // cell, w // cell, bins))
    for b in range(bins):
        votes = magnitude * ((low == b) * (1 - upper_weight) + (((low + 1) % bins) == b) * upper_weight)
        cells[..., b] = votes.reshape(n, h // cell, cell, w // cell, cell).sum(axis=(2, 4))
    rows, cols = cells.shape[1], cells.shape[2]
    blocks = []
    for i, j in itertools.product(range(rows - 1), range(cols - 1)):
        block = cells[:, i:i + 2, j:j + 2].reshape(n, -1)
        blocks.append(block / np.sqrt((block * block).sum(1, keepdims=True) + 1e-6))
    descriptor = np.hstack(blocks)
    return descriptor / np.linalg.norm(descriptor, axis=1, keepdims=True)


def pair_distances(x):
    squared = (x * x).sum(1)
    return np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * x @ x.T, 0))


def roc_auc(same, different):
    """Probability that a same-identity pair lies closer than a different one (ties half)."""
    values = np.concatenate([same, different])
    order = values.argsort(kind="mergesort")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)  # 1-based, tied values share their mean rank
    rank_sum = ranks[:len(same)].sum()
    return 1 - (rank_sum - len(same) * (len(same) + 1) / 2) / (len(same) * len(different))


def held_out_classes(doppel, model):
    report = json.loads(subprocess.run([doppel, "eval", "--model", model, "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    listed = report["identitySet"].split("(", 1)[1].split(")", 1)[0]
    return [name.strip() for name in listed.split(",")], report["verification"]["rocAUC"]


def folder_name(identity):
    return identity.lower().replace("/", "-").replace(" ", "-")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doppel", default="doppel")
    parser.add_argument("models", nargs="+")
    arguments = parser.parse_args()
    work = tempfile.mkdtemp()
    exported = os.path.join(work, "test")
    subprocess.run([arguments.doppel, "dataset", "export", "builtin:fashion-mnist:test", "--per-identity", "1000",
                    "--out", exported], check=True, capture_output=True)
    print("model | held out | doppel eval (all images) | model, test images | HOG | model + HOG")
    for index, model in enumerate(arguments.models):
        classes, eval_auc = held_out_classes(arguments.doppel, model)
        chosen = os.path.join(work, f"held-{index}")
        os.mkdir(chosen)
        for name in classes:
            os.symlink(os.path.join(exported, folder_name(name)), os.path.join(chosen, folder_name(name)))
        database = os.path.join(work, f"gallery-{index}.sqlite")
        subprocess.run([arguments.doppel, "gallery", "import", chosen, "--model", model, "--db", database],
                       check=True, capture_output=True)
        rows = sqlite3.connect(database).execute(
            "select i.external_id, e.vector, s.image from embeddings e join samples s on s.id = e.sample_id "
            "join identities i on i.id = s.identity_id order by s.id").fetchall()
        labels = np.array([row[0] for row in rows])
        embeddings = np.stack([np.frombuffer(row[1], dtype=np.float32) for row in rows]).astype(np.float64)
        images = np.stack([decode_gray_png(row[2]).astype(np.float64) / 255 for row in rows])
        upper = np.triu_indices(len(rows), 1)
        same = labels[upper[0]] == labels[upper[1]]
        model_distances = pair_distances(embeddings)[upper]
        hog_distances = pair_distances(hog(images))[upper]
        fused = model_distances / model_distances.std() + hog_distances / hog_distances.std()
        scores = [roc_auc(d[same], d[~same]) for d in (model_distances, hog_distances, fused)]
        print(f"{os.path.basename(model)} | {', '.join(classes)} | {eval_auc:.4f} | " + " | ".join(f"{s:.4f}" for s in scores))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
