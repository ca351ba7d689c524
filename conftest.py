"""Root conftest: loads the harness fixtures (see fixtures/) and pytester for the self-tests."""

pytest_plugins = ["pytester", "fixtures.firmware", "fixtures.boards"]
