"""Tools around the node: demo, reliability harness, annotation, export CLI, test footage."""
