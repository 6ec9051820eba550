"""Offline training and evaluation of the anomaly detectors (``riskstream anomaly train|evaluate``).

* :mod:`.fit` - the model fitters and their ONNX export;
* :mod:`.data` - training and evaluation rows computed by the stream's own stage;
* :mod:`.train` - the served models in ``onnx/anomaly``;
* :mod:`.evaluate_transactions`, :mod:`.evaluate_prices`, :mod:`.evaluate_series`,
  :mod:`.report` - the evaluation and its report.
"""
