"""`python -m rnnzoo ...` (and `torchrun ... -m rnnzoo train ...`) run the command line; so does the
`rnnzoo` script, through `run`."""

import sys


def run() -> int:
    """The command line, with Ctrl-C during the imports (torch takes a second or two) a quiet exit too."""
    try:
        from rnnzoo.cli import main
    except KeyboardInterrupt:
        print("\nrnnzoo: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
