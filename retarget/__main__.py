"""`python -m retarget`: not implemented yet (see the package docstring and the open issues)."""

import sys

import retarget
from robomirror.cli import not_yet

if __name__ == "__main__":
    sys.exit(not_yet("retarget", retarget.__doc__))
