"""Every example's model on its tiny preset: shapes, loss, gradients, determinism; layer tables in Keras'
terms; the state_dict keys that saved checkpoints hold."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
import torch

import rnnzoo.kernels
from rnnzoo.specs import EXAMPLES, get_example
from rnnzoo.summary import layer_rows, summary_table


def _tiny(name: str):
    example = get_example(name)
    cfg = example.config("tiny")
    meta = example.shape_meta(cfg)
    torch.manual_seed(0)
    return example, cfg, meta, example.build_model(cfg, meta)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_tiny_model_trains_a_step(name: str) -> None:
    example, cfg, meta, model = _tiny(name)
    inputs, target = example.synthetic_batch(cfg, meta, 3, torch.Generator().manual_seed(1))
    output = model(*inputs)
    assert output.shape[0] == 3
    loss = example.loss(output, target)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {pname}"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(*inputs), model(*inputs)), "eval mode must be deterministic"


SEED_TABLES = {
    # (layer name in our model, output shape) in the order of the originals' layer tables
    "babi_memnn": [("input_1", "(None, 68)"), ("input_2", "(None, 4)"), ("story_m", "(None, 68, 64)"),
                   ("story_c", "(None, 68, 4)"), ("question_enc", "(None, 4, 64)"), ("dot", "(None, 68, 4)"),
                   ("add", "(None, 68, 4)"), ("permute", "(None, 4, 68)"), ("concat", "(None, 4, 132)"),
                   ("lstm", "(None, 32)"), ("answer", "(None, 22)")],
    "babi_rnn": [("input_1", "(None, 552)"), ("input_2", "(None, 5)"), ("story_enc", "(None, 552, 50)"),
                 ("question_enc", "(None, 5, 50)"), ("question_lstm", "(None, 50)"),
                 ("repeat", "(None, 552, 50)"), ("add", "(None, 552, 50)"), ("lstm", "(None, 50)"),
                 ("answer", "(None, 36)")],
}


@pytest.mark.parametrize("name", list(SEED_TABLES))
def test_faithful_layer_table_matches_the_seed_notes(name: str) -> None:
    example = get_example(name)
    cfg = example.config()
    meta = example.shape_meta(cfg)
    model = example.build_model(cfg, meta)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    rows = [(n, shape) for n, kind, shape, _ in layer_rows(model, inputs, example.summary_dynamic_axes)
            if kind != "Dropout"]
    assert rows == SEED_TABLES[name]


def test_memnn_attention_axis_option() -> None:
    example = get_example("babi_memnn")
    meta = example.shape_meta(example.config())
    faithful = example.build_model(example.config(), meta)
    memory = example.build_model(example.config(attention="memory"), meta)
    assert faithful.softmax_dim == 1 and memory.softmax_dim == 2  # in the question-major (B, Q, S) layout


def test_hard_sigmoid_lstm_is_keras_2_cell() -> None:
    from rnnzoo.models.layers import HardSigmoidLSTM, hard_sigmoid

    assert hard_sigmoid(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])).tolist() == pytest.approx([0, 0.3, 0.5, 0.7, 1])
    torch.manual_seed(0)
    lstm = HardSigmoidLSTM(3, 2, return_sequences=True).double()
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    out = lstm(x)
    assert out.shape == (4, 5, 2)
    # step 1 by hand: from a zero state, c = hs(i) * tanh(g), h = hs(o) * tanh(c)
    i, f, g, o = (x[:, 0] @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4, dim=1)
    c = (0.2 * i + 0.5).clamp(0, 1) * g.tanh()
    assert torch.allclose(out[:, 0], (0.2 * o + 0.5).clamp(0, 1) * c.tanh())
    assert torch.autograd.gradcheck(lambda v: lstm(v), (x,))
    last = HardSigmoidLSTM(3, 2).double()
    last.load_state_dict(lstm.state_dict())
    assert torch.equal(last(x), out[:, -1])


def test_memnn_recurrent_activation_option() -> None:
    from rnnzoo.models.layers import HardSigmoidLSTM

    example = get_example("babi_memnn")
    cfg = example.config(recurrent_activation="hard_sigmoid")
    model = example.build_model(cfg, example.shape_meta(cfg))
    assert isinstance(model.lstm, HardSigmoidLSTM)
    story, question = torch.randint(1, 22, (2, 68)), torch.randint(1, 22, (2, 4))
    assert model(story, question).shape == (2, 22)


KERAS_LAYERS = {"Input", "Embedding", "Dropout", "LSTM", "Bidirectional", "Dense", "Conv1D", "MaxPooling1D",
                "TimeDistributed", "ConvLSTM2D", "BatchNormalization", "Conv3D", "Activation", "Dot", "Add",
                "Permute", "Concatenate", "RepeatVector"}


def _kernel_classes() -> set[str]:
    """The names of the classes that rnnzoo.kernels defines."""
    names = set()
    for info in pkgutil.iter_modules(rnnzoo.kernels.__path__):
        module = importlib.import_module(f"rnnzoo.kernels.{info.name}")
        names |= {name for name, obj in vars(module).items()
                  if inspect.isclass(obj) and obj.__module__ == module.__name__}
    return names


def _built(name: str, preset: str):
    example = get_example(name)
    cfg = example.config(preset)
    meta = example.shape_meta(cfg)
    torch.manual_seed(0)
    return example, cfg, meta, example.build_model(cfg, meta)


@pytest.mark.parametrize("preset", ["tiny", "faithful"])
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_summary_names_only_keras_layers(name: str, preset: str) -> None:
    example, cfg, meta, model = _built(name, preset)
    inputs, _ = example.synthetic_batch(cfg, meta, 2, torch.Generator().manual_seed(0))
    if name == "conv_lstm":
        inputs = tuple(x[:, :3] for x in inputs)  # 3 frames: the layers and shapes are those of 15
    kinds = [kind for _, kind, _, _ in layer_rows(model, inputs, example.summary_dynamic_axes)]
    assert {part for kind in kinds for part in kind.split(" + ")} <= KERAS_LAYERS, kinds
    table = summary_table(model, inputs, example.summary_dynamic_axes)
    kernels = _kernel_classes()
    assert {"KeptGradEmbedding", "LaneDropout", "WeightDropLSTM", "ChannelsLastConv1d"} <= kernels
    assert not [word for word in table.replace("(", " ").replace(")", " ").split() if word in kernels]
    assert "Linear" not in table and "Tap" not in table and "StepwiseLSTM" not in table


STATE_DICTS = {
    # (example, preset): the state_dict's keys and shapes, in order, as saved checkpoints hold them
    ("babi_memnn", "faithful"): [
        ("story_m.weight", (22, 64)), ("story_c.weight", (22, 4)), ("question_enc.weight", (22, 64)),
        ("lstm.weight_ih_l0", (128, 132)), ("lstm.weight_hh_l0", (128, 32)), ("lstm.bias_ih_l0", (128,)),
        ("lstm.bias_hh_l0", (128,)), ("answer.weight", (22, 32)), ("answer.bias", (22,))],
    ("babi_memnn", "tiny"): [
        ("story_m.weight", (22, 8)), ("story_c.weight", (22, 4)), ("question_enc.weight", (22, 8)),
        ("lstm.weight_ih_l0", (24, 73)), ("lstm.weight_hh_l0", (24, 6)), ("lstm.bias_ih_l0", (24,)),
        ("lstm.bias_hh_l0", (24,)), ("answer.weight", (22, 6)), ("answer.bias", (22,))],
    ("babi_rnn", "faithful"): [
        ("story_enc.weight", (36, 50)), ("question_enc.weight", (36, 50)), ("question_lstm.weight_ih_l0", (200, 50)),
        ("question_lstm.weight_hh_l0", (200, 50)), ("question_lstm.bias_ih_l0", (200,)),
        ("question_lstm.bias_hh_l0", (200,)), ("lstm.weight_ih_l0", (200, 50)), ("lstm.weight_hh_l0", (200, 50)),
        ("lstm.bias_ih_l0", (200,)), ("lstm.bias_hh_l0", (200,)), ("answer.weight", (36, 50)), ("answer.bias", (36,))],
    ("babi_rnn", "tiny"): [
        ("story_enc.weight", (22, 6)), ("question_enc.weight", (22, 6)), ("question_lstm.weight_ih_l0", (24, 6)),
        ("question_lstm.weight_hh_l0", (24, 6)), ("question_lstm.bias_ih_l0", (24,)),
        ("question_lstm.bias_hh_l0", (24,)), ("lstm.weight_ih_l0", (20, 6)), ("lstm.weight_hh_l0", (20, 5)),
        ("lstm.bias_ih_l0", (20,)), ("lstm.bias_hh_l0", (20,)), ("answer.weight", (22, 5)), ("answer.bias", (22,))],
    ("babi_memn2n", "faithful"): [
        ("linear", ()), *[(f"embeddings.{k}.weight", (20, 20)) for k in range(4)],
        *[(f"temporal.{k}.weight", (10, 20)) for k in range(4)]],
    ("babi_memn2n", "tiny"): [
        ("linear", ()), *[(f"embeddings.{k}.weight", (20, 4)) for k in range(3)],
        *[(f"temporal.{k}.weight", (5, 4)) for k in range(3)]],
    ("imdb_lstm", "faithful"): [
        ("embedding.weight", (20000, 128)), ("lstm.weight_ih_l0", (512, 128)), ("lstm.weight_hh_l0", (512, 128)),
        ("lstm.bias_ih_l0", (512,)), ("lstm.bias_hh_l0", (512,)), ("dense.weight", (1, 128)), ("dense.bias", (1,))],
    ("imdb_lstm", "tiny"): [
        ("embedding.weight", (50, 8)), ("lstm.weight_ih_l0", (24, 8)), ("lstm.weight_hh_l0", (24, 6)),
        ("lstm.bias_ih_l0", (24,)), ("lstm.bias_hh_l0", (24,)), ("dense.weight", (1, 6)), ("dense.bias", (1,))],
    ("imdb_cnn_lstm", "faithful"): [
        ("embedding.weight", (20000, 128)), ("conv1d.weight", (64, 128, 5)), ("conv1d.bias", (64,)),
        ("lstm.weight_ih_l0", (280, 64)), ("lstm.weight_hh_l0", (280, 70)), ("lstm.bias_ih_l0", (280,)),
        ("lstm.bias_hh_l0", (280,)), ("dense.weight", (1, 70)), ("dense.bias", (1,))],
    ("imdb_cnn_lstm", "tiny"): [
        ("embedding.weight", (50, 8)), ("conv1d.weight", (7, 8, 3)), ("conv1d.bias", (7,)),
        ("lstm.weight_ih_l0", (24, 7)), ("lstm.weight_hh_l0", (24, 6)), ("lstm.bias_ih_l0", (24,)),
        ("lstm.bias_hh_l0", (24,)), ("dense.weight", (1, 6)), ("dense.bias", (1,))],
    ("imdb_bidirectional_lstm", "faithful"): [
        ("embedding.weight", (20000, 128)), ("bidirectional_lstm.weight_ih_l0", (256, 128)),
        ("bidirectional_lstm.weight_hh_l0", (256, 64)), ("bidirectional_lstm.bias_ih_l0", (256,)),
        ("bidirectional_lstm.bias_hh_l0", (256,)), ("bidirectional_lstm.weight_ih_l0_reverse", (256, 128)),
        ("bidirectional_lstm.weight_hh_l0_reverse", (256, 64)), ("bidirectional_lstm.bias_ih_l0_reverse", (256,)),
        ("bidirectional_lstm.bias_hh_l0_reverse", (256,)), ("dense.weight", (1, 128)), ("dense.bias", (1,))],
    ("imdb_bidirectional_lstm", "tiny"): [
        ("embedding.weight", (50, 8)), ("bidirectional_lstm.weight_ih_l0", (24, 8)),
        ("bidirectional_lstm.weight_hh_l0", (24, 6)), ("bidirectional_lstm.bias_ih_l0", (24,)),
        ("bidirectional_lstm.bias_hh_l0", (24,)), ("bidirectional_lstm.weight_ih_l0_reverse", (24, 8)),
        ("bidirectional_lstm.weight_hh_l0_reverse", (24, 6)), ("bidirectional_lstm.bias_ih_l0_reverse", (24,)),
        ("bidirectional_lstm.bias_hh_l0_reverse", (24,)), ("dense.weight", (1, 12)), ("dense.bias", (1,))],
    ("mnist_hierarchical_rnn", "faithful"): [
        ("row_lstm.layer.weight_ih_l0", (512, 1)), ("row_lstm.layer.weight_hh_l0", (512, 128)),
        ("row_lstm.layer.bias_ih_l0", (512,)), ("row_lstm.layer.bias_hh_l0", (512,)),
        ("column_lstm.weight_ih_l0", (512, 128)), ("column_lstm.weight_hh_l0", (512, 128)),
        ("column_lstm.bias_ih_l0", (512,)), ("column_lstm.bias_hh_l0", (512,)), ("dense.weight", (10, 128)),
        ("dense.bias", (10,))],
    ("mnist_hierarchical_rnn", "tiny"): [
        ("row_lstm.layer.weight_ih_l0", (24, 1)), ("row_lstm.layer.weight_hh_l0", (24, 6)),
        ("row_lstm.layer.bias_ih_l0", (24,)), ("row_lstm.layer.bias_hh_l0", (24,)),
        ("column_lstm.weight_ih_l0", (20, 6)), ("column_lstm.weight_hh_l0", (20, 5)), ("column_lstm.bias_ih_l0", (20,)),
        ("column_lstm.bias_hh_l0", (20,)), ("dense.weight", (10, 5)), ("dense.bias", (10,))],
    ("conv_lstm", "faithful"): [
        ("blocks.0.conv_lstm.input_conv.weight", (160, 1, 3, 3)), ("blocks.0.conv_lstm.input_conv.bias", (160,)),
        ("blocks.0.conv_lstm.recurrent_conv.weight", (160, 40, 3, 3)), ("blocks.0.norm.weight", (40,)),
        ("blocks.0.norm.bias", (40,)), ("blocks.0.norm.running_mean", (40,)), ("blocks.0.norm.running_var", (40,)),
        ("blocks.0.norm.num_batches_tracked", ()), ("blocks.1.conv_lstm.input_conv.weight", (160, 40, 3, 3)),
        ("blocks.1.conv_lstm.input_conv.bias", (160,)), ("blocks.1.conv_lstm.recurrent_conv.weight", (160, 40, 3, 3)),
        ("blocks.1.norm.weight", (40,)), ("blocks.1.norm.bias", (40,)), ("blocks.1.norm.running_mean", (40,)),
        ("blocks.1.norm.running_var", (40,)), ("blocks.1.norm.num_batches_tracked", ()),
        ("blocks.2.conv_lstm.input_conv.weight", (160, 40, 3, 3)), ("blocks.2.conv_lstm.input_conv.bias", (160,)),
        ("blocks.2.conv_lstm.recurrent_conv.weight", (160, 40, 3, 3)), ("blocks.2.norm.weight", (40,)),
        ("blocks.2.norm.bias", (40,)), ("blocks.2.norm.running_mean", (40,)), ("blocks.2.norm.running_var", (40,)),
        ("blocks.2.norm.num_batches_tracked", ()), ("blocks.3.conv_lstm.input_conv.weight", (160, 40, 3, 3)),
        ("blocks.3.conv_lstm.input_conv.bias", (160,)), ("blocks.3.conv_lstm.recurrent_conv.weight", (160, 40, 3, 3)),
        ("blocks.3.norm.weight", (40,)), ("blocks.3.norm.bias", (40,)), ("blocks.3.norm.running_mean", (40,)),
        ("blocks.3.norm.running_var", (40,)), ("blocks.3.norm.num_batches_tracked", ()),
        ("head.conv.weight", (1, 40, 3, 3, 3)), ("head.conv.bias", (1,))],
    ("conv_lstm", "tiny"): [
        ("blocks.0.conv_lstm.input_conv.weight", (20, 1, 3, 3)), ("blocks.0.conv_lstm.input_conv.bias", (20,)),
        ("blocks.0.conv_lstm.recurrent_conv.weight", (20, 5, 3, 3)), ("blocks.0.norm.weight", (5,)),
        ("blocks.0.norm.bias", (5,)), ("blocks.0.norm.running_mean", (5,)), ("blocks.0.norm.running_var", (5,)),
        ("blocks.0.norm.num_batches_tracked", ()), ("blocks.1.conv_lstm.input_conv.weight", (20, 5, 3, 3)),
        ("blocks.1.conv_lstm.input_conv.bias", (20,)), ("blocks.1.conv_lstm.recurrent_conv.weight", (20, 5, 3, 3)),
        ("blocks.1.norm.weight", (5,)), ("blocks.1.norm.bias", (5,)), ("blocks.1.norm.running_mean", (5,)),
        ("blocks.1.norm.running_var", (5,)), ("blocks.1.norm.num_batches_tracked", ()),
        ("head.conv.weight", (1, 5, 3, 3, 3)), ("head.conv.bias", (1,))],
}


@pytest.mark.parametrize("name, preset", list(STATE_DICTS))
def test_state_dict_keys_and_shapes_are_those_of_saved_checkpoints(name: str, preset: str) -> None:
    *_, model = _built(name, preset)
    assert [(key, tuple(value.shape)) for key, value in model.state_dict().items()] == STATE_DICTS[name, preset]


def test_every_example_has_its_recorded_state_dicts() -> None:
    assert set(STATE_DICTS) == {(name, preset) for name in EXAMPLES for preset in ("tiny", "faithful")}
