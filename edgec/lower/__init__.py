"""Lowering: edgec nodes -> plain C kernels (generated through Apache TVM)."""
