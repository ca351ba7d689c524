"""The hil pytest plugin (entry point ``pytest11``): options, markers, hooks.

Options, ini keys and markers all use the ``hil`` prefix (``--hil-…``, ``hil_…``); parsed settings
live in ``config.stash``. Fixtures are in the top-level ``fixtures/`` package, loaded by conftest.py.
"""
