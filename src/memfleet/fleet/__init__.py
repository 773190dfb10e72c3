"""Operator tools on one machine: the local fleet (``up``/``status``/``fault``, in
:mod:`.local`), the node supervisor (:mod:`.node`), simulated hosts (:mod:`.hosts`) and the
child-process helpers they share (:mod:`.processes`). The proxy never imports this package."""
