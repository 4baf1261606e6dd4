"""`python -m rnnzoo ...` (and `torchrun ... -m rnnzoo train ...`) run the command line."""

from rnnzoo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
