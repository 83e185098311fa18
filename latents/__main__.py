"""`python -m latents`: not implemented yet (see the package docstring and the open issues)."""

import sys

import latents
from robomirror.cli import not_yet

if __name__ == "__main__":
    sys.exit(not_yet("latents", latents.__doc__))
