"""``python -m memfleet``."""

from memfleet.cli.main import main

main()
