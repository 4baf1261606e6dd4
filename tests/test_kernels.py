"""rnnzoo.kernels: every fast path against its plain reference, values and gradients."""

from __future__ import annotations

import pytest
import torch

from rnnzoo.kernels.conv1d import ChannelsLastConv1d, ChannelsLastMaxPool1d, reference_conv1d, reference_max_pool1d
from rnnzoo.kernels.conv3d import reference_conv3d, time_sliced_conv3d
from rnnzoo.kernels.conv_lstm import reference_conv_lstm
from rnnzoo.kernels.dropout import LaneDropout, dropout_mask, reference_dropout_mask
from rnnzoo.kernels.embedding import KeptGradEmbedding, TimeMajorEmbedding, reference_embedding
from rnnzoo.kernels.lstm import WeightDropLSTM, reference_lstm, stepwise_applies
from rnnzoo.models.conv_lstm import ConvLSTM2D, NextFrameConv3d
from rnnzoo.models.layers import LSTM, RecurrentDropoutLSTM, StepwiseLSTM

# --- dropout.py ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_mask", [dropout_mask, reference_dropout_mask])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.25, 0.3, 0.5, 1.0])
def test_dropout_mask_drops_p_and_scales_the_rest(p: float, make_mask) -> None:
    like = torch.zeros(1, dtype=torch.float64)
    torch.manual_seed(0)
    mask = make_mask((400, 500), p, like)
    assert mask.shape == (400, 500) and mask.dtype == torch.float64
    if p == 1.0:
        assert (mask == 0).all()
        return
    assert set(mask.unique().tolist()) <= {0.0, 1.0 / (1.0 - p)}
    assert abs((mask == 0).double().mean().item() - p) < 0.005  # 200,000 draws: 4 standard deviations
    assert abs(mask.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    torch.manual_seed(0)
    assert torch.equal(make_mask((400, 500), p, like), mask)  # seeded: resumed runs draw the same masks
    # every lane of the random words (eight of 8 bits for these rates, else four of 16) is used alike:
    # a biased lane would show in one column
    if p in (0.3, 0.5):
        lanes = (mask == 0).reshape(-1, 8).double().mean(0)
        assert (lanes - p).abs().max() < 0.01


def test_dropout_mask_rate_is_exact_to_16_bits() -> None:
    # 0.3 is not a multiple of 1/256, so it takes 16-bit lanes: 0.300003, where 8 bits would give 0.3008.
    # 10 million draws (one standard deviation: 0.00015) tell the two apart; seeded, so never flaky.
    torch.manual_seed(0)
    dropped = (dropout_mask((10_000_000,), 0.3, torch.zeros(1)) == 0).double().mean().item()
    assert abs(dropped - 0.300003) < 0.0004


def test_inplace_dropout_is_dropout_written_over_its_input() -> None:
    x = torch.randn(6, 7, 8, dtype=torch.float64, requires_grad=True)
    results = []
    for inplace in (False, True):
        torch.manual_seed(0)
        y = LaneDropout(0.25, inplace=inplace)(x * 1.0)  # `x * 1.0`: a fresh tensor that nothing else reads
        (y * torch.arange(8.0, dtype=torch.float64)).sum().backward()
        results.append((y.detach(), x.grad.clone()))
        x.grad = None
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert (results[1][0] == 0).any()


def test_lane_dropout_multiplies_by_the_mask_in_training_only() -> None:
    x = torch.randn(5, 9, dtype=torch.float64)
    dropout = LaneDropout(0.5)
    torch.manual_seed(3)
    y = dropout(x)
    torch.manual_seed(3)
    assert torch.equal(y, x * dropout_mask(x.shape, 0.5, x))
    assert dropout.eval()(x) is x


# --- embedding.py --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("set_to_none", [True, False])
def test_kept_grad_embedding_trains_exactly_like_nn_embedding(set_to_none: bool) -> None:
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
    torch.manual_seed(0)
    tm, plain = TimeMajorEmbedding(9, 5), torch.nn.Embedding(9, 5)
    plain.load_state_dict(tm.state_dict())
    idx = torch.randint(0, 9, (3, 7))
    out = tm(idx)
    assert out.shape == (3, 7, 5) and out.transpose(0, 1).is_contiguous()  # stored (T, B, D)
    torch.testing.assert_close(out, plain(idx), rtol=0, atol=0)
    torch.testing.assert_close(out, reference_embedding(tm, idx), rtol=0, atol=0)
    out.pow(2).sum().backward()
    plain(idx).pow(2).sum().backward()
    torch.testing.assert_close(tm.weight.grad, plain.weight.grad)


def test_kept_grad_embedding_leaves_the_gradient_to_autograd_under_ddp(monkeypatch: pytest.MonkeyPatch) -> None:
    """DDP all-reduces the gradient that autograd hands it, in place: a kept buffer would then hold rows
    that another process's batch touched, which this process never clears."""
    emb = KeptGradEmbedding(20, 3)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    emb(torch.tensor([[1, 2, 2]])).sum().backward()
    assert emb._grad is None and emb.weight.grad is not None  # nn.Embedding's own gradient
    assert emb.weight.grad[2].tolist() == [2.0, 2.0, 2.0] and emb.weight.grad[0].abs().sum() == 0


# --- lstm.py -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [False, True])
def test_stepwise_lstm_matches_nn_lstm(return_sequences: bool) -> None:
    torch.manual_seed(0)
    fast = StepwiseLSTM(3, 5, return_sequences=return_sequences).double()
    reference = LSTM(3, 5, return_sequences=return_sequences).double()
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(4, 6, 3, dtype=torch.double, requires_grad=True)
    outputs, grads = [], []
    for lstm in (fast, reference):
        out = lstm(x)
        weight = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
        grads.append(torch.autograd.grad((out * weight).sum(), [x, *lstm.parameters()]))
        outputs.append(out)
    assert type(outputs[0].grad_fn).__name__ == "_LSTMStepsBackward"  # the stepwise path did run
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(outputs[0], reference_lstm(fast, x, return_sequences=return_sequences))
    for g_fast, g_ref in zip(*grads):
        torch.testing.assert_close(g_fast, g_ref)
    with torch.no_grad():  # without gradients it is nn.LSTM
        assert not stepwise_applies(fast, x)
        torch.testing.assert_close(fast(x), outputs[1])
    params = tuple(fast.parameters())
    assert torch.autograd.gradcheck(lambda x, *p: torch.func.functional_call(
        fast, dict(zip([n for n, _ in fast.named_parameters()], p)), (x,)), (x[:2, :4], *params))


def test_recurrent_dropout_step_loop_is_an_lstm() -> None:
    torch.manual_seed(0)
    lstm = RecurrentDropoutLSTM(5, 7, 0.2, 0.3)
    x = torch.randn(3, 9, 5)
    fused = lstm.eval()(x)  # no masks in eval mode: the fused kernel
    loop = lstm.step_loop(x, torch.ones(3, 1, 5), torch.ones(3, 7))
    torch.testing.assert_close(loop, fused)


def test_weight_drop_lstm_is_the_fused_lstm_in_eval_and_drops_weights_in_training() -> None:
    torch.manual_seed(0)
    reference = torch.nn.LSTM(5, 7, batch_first=True)
    lstm = WeightDropLSTM(5, 7, 0.2, 0.5)
    lstm.load_state_dict(reference.state_dict())
    x = torch.randn(3, 9, 5)
    torch.testing.assert_close(lstm.eval()(x), reference(x)[1][0][0])
    lstm.train()
    a, b = lstm(x), lstm(x)
    assert not torch.equal(a, b)  # a new mask per batch
    a.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lstm.parameters())


