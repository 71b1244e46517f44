"""Exporting a trained model for other runtimes.

    onnx.py         a checkpoint -> an ONNX graph (dynamic N, H, W), checked with onnxruntime
    scan_orders.py  the scan directions as flips/transposes, swapped into the SSM layer while exporting
"""
