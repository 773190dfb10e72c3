"""The ``memfleet`` command line: thin click commands over the packages below.

:mod:`.main` holds the group, ``proxy`` and ``config``; :mod:`.render`, :mod:`.fleet` (``up``,
``status``, ``fault``), :mod:`.bench` and :mod:`.drill` one command family each. ``memfleet
node`` lives in :mod:`memfleet.fleet.node.command`, because ``python -m memfleet.fleet.node``
runs it without this package.
"""

from memfleet.cli.main import main

__all__ = ["main"]
