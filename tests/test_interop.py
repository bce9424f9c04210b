"""Weights exchanged with PyTorch: the same outputs and the same gradients (float64)."""
import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.cells import GRU, LSTM, TanhRNN
from rnnvanish.interop import from_torch_state_dict, to_torch_state_dict
from rnnvanish.model import LanguageModel


def test_round_trip_without_torch():
    for model in (TanhRNN(3, 4, seed=1), LSTM(3, 4, seed=1), GRU(3, 4, seed=1), LanguageModel("lstm", 6, 4, seed=2)):
        for p in model.params.values():
            p += 0.1                                              # non-zero biases
        state = to_torch_state_dict(model)
        back = from_torch_state_dict(state)
        assert type(back) is type(model)
        for k, v in model.params.items():
            assert_close(back.params[k], v, rtol=0, name=k)
    assert to_torch_state_dict(LSTM(3, 4))["weight_ih_l0"].shape == (16, 3)


def test_mismatched_state_is_rejected():
    state = to_torch_state_dict(LSTM(3, 4))
    with pytest.raises(ValueError, match="lstm"):
        from_torch_state_dict(state, cell="gru")
    del state["bias_hh_l0"]
    with pytest.raises(ValueError, match="bias_hh_l0"):
        from_torch_state_dict(state)


TORCH_CELLS = [("tanh", {"nonlinearity": "tanh"}, {"activation": "tanh"}),
               ("tanh", {"nonlinearity": "relu"}, {"activation": "relu"}),
               ("lstm", {}, {}), ("gru", {}, {})]


@pytest.mark.parametrize("cell,torch_kw,our_kw", TORCH_CELLS, ids=["tanh", "relu", "lstm", "gru"])
def test_cells_match_torch(cell, torch_kw, our_kw):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    T, B, I, H = 6, 3, 4, 5
    layer = {"tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H, dtype=torch.float64, **torch_kw)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-0.5, 0.5)                                 # non-zero biases
    ours = from_torch_state_dict(layer.state_dict(), backend="numpy", **our_kw)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(T, B, I))
    h0 = rng.normal(size=(B, H)) * 0.5
    R, R_T = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    xt = torch.tensor(x)
    h0t = torch.tensor(h0[None], requires_grad=True)
    if cell == "lstm":
        c0 = rng.normal(size=(B, H)) * 0.5
        c0t = torch.tensor(c0[None], requires_grad=True)
        out, (hn, cn) = layer(xt, (h0t, c0t))
        state0 = (h0, c0)
    else:
        out, hn = layer(xt, h0t)
        state0 = (h0,)
    loss = (out * torch.tensor(R)).sum() + (hn[0] * torch.tensor(R_T)).sum()
    loss.backward()

    h, state_T, cache = ours.forward(x, state0)
    assert_close(h[1:], out.detach().numpy(), rtol=1e-12, name="outputs")
    assert_close(state_T[0], hn[0].detach().numpy(), rtol=1e-12, name="final h")
    dstate_T = (R_T, np.zeros((B, H))) if cell == "lstm" else (R_T,)
    grads, dstate0, _ = ours.backward(R, cache, dstate_T)
    mapped = to_torch_state_dict(ours)       # names only; compare gradients under the same mapping
    assert set(mapped) == {n for n, _ in layer.named_parameters()}
    assert_close(grads["W_xh"], layer.weight_ih_l0.grad.numpy().T, rtol=1e-11, name="W_xh")
    assert_close(grads["W_hh"], layer.weight_hh_l0.grad.numpy().T, rtol=1e-11, name="W_hh")
    if cell == "gru":
        assert_close(grads["b_xh"], layer.bias_ih_l0.grad.numpy(), rtol=1e-11, name="b_xh")
        assert_close(grads["b_hh"], layer.bias_hh_l0.grad.numpy(), rtol=1e-11, name="b_hh")
    else:
        assert_close(grads["b_h"], layer.bias_ih_l0.grad.numpy(), rtol=1e-11, name="b_h")
        assert_close(grads["b_h"], layer.bias_hh_l0.grad.numpy(), rtol=1e-11, name="b_h (hh)")
    assert_close(dstate0[0], h0t.grad[0].numpy(), rtol=1e-11, name="dh0")
    if cell == "lstm":
        assert_close(dstate0[1], c0t.grad[0].numpy(), rtol=1e-11, name="dc0")


