"""Exported model artifacts as the engine serves them: model cards and ONNX sessions.

- :mod:`~engine.artifacts.cards`: the ``card.json`` every model card shares, with SHA-256s;
- :mod:`~engine.artifacts.onnx_session`: exported models through onnxruntime.
"""
