"""MobileNetV2-style classifier at 96x96 (width multiplier 0.35), 2 classes.

Like the person-detection ("visual wake words") class of MCU models: a 3x3/s2
stem, 9 inverted-residual blocks (1x1 expand + BN + ReLU6, 3x3 depthwise + BN +
ReLU6, 1x1 linear projection + BN, residual Add when stride 1 and in == out),
a 1x1 head conv, global average pool, linear to 2 classes.

As in MobileNetV2, the first bottleneck has expansion t=1 (its depthwise runs
directly on the stem output, no 1x1 expand) and the later ones t=6.  Sized for
a float32 layer-by-layer budget of ~200 KiB (input + output of one
Conv+BN+ReLU6 layer), two departures from MobileNetV2 x0.35:

* the stem has 8 channels instead of 16 (stem layer: 108 KiB in + 72 KiB out);
* the first bottleneck has stride 2, so the first x6 expansion (8 -> 48
  channels) runs at 24x24 instead of 48x48 (108 KiB instead of 432 KiB).
  The extra stride makes the network stride 32 after 5 stages: the last
  feature map is 3x3, as in the full MobileNetV2 at 96x96.

ReLU6 exports as ONNX Clip(0, 6).  The head is 256 channels instead of
MobileNetV2's 1280 to keep activations MCU-sized.
Weights are random (seeded): this model is for compiler validation, not accuracy.
Exported with the TorchScript exporter, opset 17 -> mobilenetv2_96.onnx.
"""

from pathlib import Path

import torch
from torch import nn

from _common import check_and_compare, export_torchscript, randomize_batchnorm, seed

OUT = Path(__file__).resolve().parent / "mobilenetv2_96.onnx"

WIDTH = 0.35
STEM = 8  # MobileNetV2 x0.35 has make_divisible(32 * 0.35) = 16
# (expansion t, output channels c, repeats n, first stride s): the first five
# stages of MobileNetV2, cut at 9 blocks; the first stage has stride 2 instead
# of 1 (see the module docstring).
CONFIG = [
    (1, 16, 1, 2),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 2, 2),
    (6, 96, 1, 1),
]
HEAD = 256


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        self.use_res = stride == 1 and cin == cout
        layers = []
        if t != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers.append(conv_bn(hidden, hidden, 3, stride=stride, groups=hidden))
        layers.append(conv_bn(hidden, cout, 1, act=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNetV2(nn.Module):
    def __init__(self, n_classes=2, width=WIDTH):
        super().__init__()
        cin = STEM
        layers = [conv_bn(3, cin, 3, stride=2)]
        for t, c, n, s in CONFIG:
            cout = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(conv_bn(cin, HEAD, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD, n_classes)

    def forward(self, x):
        x = self.features(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def main():
    seed()
    model = MobileNetV2()
    randomize_batchnorm(model)
    model.eval()
    n_blocks = sum(isinstance(m, InvertedResidual) for m in model.modules())
    n_res = sum(isinstance(m, InvertedResidual) and m.use_res for m in model.modules())
    print(f"MobileNetV2 x{WIDTH}: {n_blocks} inverted-residual blocks, {n_res} with residual Add")
    x = torch.randn(1, 3, 96, 96)
    export_torchscript(model, x, OUT, opset=17)
    check_and_compare(OUT, model, x, required_ops=("Conv", "BatchNormalization", "Clip", "Add", "Gemm"))


if __name__ == "__main__":
    main()
