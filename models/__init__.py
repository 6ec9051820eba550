"""Offline training and evaluation of riskstream's models, and their export to ONNX.

Nothing here runs in the stream: the engine loads the exported artifacts (``onnx/``)
and their model cards. Training needs the ``train`` extra for the deep models.
"""
