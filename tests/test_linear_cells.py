"""minGRU and minLSTM (Feng et al. 2024) as kernels: the reference's truncated BPTT against
central differences of the truncated objective, the Numba twins against the reference, the
prefix and log-space scans against the step loop, and the closed form of the lag profile; the
same for the LRU (Orvieto et al. 2023), whose state is complex, and its ring initialisation."""
import inspect

import numpy as np
import pytest

from conftest import assert_close
from rnnvanish.gradcheck import numerical_gradient, relative_error, states_in_cache, truncated_objective
from rnnvanish.kernels import linear as k_linear
from rnnvanish.reference import linear as r_linear

GATES = {"mingru": 2, "minlstm": 3}
H = 5
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
LOOP, PREFIX, LOG = r_linear.SCANS["loop"], r_linear.SCANS["prefix"], r_linear.SCANS["log"]
GRID = pytest.mark.parametrize("T,B,truncate", [(T, B, k) for T in (1, 7) for B in (1, 3) for k in (None, 3)])
CELLS = pytest.mark.parametrize("cell,positive", [("mingru", False), ("mingru", True), ("minlstm", False),
                                                  ("minlstm", True)],
                                ids=["mingru", "mingru-g", "minlstm", "minlstm-g"])


def make_case(cell, T, B, dtype=np.float64, seed=0, positive_h0=False):
    """Random pre-activations kept 0.05 away from 0 (g's kink), a state and outside gradients."""
    rng = np.random.default_rng(seed)
    xw = rng.normal(0.0, 1.5, (T, B, GATES[cell] * H))
    xw = np.sign(xw) * (0.05 + np.abs(xw))
    h0 = rng.normal(0.0, 0.5, (B, H))
    if positive_h0:
        h0 = np.abs(h0) + 0.1
    case = {"xw": xw, "h0": h0, "dh": rng.normal(size=(T, B, H)), "dh_T": rng.normal(size=(B, H))}
    return {name: value.astype(dtype) for name, value in case.items()}


def forward_backward(module, cell, case, positive, truncate, scan=LOOP):
    forward, backward = getattr(module, f"{cell}_forward"), getattr(module, f"{cell}_backward")
    h, gates = forward(case["xw"], case["h0"], positive, scan)
    da, dh0, norms = backward(case["dh"], case["dh_T"], h, gates, positive, truncate or 0)
    return {"h": h, "gates": gates, "da": da, "dh0": dh0, "norms": norms}


class LinearCell:
    """The reference forward as the cell interface `gradcheck.truncated_objective` runs."""
    state_names = ("h",)

    def __init__(self, cell, positive):
        self.forward_kernel = getattr(r_linear, f"{cell}_forward")
        self.positive = positive

    def forward(self, xw, state0):
        h, _ = self.forward_kernel(xw, state0[0], self.positive, LOOP)
        return h, (h[-1],), {"h": h, "T": len(xw)}


# --------------------------------------------------------------------------- gradients

@CELLS
@GRID
def test_backward_is_the_gradient_of_the_truncated_objective(cell, positive, T, B, truncate):
    """E = sum_s dh[s-1] . h_s + dh_T . h_T, each h_s computed from h_{s-k} held fixed (stopped)."""
    case = make_case(cell, T, B, seed=10 * T + B)
    xw, h0, dh, dh_T = case["xw"], case["h0"], case["dh"], case["dh_T"]
    result = forward_backward(r_linear, cell, case, positive, truncate)
    model = LinearCell(cell, positive)
    fixed = states_in_cache(model, model.forward(xw, (h0,))[2])

    def step_loss(s, h_s, _state):
        return float((dh[s - 1] * h_s).sum() + ((dh_T * h_s).sum() if s == T else 0.0))

    def objective():
        return truncated_objective(model, xw, (h0,), step_loss, truncate, fixed)

    for name, array, analytic in (("da", xw, result["da"]), ("dh0", h0, result["dh0"])):
        numeric = numerical_gradient(objective, array, eps=1e-6)
        assert np.abs(analytic).max() > 0.0, f"{name} is identically zero: the check would be empty"
        err = relative_error(analytic, numeric)
        assert err <= 1e-7, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", GATES)
