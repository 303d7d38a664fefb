#!/usr/bin/env python3
"""Builds the ONNX models Doppel's importer is measured on, with random weights from fixed
seeds (nothing is downloaded), exports them with torch.onnx.export, and writes for each
model a batch of random inputs and onnxruntime's outputs as .npy files beside it.

    scripts/compare/onnx_models.py OUT_DIR [--models resnet18,mobilenetv3,iresnet,siamese,...]
        [--batch 32] [--dynamo]

Models:
  resnet18      torchvision ResNet-18, 3x112x112 -> 128 (fc replaced)
  mobilenetv3   torchvision MobileNetV3-Small, 3x112x112 -> 128
  iresnet       an ArcFace-style IResNet-18 (BN-conv-BN-PReLU-conv-BN blocks, BN after the
                last conv, dropout, fc, BatchNorm1d), 3x112x112 -> 512
  siamese       twin towers sharing weights, sigmoid(Linear(|a - b|)): two inputs
  fixture       the small mixed-operator network the project's tests read (NCHW, 3x24x24)
  fixture_nhwc  a small Keras-style network taking NHWC (1x20x16 -> its transposed input)
  fixture_siamese  a small twin-tower model with an L1 head (1x20x20 pairs)
  fixture_siamese_torch  Siamese-pytorch's shape: a convolutional tower flattened, |a - b|,
                two Linear layers with no activation between (Gemm, Gemm), sigmoid (3x12x12)
  fixture_siamese_keras  its Keras twin as tf2onnx exports it: NHWC inputs input_1 / input_2,
                the tower's last MaxPool transposed back to NHWC and reshaped, |a - b|,
                MatMul + Add, Relu, MatMul + Add, sigmoid (12x12x3)
  unsupported   a network with an operator doppel does not import (for the error message)

Needs torch, torchvision, onnx, onnxruntime (PyPI); the product itself does not.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def seed(value):
    torch.manual_seed(value)
    np.random.seed(value)


def randomize_batch_norm(model, generator):
    """Non-trivial running statistics and affine parameters, so folding is exercised."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                    module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


# ArcFace's IResNet (insightface recognition/arcface_torch/backbones/iresnet.py), written anew.
class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.downsample is not None:
            identity = self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), features=512):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0], 2)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=0.2)
        self.fc = nn.Linear(512 * 7 * 7, features)
        self.features = nn.BatchNorm1d(features, eps=1e-05)

    def _make_layer(self, planes, blocks, stride):
        downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


class MixedOps(nn.Module):
    """Every operator family the importer maps, small enough to commit (3x24x24 -> 16)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.grouped = nn.Conv2d(8, 8, 3, 1, 1, groups=2)
        self.branch = nn.Conv2d(8, 4, 1)
        self.prelu = nn.PReLU(12)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.avg = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.post_pad = nn.Conv2d(12, 10, 3)
        self.fc1 = nn.Linear(10 * 5 * 5, 24)
        self.bn1d = nn.BatchNorm1d(24)
        self.fc2 = nn.Linear(24, 16)

    def forward(self, x):
        x = (x - 0.5) / 0.25  # normalisation written into the graph
        x = self.stem(x)
        y = self.depthwise(x)
        s = F.adaptive_avg_pool2d(y, 1)
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        y = y * s
        y = F.leaky_relu(self.grouped(y), 0.1) + x  # residual
        y = y * torch.sigmoid(y)  # SiLU as exported
        y = torch.cat([y, torch.tanh(self.branch(y))], dim=1)
        y = self.prelu(y)
        y = self.avg(self.pool(y))
        y = F.pad(y, (1, 0, 0, 1))  # asymmetric: left 1, bottom 1
        y = torch.abs(self.post_pad(y))
        y = y.reshape(y.size(0), -1)
        y = F.relu(self.bn1d(self.fc1(y)))
        return F.normalize(self.fc2(y), dim=1)


class KerasStyle(nn.Module):
    """Takes NHWC like a Keras export and transposes it first."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6, 8)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        x = F.relu(self.conv2(F.relu(self.conv(x))))
        x = torch.mean(x, dim=(2, 3))
        return self.fc(x)


