"""``python -m engine.services install [kafka|redis|prometheus|all]...``.

Provisioning without the CLI: needs only the standard library and this repository, so
``deploy/test.sh`` can run it on a brand-new machine before anything else works.
"""

from __future__ import annotations

import sys

from engine.services.install import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] != ["install"]:
        print(
            "usage: python -m engine.services install [kafka|redis|prometheus|all]...",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main(args[1:]))
