"""Optimisers that update parameter arrays in place, and learning-rate schedules.

Parameters and gradients are dicts name -> ndarray with the same keys. An optimiser keeps the
very arrays it was given and changes them in place, so the model that owns them sees every
update. The update rules are PyTorch's (torch.optim, defaults otherwise), written with

    p      a parameter            g_t    its gradient at step t = 1, 2, ...
    lr     learning rate          wd     weight decay
    m      first-moment / momentum buffer,  v  second-moment / squared-gradient accumulator

Weight decay is PyTorch's L2 form, applied to every parameter before the rule:
g_t <- g_t + wd * p_{t-1} (the gradient of (wd/2) ||p||^2). State starts at zero.

A parameter may learn at its own multiple of the rate (`set_lr_factors`, the `--recurrent-lr`
of the training commands): p is then updated with lr * factor wherever the rules below say lr.

`state_dict()` is flat and `np.savez`-friendly: `"optimizer"` (the registry name), `"step"`
(t, a 0-d int64 array) and one array per slot and parameter, `"m/W_hh"`, `"v/W_hh"`.
Loading it into a fresh optimiser over parameters of the same shapes continues bit for bit.
"""
import inspect
import math

import numpy as np

from rnnvanish.backend import get_kernels, resolve_backend
from rnnvanish.errors import RnnvanishError


# Ranges a hyperparameter must lie in: (test, what the error says it must be).
_POSITIVE = (lambda x: x > 0, "positive")
_NONNEG = (lambda x: x >= 0, "zero or more")
_UNIT = (lambda x: 0 <= x < 1, "in [0, 1)")
_UNIT_CLOSED = (lambda x: 0 <= x <= 1, "in [0, 1]")
_DECAY = (lambda x: 0 < x <= 1, "in (0, 1]")


def _number(value, what, valid):
    """`value` as a float when it is finite and in range, else one clear RnnvanishError."""
    test, need = valid
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise RnnvanishError(f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and test(value)):
        raise RnnvanishError(f"{what} must be {need}, got {value:g}")
    return value


def _check_kwargs(func, options, what, skip):
    accepted = [p for p in inspect.signature(func).parameters if p not in skip]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RnnvanishError(f"{what} does not take {', '.join(unknown)} (it takes {', '.join(accepted) or 'nothing'})")


# ----------------------------------------------------------------------------- optimisers

class Optimizer:
    """Base class: weight decay, the step count, state slots and their (de)serialisation.

    A subclass names its per-parameter state arrays in `slots` and implements
    `_update(p, g, lr, *slot_arrays)`, which must change `p` and the slot arrays in place.
    """
    name = "base"
    slots = ()
    fuses_scale = False       # whether `_update` takes the clipping factor (`scale=`) into its own pass

    def __init__(self, params, lr, weight_decay=0.0):
        for key, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise RnnvanishError(f"parameter {key!r} must be a floating-point ndarray to be updated in place")
        self.params = params
        self.lr = _number(lr, "learning rate", _POSITIVE)
        self.weight_decay = _number(weight_decay, "weight decay", _NONNEG)
        self.t = 0
        self.state = {slot: {key: np.zeros_like(p) for key, p in params.items()} for slot in self.slots}
        self.lr_factors = {}

    def set_lr_factors(self, factors):
        """Update the parameters named in `factors` (name -> positive number) with lr * factor."""
        unknown = sorted(set(factors) - set(self.params))
        if unknown:
            raise RnnvanishError(f"no parameter named {', '.join(map(repr, unknown))} to give a learning-rate factor")
        self.lr_factors = {key: _number(f, f"learning-rate factor of {key}", _POSITIVE) for key, f in factors.items()}

    def step(self, grads, lr=None, scale=1.0):
        """One update of every parameter from `grads`; `lr` overrides self.lr for this step only.

        `scale` multiplies every gradient first: a clipping factor (`clip.clip_coefficient`),
        which gives the same bits as scaling `grads` in place beforehand, without that pass.
        `grads` is not modified. An override of 0 leaves the parameters as they are but still
        advances the state (t, buffers), as it would in PyTorch.
        """
        lr = self.lr if lr is None else _number(lr, "learning rate", _NONNEG)
        scale = _number(scale, "gradient scale", _NONNEG)
        self._check_grads(grads)
        self.t += 1
        for key, p in self.params.items():
            g, s, lr_p = grads[key], scale, lr * self.lr_factors.get(key, 1.0)
            if s != 1.0 and (self.weight_decay or not self.fuses_scale):
                g, s = g * p.dtype.type(s), 1.0  # the clipped gradient, as `g *= s` would leave it
            if self.weight_decay:
                g = g + self.weight_decay * p    # gradient of (wd/2) ||p||^2 added
            slot_arrays = (self.state[slot][key] for slot in self.slots)
            if self.fuses_scale:
                self._update(p, g, lr_p, *slot_arrays, scale=s)
            else:
                self._update(p, g, lr_p, *slot_arrays)

    def _update(self, p, g, lr, *slot_arrays):
        raise NotImplementedError

    def _check_grads(self, grads):
        if set(grads) != set(self.params):
            missing, extra = sorted(set(self.params) - set(grads)), sorted(set(grads) - set(self.params))
            raise RnnvanishError(f"gradient keys do not match the parameters (missing: {missing}, unexpected: {extra})")
        for key, p in self.params.items():
            if np.shape(grads[key]) != p.shape:
                raise RnnvanishError(f"gradient of {key} has shape {np.shape(grads[key])}, parameter has {p.shape}")

    def state_dict(self):
        """Flat dict of arrays (copies): optimizer name, step count t, and every slot array."""
        d = {"optimizer": np.array(self.name), "step": np.array(self.t, dtype=np.int64)}
        for slot in self.slots:
            for key, a in self.state[slot].items():
                d[f"{slot}/{key}"] = a.copy()
        return d

    def load_state_dict(self, d):
        """Restore a `state_dict()` of the same optimiser over same-shaped parameters, exactly."""
        expected = set(self.state_dict())
        if set(d) != expected:
            missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)
            raise RnnvanishError(f"optimizer state does not fit {self.name} over these parameters "
                                 f"(missing: {missing}, unexpected: {extra})")
        if str(d["optimizer"]) != self.name:
            raise RnnvanishError(f"optimizer state is for {str(d['optimizer'])!r}, not {self.name!r}")
        for slot in self.slots:
            for key, a in self.state[slot].items():
                saved = np.asarray(d[f"{slot}/{key}"])
                if saved.shape != a.shape:
                    raise RnnvanishError(f"optimizer state {slot}/{key} has shape {saved.shape}, parameter has {a.shape}")
        for slot in self.slots:
            for key, a in self.state[slot].items():
                np.copyto(a, d[f"{slot}/{key}"])
        self.t = int(d["step"])