def test_weight_drop_lstm_in_training_is_the_reference_with_its_masks() -> None:
    """In training: the step-by-step cell over the masked inputs with the dropped recurrent weights, values
    and gradients (the masks drawn as the layer draws them: inputs, then weights)."""
    torch.manual_seed(0)
    lstm = WeightDropLSTM(5, 7, 0.2, 0.5).double()
    x = torch.randn(3, 9, 5, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(1)
    ours = lstm(x)
    torch.manual_seed(1)
    input_mask = dropout_mask((3, 1, 5), 0.2, x)
    weight_mask = dropout_mask(lstm.weight_hh_l0.shape, 0.5, x)
    reference = reference_lstm(lstm, x, input_mask=input_mask, weight_hh=lstm.weight_hh_l0 * weight_mask)
    torch.testing.assert_close(ours, reference)
    g = torch.randn_like(ours)
    params = [x, *lstm.parameters()]
    for a, b in zip(torch.autograd.grad(ours, params, g), torch.autograd.grad(reference, params, g)):
        torch.testing.assert_close(a, b)


# --- conv_lstm.py ----------------------------------------------------------------------------------------------


def _reference(layer: ConvLSTM2D, x: torch.Tensor) -> torch.Tensor:
    return reference_conv_lstm(x, layer.input_conv.weight, layer.input_conv.bias, layer.recurrent_conv.weight)


@pytest.mark.parametrize("T", [1, 4])
def test_conv_lstm_matches_the_step_by_step_reference_forward_and_backward(T: int) -> None:
    torch.manual_seed(0)
    first, second = ConvLSTM2D(3, 5).double(), ConvLSTM2D(5, 4, kernel_size=5).double()
    with torch.no_grad():
        for layer in (first, second):
            layer.input_conv.bias.normal_()
    x = torch.randn(2, T, 3, 6, 7, dtype=torch.double, requires_grad=True)
    ours = second(first(x))  # the second layer gets the first's time-major output
    reference = _reference(second, _reference(first, x))
    torch.testing.assert_close(ours, reference)
    grad = torch.randn_like(ours)
    params = [x, *first.parameters(), *second.parameters()]
    for a, b in zip(torch.autograd.grad(ours, params, grad), torch.autograd.grad(reference, params, grad)):
        torch.testing.assert_close(a, b)


# --- conv3d.py -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["same", "causal"])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("frames", [1, 2, 5])
def test_next_frame_head_is_keras_conv3d(padding: str, kernel: int, frames: int) -> None:
    # the 2-D formulation against F.conv3d over the time-padded movie, values and gradients
    torch.manual_seed(0)
    head = NextFrameConv3d(3, kernel, time_padding=padding).double()
    torch.nn.init.uniform_(head.conv.bias)
    x = torch.randn(frames, 2, 6, 7, 3, dtype=torch.float64).transpose(0, 1).requires_grad_()  # (B, T, H, W, F)
    ours = head(x)
    before, after = (kernel // 2, kernel // 2) if padding == "same" else (kernel - 1, 0)
    keras = reference_conv3d(x, head.conv.weight, head.conv.bias, (before, after))  # (B, T, H, W, 1)
    assert keras.shape == (2, frames, 6, 7, 1)
    torch.testing.assert_close(ours, keras)
    torch.testing.assert_close(time_sliced_conv3d(x, head.conv.weight, head.conv.bias, (before, after)), ours,
                               rtol=0, atol=0)
    g = torch.randn_like(ours)
    grads = [torch.autograd.grad((y * g).sum(), (x, head.conv.weight, head.conv.bias)) for y in (ours, keras)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


# --- conv1d.py -------------------------------------------------------------------------------------------------


def test_conv1d_on_sequences_equals_torch_conv1d() -> None:
    torch.manual_seed(0)
    conv = ChannelsLastConv1d(6, 4, 3).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64, requires_grad=True)  # (B, T, C)
    y = conv(x)
    reference = torch.nn.functional.conv1d(x.transpose(1, 2), conv.weight, conv.bias).transpose(1, 2)
    assert y.shape == (2, 7, 4) and torch.allclose(y, reference)
    assert torch.equal(reference_conv1d(conv, x), reference)
    assert torch.autograd.gradcheck(conv, (x,))


def test_max_pooling_1d_on_sequences_equals_torch_max_pool1d() -> None:
    x = torch.randn(3, 23, 5)  # (B, T, C)
    for options in ({"kernel_size": 4}, {"kernel_size": 3, "stride": 2, "padding": 1},
                    {"kernel_size": 4, "ceil_mode": True}):
        reference = torch.nn.MaxPool1d(**options)(x.transpose(1, 2)).transpose(1, 2)
        pool = ChannelsLastMaxPool1d(**options)
        assert torch.equal(pool(x), reference) and torch.equal(reference_max_pool1d(pool, x), reference)
