"""Weight initialisers, and the spectral radius that decides whether a recurrence explodes or fades.

Every initialiser has the same contract::

    f(shape, rng, dtype=np.float64, **options) -> ndarray of `shape`

`shape` is `(fan_in, fan_out)` in the row-vector convention of the whole package (`x @ W`), so
`W_xh` of shape `(I, G*H)` has fan_in `I` and fan_out `G*H`. This is the transpose of PyTorch's
`(out, in)` weight layout: here fan_in is `shape[0]`. `rng` is a `np.random.Generator`. Samples are
drawn in float64 and then cast, so one seed gives the same weights (up to rounding) in every dtype.

The fan-based rules, with `n_in = shape[0]`, `n_out = shape[1]` (Glorot & Bengio 2010; He et al.
2015; LeCun et al. 1998). The normal variants draw from a plain, untruncated normal, as PyTorch's
`xavier_normal_` and `kaiming_normal_` do (Keras truncates at two standard deviations)::

    glorot_normal    N(0, s^2),   s = sqrt(2 / (n_in + n_out))
    glorot_uniform   U(-a, a),    a = sqrt(6 / (n_in + n_out))
    he_normal        N(0, s^2),   s = sqrt(2 / n_in)
    he_uniform       U(-a, a),    a = sqrt(6 / n_in)
    lecun_normal     N(0, s^2),   s = sqrt(1 / n_in)
    lecun_uniform    U(-a, a),    a = sqrt(3 / n_in)

The uniform bound `a` is `sqrt(3)` times the normal `s`, so each pair has the same variance.

For a tanh RNN the quantity that matters is the spectral radius of `W_hh` (the largest
|eigenvalue|): below 1 the backward signal through the linearised recurrence shrinks
geometrically, above 1 it can grow (Pascanu et al. 2013). `spectral_radius` measures it and
`scale_to_radius` sets it.
"""
import inspect
import math

import numpy as np

from rnnvanish.errors import RnnvanishError, positive_number


# ----------------------------------------------------------------------------- helpers