def test_truncation_changes_the_gradient(cell):
    """So the check above tells the two objectives apart."""
    case = make_case(cell, 7, 2, seed=3)
    full = forward_backward(r_linear, cell, case, False, None)
    cut = forward_backward(r_linear, cell, case, False, 3)
    assert np.abs(full["da"] - cut["da"]).max() > 1e-3 and np.abs(full["norms"] - cut["norms"]).max() > 1e-3


@CELLS
@pytest.mark.parametrize("module", [r_linear, k_linear], ids=["reference", "numba"])
def test_the_lag_profile_is_the_product_of_the_forget_coefficients(cell, positive, module):
    """A loss at T only: dE/dh_k = dh_T * prod_{j=k+1..T} a_j, with a_j = 1 - z_j or f'_j."""
    T, B = 9, 2
    case = make_case(cell, T, B, seed=5)
    case["dh"] = np.zeros_like(case["dh"])
    result = forward_backward(module, cell, case, positive, None)
    gates = result["gates"]
    if cell == "mingru":
        a = 1.0 - gates[:, :, :H]
    else:
        i, f = gates[:, :, :H], gates[:, :, H:2 * H]
        a = f / (f + i)
    for k in range(T + 1):
        dh_k = case["dh_T"] * np.prod(a[k:], axis=0)          # prod over j = k+1..T (a[j-1])
        assert_close(result["norms"][k], np.linalg.norm(dh_k), name=f"norms[{k}]")
    assert_close(result["dh0"], case["dh_T"] * np.prod(a, axis=0), name="dh0")


# --------------------------------------------------------------------------- scans

@CELLS
@pytest.mark.parametrize("module", [r_linear, k_linear], ids=["reference", "numba"])
@pytest.mark.parametrize("T", [1, 2, 7, 37])
def test_the_scans_equal_the_loop(cell, positive, module, T):
    case = make_case(cell, T, 3, seed=T, positive_h0=positive)
    forward = getattr(module, f"{cell}_forward")
    h, gates = forward(case["xw"], case["h0"], positive, LOOP)
    for scan in ([PREFIX, LOG] if positive else [PREFIX]):
        h_scan, gates_scan = forward(case["xw"], case["h0"], positive, scan)
        assert_close(h_scan, h, rtol=1e-10, name=f"h by scan {scan}")
        np.testing.assert_array_equal(gates_scan, gates)
        assert np.array_equal(h_scan[0], case["h0"])


@pytest.mark.parametrize("module", [r_linear, k_linear], ids=["reference", "numba"])
def test_linear_scan_and_log_scan_on_their_own(module):
    rng = np.random.default_rng(1)
    T, B = 13, 2
    a, b = rng.uniform(0.1, 1.2, (T, B, H)), rng.uniform(0.1, 2.0, (T, B, H))
    h0 = rng.uniform(0.1, 1.0, (B, H))
    h = np.empty((T + 1, B, H))
    h[0] = h0
    for t in range(1, T + 1):
        h[t] = a[t - 1] * h[t - 1] + b[t - 1]
    assert_close(module.linear_scan(a, b, h0), h, name="linear_scan")
    assert_close(module.log_scan(np.log(a), np.log(b), np.log(h0)), h, name="log_scan")


@pytest.mark.parametrize("module", [r_linear, k_linear], ids=["reference", "numba"])
def test_the_log_scan_needs_positive_values(module):
    case = make_case("mingru", 3, 2, positive_h0=True)
    with pytest.raises(ValueError, match="positive candidates"):
        module.mingru_forward(case["xw"], case["h0"], False, LOG)
    with pytest.raises(ValueError, match="positive initial state"):
        module.minlstm_forward(make_case("minlstm", 3, 2)["xw"], -case["h0"], True, LOG)


