"""The boundary: records as they arrive, the events on the wire, and their validation.

- :mod:`~engine.boundary.records`: raw records and dead letters with reasons;
- :mod:`~engine.boundary.schemas`: the events producers build (docs/contracts.md);
- :mod:`~engine.boundary.validation`: raw records in, typed columns and dead letters out;
- :mod:`~engine.boundary.timeutil`: ISO 8601 or epoch milliseconds in, epoch milliseconds inside.
"""
