"""The edgec exception hierarchy.

Every error a user can cause is an `EdgecError`; the CLI prints it as one line
and exits with its `exit_code`. Anything else escaping is a bug in edgec.
"""

from __future__ import annotations


class EdgecError(Exception):
    """Base class: a clear, one-line, user-facing error."""

    exit_code = 2

    def one_line(self) -> str:
        return " ".join(str(self).split())


class InputFileError(EdgecError):
    """The model file is missing, unreadable or not a valid model."""


class ModelError(EdgecError):
    """The model is well-formed but edgec cannot compile it as given
    (dynamic shapes without --input-shape, bad attributes, ...)."""


class UnsupportedOpsError(EdgecError):
    """One or more nodes use ops edgec does not support; all are listed."""

    def __init__(self, nodes: list[tuple[str, str, str, int, str]]):
        # (node name, op type, domain, opset, reason)
        self.nodes = nodes
        parts = [
            f"{name or '<unnamed>'} ({op}, domain '{domain or 'ai.onnx'}', opset {opset}{': ' + why if why else ''})"
            for name, op, domain, opset, why in nodes
        ]
        super().__init__(f"{len(nodes)} unsupported node(s): " + "; ".join(parts))


class TargetError(EdgecError):
    """Unknown or malformed target / board definition."""


class BudgetError(EdgecError):
    """The compiled model does not fit the flash/RAM budget."""


class BuildError(EdgecError):
    """The C toolchain failed or is missing."""


class ValidationError(EdgecError):
    """The generated code does not match the reference within tolerance."""

    exit_code = 1
