"""The Numba kernels: the twins of `rnnvanish.reference`, jitted, and the language model's fast path.

Every function of the reference is here with the same name, arguments and results
(`backend="numba"` imports this package in its place):

    tanh_forward, tanh_backward, lstm_forward, lstm_backward, gru_forward, gru_backward
                                        recurrent.py: the recurrences and truncated BPTT
    softmax_xent, embed_backward        output.py: the language-model pieces

and, for `rnnvanish.model.LanguageModel` on this backend (language_model.py):

    lm_loss_and_grads(model, inputs, targets, state, truncate)   one window of truncated BPTT
    lm_generate(model, token, state, uniforms, temperature)      one jitted loop per cell

and `adam_update(p, g, m, v, lr, beta1, beta2, eps, t)` (optim.py): `rnnvanish.optim.Adam`'s
update in one pass, bit for bit (Adam calls it on this backend).

Kernels are compiled on first use for each dtype (some seconds each) and cached on disk
(`__pycache__` beside them); a process with a warm cache loads them in a fraction of a second.
No jitted function calls a jitted function of another module here, so the cache never runs a
stale copy after an edit.

Importing the package calls `memory.keep_freed_memory()`: glibc's malloc then reuses the
blocks a window frees instead of mapping them anew each step (see memory.py).
"""
from ..reference import ACTIVATIONS
from .memory import keep_freed_memory
from .language_model import lm_generate, lm_loss_and_grads
from .optim import adam_update
from .output import embed_backward, input_rows, output_layer, softmax_xent, window_grads
from .recurrent import (RELU, SIGMOID, TANH, gru_backward, gru_forward, gru_generate, lstm_backward, lstm_forward,
                        lstm_generate, tanh_backward, tanh_forward, tanh_generate)

__all__ = ["tanh_forward", "tanh_backward", "lstm_forward", "lstm_backward", "gru_forward", "gru_backward",
           "softmax_xent", "embed_backward", "input_rows", "output_layer", "window_grads",
           "tanh_generate", "lstm_generate", "gru_generate", "lm_loss_and_grads", "lm_generate", "adam_update",
           "TANH", "SIGMOID", "RELU", "ACTIVATIONS", "keep_freed_memory"]

keep_freed_memory()
