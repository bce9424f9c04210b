"""The weight-decay lesson: the tanh RNN's BPTT gradient against central differences, and what
weight decay and clipping measurably do to a network started above the edge of stability."""
import numpy as np
import pytest

from rnnvanish.clip import global_norm
from rnnvanish.lessons.weight_decay import init_rnn, recall_batch, rnn_loss_and_grads, spectral_radius, train_rnn


pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("T, B, delay", [(6, 2, 2), (3, 1, 0)])
def test_bptt_gradient_matches_central_differences(T, B, delay):
    rng = np.random.default_rng(T)
    params = init_rnn(H=5, I=1, rho=1.3, input_scale=0.8, rng=rng)
    params["b_h"] += 0.1 * rng.standard_normal(5)
    x = recall_batch(T, B, rng=1)
    _, grads, _ = rnn_loss_and_grads(params, x, delay)
    for name, p in params.items():
        fd = np.zeros_like(p)
        for idx in np.ndindex(*p.shape):
            keep = p[idx]
            p[idx] = keep + 1e-6
            up = rnn_loss_and_grads(params, x, delay)[0]
            p[idx] = keep - 1e-6
            down = rnn_loss_and_grads(params, x, delay)[0]
            p[idx] = keep
            fd[idx] = (up - down) / 2e-6
        diff = np.abs(grads[name] - fd)
        assert diff.max() <= 1e-7 * max(1.0, np.abs(fd).max()), f"d{name}: largest difference {diff.max():.3g}"


def test_init_has_the_asked_spectral_radius():
    for rho in (1.1, 1.5, 3.0):
        assert abs(spectral_radius(init_rnn(32, 1, rho, rng=0)["W_hh"]) - rho) < 1e-12


def test_the_gradient_explodes_at_radius_3_but_not_yet_at_1_5():
    """rho > 1 is necessary for the explosion, not sufficient: at 1.1 and 1.5 the units saturate."""
    x = recall_batch(50, 16, rng=2)
    g = {rho: global_norm(rnn_loss_and_grads(init_rnn(32, 1, rho, rng=0), x, 5)[1]) for rho in (1.1, 1.5, 3.0)}
    assert g[1.1] < 10 and g[1.5] < 10, g
    assert g[3.0] > 100 * g[1.5], g


def test_weight_decay_pulls_the_spectral_radius_below_one():
    plain = train_rnn(1.5, 0.0, None, steps=200, rng=0)
    decayed = train_rnn(1.5, 0.1, None, steps=200, rng=0)
    assert plain["radius"][-1] > 1.0, plain["radius"][-1]
    assert decayed["radius"][-1] < 1.0, decayed["radius"][-1]
    # each step shrinks W by (1 - lr lambda) = 0.995 before the data gradient acts: 0.995^200 = 0.37
    assert decayed["radius"][-1] < 0.9 * plain["radius"][-1]


def test_weight_decay_alone_does_not_stop_the_first_explosion_and_clipping_alone_does_not_end_it():
    decay_only = train_rnn(3.0, 0.1, None, steps=30, rng=0)
    clip_only = train_rnn(3.0, 0.0, 1.0, steps=30, rng=0)
    assert decay_only["grad_norm"][0] > 1000                      # the same exploding gradient arrives
    assert decay_only["radius"][0] > 10                           # and one unclipped step throws W_hh far out
    assert 2.8 < clip_only["radius"][-1] < 3.2                    # clipped steps barely move it
    assert np.median(clip_only["grad_norm"]) > 100                # so the gradient keeps exploding


def test_clipping_with_weight_decay_ends_the_explosion_and_learns():
    both = train_rnn(3.0, 0.1, 1.0, steps=300, rng=0)
    clip_only = train_rnn(3.0, 0.0, 1.0, steps=300, rng=0)
    assert both["radius"][-1] < 1.0 and np.median(both["grad_norm"][-50:]) < 1.0
    assert both["loss"][-20:].mean() < 0.1 < 0.5 < clip_only["loss"][-20:].mean()
