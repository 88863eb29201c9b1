"""ONNX export of the backbone: clip graph, causal step graph, and their on-disk cache."""
