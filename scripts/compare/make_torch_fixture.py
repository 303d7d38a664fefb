#!/usr/bin/env python3
"""Writes the PyTorch reference fixture for DoppelNN's engine test (run by hand; needs torch
and safetensors from PyPI, which are not Doppel dependencies):

    python3 scripts/compare/make_torch_fixture.py Tests/DoppelNNTests/Fixtures

torch_reference.safetensors is a Doppel model file whose weights come from a seeded
torch.nn.Sequential; torch_reference_probe.safetensors holds an input batch and the outputs
PyTorch computed for it in eval mode. The Swift test loads the model and checks that Doppel
computes the same outputs, which pins the tensor layout, names and every layer's math."""
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import save_file

# Doppel's canonical spelling of the architecture (what Architecture.description prints).
ARCHITECTURE = ("conv(4,3,stride=2,pad=1) batchnorm relu conv(6,3,pad=1) tanh maxpool(2) "
                "lrn(3,alpha=0.5,beta=0.75,k=1.0) avgpool(2,stride=1) leakyrelu(0.1) flatten "
                "dense(5) sigmoid dense(3) l2norm")
INPUT_SHAPE = (2, 13, 11)
INPUT_SPEC = json.dumps({"channels": 2, "height": 13, "width": 11})


class L2Norm(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.normalize(x, dim=1, eps=1e-12)


def build():
    torch.manual_seed(7)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=2, padding=1),      # 0: 4x7x6
        torch.nn.BatchNorm2d(4),                             # 1
        torch.nn.ReLU(),                                     # 2
        torch.nn.Conv2d(4, 6, 3, padding=1),                 # 3: 6x7x6
        torch.nn.Tanh(),                                     # 4
        torch.nn.MaxPool2d(2),                               # 5: 6x3x3
        torch.nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0),  # 6
        torch.nn.AvgPool2d(2, stride=1),                     # 7: 6x2x2
        torch.nn.LeakyReLU(0.1),                             # 8
        torch.nn.Flatten(),                                  # 9: 24
        torch.nn.Linear(24, 5),                              # 10
        torch.nn.Sigmoid(),                                  # 11
        torch.nn.Linear(5, 3),                               # 12
        L2Norm(),                                            # 13
    )
    with torch.no_grad():
        net[1].running_mean.copy_(torch.randn(4) * 0.3)
        net[1].running_var.copy_(torch.rand(4) + 0.5)
        net[1].weight.copy_(torch.rand(4) + 0.5)
        net[1].bias.copy_(torch.randn(4) * 0.1)
    return net.eval()


def main(out_dir):
    net = build()
    tensors = {k: v.detach().contiguous().float() for k, v in net.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    # Doppel's model id: SHA-256 over the architecture, the input spec, then each tensor's
    # name and little-endian float32 bytes in the network's order; the first 8 bytes in hex.
    order = list(tensors.keys())
    digest = hashlib.sha256()
    digest.update(ARCHITECTURE.encode())
    digest.update(INPUT_SPEC.encode())
    for name in order:
        digest.update(name.encode())
        digest.update(tensors[name].numpy().astype("<f4").tobytes())
    metadata = {
        "format": "doppel-embedder",
        "format_version": "1",
        "architecture": ARCHITECTURE,
        "input_shape": "x".join(map(str, INPUT_SHAPE)),
        "input_spec": INPUT_SPEC,
        "objective": "contrastive",
        "metric": "euclidean",
        "embedding_dim": "3",
        "model_id": digest.digest()[:8].hex(),
    }
    save_file(tensors, os.path.join(out_dir, "torch_reference.safetensors"), metadata=metadata)

    torch.manual_seed(11)
    x = torch.randn(5, *INPUT_SHAPE)
    with torch.no_grad():
        y = net(x)
    save_file({"input": x.contiguous(), "output": y.contiguous()},
              os.path.join(out_dir, "torch_reference_probe.safetensors"),
              metadata={"made_by": f"torch {torch.__version__}, scripts/compare/make_torch_fixture.py"})
    print("wrote", out_dir, "model id", metadata["model_id"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/DoppelNNTests/Fixtures")
