"""DS-CNN keyword spotter (MLPerf Tiny "KWS" reference architecture, small).

Input: 1x1x49x10 MFCC features (NCHW: 49 frames x 10 coefficients).
conv 10x4 / stride 2 -> 64 ch + BN + ReLU, then 4 depthwise-separable blocks
(depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU), global average pool,
flatten, linear to 12 classes (logits; softmax is left to the application).

Weights are random (seeded): this model is for compiler validation, not accuracy.
Exported with the TorchScript exporter, opset 13 -> kws_dscnn.onnx.
"""

from pathlib import Path

import torch
from torch import nn

from _common import check_and_compare, export_torchscript, n_params, randomize_batchnorm, seed

OUT = Path(__file__).resolve().parent / "kws_dscnn.onnx"


def conv_bn_relu(cin, cout, k, stride=1, padding=0, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class DSCNN(nn.Module):
    def __init__(self, n_classes=12, ch=64, n_blocks=4):
        super().__init__()
        # TF "same" padding for 49x10 / k(10,4) / s2 is asymmetric; (5,1) symmetric
        # padding gives the same 25x5 output map.
        self.stem = conv_bn_relu(1, ch, (10, 4), stride=2, padding=(5, 1))
        blocks = []
        for _ in range(n_blocks):
            blocks.append(conv_bn_relu(ch, ch, 3, padding=1, groups=ch))  # depthwise
            blocks.append(conv_bn_relu(ch, ch, 1))  # pointwise
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, n_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.blocks(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def main():
    seed()
    model = DSCNN()
    randomize_batchnorm(model)
    model.eval()
    x = torch.randn(1, 1, 49, 10)
    export_torchscript(model, x, OUT, opset=13)
    check_and_compare(OUT, model, x, required_ops=("Conv", "BatchNormalization", "GlobalAveragePool", "Gemm"))


if __name__ == "__main__":
    main()
