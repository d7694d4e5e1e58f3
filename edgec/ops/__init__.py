"""Op bundles; see registry.py."""
