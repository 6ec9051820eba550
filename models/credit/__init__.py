"""Credit default models: training, calibration, evaluation, ONNX export and the model card.

``riskstream credit train`` drives :func:`models.credit.train.train`; the served
artifacts are read back by :mod:`engine.credit`.
"""
