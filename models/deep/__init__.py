"""Deep volatility models (LSTM, Transformer): data, networks, walk-forward training, ONNX export.

Needs the ``train`` extra (``pip install -e '.[train]'``: torch, onnxscript). The
command is ``riskstream deep train`` (:mod:`models.deep.train`).
"""
