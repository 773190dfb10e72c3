"""Operator tools on one machine: the local fleet (``up``/``status``/``fault``), the node
supervisor and simulated hosts. The proxy never imports this package."""
