"""Root conftest: loads the harness fixtures (see fixtures/)."""

pytest_plugins = ["fixtures.firmware", "fixtures.boards"]
