"""The digits CNN fine-tuned with fake quantization in torch and exported as a
QDQ ONNX model by torch's own exporter: how a torch user hands edgec a model
quantized by quantization-aware training (no onnxruntime quantizer involved).

Steps: train the float DigitsCNN (make_digits_cnn.py, same seed and data), fold
its BatchNorms into the convolutions, calibrate activation ranges on the
training set (min/max), then fine-tune 8 epochs with every weight fake-quantized
per output channel (symmetric int8) and every activation per tensor
(`torch.fake_quantize_per_tensor_affine`: int8, zero point -128 after ReLU).
torch.onnx (TorchScript exporter, opset 13) writes each fake quantization as a
QuantizeLinear -> DequantizeLinear pair, with the weight scales computed in the
graph from the float weights (Abs -> ReduceMax -> Div -> Clip) and the Q after
Flatten rather than after the pooling/conv that produced the values.

Writes `digits_qat_qdq.onnx` next to this script (inputs: digits_test.npz).
`edgec validate digits_qat_qdq.onnx --dataset digits_test.npz` compares the
integer C with onnxruntime running the same QDQ model and prints both
accuracies. Requires torch and scikit-learn (`make examples`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from _common import export_torchscript, seed
from make_digits_cnn import DigitsCNN, load_data, train

HERE = Path(__file__).resolve().parent
OUT = HERE / "digits_qat_qdq.onnx"
QAT_EPOCHS = 8


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (conv.weight * s.reshape(-1, 1, 1, 1)).detach(), (bn.bias - bn.running_mean * s).detach()


def _fq_act(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """int8 per tensor: post-ReLU ranges [0, hi] take zero point -128, others are symmetric."""
    if lo >= 0:
        return torch.fake_quantize_per_tensor_affine(x, hi / 255.0, -128, -128, 127)
    return torch.fake_quantize_per_tensor_affine(x, max(-lo, hi) / 127.0, 0, -128, 127)


def _fq_weight(w: torch.Tensor) -> torch.Tensor:
    s = (w.detach().abs().amax(dim=tuple(range(1, w.dim()))) / 127.0).clamp(min=1e-8)
    return torch.fake_quantize_per_channel_affine(w, s, torch.zeros_like(s, dtype=torch.int32), 0, -128, 127)


class DigitsQAT(nn.Module):
    """DigitsCNN with BN folded and fake quantization (ranges fixed after calibration)."""

    def __init__(self, f: DigitsCNN):
        super().__init__()
        c = f.features
        self.w = nn.ParameterList()
        self.b = nn.ParameterList()
        for conv, bn in ((c[0], c[1]), (c[3], c[4]), (c[6], c[7]), (c[9], c[10])):
            w, b = _fold(conv, bn)
            self.w.append(nn.Parameter(w))
            self.b.append(nn.Parameter(b))
        self.fc1, self.fc2 = f.head[1], f.head[4]
        self.ranges: list[tuple[float, float]] | None = None  # None: calibrating (float)
        self.seen: list[list[float]] = []

    def _q(self, k: int, x: torch.Tensor) -> torch.Tensor:
        if self.ranges is None:
            while len(self.seen) <= k:
                self.seen.append([0.0, 0.0])
            self.seen[k][0] = min(self.seen[k][0], float(x.min()))
            self.seen[k][1] = max(self.seen[k][1], float(x.max()))
            return x
        return _fq_act(x, *self.ranges[k])

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return w if self.ranges is None else _fq_weight(w)

    def forward(self, x):
        x = self._q(0, x)
        x = self._q(1, F.relu(F.conv2d(x, self._w(self.w[0]), self.b[0], padding=1)))
        x = self._q(2, F.relu(F.conv2d(x, self._w(self.w[1]), self.b[1], stride=2, padding=1)))
        x = self._q(3, F.relu6(F.conv2d(x, self._w(self.w[2]), self.b[2], padding=1, groups=32)))
        x = self._q(4, F.relu(F.conv2d(x, self._w(self.w[3]), self.b[3])))
        x = self._q(5, torch.flatten(x, 1))
        x = self._q(6, F.relu(F.linear(x, self._w(self.fc1.weight), self.fc1.bias)))
        return self._q(7, F.linear(x, self._w(self.fc2.weight), self.fc2.bias))


def main():
    seed()
    torch.use_deterministic_algorithms(True)
    xtr, xte, ytr, yte = load_data()
    model = train(DigitsCNN(), xtr, ytr)
    model.eval()
    qat = DigitsQAT(model)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    with torch.no_grad():
        qat(xt)
    qat.ranges = [(lo, hi) for lo, hi in qat.seen]
    qat.ranges[0] = (0.0, 1.0)  # the input: pixels in [0, 1]

    def accuracy() -> float:
        with torch.no_grad():
            return float((qat(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())

    before = accuracy()
    opt = torch.optim.Adam(qat.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(1)
    for _ in range(QAT_EPOCHS):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(qat(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    print(f"fake-quantized test accuracy: {100 * before:.2f}% before fine-tuning, {100 * accuracy():.2f}% after")
    qat.eval()
    export_torchscript(qat, torch.from_numpy(xte[:1]), OUT, opset=13)
    print(f"wrote {OUT.name}")


if __name__ == "__main__":
    main()
