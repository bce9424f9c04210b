"""A stack of recurrent layers with dropout, zoneout and residual connections.

    x^(1) = x                                       the input (token ids or dense vectors)
    h^(l) = cell_l(x^(l), carry_l)                  layer l's states, (T+1, B, H), carry_l its own
    o^(l) = h^(l)[1:] + x^(l)   (residual, layers 2..L: x^(l) is the layer below's output)   else h^(l)[1:]
    x^(l+1) = m^(l) ⊙ o^(l)                         dropout between layers
    out = m^(L) ⊙ o^(L)                             dropout before the readout

Dropout is inverted (a kept unit is scaled by 1/(1-p)) and follows PyTorch: a fresh mask for
every step, none at evaluation. `variational` draws one mask per sequence instead (Gal &
Ghahramani 2016), for the inputs and outputs of every layer and for the recurrent state fed to
W_hh inside each cell. Zoneout (Krueger et al. 2017) keeps each unit's previous value with
probability p inside each cell; at evaluation the cell takes the expectation. Masks are drawn by
`draw_masks` from the run's generator and passed in, so a gradient check can hold them fixed;
`masks=None` is evaluation.

Layer l's parameters carry the suffix `_l{l-1}` after the first layer's, which keep the one-layer
names: W_xh, W_hh, b_h (or b_xh, b_hh), then W_xh_l1, W_hh_l1, ... -- PyTorch's `weight_ih_l1`,
... (see rnnvanish.interop). The carry of the stack is the layers' carries in order.

The backward pass goes through the layers in the reverse order of the forward:

    d o^(L) = m^(L) ⊙ d out
    for l = L .. 1:   grads_l, d x^(l) = cell_l.backward(d o^(l))  (+ d o^(l) through the residual)
                      d o^(l-1) = m^(l-1) ⊙ d x^(l)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cells import make_cell
from .errors import RnnvanishError


def suffix(layer: int) -> str:
    """The parameter-name suffix of layer `layer` (0-based): '' for the first, '_l1', '_l2', ..."""
    return "" if layer == 0 else f"_l{layer}"


def depth_summary(layers=1, *, dropout=0.0, variational=False, zoneout=0.0, residual=False) -> str:
    """'' for one layer without regularisation, else e.g. '2 layers, dropout 0.25 (variational),
    zoneout 0.1, residual'."""
    parts = [f"{layers} layers"] if layers > 1 else []
    if dropout:
        parts.append(f"dropout {dropout:g}" + (" (variational)" if variational else ""))
    if zoneout:
        parts.append(f"zoneout {zoneout:g}")
    if residual:
        parts.append("residual")
    return ", ".join(parts)


@dataclass
class StackMasks:
    """The masks of one window: between[l] multiplies layer l's output (the last one feeds the
    readout), each (T, B, H) or (B, H); cells[l] is layer l's CellMasks (or None)."""
    between: list
    cells: list


