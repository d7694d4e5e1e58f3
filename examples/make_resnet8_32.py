"""ResNet-8 (MLPerf Tiny image-classification reference architecture), CIFAR-10 sized.

Input 1x3x32x32.  conv3x3 16 + BN + ReLU, then three residual stacks of one
block each (16, 32, 64 channels; conv3x3 + BN + ReLU, conv3x3 + BN, Add, ReLU).
Stacks 2 and 3 start with stride 2 and use a strided 1x1 conv shortcut (no BN,
as in the MLPerf Keras model).  8x8 average pool, flatten, linear to 10 logits.

Weights are random (seeded): this model is for compiler validation, not accuracy.
Exported with the torch.export-based ("dynamo") exporter, default opset, with
the weights in an external data file: resnet8_32.onnx + resnet8_32.onnx.data.
"""

from pathlib import Path

import onnx
import torch
from torch import nn

from _common import check_and_compare, randomize_batchnorm, seed

HERE = Path(__file__).resolve().parent
OUT = HERE / "resnet8_32.onnx"
DATA = HERE / "resnet8_32.onnx.data"


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride=stride) if (stride != 1 or cin != cout) else nn.Identity()
        )

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(self.shortcut(x) + y)


class ResNet8(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.stack1 = Block(16, 16, 1)
        self.stack2 = Block(16, 32, 2)
        self.stack3 = Block(32, 64, 2)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.stack3(self.stack2(self.stack1(x)))
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def main():
    seed()
    model = ResNet8()
    randomize_batchnorm(model)
    model.eval()
    x = torch.randn(1, 3, 32, 32)

    # Remove stale outputs so the external data file is written fresh.
    for p in (OUT, DATA):
        p.unlink(missing_ok=True)
    program = torch.onnx.export(
        model,
        (x,),
        dynamo=True,
        input_names=["input"],
        output_names=["output"],
        optimize=False,
    )
    # Constant folding + redundancy elimination (what optimize=True would run).
    program.optimize()
    # The exporter records each node's Python stack trace (absolute paths of
    # this checkout and the venv) as node metadata; drop just that so the file
    # does not depend on where it was generated.  The other pkg.torch.onnx.*
    # metadata is kept, as in any real dynamo export.
    for node in program.model.graph.all_nodes():
        node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
    program.save(str(OUT), external_data=True)

    assert DATA.is_file(), f"expected external data file {DATA.name} next to {OUT.name}"
    m = onnx.load(str(OUT), load_external_data=False)
    locs = {
        e.value
        for t in m.graph.initializer
        for e in t.external_data
        if e.key == "location"
    }
    assert locs == {DATA.name}, f"initializers point at {locs}, expected {{{DATA.name!r}}}"
    print(f"external data: {DATA.name} ({DATA.stat().st_size:,} bytes)")

    check_and_compare(OUT, model, x, required_ops=("Conv", "Add", "AveragePool", "Gemm"))


if __name__ == "__main__":
    main()
