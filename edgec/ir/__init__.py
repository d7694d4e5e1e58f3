from edgec.ir.graph import Graph, Node, QuantParams, Tensor

__all__ = ["Graph", "Node", "QuantParams", "Tensor"]
