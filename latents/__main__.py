"""`python -m latents`: not implemented yet (see the package docstring and the open issues)."""

import argparse
import sys

import latents


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latents", description=latents.__doc__)
    ap.parse_args(argv)
    print("latents: not implemented yet; this stage arrives with a later issue", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
