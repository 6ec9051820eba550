"""The Faust stream worker: micro-batch delivery, per-topic processors, the app."""
