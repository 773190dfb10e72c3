"""Measuring tools: the load generator (:mod:`.bench`) and fault drills (:mod:`.drill`); their
commands are in :mod:`memfleet.cli.bench` and :mod:`memfleet.cli.drill`."""
