"""Root conftest: only what this repo's self-tests need. The harness's fixtures, markers and options
come from the installed plugin (entry point ``pytest11``), as in a team's own repo."""

pytest_plugins = ["pytester"]
