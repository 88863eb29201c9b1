"""Tools around the node: demo, benchmarks, reliability harness, test footage (not the node)."""
