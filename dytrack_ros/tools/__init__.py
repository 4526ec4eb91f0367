"""Measuring tools that drive the node from outside: the reliability check (qa.py) and node latency
(node_latency.py). Above ros/ in the layers: they may use everything, nothing imports them."""