class SGD(Optimizer):
    """Plain gradient descent:  p_t = p_{t-1} - lr * g_t."""
    name = "sgd"

    def _update(self, p, g, lr):
        p -= lr * g


class Momentum(Optimizer):
    """Heavy-ball momentum in PyTorch's form (torch.optim.SGD with momentum, no dampening).

        m_t = mu * m_{t-1} + g_t                    (m_0 = 0, so m_1 = g_1)
        d_t = g_t + mu * m_t   if nesterov   else   m_t
        p_t = p_{t-1} - lr * d_t

    The learning rate multiplies the buffer instead of being folded into it (Sutskever et al.
    2013 fold it in); the two agree while lr is constant.
    """
    name = "momentum"
    slots = ("m",)

    def __init__(self, params, lr, momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum = _number(momentum, "momentum", _UNIT)
        self.nesterov = bool(nesterov)

    def _update(self, p, g, lr, m):
        m *= self.momentum
        m += g                                   # m_t = mu m_{t-1} + g_t
        d = g + self.momentum * m if self.nesterov else m
        p -= lr * d


class Nesterov(Momentum):
    """Momentum with Nesterov's look-ahead: d_t = g_t + mu * m_t (see Momentum)."""
    name = "nesterov"

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), PyTorch's form with lr_decay = 0:

        v_t = v_{t-1} + g_t^2
        p_t = p_{t-1} - lr * g_t / (sqrt(v_t) + eps)
    """
    name = "adagrad"
    slots = ("v",)

    def __init__(self, params, lr, eps=1e-10, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.eps = _number(eps, "eps", _NONNEG)

    def _update(self, p, g, lr, v):
        v += g * g                               # v_t = v_{t-1} + g_t^2
        p -= lr * g / (np.sqrt(v) + self.eps)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012), PyTorch's form (not centred, no momentum):

        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
        p_t = p_{t-1} - lr * g_t / (sqrt(v_t) + eps)

    eps sits outside the square root, as in PyTorch (TensorFlow puts it inside).
    """
    name = "rmsprop"
    slots = ("v",)

    def __init__(self, params, lr, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.alpha = _number(alpha, "alpha", _UNIT_CLOSED)
        self.eps = _number(eps, "eps", _NONNEG)

    def _update(self, p, g, lr, v):
        v *= self.alpha
        v += (1.0 - self.alpha) * g * g          # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
        p -= lr * g / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, PyTorch's arrangement of it:

        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        p_t = p_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

    which is lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m_t / (1 - beta1^t) and
    v_hat = v_t / (1 - beta2^t). Weight decay is the L2 form (Adam, not AdamW).

    The update is the backend's `adam_update` (see `rnnvanish.backend`): the NumPy lines of
    `rnnvanish.reference.optim` on `backend="numpy"`, and on numba (the default) their twin in
    `rnnvanish.kernels.optim`, one jitted pass over each array that gives the same bits. At
    B = 1 the NumPy update costs about as much as the forward and backward pass together.
    """
    name = "adam"
    slots = ("m", "v")
    fuses_scale = True

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, backend=None):
        super().__init__(params, lr, weight_decay)
        self.beta1 = _number(beta1, "beta1", _UNIT)
        self.beta2 = _number(beta2, "beta2", _UNIT)
        self.eps = _number(eps, "eps", _NONNEG)
        self._kernel = get_kernels(backend).adam_update

    def _update(self, p, g, lr, m, v, scale=1.0):
        self._kernel(p, g, m, v, lr, self.beta1, self.beta2, self.eps, self.t, scale)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam)}


def make_optimizer(name, params, lr, weight_decay=0.0, backend=None, lr_factors=None, **kw):
    """OPTIMIZERS[name](params, lr, weight_decay=..., **kw), with one clear error for bad input.

    `backend` goes to the optimisers whose update has a jitted twin (Adam); the others run NumPy.
    `lr_factors` (name -> factor): those parameters learn at lr * factor (`set_lr_factors`)."""
    if name not in OPTIMIZERS:
        raise RnnvanishError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    _check_kwargs(cls.__init__, kw, f"optimizer {name!r}", skip=("self", "params", "lr", "weight_decay", "backend"))
    backend = resolve_backend(backend)                   # checked for every optimiser
    if "backend" in inspect.signature(cls.__init__).parameters:
        kw["backend"] = backend
    optimizer = cls(params, lr, weight_decay=weight_decay, **kw)
    optimizer.set_lr_factors(lr_factors or {})
    return optimizer


# ----------------------------------------------------------------------------- learning-rate schedules
# Each rule maps the number of updates already made, s = 0, 1, ..., to the learning rate of the
# next update, over a run of S = total_steps updates; s >= S keeps the final value.

def _constant(s, base_lr, S):
    """lr(s) = base_lr."""
    return base_lr


def _step(s, base_lr, S, step_size=None, gamma=0.1):
    """lr(s) = base_lr * gamma^floor(s / step_size), as PyTorch's StepLR; step_size defaults to S // 3."""
    step_size = max(1, S // 3) if step_size is None else step_size
    return base_lr * gamma ** (s // step_size)


def _exponential(s, base_lr, S, gamma=None):
    """lr(s) = base_lr * gamma^min(s, S); gamma defaults to 0.01^(1/S), ending at base_lr / 100."""
    gamma = 0.01 ** (1.0 / S) if gamma is None else gamma
    return base_lr * gamma ** min(s, S)


def _cosine(s, base_lr, S, min_lr=0.0):
    """lr(s) = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(s, S) / S)) / 2 (Loshchilov & Hutter 2017)."""
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(s, S) / S))


def _linear(s, base_lr, S, min_lr=0.0):
    """lr(s) = min_lr + (base_lr - min_lr) * (1 - min(s, S) / S): a straight warm-down."""
    return min_lr + (base_lr - min_lr) * (1.0 - min(s, S) / S)


LR_SCHEDULES = {
    "constant": _constant,
    "step": _step,
    "exponential": _exponential,
    "cosine": _cosine,
    "linear": _linear,
}

_SCHEDULE_OPTION_RANGES = {
    "gamma": _DECAY,
    "min_lr": _NONNEG,
}


def make_schedule(name, base_lr, total_steps, **kw):
    """A callable `lr_at(step)` for LR_SCHEDULES[name]; `step` counts updates already made (0 first)."""
    if name not in LR_SCHEDULES:
        raise RnnvanishError(f"unknown learning-rate schedule {name!r}; choose one of: {', '.join(LR_SCHEDULES)}")
    rule = LR_SCHEDULES[name]
    _check_kwargs(rule, kw, f"schedule {name!r}", skip=("s", "base_lr", "S"))
    base_lr = _number(base_lr, "learning rate", _POSITIVE)
    if int(total_steps) != total_steps or total_steps <= 0:
        raise RnnvanishError(f"total steps must be a positive whole number, got {total_steps}")
    total_steps = int(total_steps)
    for key, value in kw.items():
        if key == "step_size" and value is not None and (int(value) != value or value <= 0):
            raise RnnvanishError(f"step_size must be a positive whole number, got {value}")
        if key == "step_size" and value is not None:
            kw[key] = int(value)
        if key in _SCHEDULE_OPTION_RANGES and value is not None:
            kw[key] = _number(value, key, _SCHEDULE_OPTION_RANGES[key])
    if kw.get("min_lr", 0.0) > base_lr:
        raise RnnvanishError(f"min_lr {kw['min_lr']:g} is above the base learning rate {base_lr:g}")

    def lr_at(step):
        if step < 0:
            raise RnnvanishError(f"learning-rate schedule step must be zero or more, got {step}")
        return float(rule(int(step), base_lr, total_steps, **kw))

    lr_at.__doc__ = f"{name} schedule from {base_lr:g} over {total_steps} steps: {rule.__doc__}"
    return lr_at
