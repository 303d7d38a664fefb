#!/usr/bin/env python3
"""The digits-mlp recipe in PyTorch, timed end to end for the issue notes (torch is not a
Doppel dependency): MLP 784-1024-1024-2, contrastive margin 0.3, Adam 1e-4 / 0.9 / 0.99,
3,000 steps of 180 balanced pairs from the MNIST-5k CSV, 2 threads.

    python3 scripts/compare/torch_digits_mlp.py ~/.cache/doppel/mnist_5k.csv.gz
"""
import gzip
import sys
import time

import numpy as np
import torch

torch.set_num_threads(2)
torch.manual_seed(1)
rng = np.random.default_rng(1)
data = np.loadtxt(gzip.open(sys.argv[1]), delimiter=",", dtype=np.float32)
x = torch.from_numpy(data[:, :784] / 255.0).reshape(-1, 1, 28, 28)
labels = data[:, 784].astype(int)
groups = [np.flatnonzero(labels == c) for c in range(10)]
net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                          torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 2))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
pairs = 180
y = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(pairs)])
start = time.perf_counter()
for step in range(3000):
    left, right = [], []
    for i in range(pairs):
        if i % 2 == 0:
            g = groups[rng.integers(10)]
            a, b = rng.choice(g, 2, replace=False)
        else:
            c1, c2 = rng.choice(10, 2, replace=False)
            a, b = rng.choice(groups[c1]), rng.choice(groups[c2])
        left.append(a); right.append(b)
    batch = x[np.array(left + right)]
    optimizer.zero_grad()
    e = net(batch)
    d = torch.nn.functional.pairwise_distance(e[:pairs], e[pairs:])
    loss = (y * d.pow(2) + (1 - y) * torch.clamp(0.3 - d, min=0).pow(2)).mean() / 2
    loss.backward()
    optimizer.step()
print(f"torch {torch.__version__}: 3000 steps of 180 pairs in {time.perf_counter() - start:.1f} s")
