"""Inference runtime: backbone engines, ONNX export, engine cache and the streaming Recognizer."""