@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
def test_language_model_matches_torch(cell):
    """One-hot tokens into torch.nn.RNN/LSTM/GRU + Linear + mean cross-entropy."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    V, H, T, B = 7, 5, 6, 2
    layer = {"tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](V, H, dtype=torch.float64)
    decoder = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        for p in [*layer.parameters(), *decoder.parameters()]:
            p.uniform_(-0.5, 0.5)
    state = {**layer.state_dict(), **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
    ours = from_torch_state_dict(state, backend="numpy")
    assert isinstance(ours, LanguageModel)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    out, _ = layer(torch.nn.functional.one_hot(torch.tensor(x), V).double())
    logits = decoder(out)
    loss_t = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(y).reshape(-1))
    loss_t.backward()
    loss, grads, _, _ = ours.loss_and_grads(x, y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    assert_close(grads["W_hy"], decoder.weight.grad.numpy().T, rtol=1e-11, name="W_hy")
    assert_close(grads["b_y"], decoder.bias.grad.numpy(), rtol=1e-11, name="b_y")
    assert_close(grads["W_xh"], layer.weight_ih_l0.grad.numpy().T, rtol=1e-11, name="W_xh")
    assert_close(grads["W_hh"], layer.weight_hh_l0.grad.numpy().T, rtol=1e-11, name="W_hh")


@pytest.mark.parametrize("cell", ["tanh", "lstm", "gru"])
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stacked_language_model_matches_torch_num_layers(cell, layers, backend):
    """torch.nn.RNN/LSTM/GRU(num_layers=L) with non-zero biases, weights exchanged through interop:
    the loss and every parameter's gradient agree (float64), and the names map both ways."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    V, H, T, B = 7, 5, 6, 2
    layer = {"tanh": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        V, H, num_layers=layers, dtype=torch.float64)
    decoder = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        for p in [*layer.parameters(), *decoder.parameters()]:
            p.uniform_(-0.5, 0.5)
    state = {**layer.state_dict(), **{f"decoder.{k}": v for k, v in decoder.state_dict().items()}}
    ours = from_torch_state_dict(state, backend=backend)
    assert ours.layers == layers
    back = to_torch_state_dict(ours)
    for key, value in layer.state_dict().items():
        if cell != "gru" and key.startswith("bias_"):
            continue                                           # the two biases are added into one
        assert_close(back[key], value.numpy(), rtol=0, name=key)
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    out, _ = layer(torch.nn.functional.one_hot(torch.tensor(x), V).double())
    loss_t = torch.nn.functional.cross_entropy(decoder(out).reshape(-1, V), torch.tensor(y).reshape(-1))
    loss_t.backward()
    loss, grads, _, _ = ours.loss_and_grads(x, y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    for k in range(layers):
        s = "" if k == 0 else f"_l{k}"
        assert_close(grads[f"W_xh{s}"], getattr(layer, f"weight_ih_l{k}").grad.numpy().T, rtol=1e-10, name=f"W_xh{s}")
        assert_close(grads[f"W_hh{s}"], getattr(layer, f"weight_hh_l{k}").grad.numpy().T, rtol=1e-10, name=f"W_hh{s}")
        bias = "b_xh" if cell == "gru" else "b_h"
        assert_close(grads[bias + s], getattr(layer, f"bias_ih_l{k}").grad.numpy(), rtol=1e-10, name=bias + s)
        if cell == "gru":
            assert_close(grads["b_hh" + s], getattr(layer, f"bias_hh_l{k}").grad.numpy(), rtol=1e-10, name="b_hh" + s)
    assert_close(grads["W_hy"], decoder.weight.grad.numpy().T, rtol=1e-10, name="W_hy")
