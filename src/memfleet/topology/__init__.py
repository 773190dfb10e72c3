"""Topology presets (sharded, replicated, ...) and the options that choose one, shared by the
local fleet, the Kubernetes renderer and the CLI."""
