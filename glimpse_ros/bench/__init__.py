"""Benchmarks writing JSON: engines and Recognizer (make bench), the node (make bench-node)."""
