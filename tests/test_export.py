"""`rnnzoo export`: ONNX graphs that onnxruntime answers as PyTorch does (within 1e-4, on batch sizes other
than the one traced), safetensors weights that rebuild the same model, and the errors of a bad request.

The tiny runs of all seven examples are trained once for the module; the faithful sizes (random weights,
as `rnnzoo summary` builds them) are under the slow marker.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from rnnzoo.cli import main
from rnnzoo.errors import InputError
from rnnzoo.specs import SPECS, get_example

EXTRA = ("onnx", "onnxruntime", "onnxscript", "safetensors")
MISSING = [m for m in EXTRA if importlib.util.find_spec(m) is None]
needs_extra = pytest.mark.skipif(bool(MISSING), reason=f"the export extra is not installed ({', '.join(MISSING)} "
                                                       "missing): pip install 'rnnzoo[export]'")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny trained run of every example: name -> run folder."""
    import rnnzoo

    if MISSING:
        pytest.skip(f"the export extra is not installed ({', '.join(MISSING)} missing): pip install 'rnnzoo[export]'")
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: rnnzoo.train(name, preset="tiny", run_dir=root / name, progress=False, test=False).path
                for name in SPECS}
    finally:
        torch.set_num_threads(threads)


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, name: str, cfg: object, meta: dict) -> None:
    example = get_example(name)
    inputs, _ = example.synthetic_batch(cfg, meta, 4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(a.eval()(*inputs), b.eval()(*inputs))


# --- ONNX ------------------------------------------------------------------------------------------------


@needs_extra
@pytest.mark.parametrize("name", list(SPECS))
def test_onnx_matches_pytorch(name: str, tiny_runs: dict[str, Path]) -> None:
    import onnx

    from rnnzoo.export import CHECK_BATCHES, TOLERANCE, TRACE_BATCH, export_run, onnx_parity
    from rnnzoo.runs import load_run

    result = export_run(tiny_runs[name], "onnx")
    assert result.path == tiny_runs[name] / "export" / "model.onnx" and result.path.is_file()
    assert TRACE_BATCH not in CHECK_BATCHES
    assert set(result.max_abs_diff) == set(CHECK_BATCHES)
    assert all(d < TOLERANCE for d in result.max_abs_diff.values()), result.max_abs_diff

    run = load_run(tiny_runs[name])
    model = onnx.load(str(result.path))
    graph_inputs = [i.name for i in model.graph.input]
    assert graph_inputs == list(result.inputs) and [o.name for o in model.graph.output] == ["logits"]
    dynamic = {0, 1} if name == "conv_lstm" else {0}
    for i in model.graph.input:
        dims = i.type.tensor_type.shape.dim
        assert {a for a, d in enumerate(dims) if d.dim_param} == dynamic & set(range(len(dims)))
        assert dims[0].dim_param == "batch"
    props = {p.key: p.value for p in model.metadata_props}
    assert props["rnnzoo.example"] == name
    # One example and another batch size still answer alike: neither was traced.
    more = onnx_parity(result.path, run.example, run.config, run.meta, run.model, batches=(1, 7))
    assert all(d < TOLERANCE for d in more.values()), more
    if name == "conv_lstm":  # the frames axis is dynamic too: fewer and more frames than traced
        for frames in (2, run.meta["frames"] + 3):
            diff = onnx_parity(result.path, run.example, run.config, run.meta, run.model, batches=(2,),
                               shapes={"frames": frames})
            assert diff[2] < TOLERANCE, (frames, diff)


@needs_extra
def test_onnx_parity_failure_writes_nothing(tiny_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo import export

    out = tiny_runs["imdb_cnn_lstm"] / "kept.onnx"
    out.write_bytes(b"an earlier export")
    monkeypatch.setattr(export, "onnx_parity", lambda *a, **k: {2: 0.0, 5: 0.25})
    assert main(["export", str(tiny_runs["imdb_cnn_lstm"]), "--format", "onnx", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "rnnzoo: error:" in err and "0.25" in err and "batch of 5" in err and "Traceback" not in err
    assert out.read_bytes() == b"an earlier export"  # neither replaced nor removed
    assert [p.name for p in out.parent.iterdir() if ".tmp" in p.name] == []


# --- safetensors ------------------------------------------------------------------------------------------


@needs_extra
@pytest.mark.parametrize("name", list(SPECS))
def test_safetensors_round_trip(name: str, tiny_runs: dict[str, Path]) -> None:
    import json

    from safetensors import safe_open

    from rnnzoo.export import export_run, load_safetensors
    from rnnzoo.runs import load_run

    result = export_run(tiny_runs[name], "safetensors")
    folder = tiny_runs[name] / "export"
    assert [p for p, _ in result.files] == [folder / "model.safetensors", folder / "model.config.json",
                                           folder / "model.meta.json"]
    run = load_run(tiny_runs[name])
    assert json.loads((folder / "model.config.json").read_text())["config"] == \
        json.loads((tiny_runs[name] / "config.json").read_text())["config"]
    assert json.loads((folder / "model.meta.json").read_text()) == run.meta
    with safe_open(str(result.path), framework="pt") as f:
        assert set(f.keys()) == set(run.model.state_dict())
        assert f.metadata()["example"] == name
    loaded = load_safetensors(result.path)
    assert loaded.example.name == name and loaded.config == run.config and not loaded.model.training
    for key, value in run.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    outputs_equal(loaded.model, run.model, name, run.config, run.meta)


@needs_extra
def test_load_safetensors_needs_the_files_beside(tiny_runs: dict[str, Path]) -> None:
    from rnnzoo.export import export_run, load_safetensors

    result = export_run(tiny_runs["babi_rnn"], "safetensors", tiny_runs["babi_rnn"] / "alone.safetensors")
    (tiny_runs["babi_rnn"] / "alone.meta.json").unlink()
    with pytest.raises(InputError, match="alone.meta.json"):
        load_safetensors(result.path)
    not_an_export = tiny_runs["babi_rnn"] / "junk.safetensors"
    not_an_export.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00hello")
    for beside in ("junk.config.json", "junk.meta.json"):
        (tiny_runs["babi_rnn"] / beside).write_text("{}")
    with pytest.raises(InputError, match="not a readable rnnzoo export"):
        load_safetensors(not_an_export)


# --- the command line and its errors -------------------------------------------------------------------------


@needs_extra
def test_cli_says_when_it_replaces(tiny_runs: dict[str, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shared" / "weights.safetensors"
    args = ["export", str(tiny_runs["mnist_hierarchical_rnn"]), "--format", "safetensors", "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr()
    assert f"wrote {out}\n" in first.out and "replaced" not in first.out
    assert "mnist_hierarchical_rnn, best checkpoint" in first.err
    assert main(args) == 0
    second = capsys.readouterr().out
    assert f"replaced {out}\n" in second and f"replaced {tmp_path / 'shared' / 'weights.meta.json'}" in second


def test_unknown_format_bad_run_and_bad_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo.export import export_run, output_path

    with pytest.raises(InputError, match=r"unknown export format 'onx' \(did you mean 'onnx'\?\); choose from onnx, "
                                         "safetensors"):
        export_run(tmp_path, "onx")
    assert main(["export", str(tmp_path / "nowhere"), "--format", "safetensors"]) == 2
    assert "rnnzoo: error: no run at" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"must end in \.onnx"):
        output_path("onnx", tmp_path / "model.pt", None)
    assert output_path("safetensors", tmp_path, None) == tmp_path / "model.safetensors"  # a folder holds it
    assert output_path("onnx", None, tmp_path) == tmp_path / "export" / "model.onnx"


@pytest.mark.parametrize("module,fmt", [("onnxruntime", "onnx"), ("onnxscript", "onnx"),
                                        ("safetensors", "safetensors")])
def test_missing_extra_names_the_install(module: str, fmt: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from rnnzoo.export import export_run

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec gives None, import fails
    with pytest.raises(InputError, match=rf"{module}.*pip install 'rnnzoo\[export\]'"):
        export_run(tmp_path, fmt)
    assert main(["export", str(tmp_path), "--format", fmt]) == 2
    assert "pip install 'rnnzoo[export]'" in capsys.readouterr().err


def test_scan_conv_lstm_is_the_reference_cell() -> None:
    """The ConvLSTM layer that an export traces computes what the reference cell does."""
    from rnnzoo.kernels.conv_lstm import conv_lstm, reference_conv_lstm, scan_conv_lstm

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 5, 2, 6, 7, generator=g)
    w_x, b_x, w_h = (torch.randn(*s, generator=g) * 0.3 for s in ((16, 2, 3, 3), (16,), (16, 4, 3, 3)))
    expected = reference_conv_lstm(x, w_x, b_x, w_h)
    torch.testing.assert_close(scan_conv_lstm(x, w_x, b_x, w_h), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(conv_lstm(x, w_x, b_x, w_h), expected, rtol=0, atol=1e-5)  # not exporting


# --- faithful sizes ----------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("name", list(SPECS))
def test_faithful_size_exports(name: str, tmp_path: Path) -> None:
    """Each example's faithful model (random weights, the default data's shapes) as ONNX within 1e-4 of
    PyTorch, and as safetensors that rebuild it."""
    from rnnzoo.export import TOLERANCE, export_model, load_safetensors

    example = get_example(name)
    cfg = example.config()
    meta = example.shape_meta(cfg)
    torch.manual_seed(0)
    model = example.build_model(cfg, meta)
    result = export_model(example, cfg, meta, model, "onnx", tmp_path / "model.onnx")
    print(f"{name}: max abs difference {result.max_abs_diff}")
    assert all(d < TOLERANCE for d in result.max_abs_diff.values()), result.max_abs_diff
    export_model(example, cfg, meta, model, "safetensors", tmp_path / "model.safetensors")
    outputs_equal(load_safetensors(tmp_path / "model.safetensors").model, model, name, cfg, meta)
