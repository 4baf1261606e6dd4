"""Exporting a trained run for use outside rnnzoo: `rnnzoo export RUN --format onnx|safetensors`.

- ONNX (`model.onnx`): the model in eval mode as one self-contained ONNX file (weights inside), for
  inference runtimes. Its inputs are named as the model's forward arguments (`story`, `question`; `tokens`;
  `image`; `movies`) and its output `logits`; the axes that Keras shows as None are dynamic: the batch,
  and conv_lstm's frames. The file's metadata hold the example's name, settings and data facts
  (`rnnzoo.example`, `rnnzoo.config`, `rnnzoo.meta`: the bAbI vocabulary, the sequence lengths). Every
  export is checked: onnxruntime and PyTorch answer the same synthetic batches (of 2 and 5 examples,
  neither the batch the export was traced with) within `TOLERANCE`, or nothing is written.
- safetensors (`model.safetensors`): the weights (the model's state_dict), with the run's settings
  (`model.config.json`: example, seed, config) and data facts (`model.meta.json`) beside them as JSON.
  `load_safetensors` rebuilds the model from these files with the example's spec; nothing is unpickled.

The packages this needs are the `export` extra (`pip install 'rnnzoo[export]'`), imported only here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import io
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnzoo import __version__
from rnnzoo.errors import InputError
from rnnzoo.files import write_atomically, write_text
from rnnzoo.runs import load_run
from rnnzoo.specs import get_example
from rnnzoo.specs.base import Example
from rnnzoo.specs.settings import did_you_mean

FORMATS = {"onnx": ".onnx", "safetensors": ".safetensors"}  # format -> file suffix
EXTRA = "pip install 'rnnzoo[export]'"
# Modules each format imports (`import` names, not package names: onnxscript is what torch's exporter uses).
NEEDS = {"onnx": ("onnx", "onnxruntime", "onnxscript"), "safetensors": ("safetensors",)}
TOLERANCE = 1e-4  # the largest difference allowed between onnxruntime's and PyTorch's outputs
TRACE_BATCH = 3  # the example batch the graph is traced with; the check uses others
CHECK_BATCHES = (2, 5)
OPSET = 20  # torch 2.13's exporter writes opset 20 natively (ONNX's LSTM and Scan are in it); no conversion
SAFETENSORS_FORMAT = "rnnzoo-safetensors-1"  # in the file's header, with the example's name


class ExportError(RuntimeError):
    """An export that could not be made faithfully (the ONNX graph answers differently from PyTorch)."""


@dataclass
class ExportResult:
    """What an export wrote: the main file, every file with whether it replaced one, and (ONNX) the
    largest difference between onnxruntime and PyTorch per checked batch size."""

    format: str
    path: Path
    files: list[tuple[Path, bool]]  # (path, replaced an existing file)
    max_abs_diff: dict[int, float] | None = None
    inputs: dict[str, list[int | str]] | None = None  # ONNX: input name -> shape, dynamic axes by name
    source: str = ""  # what was exported, e.g. "runs/babi_memnn/<id> (babi_memnn, best checkpoint, epoch 2)"


def require(fmt: str) -> None:
    """Raise InputError naming the extra when a package that format `fmt` needs is not installed."""
    missing = [m for m in NEEDS[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"--format {fmt} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                         f"not installed; install the export extra: {EXTRA}")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}{did_you_mean(fmt, FORMATS)}; choose from "
                         f"{', '.join(FORMATS)}")
    return fmt


def output_path(fmt: str, out: str | Path | None, run_path: Path | None) -> Path:
    """Where format `fmt` is written: `out` (a file with the format's suffix, or a folder to hold
    model.<suffix>), by default inside the run folder, RUN/export/model.<suffix>."""
    suffix = FORMATS[fmt]
    if out is None:
        if run_path is None:
            raise InputError("give the file to write (out=...): there is no run folder to write into")
        return run_path / "export" / f"model{suffix}"
    path = Path(out)
    if path.is_dir():
        return path / f"model{suffix}"
    if path.suffix != suffix:
        raise InputError(f"--out {path} must end in {suffix} for --format {fmt} (or name a folder to hold "
                         f"model{suffix})")
    return path


def export_run(run: str | Path, fmt: str, out: str | Path | None = None, checkpoint: str = "best") -> ExportResult:
    """Export the trained run `run` (a run folder, a checkpoint file, or an example name: its latest run)
    as `fmt`, "onnx" or "safetensors", to `out` (default: RUN/export/model.onnx or .safetensors)."""
    check_format(fmt)
    require(fmt)
    loaded = load_run(run, checkpoint)
    path = output_path(fmt, out, loaded.path)
    config = {"example": loaded.name, "seed": loaded.checkpoint.get("seed"),
              "config": dataclasses.asdict(loaded.config)}
    result = export_model(loaded.example, loaded.config, loaded.meta, loaded.model, fmt, path, config)
    which = Path(run).name if Path(run).is_file() else f"{checkpoint} checkpoint"
    result.source = f"{loaded.path.resolve()} ({loaded.name}, {which}, epoch {loaded.epoch})"
    return result


def export_model(example: Example, cfg: Any, meta: Mapping[str, Any], model: nn.Module, fmt: str, path: Path,
                 config: Mapping[str, Any] | None = None) -> ExportResult:
    """Export `model` (built by `example`'s spec from `cfg` and `meta`) as `fmt` to the file `path`;
    `config` is the run's config.json (default: the example's name and `cfg`)."""
    check_format(fmt)
    require(fmt)
    config = dict(config) if config is not None else {"example": example.name, "config": dataclasses.asdict(cfg)}
    model = model.cpu().eval()
    if fmt == "onnx":
        return export_onnx(example, cfg, meta, model, path, config)
    return export_safetensors(model, meta, path, config)


# --- ONNX ------------------------------------------------------------------------------------------------


def input_names(model: nn.Module) -> list[str]:
    """The model's forward arguments, the names of the ONNX graph's inputs."""
    return list(inspect.signature(model.forward).parameters)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what torch's exporter says on the way (missing torchvision ops it would register, the
    prototype status of scan, deprecations of its own internals): the export reports its own result."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript",
                                               "onnx_ir", "torch.fx.experimental.symbolic_shapes")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(example: Example, cfg: Any, meta: Mapping[str, Any], model: nn.Module, path: Path,
                config: Mapping[str, Any]) -> ExportResult:
    """Trace `model` into ONNX, check it against PyTorch with onnxruntime, and only then write `path`.

    The exporter is torch.export's (`torch.onnx.export(dynamo=True)`, torch's default and the one it
    maintains; the TorchScript exporter is deprecated). It writes nn.LSTM as ONNX's LSTM and keeps
    dynamic axes as symbolic sizes. The trace runs without gradients, where the models use their plain
    paths (nn.LSTM rather than the stepwise training kernel), and under torch.export, where the ConvLSTM
    layer is the plain cell in a scan (rnnzoo.kernels.conv_lstm.conv_lstm)."""
    names = input_names(model)
    inputs, _ = example.synthetic_batch(cfg, meta, TRACE_BATCH, torch.Generator().manual_seed(0))
    axes = {0: "batch", 1: "frames"}  # the names of the axes that Keras shows as None
    dims = {a: torch.export.Dim(axes.get(a, f"axis{a}"), min=1) for a in example.summary_dynamic_axes}
    dynamic_shapes = {n: {a: dims[a] for a in example.summary_dynamic_axes if a < x.dim()}
                      for n, x in zip(names, inputs)}
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(model, tuple(inputs), input_names=names, output_names=["logits"],
                                        dynamic_shapes=dynamic_shapes, opset_version=OPSET, dynamo=True,
                                        verbose=False)
    except Exception as exc:  # the exporter's own errors are long; say what failed, keep them as the cause
        raise ExportError(f"torch.onnx.export could not trace {example.name}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    assert program is not None
    program.model.doc_string = f"rnnzoo {example.name}: {example.title}; the output is logits"
    program.model.metadata_props.update({
        "rnnzoo.version": __version__, "rnnzoo.example": example.name,
        "rnnzoo.config": json.dumps(config), "rnnzoo.meta": json.dumps(dict(meta))})
    replaced = path.exists()
    result: dict[int, float] = {}

    def write(tmp: Path) -> None:
        with _quiet_exporter():
            program.save(tmp, external_data=False)
        result.update(onnx_parity(tmp, example, cfg, meta, model))
        worst = max(result, key=lambda b: result[b])
        if not result[worst] < TOLERANCE:  # NaN fails too
            raise ExportError(f"the ONNX graph of {example.name} answers differently from PyTorch: onnxruntime's "
                              f"outputs differ by up to {result[worst]:.3g} on a batch of {worst} (allowed: "
                              f"{TOLERANCE:g}); {path} was not written")

    write_atomically(path, write)
    shapes = {n: [dims[a].__name__ if a in dims else d for a, d in enumerate(x.shape)]
              for n, x in zip(names, inputs)}
    return ExportResult("onnx", path, [(path, replaced)], result, shapes)


def onnx_parity(path: Path, example: Example, cfg: Any, meta: Mapping[str, Any], model: nn.Module,
                batches: Sequence[int] = CHECK_BATCHES, shapes: Mapping[str, Any] | None = None) -> dict[int, float]:
    """The largest absolute difference between onnxruntime's outputs of the ONNX file `path` and `model`'s
    on the same synthetic batches of each size in `batches` (of the shapes of `meta`, or `shapes` in its
    place, e.g. another number of frames)."""
    import onnxruntime

    runtime = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in runtime.get_inputs()]
    meta = {**meta, **(shapes or {})}
    diffs = {}
    for batch in batches:
        inputs, _ = example.synthetic_batch(cfg, meta, batch, torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = model(*inputs).numpy()
        (got,) = runtime.run(None, {n: x.numpy() for n, x in zip(names, inputs)})
        diffs[batch] = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    return diffs


# --- safetensors --------------------------------------------------------------------------------------------


def beside(path: Path) -> tuple[Path, Path]:
    """The JSON files written beside a .safetensors file: its settings and its data facts."""
    return path.with_name(f"{path.stem}.config.json"), path.with_name(f"{path.stem}.meta.json")


def export_safetensors(model: nn.Module, meta: Mapping[str, Any], path: Path, config: Mapping[str, Any]
                       ) -> ExportResult:
    """Write `model`'s state_dict to `path`, with `config` and `meta` beside it as JSON."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config_path, meta_path = beside(path)
    files = [(file, file.exists()) for file in (path, config_path, meta_path)]
    header = {"format": SAFETENSORS_FORMAT, "example": str(config["example"]), "rnnzoo.version": __version__}
    write_atomically(path, lambda tmp: save_file(state, str(tmp), metadata=header))
    write_text(config_path, json.dumps(config, indent=1) + "\n")
    write_text(meta_path, json.dumps(dict(meta), indent=1) + "\n")
    return ExportResult("safetensors", path, files)


