"""One small pre-norm transformer encoder block, written with explicit ops.

Input 1x16x32 (batch, sequence, model dim).
  h = x + Wo * Attn(LN1(x))            2 heads of 16, attention spelled out as
                                       matmul(q, k^T) * 1/sqrt(16) -> softmax -> matmul(., v)
  y = h + W2 * ReLU(W1 * LN2(h))       MLP 32 -> 64 -> 32 (ReLU, so no Erf/Tanh)

Weights are random (seeded): this model is for compiler validation, not accuracy.
Exported with the TorchScript exporter, opset 17 (the first opset with
LayerNormalization) -> tiny_transformer.onnx.  The graph contains MatMul,
Softmax and LayerNormalization nodes, plus the Reshape/Transpose of the head split.
"""

import math
from pathlib import Path

import torch
from torch import nn

from _common import check_and_compare, export_torchscript, seed

OUT = Path(__file__).resolve().parent / "tiny_transformer.onnx"

SEQ, DIM, HEADS, MLP = 16, 32, 2, 64


class EncoderBlock(nn.Module):
    def __init__(self, dim=DIM, heads=HEADS, mlp=MLP):
        super().__init__()
        assert dim % heads == 0
        self.heads, self.head_dim = heads, dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.ln1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def split_heads(self, t):  # (B, S, D) -> (B, H, S, D/H)
        b, s, _ = t.shape
        return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        b, s, d = x.shape
        h = self.ln1(x)
        q, k, v = self.split_heads(self.q(h)), self.split_heads(self.k(h)), self.split_heads(self.v(h))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale  # (B, H, S, S)
        attn = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, d)
        x = x + self.o(ctx)
        h = self.ln2(x)
        return x + self.fc2(torch.relu(self.fc1(h)))


@torch.no_grad()
def randomize_layernorm(model):
    """Non-trivial LayerNorm gamma/beta (fresh ones are 1 and 0)."""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.weight.copy_(torch.rand_like(m.weight) + 0.5)
            m.bias.copy_(torch.randn_like(m.bias) * 0.1)


def main():
    seed()
    model = EncoderBlock()
    randomize_layernorm(model)
    model.eval()
    x = torch.randn(1, SEQ, DIM)
    export_torchscript(model, x, OUT, opset=17)
    check_and_compare(OUT, model, x, required_ops=("MatMul", "Softmax", "LayerNormalization", "Transpose", "Reshape", "Add"))


if __name__ == "__main__":
    main()
