"""Fully-connected autoencoder (MLPerf Tiny anomaly-detection "ad01" architecture).

Input 1x640 (5 frames x 128 log-mel bins, flattened).  Encoder: 4 x
(Linear -> 128, BN1d, ReLU), Linear 128 -> 8 + BN1d + ReLU (bottleneck);
decoder: 4 x (Linear -> 128, BN1d, ReLU), Linear 128 -> 640 (reconstruction).
10 Linear layers in all.

Weights are random (seeded): this model is for compiler validation, not accuracy.
Exported with the TorchScript exporter, opset 13 -> fc_autoencoder.onnx.
"""

from pathlib import Path

import torch
from torch import nn

from _common import check_and_compare, export_torchscript, randomize_batchnorm, seed

OUT = Path(__file__).resolve().parent / "fc_autoencoder.onnx"

DIMS = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]


class FCAutoencoder(nn.Module):
    def __init__(self, dims=DIMS):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:  # every layer but the output one
                layers += [nn.BatchNorm1d(b), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def main():
    seed()
    model = FCAutoencoder()
    randomize_batchnorm(model)
    model.eval()
    x = torch.randn(1, DIMS[0])
    export_torchscript(model, x, OUT, opset=13)
    check_and_compare(OUT, model, x, required_ops=("Gemm", "BatchNormalization", "Relu"))


if __name__ == "__main__":
    main()
