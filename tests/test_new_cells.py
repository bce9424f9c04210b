"""What every cell beyond tanh, LSTM and GRU must do alike: resume bit for bit, sample the same
tokens on both backends, and be refused by the PyTorch interop (torch has no such layer)."""
import numpy as np
import pytest

from conftest import make_task_trainer
from rnnvanish.cells import make_cell
from rnnvanish.interop import to_torch_state_dict
from rnnvanish.model import LanguageModel

# cell -> a parameter that training must move (so the comparison below compares something)
MOVED = {"indrnn": "u", "lnlstm": "alpha_c", "lru": "W_xh", "mingru": "W_xh", "minlstm": "W_xh"}


@pytest.mark.parametrize("cell", sorted(MOVED))
def test_a_resumed_run_continues_bit_for_bit(cell):
    """A task run restored from a checkpoint (the carry, every parameter and its optimiser state,
    the cells' own constraints applied after every update) computes the same parameters as one
    that never stopped."""
    options = dict(cell=cell, lr=0.05, steps=8, hidden=6, layers=2, residual=True, backend="numba")
    whole = make_task_trainer(**options)
    for _ in range(8):
        whole.train_step()
    first = make_task_trainer(**options)
    for _ in range(3):
        first.train_step()
    second = make_task_trainer(**options)
    second.restore(first.checkpoint())
    for _ in range(5):
        second.train_step()
    for name, value in whole.model.params.items():
        assert np.array_equal(second.model.params[name], value), name
    assert not np.array_equal(first.model.params[MOVED[cell]], whole.model.params[MOVED[cell]])


@pytest.mark.parametrize("cell", sorted(MOVED))
def test_sampling_agrees_between_backends_and_torch_interop_refuses(cell):
    samples = [LanguageModel(cell, 7, 6, seed=3, backend=b).sample([1, 2], 12, 1.0, rng=5) for b in ("numpy", "numba")]
    assert samples[0].shape == (12,) and np.array_equal(samples[0], samples[1])
    with pytest.raises(ValueError, match="no PyTorch counterpart"):
        to_torch_state_dict(make_cell(cell, 3, 4))
