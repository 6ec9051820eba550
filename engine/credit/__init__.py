"""Credit risk in the stream: the served model, the scoring stage, offline scoring.

* :mod:`engine.credit.card` - the model card: inputs, their encoding, versions;
* :mod:`engine.credit.model` - :class:`~engine.credit.model.CreditModel`, the ONNX model
  plus card, one batched onnxruntime call per micro-batch;
* :mod:`engine.credit.stage` - :class:`~engine.credit.stage.CreditStage`, the transactions
  stage that scores ``credit_review`` events and keeps each customer's PD and expected loss;
* :mod:`engine.credit.offline` - ``riskstream credit score`` (CSV in, CSV out).

Training lives in :mod:`models.credit`; explanations in :mod:`engine.explain`.
"""
