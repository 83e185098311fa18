"""`python -m deploy`: not implemented yet (see the package docstring and the open issues)."""

import sys

import deploy
from robomirror.cli import not_yet

if __name__ == "__main__":
    sys.exit(not_yet("deploy", deploy.__doc__))
