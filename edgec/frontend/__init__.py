"""Model frontends: ONNX (and later TFLite) -> edgec.ir.Graph."""

from edgec.frontend.onnx_frontend import load_onnx, parse_input_shapes

__all__ = ["load_onnx", "parse_input_shapes"]