@dataclass
class LoadedExport:
    """A model rebuilt from a safetensors export: its example spec, settings, data facts and the model
    (in eval mode, on the CPU)."""

    example: Example
    config: Any
    meta: dict[str, Any]
    model: nn.Module


def load_safetensors(path: str | Path) -> LoadedExport:
    """Rebuild the model of a safetensors export (`model.safetensors` with `model.config.json` and
    `model.meta.json` beside it) with its example's spec, and load its weights. No pickle is read."""
    require("safetensors")
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    config_path, meta_path = beside(path)
    for file in (path, config_path, meta_path):
        if not file.is_file():
            raise InputError(f"no {file.name} at {file.parent}: a safetensors export is {path.name} with "
                             f"{config_path.name} and {meta_path.name} beside it")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
        config, meta = json.loads(config_path.read_text()), json.loads(meta_path.read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable rnnzoo export ({type(exc).__name__}: {exc})") from None
    if header.get("format") != SAFETENSORS_FORMAT or not isinstance(config, dict) or "example" not in config:
        raise InputError(f"{path} is not an rnnzoo safetensors export (format {SAFETENSORS_FORMAT})")
    example = get_example(config["example"])
    cfg = example.config_from_dict(config["config"])
    model = example.build_model(cfg, meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path} does not fit the {example.name} model its config describes: {exc}") from None
    return LoadedExport(example, cfg, meta, model.eval())
