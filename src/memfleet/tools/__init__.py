"""Measuring tools: the load generator (``bench``) and fault drills (``drill``)."""
