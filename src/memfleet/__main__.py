"""``python -m memfleet``."""

from memfleet.cli import main

main()
