"""edgec: a deployment compiler for microcontrollers (ONNX in, freestanding C out)."""

__version__ = "0.1.0"