# --------------------------------------------------------------------------- the twins

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@CELLS
@GRID
def test_the_numba_kernels_equal_the_reference(cell, positive, T, B, truncate, dtype):
    case = make_case(cell, T, B, dtype=dtype, seed=100 * T + 10 * B + (truncate or 0), positive_h0=positive)
    for scan in ([LOOP, PREFIX, LOG] if positive else [LOOP, PREFIX]):
        expected = forward_backward(r_linear, cell, case, positive, truncate, scan)
        actual = forward_backward(k_linear, cell, case, positive, truncate, scan)
        for name, value in expected.items():
            assert actual[name].dtype == value.dtype, f"{name}: dtype {actual[name].dtype} != {value.dtype}"
            assert_close(actual[name], value, rtol=RTOL[dtype], name=f"{cell} scan {scan} {name}")


def _public_functions(module):
    return {name for name, obj in vars(module).items() if not name.startswith("_") and callable(obj)
            and not isinstance(obj, type) and getattr(obj, "__module__", None) == module.__name__}


def test_the_two_files_read_alike():
    """Same public functions with the same arguments, listed by both packages; the same helpers."""
    from rnnvanish import kernels, reference
    names = _public_functions(r_linear) - {"lru_ring_init"}                # a NumPy helper, no kernel
    assert names == _public_functions(k_linear) == {"mingru_forward", "mingru_backward", "minlstm_forward",
                                                    "minlstm_backward", "linear_scan", "log_scan",
                                                    "lru_forward", "lru_backward"}
    for name in names:
        assert name in kernels.__all__ and name in reference.__all__, name
        k_args = list(inspect.signature(getattr(k_linear, name).py_func).parameters)
        assert k_args == list(inspect.signature(getattr(r_linear, name)).parameters), name
    assert kernels.SCANS == reference.SCANS == {"loop": k_linear.LOOP, "prefix": k_linear.PREFIX_SCAN,
                                                "log": k_linear.LOG_SCAN}
    for helper in ("_candidate", "_candidate_grad", "_log_candidate", "_loop", "_run", "_check_log_scan",
                   "_lru_lambda", "_complex_norms"):
        assert hasattr(k_linear, helper) and hasattr(r_linear, helper), helper


# --------------------------------------------------------------------------- LRU
# Complex arrays carry gradients as dE/dRe + i dE/dIm; their float view interleaves the two,
# so central differences on the view of an input give the view of its gradient.

COMPLEX = {np.float64: np.complex128, np.float32: np.complex64}