class Tower(nn.Module):
    def __init__(self, channels=1, dimension=32, width=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.LazyLinear(dimension), nn.Sigmoid())

    def forward(self, x):
        return self.body(x)


class Siamese(nn.Module):
    """The Koch / Siamese-pytorch shape: shared tower, |a - b|, Linear(D, 1), sigmoid."""

    def __init__(self, channels, size, dimension=32, width=16, squared=False):
        super().__init__()
        self.tower = Tower(channels, dimension, width)
        self.tower(torch.zeros(1, channels, size, size))  # materialise the lazy layer
        self.head = nn.Linear(dimension, 1)
        self.squared = squared

    def forward(self, a, b):
        d = self.tower(a) - self.tower(b)
        d = d * d if self.squared else torch.abs(d)
        return torch.sigmoid(self.head(d))


class ConvTower(nn.Module):
    """A VGG-like tower without dense layers: what Siamese-pytorch flattens (NCHW)."""

    def __init__(self, channels=3, width=4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.body(x)


class SiameseTorch(nn.Module):
    """Siamese-pytorch (bubbliiiing): flatten both towers, |a - b|, fully_connect1 (-> hidden,
    no activation), fully_connect2 (-> 1), then a sigmoid."""

    def __init__(self, channels=3, size=20, hidden=16, width=4):
        super().__init__()
        self.tower = ConvTower(channels, width)
        flat = self.tower(torch.zeros(1, channels, size, size)).numel()
        self.fully_connect1 = nn.Linear(flat, hidden)
        self.fully_connect2 = nn.Linear(hidden, 1)

    def forward(self, a, b):
        d = torch.abs(torch.flatten(self.tower(a), 1) - torch.flatten(self.tower(b), 1))
        return torch.sigmoid(self.fully_connect2(self.fully_connect1(d)))


class SiameseKeras(nn.Module):
    """The Keras twin as tf2onnx writes it: NHWC inputs, the tower run in NCHW between
    Transposes, its output transposed back to NHWC and reshaped to N x D, |a - b|, then
    Dense(hidden, relu) and Dense(1, sigmoid) as MatMul + Add."""

    def __init__(self, channels=3, size=20, hidden=16, width=4):
        super().__init__()
        self.tower = ConvTower(channels, width)
        flat = self.tower(torch.zeros(1, channels, size, size)).numel()
        self.w1 = nn.Parameter(torch.randn(flat, hidden) * (2 / flat) ** 0.5)
        self.b1 = nn.Parameter(torch.randn(hidden) * 0.1)
        self.w2 = nn.Parameter(torch.randn(hidden, 1) * (1 / hidden) ** 0.5)
        self.b2 = nn.Parameter(torch.randn(1) * 0.1)

    def embed(self, x):
        y = self.tower(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return torch.reshape(y, (y.shape[0], -1))

    def forward(self, a, b):
        d = torch.abs(self.embed(a) - self.embed(b))
        return torch.sigmoid(torch.matmul(torch.relu(torch.matmul(d, self.w1) + self.b1), self.w2) + self.b2)


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return torch.cumsum(self.conv(x).flatten(1), dim=1)


def build(name):
    import torchvision
    generator = torch.Generator().manual_seed(7)
    if name == "resnet18":
        seed(1)
        model, inputs = torchvision.models.resnet18(num_classes=128), [(3, 112, 112)]
    elif name == "mobilenetv3":
        seed(2)
        model, inputs = torchvision.models.mobilenet_v3_small(num_classes=128), [(3, 112, 112)]
    elif name == "iresnet":
        seed(3)
        model, inputs = IResNet(), [(3, 112, 112)]
    elif name == "siamese":
        seed(4)
        model, inputs = Siamese(3, 64, dimension=128, width=32), [(3, 64, 64), (3, 64, 64)]
    elif name == "fixture":
        seed(5)
        model, inputs = MixedOps(), [(3, 24, 24)]
    elif name == "fixture_nhwc":
        seed(6)
        model, inputs = KerasStyle(), [(20, 16, 1)]
    elif name == "fixture_siamese":
        seed(8)
        model, inputs = Siamese(1, 20, dimension=12, width=4), [(1, 20, 20), (1, 20, 20)]
    elif name == "fixture_siamese_torch":
        seed(10)
        model, inputs = SiameseTorch(size=12), [(3, 12, 12), (3, 12, 12)]
    elif name == "fixture_siamese_keras":
        seed(12)
        model, inputs = SiameseKeras(size=12), [(12, 12, 3), (12, 12, 3)]
    elif name == "unsupported":
        seed(9)
        model, inputs = Unsupported(), [(1, 8, 8)]
    else:
        raise SystemExit(f"unknown model {name}")
    randomize_batch_norm(model, generator)
    return model.eval(), inputs


def export(name, out, batch, dynamo):
    import onnxruntime as ort
    model, shapes = build(name)
    rng = np.random.default_rng(11)
    examples = [torch.from_numpy(rng.standard_normal((batch,) + s).astype(np.float32)) for s in shapes]
    path = os.path.join(out, f"{name}.onnx")
    names = ["input"] if len(shapes) == 1 else (["input_1", "input_2"] if name.endswith("_keras") else ["left", "right"])
    kwargs = dict(input_names=names, output_names=["output"], opset_version=17,
                  dynamic_axes={n: {0: "batch"} for n in names + ["output"]})
    if dynamo:
        torch.onnx.export(model, tuple(examples), path, dynamo=True, opset_version=18, input_names=names, output_names=["output"])
    else:
        torch.onnx.export(model, tuple(examples), path, dynamo=False, **kwargs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {n: e.numpy() for n, e in zip(names, examples)})[0]
    with torch.no_grad():
        reference = model(*examples).numpy()
    for n, e in zip(names, examples):
        np.save(os.path.join(out, f"{name}.{n}.npy"), e.numpy())
    np.save(os.path.join(out, f"{name}.output.npy"), outputs)
    if len(shapes) == 2:
        write_image_pair(name, out, session, shapes[0], names, nhwc=name.endswith("_keras"))
    print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.2f} MB), inputs {[tuple(e.shape) for e in examples]}, "
          f"output {outputs.shape}, |onnxruntime - torch| max {np.abs(outputs - reference).max():.2e}")


