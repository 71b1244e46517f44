"""Exporting a trained model for other runtimes.

    onnx.py  a checkpoint -> an ONNX graph (dynamic N, H, W), checked with onnxruntime
"""
