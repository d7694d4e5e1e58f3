"""Where edgec finds data that lives beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def mlperf_models_dir() -> Path:
    """The MLPerf Tiny reference models: $EDGEC_MLPERF_DIR, else the shared
    folder beside the checkout (../shared/models/mlperf_tiny), else /work/shared."""
    env = os.environ.get("EDGEC_MLPERF_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "models" / "mlperf_tiny", Path("/work/shared/models/mlperf_tiny")]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]
