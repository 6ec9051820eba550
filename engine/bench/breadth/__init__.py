"""The breadth benchmark: every real price series the package registries ship, through the CLI.

:mod:`.data` finds and loads the series (reporting every source that is missing),
:mod:`.evaluate` scores one series' CLI forecasts, :mod:`.run` sweeps them in a process
pool and :mod:`.report` writes the tables and plots.
"""

from __future__ import annotations
