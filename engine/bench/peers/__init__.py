"""Peers of riskstream in ``riskstream bench compare``: other stream processors doing its work.

:mod:`~engine.bench.peers.work` is the per-tick work (riskstream's EWMA rule, VaR, the
breach alert); :mod:`~engine.bench.peers.quix` and :mod:`~engine.bench.peers.bytewax_flow`
run it in Quix Streams and bytewax as their documentation recommends (the ``peers``
extra); :mod:`~engine.bench.peers.runner` starts, times and checks them.
"""
