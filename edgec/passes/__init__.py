"""Graph passes, one per file, composed by named pipelines (see pipeline.py)."""
