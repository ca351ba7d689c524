"""Root conftest: loads the harness fixtures (see fixtures/) and pytester for the self-tests."""

pytest_plugins = ["pytester", "fixtures.firmware", "fixtures.boards", "fixtures.servers", "fixtures.captures",
                  "fixtures.provisioning", "fixtures.attacker", "fixtures.ota"]
