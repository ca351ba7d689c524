"""Root conftest: loads the harness fixtures (see fixtures/)."""
