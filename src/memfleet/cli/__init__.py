"""The ``memfleet`` command line: thin click commands over the packages below."""

from memfleet.cli.main import main

__all__ = ["main"]
