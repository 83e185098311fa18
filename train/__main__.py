"""`python -m train`: not implemented yet (see the package docstring and the open issues)."""

import sys

import train
from robomirror.cli import not_yet

if __name__ == "__main__":
    sys.exit(not_yet("train", train.__doc__))
