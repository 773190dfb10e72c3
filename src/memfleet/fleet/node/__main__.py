"""``python -m memfleet.fleet.node``: ``memfleet node`` without importing the proxy, the route
tree and pydantic (``memfleet up`` starts one supervisor per node, so start-up cost adds up)."""

from memfleet.fleet.node.command import node_group

if __name__ == "__main__":  # pragma: no cover
    node_group(prog_name="memfleet node")
