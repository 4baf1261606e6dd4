"""Every example's model on its tiny preset: shapes, loss, gradients, determinism; layer tables."""

from __future__ import annotations

import pytest
import torch

from rnnzoo.specs import EXAMPLES, get_example
from rnnzoo.summary import layer_rows


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
    # (layer name in our model, output shape) in the order of the seed notes' tables
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


@pytest.mark.parametrize("p", [0.0, 0.2, 0.25, 0.3, 0.5, 1.0])
def test_dropout_mask_drops_p_and_scales_the_rest(p: float) -> None:
    from rnnzoo.models.layers import dropout_mask

    like = torch.zeros(1, dtype=torch.float64)
    torch.manual_seed(0)
    mask = dropout_mask((400, 500), p, like)
    assert mask.shape == (400, 500) and mask.dtype == torch.float64
    if p == 1.0:
        assert (mask == 0).all()
        return
    assert set(mask.unique().tolist()) <= {0.0, 1.0 / (1.0 - p)}
    assert abs((mask == 0).double().mean().item() - p) < 0.005  # 200,000 draws: 4 standard deviations
    assert abs(mask.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    torch.manual_seed(0)
    assert torch.equal(dropout_mask((400, 500), p, like), mask)  # seeded: resumed runs draw the same masks
    # every lane of the random words (eight of 8 bits for these rates, else four of 16) is used alike:
    # a biased lane would show in one column
    if p in (0.3, 0.5):
        lanes = (mask == 0).reshape(-1, 8).double().mean(0)
        assert (lanes - p).abs().max() < 0.01


def test_dropout_mask_rate_is_exact_to_16_bits() -> None:
    # 0.3 is not a multiple of 1/256, so it takes 16-bit lanes: 0.300003, where 8 bits would give 0.3008.
    # 10 million draws (one standard deviation: 0.00015) tell the two apart; seeded, so never flaky.
    from rnnzoo.models.layers import dropout_mask

    torch.manual_seed(0)
    dropped = (dropout_mask((10_000_000,), 0.3, torch.zeros(1)) == 0).double().mean().item()
    assert abs(dropped - 0.300003) < 0.0004


def test_inplace_dropout_is_dropout_written_over_its_input() -> None:
    from rnnzoo.models.layers import Dropout

    x = torch.randn(6, 7, 8, dtype=torch.float64, requires_grad=True)
    results = []
    for inplace in (False, True):
        torch.manual_seed(0)
        y = Dropout(0.25, inplace=inplace)(x * 1.0)  # `x * 1.0`: a fresh tensor that nothing else reads
        (y * torch.arange(8.0, dtype=torch.float64)).sum().backward()
        results.append((y.detach(), x.grad.clone()))
        x.grad = None
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert (results[1][0] == 0).any()


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


@pytest.mark.parametrize("set_to_none", [True, False])
def test_kept_grad_embedding_trains_exactly_like_nn_embedding(set_to_none: bool) -> None:
    from rnnzoo.models.layers import KeptGradEmbedding

    torch.manual_seed(0)
    kept, plain = KeptGradEmbedding(50, 4), torch.nn.Embedding(50, 4)
    plain.load_state_dict(kept.state_dict())
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.1) for m in (kept, plain)]
    for step in range(6):
        batches = [torch.randint(0, 50 if step % 2 else 10, (3, 7)) for _ in range(1 + step % 2)]
        grads = []
        for module, optimizer in zip((kept, plain), optimizers):
            optimizer.zero_grad(set_to_none=set_to_none)
            for idx in batches:  # one or two lookups per step: their gradients add up
                (module(idx) ** 2).sum().backward()
            grads.append(module.weight.grad.clone())
            optimizer.step()
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)
        torch.testing.assert_close(kept.weight, plain.weight, rtol=0, atol=1e-6)
    assert len(kept._rows) <= 2 and sum(len(r) for r in kept._rows) <= 50
    grad = kept.weight.grad.clone()
    with torch.no_grad():  # evaluation takes the plain path and leaves the gradient alone
        kept(torch.tensor([[1, 2]]))
    assert torch.equal(kept.weight.grad, grad)


def test_time_major_embedding_is_nn_embedding_in_the_lstm_layout() -> None:
    from rnnzoo.models.layers import TimeMajorEmbedding

    torch.manual_seed(0)
    tm, plain = TimeMajorEmbedding(9, 5), torch.nn.Embedding(9, 5)
    plain.load_state_dict(tm.state_dict())
    idx = torch.randint(0, 9, (3, 7))
    out = tm(idx)
    assert out.shape == (3, 7, 5) and out.transpose(0, 1).is_contiguous()  # stored (T, B, D)
    torch.testing.assert_close(out, plain(idx), rtol=0, atol=0)
    out.pow(2).sum().backward()
    plain(idx).pow(2).sum().backward()
    torch.testing.assert_close(tm.weight.grad, plain.weight.grad)


def test_kept_grad_embedding_leaves_the_gradient_to_autograd_under_ddp(monkeypatch: pytest.MonkeyPatch) -> None:
    """DDP all-reduces the gradient that autograd hands it, in place: a kept buffer would then hold rows
    that another process's batch touched, which this process never clears."""
    from rnnzoo.models.layers import KeptGradEmbedding

    emb = KeptGradEmbedding(20, 3)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    emb(torch.tensor([[1, 2, 2]])).sum().backward()
    assert emb._grad is None and emb.weight.grad is not None  # nn.Embedding's own gradient
    assert emb.weight.grad[2].tolist() == [2.0, 2.0, 2.0] and emb.weight.grad[0].abs().sum() == 0
