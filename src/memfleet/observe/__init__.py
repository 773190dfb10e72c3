"""Observability: the ``stats`` command's lines, Prometheus metrics."""
