"""Entry point of the single-file build (scripts/build-exe.sh): the same ``diag`` command."""

import sys

from diag.cli import main

if __name__ == "__main__":
    sys.exit(main())
