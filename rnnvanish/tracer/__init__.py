"""The gradient tracer: how much of the error signal at step T still reaches step k?

    from rnnvanish.tracer import trace
    tr = trace(cell_or_model, inputs)          # inputs: ids (T, B) or values (T, B, I)
    tr.profile("h")                            # median, q10, q90 of ||dE_T/dh_{T-l}|| by lag l
    tr.save("trace.npz")                       # + trace.csv;  Trace.load("trace.npz")

Modules: `signal` (the lag profile and the contributions by lag, from one loss at step T),
`jacobians` (step Jacobians, the norms of their products for every pair of steps, singular
values), `trace` (the Trace record and its files), `experiment` (fresh model settings and
input sources), `training` (profiles recorded during training).
"""
from .experiment import Setting, corpus_inputs, dense_inputs, parse_compare, task_inputs, token_inputs, vary
from .jacobians import step_jacobians
from .products import exact_log_norms, jacobian_log_norms, sketch_log_norms
from .signal import backprop_signal, bound_base, fit_decay, unit_directions
from .trace import Trace, trace
from .training import TrainingTraces, load_training_traces, record_training_trace

__all__ = [
    "trace", "Trace", "record_training_trace", "load_training_traces", "TrainingTraces",
    "Setting", "vary", "parse_compare", "dense_inputs", "token_inputs", "corpus_inputs", "task_inputs",
    "step_jacobians", "jacobian_log_norms", "exact_log_norms", "sketch_log_norms",
    "backprop_signal", "bound_base", "fit_decay", "unit_directions",
]