def _fans(shape, name):
    """(fan_in, fan_out) of a 2-D shape; fan-based rules make no sense for anything else."""
    if len(shape) != 2:
        raise RnnvanishError(f"{name} initialisation needs a 2-D (fan_in, fan_out) shape, got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _positive(value, what):
    """A finite, strictly positive number (std, scale, gain, radius)."""
    return positive_number(value, what)


def _normal(shape, rng, dtype, std):
    return (std * rng.standard_normal(shape)).astype(dtype, copy=False)


def _uniform(shape, rng, dtype, bound):
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


# ----------------------------------------------------------------------------- initialisers

def zeros(shape, rng=None, dtype=np.float64):
    """All zeros. The usual choice for biases; for weights it leaves every hidden unit identical."""
    return np.zeros(shape, dtype=dtype)


def normal(shape, rng, dtype=np.float64, std=0.01):
    """N(0, std^2). std=0.01 is min-char-rnn's choice; std=1 is the naive N(0, 1) that explodes."""
    return _normal(shape, rng, dtype, _positive(std, "normal std"))


def uniform(shape, rng, dtype=np.float64, scale=0.08):
    """U(-scale, scale). The default 0.08 is char-rnn's `-param_init`."""
    return _uniform(shape, rng, dtype, _positive(scale, "uniform scale"))


def pytorch(shape, rng, dtype=np.float64, hidden_size=None):
    """U(-1/sqrt(H), 1/sqrt(H)): PyTorch's default for every weight and bias of nn.RNN/LSTM/GRU.

    H is the hidden size, which is the fan_out of one gate block. It defaults to `shape[-1]`,
    right for a tanh RNN (G = 1) or when initialising one gate block at a time; for a whole
    gated matrix of shape `(I, G*H)` pass `hidden_size=H`.
    """
    H = shape[-1] if hidden_size is None else hidden_size
    H = _positive(H, "pytorch hidden_size")
    return _uniform(shape, rng, dtype, 1.0 / math.sqrt(H))


def glorot_normal(shape, rng, dtype=np.float64):
    """N(0, 2 / (fan_in + fan_out)) (Glorot & Bengio 2010; "Xavier")."""
    n_in, n_out = _fans(shape, "glorot_normal")
    return _normal(shape, rng, dtype, math.sqrt(2.0 / (n_in + n_out)))


def glorot_uniform(shape, rng, dtype=np.float64):
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010; "Xavier")."""
    n_in, n_out = _fans(shape, "glorot_uniform")
    return _uniform(shape, rng, dtype, math.sqrt(6.0 / (n_in + n_out)))


def he_normal(shape, rng, dtype=np.float64):
    """N(0, 2 / fan_in) (He et al. 2015; "Kaiming", fan_in mode)."""
    n_in, _ = _fans(shape, "he_normal")
    return _normal(shape, rng, dtype, math.sqrt(2.0 / n_in))


def he_uniform(shape, rng, dtype=np.float64):
    """U(-a, a), a = sqrt(6 / fan_in) (He et al. 2015; "Kaiming", fan_in mode)."""
    n_in, _ = _fans(shape, "he_uniform")
    return _uniform(shape, rng, dtype, math.sqrt(6.0 / n_in))


def lecun_normal(shape, rng, dtype=np.float64):
    """N(0, 1 / fan_in) (LeCun et al. 1998)."""
    n_in, _ = _fans(shape, "lecun_normal")
    return _normal(shape, rng, dtype, math.sqrt(1.0 / n_in))


def lecun_uniform(shape, rng, dtype=np.float64):
    """U(-a, a), a = sqrt(3 / fan_in) (LeCun et al. 1998)."""
    n_in, _ = _fans(shape, "lecun_uniform")
    return _uniform(shape, rng, dtype, math.sqrt(3.0 / n_in))


def orthogonal(shape, rng, dtype=np.float64, gain=1.0):
    """gain * Q with Q Haar-distributed (semi-)orthogonal (Saxe et al. 2014).

    A = Gaussian of shape (max(m, n), min(m, n)); A = QR; Q <- Q diag(sign(diag(R))).
    The sign correction makes the factorisation unique, which is what makes Q uniformly
    (Haar) distributed (Mezzadri 2007); without it LAPACK's Householder QR always gives
    Q[0, 0] < 0. For m >= n the columns are orthonormal (Q^T Q = I_n); for m < n the rows
    are (Q Q^T = I_m), so every singular value equals `gain` either way.
    """
    m, n = _fans(shape, "orthogonal")
    gain = _positive(gain, "orthogonal gain")
    A = rng.standard_normal((max(m, n), min(m, n)))
    Q, R = np.linalg.qr(A)                       # (max, min), (min, min)
    d = np.sign(np.diag(R))
    Q = Q * np.where(d == 0, 1.0, d)             # flip columns so that diag(R) > 0
    if m < n:
        Q = Q.T                                  # (m, n) with orthonormal rows
    return (gain * Q).astype(dtype, copy=False)


def identity(shape, rng=None, dtype=np.float64, gain=1.0):
    """gain * I, for square recurrent weights (the IRNN of Le, Jaitly & Hinton 2015)."""
    m, n = _fans(shape, "identity")
    if m != n:
        raise RnnvanishError(f"identity initialisation needs a square matrix, got shape {(m, n)}")
    gain = _positive(gain, "identity gain")
    return (gain * np.eye(n)).astype(dtype, copy=False)


INITIALIZERS = {
    "zeros": zeros,
    "normal": normal,
    "uniform": uniform,
    "pytorch": pytorch,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
    "identity": identity,
}

# The option a bare number sets in a spec such as "normal:1.0" or "orthogonal:1.1".
_NUMBER_OPTION = {
    "normal": "std",
    "uniform": "scale",
    "pytorch": "hidden_size",
    "orthogonal": "gain",
    "identity": "gain",
}


# ----------------------------------------------------------------------------- spectral radius

def _square(W, what):
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise RnnvanishError(f"{what} needs a square matrix, got shape {W.shape}")
    return W


def spectral_radius(W):
    """rho(W) = max_i |lambda_i(W)| of a square matrix."""
    W = _square(W, "spectral_radius")
    return float(np.max(np.abs(np.linalg.eigvals(W)))) if W.size else 0.0


def scale_to_radius(W, radius):
    """W * radius / rho(W): the same matrix, rescaled so that its spectral radius is `radius`."""
    W = _square(W, "scale_to_radius")
    radius = _positive(radius, "spectral radius")
    rho = spectral_radius(W)
    if rho == 0.0:
        raise RnnvanishError("cannot scale a matrix whose spectral radius is zero (all eigenvalues are 0)")
    return (W * (radius / rho)).astype(W.dtype, copy=False)


# ----------------------------------------------------------------------------- specs

def _unknown(name):
    return RnnvanishError(f"unknown initialiser {name!r}; choose one of: {', '.join(INITIALIZERS)}")


def _number(text, spec):
    try:
        return float(text)
    except ValueError:
        raise RnnvanishError(f"cannot read a number from {text!r} in initialiser spec {spec!r}") from None


def parse_init(spec):
    """Read a command-line initialiser spec into `(name, options)`.

    Forms: `"orthogonal"`; `"name:number"` sets the main option (`normal:1.0` -> std,
    `uniform:0.08` -> scale, `orthogonal:1.1` / `identity:1.1` -> gain, `pytorch:64` ->
    hidden_size); `"name:key=value,key=value"` sets options by name.
    """
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in INITIALIZERS:
        raise _unknown(name)
    options = {}
    rest = rest.strip()
    if not rest:
        return name, options
    if "=" not in rest:
        if name not in _NUMBER_OPTION:
            raise RnnvanishError(f"initialiser {name!r} takes no number (got {spec!r})")
        options[_NUMBER_OPTION[name]] = _number(rest, spec)
        return name, options
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise RnnvanishError(f"expected key=value in initialiser spec {spec!r}, got {item!r}")
        options[key.strip()] = _number(value.strip(), spec)
    _check_options(name, options)
    return name, options


def _check_options(name, options):
    accepted = [p for p in inspect.signature(INITIALIZERS[name]).parameters if p not in ("shape", "rng", "dtype")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no options"
        raise RnnvanishError(f"initialiser {name!r} does not take {', '.join(unknown)} (it takes {takes})")


def initialize(spec_or_name, shape, rng, dtype=np.float64, **options):
    """Initialise one array from a spec (`"orthogonal:1.1"`) or a name plus keyword options.

    Keyword options override those in the spec. `rng` may be a Generator or a seed.
    """
    name, spec_options = parse_init(spec_or_name)
    spec_options.update(options)
    _check_options(name, spec_options)
    return INITIALIZERS[name](tuple(shape), np.random.default_rng(rng), dtype=dtype, **spec_options)
