"""Choosing the runs to serve, training quick ones where an example has none, and running the server."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from rnnzoo.errors import InputError
from rnnzoo.specs.settings import CARDS

# `--quick` trains these presets for the examples without a run: generated data, no download; the offline
# preset where an example has one (a minute or two each on a CPU), otherwise tiny (seconds).
QUICK_PRESETS = {name: "offline" if "offline" in card.presets else "tiny" for name, card in CARDS.items()}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def require_web() -> None:
    """An InputError naming the extra to install when starlette or uvicorn is missing."""
    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"rnnzoo serve needs {' and '.join(missing)}: pip install 'rnnzoo[web]'")


def latest_runs() -> dict[str, Any]:
    """The latest run folder of each example under the runs folder ($RNNZOO_RUNS, default ./runs)."""
    from rnnzoo.runs import list_runs

    latest = {}
    for info in list_runs():  # oldest first
        if info.example in CARDS and (info.path / "checkpoints").is_dir():
            latest[info.example] = info.path
    return latest


def quick_train(have: set[str], log: Any = print) -> None:
    """Train QUICK_PRESETS' preset of each example not in `have`, into the runs folder."""
    import rnnzoo

    for name, preset in QUICK_PRESETS.items():
        if name in have:
            continue
        log(f"training {name} --preset {preset} ({CARDS[name].presets[preset].about}) ...", file=sys.stderr)
        with contextlib.redirect_stdout(io.StringIO()):
            rnnzoo.train(name, preset=preset, progress=False)


def load_runs(specs: Sequence[str], quick: bool) -> list[Any]:
    """The runs named by `specs` (run folders, checkpoints or example names), or the latest of each example."""
    from rnnzoo.runs import load_run

    if specs:
        runs = [load_run(spec) for spec in specs]
        if quick:
            quick_train({r.name for r in runs})
            runs += [load_run(path) for name, path in latest_runs().items() if name not in {r.name for r in runs}]
        return runs
    if quick:
        quick_train(set(latest_runs()))
    paths = latest_runs()
    if not paths:
        from rnnzoo.training import runs_root

        raise InputError(f"no trained runs under {runs_root().resolve()}/ to serve; train some (rnnzoo train "
                         "EXAMPLE --preset tiny), name run folders, or start with --quick")
    return [load_run(path) for path in paths.values()]


def serve(specs: Sequence[str], host: str = "127.0.0.1", port: int = 8000, quick: bool = False,
          workers: int | None = None) -> None:
    """Load the runs, build the app and serve it until Ctrl-C."""
    require_web()
    import torch
    import uvicorn

    from rnnzoo.web.app import create_app

    if host not in LOCAL_HOSTS:
        print(f"warning: serving on {host}, not only this computer: anyone who can reach {host}:{port} can use "
              "the models (there is no login); use --host 127.0.0.1 to keep it local", file=sys.stderr)
    runs = load_runs(specs, quick)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # One thread per inference and one inference per core: concurrent requests run side by side instead of
    # each spreading over every core and all of them waiting on one another.
    torch.set_num_threads(1)
    app = create_app(runs, workers=workers or cores)
    for run in runs:
        print(f"serving {run.name}: {run.path.resolve()} (epoch {run.epoch})", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"open http://{shown}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
