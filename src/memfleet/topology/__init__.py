"""Topology presets (sharded, replicated, ...): :mod:`.presets` holds them, shared by the local
fleet, the Kubernetes renderer and the CLI; :mod:`.options` holds the click options that choose
one, used only by the commands in :mod:`memfleet.cli`."""