def write_image_pair(name, out, session, shape, names, nhwc=False):
    """Two images at exactly the model's input size (PGM for gray, PPM for colour) and the
    probability onnxruntime gives the pair, preprocessed as doppel does with --mean 0 --std 1
    (value / 255): what `POST /v1/verify` must answer."""
    import json
    height, width, channels = shape if nhwc else (shape[1], shape[2], shape[0])
    rng = np.random.default_rng(13)
    images = []
    for index in range(2):
        # Smooth blobs rather than noise, so the pair is image-like.
        y, x = np.mgrid[0:height, 0:width]
        picture = np.zeros((height, width, channels))
        for _ in range(3):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, max(4, height / 2))
            picture += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(0.3, 1, channels)
        pixels = np.clip(picture / picture.max() * 255, 0, 255).astype(np.uint8)
        suffix = "pgm" if channels == 1 else "ppm"
        path = os.path.join(out, f"{name}.pair{index}.{suffix}")
        with open(path, "wb") as f:
            f.write(f"P{5 if channels == 1 else 6}\n{width} {height}\n255\n".encode())
            f.write(pixels.tobytes())
        image = pixels.astype(np.float32) / 255
        images.append(image[None] if nhwc else image.transpose(2, 0, 1)[None])
    probability = float(session.run(None, {names[0]: images[0], names[1]: images[1]})[0].reshape(-1)[0])
    with open(os.path.join(out, f"{name}.pair.json"), "w") as f:
        json.dump({"probability": probability}, f)
    print(f"{name}: image pair -> onnxruntime p(same) {probability:.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--models", default="resnet18,mobilenetv3,iresnet,siamese")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dynamo", action="store_true", help="export with the dynamo exporter (opset 18) instead of TorchScript")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        export(name, args.out, args.batch, args.dynamo)


if __name__ == "__main__":
    sys.exit(main())
