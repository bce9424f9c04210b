"""Exchanging weights with PyTorch, without needing PyTorch.

PyTorch stores the transposed (column-vector) weights and two biases per layer:

    torch.nn.RNN / LSTM / GRU          rnnvanish
    weight_ih_l0  (G*H, I)             W_xh.T      (layer k of a stack: weight_ih_l{k} <-> W_xh_l{k})
    weight_hh_l0  (G*H, H)             W_hh.T
    bias_ih_l0    (G*H,)               b_h       (GRU: b_xh)
    bias_hh_l0    (G*H,)               zeros     (GRU: b_hh)
    decoder.weight (V, H), decoder.bias (V,)   W_hy.T, b_y   (a torch.nn.Linear output layer)

Gate orders are the same (LSTM i, f, g, o; GRU r, z, n), so blocks map one to one. The tanh
RNN and the LSTM add the two PyTorch biases into one: b_h = bias_ih + bias_hh. A language
model's token input corresponds to a one-hot input of size V to the PyTorch layer
(weight_ih_l0 has V columns). PyTorch has no sigmoid RNN and no reset-before GRU; their
weights still map, but PyTorch would compute something else with them.

Arrays are plain NumPy; torch tensors passed in are converted with `.detach().cpu().numpy()`.
"""
import numpy as np

from .cells import CELLS, Cell
from .model import CellModel, LanguageModel
from .stack import Stack

# A cell whose weights are those of a torch layer names it (`Cell.torch_layer`); the number of
# gate blocks in weight_hh tells the layers apart (the first cell registered for each count).
GATES_TO_CELL = {}
for _name, _cls in CELLS.items():
    if _cls.torch_layer is not None:
        GATES_TO_CELL.setdefault(_cls.n_gates, _name)


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _layer_cells(model):
    """(the cells layer by layer, the LanguageModel or None) of a cell, a Stack or a model."""
    if isinstance(model, Cell):
        return [model], None
    if isinstance(model, Stack):
        return model.cells, None
    if isinstance(model, CellModel):
        return model.stack.cells, (model if isinstance(model, LanguageModel) else None)
    raise TypeError(f"expected a cell, a stack or a model, got {type(model).__name__}")


def to_torch_state_dict(model, prefix=""):
    """NumPy arrays named as in torch.nn.RNN/LSTM/GRU(num_layers=L) (+ `decoder.*` for a LanguageModel).

    Layer k (0-based) of a stack maps to `weight_ih_l{k}`, ...: its parameters are the ones
    with the suffix `_l{k}` (none for the first layer)."""
    cells, lm = _layer_cells(model)
    state = {}
    for k, cell in enumerate(cells):
        if cell.torch_layer is None:
            raise ValueError(f"the {cell.name} cell has no PyTorch counterpart whose weights map onto its own")
        p = cell.params
        state[f"{prefix}weight_ih_l{k}"] = p["W_xh"].T.copy()
        state[f"{prefix}weight_hh_l{k}"] = p["W_hh"].T.copy()
        if len(cell.bias_names) == 2:                                  # the GRU keeps both biases
            state[f"{prefix}bias_ih_l{k}"] = p[cell.bias_names[0]].copy()
            state[f"{prefix}bias_hh_l{k}"] = p[cell.bias_names[1]].copy()
        else:
            state[f"{prefix}bias_ih_l{k}"] = p["b_h"].copy()
            state[f"{prefix}bias_hh_l{k}"] = np.zeros_like(p["b_h"])
    if lm is not None:
        state["decoder.weight"] = lm.params["W_hy"].T.copy()
        state["decoder.bias"] = lm.params["b_y"].copy()
    return state


def from_torch_state_dict(state, cell=None, prefix="", dtype=None, **options):
    """Build a cell, a Stack (more than one layer) or a LanguageModel (when `decoder.*` is
    present) from PyTorch-named weights.

    The cell type is read from the shapes (G*H rows with H columns in weight_hh: G = 1 tanh,
    3 GRU, 4 LSTM) unless `cell` is given, the number of layers from the names; `options` go to
    the cell (activation, reset_after, backend). The dtype follows the arrays unless given."""
    layers = 0
    while f"{prefix}weight_hh_l{layers}" in state:
        layers += 1
    try:
        arrays = [{key: _numpy(state[f"{prefix}{key}_l{k}"]) for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
                  for k in range(max(layers, 1))]
    except KeyError as exc:
        raise ValueError(f"state dict lacks {exc.args[0]!r}; keys are {sorted(state)}") from None
    W_hh = arrays[0]["weight_hh"]
    GH, H = W_hh.shape
    if GH % H or GH // H not in GATES_TO_CELL:
        raise ValueError(f"weight_hh_l0 has shape {W_hh.shape}: not (G*H, H) with G in 1, 3, 4")
    inferred = GATES_TO_CELL[GH // H]
    cell = cell or inferred
    if cell not in CELLS or CELLS[cell].torch_layer != CELLS[inferred].torch_layer:
        raise ValueError(f"weights are those of a {inferred!r} cell, not {cell!r}")
    I = arrays[0]["weight_ih"].shape[1]
    dtype = dtype or arrays[0]["weight_ih"].dtype
    if "decoder.weight" in state:
        W_dec = _numpy(state["decoder.weight"])
        model = LanguageModel(cell, I, H, dtype=dtype, layers=layers, **options)
        if W_dec.shape != (I, H):
            raise ValueError(f"decoder.weight has shape {W_dec.shape}, expected {(I, H)} (V = input size)")
        model.params["W_hy"][...] = W_dec.T
        model.params["b_y"][...] = _numpy(state["decoder.bias"])
        cells = model.stack.cells
    elif layers > 1:
        model = Stack(cell, I, H, layers, dtype=dtype, **options)
        cells = model.cells
    else:
        model = CELLS[cell](I, H, dtype=dtype, **options)
        cells = [model]
    for target, a in zip(cells, arrays):
        p = target.params
        if p["W_xh"].shape != a["weight_ih"].T.shape:
            raise ValueError(f"weight_ih has shape {a['weight_ih'].shape}, expected {p['W_xh'].T.shape}")
        p["W_xh"][...] = a["weight_ih"].T
        p["W_hh"][...] = a["weight_hh"].T
        if len(target.bias_names) == 2:
            p[target.bias_names[0]][...] = a["bias_ih"]
            p[target.bias_names[1]][...] = a["bias_hh"]
        else:
            p["b_h"][...] = a["bias_ih"] + a["bias_hh"]
    return model
