"""`python -m rnnzoo ...` (and `torchrun ... -m rnnzoo train ...`) run the command line; so does the
`rnnzoo` script, through `run`."""

import os
import sys


def run() -> int:
    """The command line, with Ctrl-C during the imports (torch takes a second or two) a quiet exit too.

    A process of a `torchrun` job ends with os._exit once its command is done. Once a DistributedDataParallel
    wrapper has been built, gloo's threads (pt_gloo_runloop, gloo_tcp_loop) keep running after
    destroy_process_group, up to the interpreter's shutdown; and in about 1 run in 10 to 25 of the README's
    2-process command, that shutdown died with "terminate called without an active exception" (SIGABRT,
    exit 1) after the training had been saved. os._exit skips the shutdown; by then every run file is
    written and flushed to disk, and train() has passed a barrier of all the processes."""
    try:
        from rnnzoo.cli import main
    except KeyboardInterrupt:
        print("\nrnnzoo: interrupted", file=sys.stderr)
        return 130
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(run())