def make_lru_case(T, B, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    nu_log, theta_log, gamma_log = r_linear.lru_ring_init(H, rng, r_min=0.5, r_max=0.95, max_phase=np.pi)

    def complex_normal(*shape):
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(COMPLEX[dtype])
    return {"bu": complex_normal(T, B, H), "x0": complex_normal(B, H), "dx": complex_normal(T, B, H),
            "dx_T": complex_normal(B, H), "nu_log": nu_log.astype(dtype), "theta_log": theta_log.astype(dtype),
            "gamma_log": gamma_log.astype(dtype)}


def lru_forward_backward(module, c, truncate, scan=LOOP):
    params = (c["nu_log"], c["theta_log"], c["gamma_log"])
    x = module.lru_forward(c["bu"], c["x0"], *params, scan)
    dbu, dnu_log, dtheta_log, dgamma_log, dx0, norms = module.lru_backward(c["dx"], c["dx_T"], x, c["bu"], *params,
                                                                          truncate or 0)
    return {"x": x, "dbu": dbu, "dnu_log": dnu_log, "dtheta_log": dtheta_log, "dgamma_log": dgamma_log,
            "dx0": dx0, "norms": norms}


class LRUCell:
    state_names = ("x",)

    def __init__(self, case):
        self.case = case

    def forward(self, bu, state0):
        c = self.case
        x = r_linear.lru_forward(bu, state0[0], c["nu_log"], c["theta_log"], c["gamma_log"], LOOP)
        return x, (x[-1],), {"x": x, "T": len(bu)}


@GRID
def test_lru_backward_is_the_gradient_of_the_truncated_objective(T, B, truncate):
    c = make_lru_case(T, B, seed=10 * T + B)
    result = lru_forward_backward(r_linear, c, truncate)
    model = LRUCell(c)
    fixed = states_in_cache(model, model.forward(c["bu"], (c["x0"],))[2])

    def step_loss(s, x_s, _state):                             # Re sum conj(dx) x: its gradient is dx
        loss = (np.conj(c["dx"][s - 1]) * x_s).real.sum()
        return float(loss + ((np.conj(c["dx_T"]) * x_s).real.sum() if s == T else 0.0))

    def objective():
        return truncated_objective(model, c["bu"], (c["x0"],), step_loss, truncate, fixed)

    for name, array, analytic in (("dbu", c["bu"].view(np.float64), result["dbu"].view(np.float64)),
                                  ("dx0", c["x0"].view(np.float64), result["dx0"].view(np.float64)),
                                  ("dnu_log", c["nu_log"], result["dnu_log"]),
                                  ("dtheta_log", c["theta_log"], result["dtheta_log"]),
                                  ("dgamma_log", c["gamma_log"], result["dgamma_log"])):
        numeric = numerical_gradient(objective, array, eps=1e-6)
        assert np.abs(analytic).max() > 0.0, f"{name} is identically zero: the check would be empty"
        err = relative_error(analytic, numeric)
        assert err <= 1e-7, f"lru {name}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@GRID
def test_the_lru_kernels_equal_the_reference(T, B, truncate, dtype):
    c = make_lru_case(T, B, dtype=dtype, seed=100 * T + 10 * B + (truncate or 0))
    for scan in (LOOP, PREFIX):
        expected = lru_forward_backward(r_linear, c, truncate, scan)
        actual = lru_forward_backward(k_linear, c, truncate, scan)
        for name, value in expected.items():
            assert actual[name].dtype == value.dtype, f"{name}: dtype {actual[name].dtype} != {value.dtype}"
            assert_close(actual[name], value, rtol=RTOL[dtype], name=f"lru scan {scan} {name}")


@pytest.mark.parametrize("module", [r_linear, k_linear], ids=["reference", "numba"])
def test_the_lru_lag_profile_is_a_power_of_lambda(module):
    """dx_T/dx_k = Lambda^(T-k): forward from x_k with no input, and backward from a loss at T."""
    T, B = 12, 2
    c = make_lru_case(T, B, seed=7)
    lam = np.exp(-np.exp(c["nu_log"]) + 1j * np.exp(c["theta_log"]))
    silent = {**c, "bu": np.zeros_like(c["bu"]), "dx": np.zeros_like(c["dx"])}
    result = lru_forward_backward(module, silent, None)
    for k in range(T + 1):
        assert_close(result["x"][T], lam ** (T - k) * result["x"][k], name=f"x_T from x_{k}")
        assert_close(result["norms"][k], np.linalg.norm(np.conj(lam) ** (T - k) * c["dx_T"]), name=f"norms[{k}]")
    assert_close(result["dx0"], np.conj(lam) ** T * c["dx_T"], name="dx0")
    for scan in (PREFIX,):
        assert_close(lru_forward_backward(module, c, None, scan)["x"], lru_forward_backward(module, c, None)["x"],
                     name="x by the prefix scan")
    with pytest.raises(ValueError, match="log-space"):
        module.lru_forward(c["bu"], c["x0"], c["nu_log"], c["theta_log"], c["gamma_log"], LOG)


def test_the_ring_initialisation():
    """|lambda| on the ring, |lambda|^2 uniform on [r_min^2, r_max^2], phase in [0, max_phase], gamma normalises."""
    rng = np.random.default_rng(0)
    nu_log, theta_log, gamma_log = r_linear.lru_ring_init(20000, rng, r_min=0.4, r_max=0.9, max_phase=np.pi / 5)
    modulus = np.exp(-np.exp(nu_log))
    phase = np.exp(theta_log)
    assert modulus.min() >= 0.4 and modulus.max() <= 0.9 and phase.min() >= 0 and phase.max() <= np.pi / 5
    assert abs(np.mean(modulus ** 2) - (0.4 ** 2 + 0.9 ** 2) / 2) < 0.005
    assert abs(np.mean(phase) - np.pi / 10) < 0.005
    assert_close(np.exp(gamma_log), np.sqrt(1.0 - modulus ** 2), name="gamma")
