"""The Python API: list the examples, train one, load a trained run and ask it about new inputs.

    import rnnzoo

    rnnzoo.examples()                                    # names, titles, presets
    run = rnnzoo.train("babi_memnn", preset="tiny")      # a trained, loaded Run
    model = rnnzoo.load("babi_memnn")                    # its latest run; or a run folder or checkpoint file
    answer = model.predict(story="Mary moved to the bathroom.", question="Where is Mary?")
    answer.answer, answer.probability, answer.to_dict()

Bad input of any kind raises `rnnzoo.InputError` with the message the command line prints; missing or
corrupt data raises `rnnzoo.DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnnzoo.specs.settings import CARDS, get_card

if TYPE_CHECKING:
    from rnnzoo.runs import Run

__all__ = ["ExampleInfo", "examples", "load", "train"]


@dataclass(frozen=True)
class ExampleInfo:
    """One example: its name, what it is, the data it reads, its presets (name -> what it is for), the
    faithful training's measured time and the metric that picks the best epoch."""

    name: str
    title: str
    data: str
    presets: dict[str, str]
    typical_time: str
    metric: str


def examples() -> list[ExampleInfo]:
    """The examples, in the order of `rnnzoo list` (this reads their cards alone: it imports no torch)."""
    return [ExampleInfo(c.name, c.title, c.data, {n: p.about for n, p in c.presets.items()}, c.typical_time, c.metric)
            for c in CARDS.values()]


def load(run: str | Path, checkpoint: str = "best", device: str = "cpu") -> Run:
    """A trained run, ready to `predict`: `run` is a run folder (runs/<example>/<id>), a checkpoint file,
    or an example name (its latest run under $RNNZOO_RUNS, default ./runs); `checkpoint` "best" (on
    validation) or "last"; `device` "cpu" or "cuda"."""
    from rnnzoo.runs import load_run
    from rnnzoo.training import resolve_device

    return load_run(run, checkpoint, resolve_device(device))


def train(example: str, preset: str = "faithful", *, seed: int = 0, device: str = "auto",
          run_dir: str | Path | None = None, progress: bool = True, test: bool = True, **settings: Any) -> Run:
    """Train `example` with a preset and any settings of its Config (e.g. `epochs=5`, `lr=0.002`), writing
    a run folder as `rnnzoo train` does; returns the run, loaded from its best checkpoint. Ctrl-C stops at
    the next step with a checkpoint saved (KeyboardInterrupt is then raised, naming the folder to resume)."""
    from rnnzoo.runs import load_run
    from rnnzoo.specs import get_example
    from rnnzoo.training import train as train_loop

    card = get_card(example)
    cfg = card.config(preset, **settings)
    result = train_loop(get_example(example), cfg, seed=seed, device=device,
                        run_dir=Path(run_dir) if run_dir is not None else None, progress=progress, test=test,
                        command=f"rnnzoo.train({example!r}, preset={preset!r}, ...)",
                        log=print if progress else (lambda *a, **k: None))
    if result.stopped:
        raise KeyboardInterrupt(f"training stopped; continue it with: rnnzoo train {example} --resume "
                                f"{result.run_dir}")
    which = "best" if result.best_epoch is not None else "last"
    return load_run(result.run_dir, which)