class Stack:
    """`layers` cells of one kind; see the module docstring. `cell_options` go to every cell."""

    def __init__(self, cell, input_size, hidden_size, layers=1, *, dropout=0.0, variational=False, zoneout=0.0,
                 residual=False, seed=0, dtype=np.float64, backend=None, **cell_options):
        layers = int(layers)
        if layers < 1:
            raise RnnvanishError(f"a stack needs at least one layer, got {layers}")
        for name, p in (("dropout", dropout), ("zoneout", zoneout)):
            if not 0.0 <= p < 1.0:
                raise RnnvanishError(f"--{name} is a probability in [0, 1), got {p!r}")
        self.dropout, self.variational, self.zoneout = float(dropout), bool(variational), float(zoneout)
        self.residual = bool(residual)
        # A residual connection adds a layer's input (the layer below's output, of the same size) to
        # its output: every layer but the first, whose input is the data.
        self.residual_layers = [residual and l > 0 for l in range(layers)]
        if residual and layers == 1:
            raise RnnvanishError("--residual adds each layer's input, the output of the layer below, to its output; "
                                 "a single layer has none: use --layers 2 or more")
        # The IndRNN's long-memory start (`epsilon`) is for the top layer only, as in Li et al.'s
        # code for the adding problem: the layers below start in [0, 1].
        # An epsilon of 0 is no floor.
        top_only = {k: v for k in ("epsilon",) if (v := cell_options.pop(k, None))}
        # Layer 1 keeps the one-layer seed, so a one-layer stack is today's cell exactly.
        self.cells = [make_cell(cell, input_size if l == 0 else hidden_size, hidden_size,
                                seed=seed if l == 0 else [seed, 10 + l], dtype=dtype, backend=backend,
                                **cell_options, **(top_only if l == layers - 1 else {}))
                      for l in range(layers)]
        self.params = self.cells[0].params if layers == 1 else {
            name + suffix(l): array for l, c in enumerate(self.cells) for name, array in c.params.items()}
        c0 = self.cells[0]
        self.name, self.hidden_size, self.input_size = c0.name, c0.hidden_size, c0.input_size
        self.dtype, self.backend, self.state_names = c0.dtype, c0.backend, c0.state_names

    @property
    def layers(self) -> int:
        return len(self.cells)

    @property
    def recurrent_keys(self) -> tuple:
        """The names in `params` of every layer's recurrent parameters (`Cell.recurrent_names`)."""
        return tuple(name + suffix(l) for l, c in enumerate(self.cells) for name in c.recurrent_names)

    @property
    def plain(self) -> bool:
        """One layer, nothing dropped, no zoneout, no residual: the cell alone."""
        return self.layers == 1 and not (self.dropout or self.zoneout or self.residual)

    @property
    def summary(self) -> str:
        """What the stack adds to its cell, for log lines and chart titles (`depth_summary`)."""
        return depth_summary(self.layers, dropout=self.dropout, variational=self.variational, zoneout=self.zoneout,
                             residual=self.residual)

    def _kernels(self):
        return self.cells[0]._kernels()

    def constrain(self):
        """Each layer's own parameter constraint after an update (see Cell.constrain)."""
        for cell in self.cells:
            cell.constrain()

    def config(self) -> dict:
        """What a one-layer model without regularisation does not record (so its files stay as they were)."""
        out = {}
        if self.layers > 1:
            out["layers"] = self.layers
        for key, default in (("dropout", 0.0), ("variational", False), ("zoneout", 0.0), ("residual", False)):
            if getattr(self, key) != default:
                out[key] = getattr(self, key)
        return out

    # -- state ------------------------------------------------------------------------------
    def initial_state(self, batch):
        return tuple(s for c in self.cells for s in c.initial_state(batch))

    def _split(self, state):
        """The stack's carry as one tuple per layer (None: zeros)."""
        if state is None:
            return [None] * self.layers
        n = len(self.state_names)
        state = tuple(state)
        if len(state) != n * self.layers:
            raise ValueError(f"a {self.layers}-layer {self.name} stack carries {n * self.layers} arrays, got {len(state)}")
        return [state[l * n:(l + 1) * n] for l in range(self.layers)]

    # -- masks --------------------------------------------------------------------------------
    def draw_masks(self, T, B, rng) -> StackMasks | None:
        """Training masks for a (T, B) window from `rng` (None when nothing is dropped or zoned out)."""
        if not (self.dropout or self.zoneout):
            return None
        from .cells import CellMasks

        H, keep = self.hidden_size, 1.0 - self.dropout
        shape = (B, H) if self.variational else (T, B, H)

        def dropout_mask(shape):
            return ((rng.random(shape) < keep) / keep).astype(self.dtype)

        between = [dropout_mask(shape) if self.dropout else None for _ in self.cells]
        cells = []
        for _ in self.cells:
            recurrent = dropout_mask((B, H)) if (self.dropout and self.variational) else None
            zone = (rng.random((T, B, H)) < self.zoneout).astype(self.dtype) if self.zoneout else None
            cells.append(CellMasks(recurrent=recurrent, zoneout=zone) if (recurrent is not None or zone is not None)
                         else None)
        return StackMasks(between=between, cells=cells)

    def _eval_cell_masks(self, T, B):
        """At evaluation zoneout takes its expectation: every unit keeps p of its previous value."""
        if not self.zoneout:
            return None
        from .cells import CellMasks

        return CellMasks(recurrent=None, zoneout=np.full((T, B, self.hidden_size), self.zoneout, dtype=self.dtype))

    # -- forward / backward -------------------------------------------------------------------
    def forward(self, x, state=None, masks: StackMasks | None = None):
        """(h, state_T, cache): h (T+1, B, H) with h[0] the top layer's initial h and h[1:] the
        stack's output (after the residual and the readout's dropout)."""
        x = np.asarray(x)
        T, B = x.shape[0], x.shape[1]
        caches, carries, layer_input = [], [], x
        for l, (cell, carry) in enumerate(zip(self.cells, self._split(state))):
            cell_masks = masks.cells[l] if masks is not None else self._eval_cell_masks(T, B)
            h, carry_T, cache = (cell.forward(layer_input, carry) if cell_masks is None
                                 else cell.forward(layer_input, carry, masks=cell_masks))
            out = h[1:] + layer_input if self.residual_layers[l] else h[1:]
            drop = masks.between[l] if masks is not None else None
            cache["out"] = out
            caches.append(cache)
            carries.extend(carry_T)
            layer_input = out * drop if drop is not None else out          # (T, B, H)
        top = np.concatenate([caches[-1]["h"][:1], layer_input], axis=0)
        return top, tuple(carries), {"layers": caches, "masks": masks, "T": T, "B": B, "x": x}

    def backward(self, dh, cache, dstate=None, truncate=None):
        """(grads, dstate_0, norms) as a cell's: dh (T, B, H) on the stack's output h[1:].
        norms["h"] (and "c") are the top layer's; norms["layers"][l] every layer's."""
        masks, caches = cache["masks"], cache["layers"]
        d_out = np.asarray(dh)
        grads, dstates, layer_norms = {}, [], [None] * self.layers
        dcarries = self._split(dstate)
        for l in range(self.layers - 1, -1, -1):
            drop = masks.between[l] if masks is not None else None
            if drop is not None:
                d_out = d_out * drop                                         # through the dropout
            cell = self.cells[l]
            g, d0, norms = cell.backward(d_out, caches[l], dcarries[l], truncate=truncate)
            grads.update({name + suffix(l): array for name, array in g.items()})
            dstates[:0] = list(d0)
            layer_norms[l] = norms
            if l > 0:
                dx = caches[l]["dx"]                                        # dE/dx^(l): into the layer below
                d_out = dx + d_out if self.residual_layers[l] else dx
        return grads, tuple(dstates), {**layer_norms[-1], "layers": layer_norms}
