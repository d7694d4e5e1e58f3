"""A small CNN trained on scikit-learn's bundled handwritten digits (8x8, 10 classes).

The one *trained* example model: it measures what int8 quantization costs in
accuracy (`edgec validate digits_cnn.onnx --quantize int8 --calib
digits_calib.npz --dataset digits_test.npz`), where the other examples have
random weights and can only show agreement with their float version.

Data: `sklearn.datasets.load_digits()` (1,797 images bundled with
scikit-learn, no download), pixel values 0..16 scaled to [0, 1], split with a
fixed seed into 1,257 training and 540 test images (stratified).

Model (NCHW input 1x1x8x8):
  conv 3x3 pad 1 -> 16 ch + BN + ReLU
  conv 3x3 stride 2 pad 1 -> 32 ch + BN + ReLU           (4x4)
  depthwise 3x3 pad 1 + BN + ReLU6, pointwise 1x1 -> 32 + BN + ReLU
  flatten (32*4*4 = 512, NCHW order) -> linear 64 + ReLU -> linear 10 (logits)

The flatten of a 4x4 map exercises the NCHW->NHWC column permutation of the
first linear layer's weights in the int8 converter. Trained with Adam for 40
epochs (seeded; deterministic on CPU). Writes, next to this script:

* `digits_cnn.onnx` (TorchScript exporter, opset 13, BN kept for edgec to fold);
* `digits_calib.npz`: `x` = 200 training images (float32, N x 1 x 8 x 8), the
  PTQ calibration set;
* `digits_test.npz`: `x` (540 x 1 x 8 x 8 float32) and `y` (int64 labels), the
  labelled test set.

Requires torch and scikit-learn (`make examples` installs the examples extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from _common import check_and_compare, export_torchscript, n_params, seed

HERE = Path(__file__).resolve().parent
OUT = HERE / "digits_cnn.onnx"
EPOCHS = 40


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
            nn.Conv2d(32, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x))


def load_data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # N, 1, 8, 8 in [0, 1]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=540, random_state=0, stratify=y)


def train(model: DigitsCNN, xtr: np.ndarray, ytr: np.ndarray) -> DigitsCNN:
    """Adam, cosine schedule, EPOCHS epochs, random 1-pixel shifts (seeded)."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(0)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            # light augmentation: random 1-pixel shifts
            xb = xt[idx]
            sh = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=sh, dims=(2, 3))
            loss = nn.functional.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model


def main():
    seed()
    torch.use_deterministic_algorithms(True)
    xtr, xte, ytr, yte = load_data()
    model = train(DigitsCNN(), xtr, ytr)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    model.eval()
    with torch.no_grad():
        acc_tr = (model(xt).argmax(1) == yt).float().mean().item()
        acc_te = (model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean()
    print(f"params {n_params(model):,}; float accuracy: train {100 * acc_tr:.2f}%, test {100 * acc_te:.2f}% ({len(yte)} images)")
    x = torch.from_numpy(xte[:1])
    export_torchscript(model, x, OUT, opset=13)
    check_and_compare(OUT, model, x, required_ops=("Conv", "BatchNormalization", "Gemm", "Flatten", "Clip"))
    np.savez(HERE / "digits_calib.npz", x=xtr[:200].astype(np.float32))
    np.savez(HERE / "digits_test.npz", x=xte.astype(np.float32), y=yte.astype(np.int64))
    print(f"wrote {OUT.name}, digits_calib.npz (200 training images), digits_test.npz ({len(yte)} labelled test images)")


if __name__ == "__main__":
    main()
