"""ann.scaling: the fits recover known laws from synthetic losses; the allocator equals a brute-force search."""

import numpy as np
import pytest

from ann.scaling import (
    CHINCHILLA,
    PAPER_INITS,
    LossFit,
    compute_optimal,
    fit_loss,
    fit_parabola,
    fit_power_law,
    isoflop_minima,
    training_flops,
)

TRUE = LossFit(E=1.8, A=300.0, B=500.0, alpha=0.4, beta=0.3)


def _runs(law, noise=0.0, seed=0):
    """A 5 x 5 grid of runs, 4 decades of N and D, losses from ``law`` with multiplicative noise."""
    n, d = np.meshgrid(np.logspace(5, 9, 5), np.logspace(7, 11, 5))
    n, d = n.ravel(), d.ravel()
    loss = law(n, d) * np.exp(noise * np.random.default_rng(seed).standard_normal(n.size))
    return n, d, loss


def test_fit_loss_recovers_exact_parameters():
    fit = fit_loss(*_runs(TRUE))
    got = np.array([fit.E, fit.A, fit.B, fit.alpha, fit.beta])
    want = np.array([TRUE.E, TRUE.A, TRUE.B, TRUE.alpha, TRUE.beta])
    np.testing.assert_allclose(got, want, rtol=1e-3)


def test_fit_loss_recovers_exponents_under_noise_and_resists_outliers():
    n, d, loss = _runs(TRUE, noise=0.002, seed=1)
    loss[[3, 12, 21]] *= 1.5  # three broken runs: the Huber loss keeps them from steering the fit
    fit = fit_loss(n, d, loss)
    assert abs(fit.alpha - TRUE.alpha) < 0.03 and abs(fit.beta - TRUE.beta) < 0.03, fit
    assert abs(fit.E - TRUE.E) < 0.05, fit


@pytest.mark.slow
def test_fit_loss_on_the_chinchilla_law_with_paper_style_inits():
    inits = {k: v[::2] for k, v in PAPER_INITS.items()}  # every other point of the paper's grid
    fit = fit_loss(*_runs(CHINCHILLA), inits=inits)
    assert abs(fit.alpha - 0.34) < 5e-3 and abs(fit.beta - 0.28) < 5e-3 and abs(fit.E - 1.69) < 1e-2, fit


def test_fit_loss_bad_input():
    with pytest.raises(ValueError, match="n_params"):
        fit_loss([1, -2, 3, 4, 5], [1] * 5, [1] * 5)
    with pytest.raises(ValueError, match="same length"):
        fit_loss([1, 2, 3, 4, 5], [1] * 4, [1] * 5)
    with pytest.raises(ValueError, match="at least 5"):
        fit_loss([1, 2, 3], [1] * 3, [1] * 3)
    with pytest.raises(ValueError, match="missing"):
        fit_loss([1, 2, 3, 4, 5], [1] * 5, [2] * 5, inits={"alpha": [0.5]})


def test_compute_optimal_equals_brute_force_grid_minimum():
    for law in (CHINCHILLA, TRUE):
        for c in (1e15, 1e19, 5.76e23):
            n_grid = np.logspace(np.log10(c / 6) / 2 - 4, np.log10(c / 6) / 2 + 4, 200_001)
            loss = law(n_grid, c / (6 * n_grid))
            n_best = n_grid[np.argmin(loss)]
            n, d = compute_optimal(c, law)
            assert n == pytest.approx(n_best, rel=2e-4)
            assert training_flops(n, d) == pytest.approx(c)
            assert law(n, d) <= loss.min() + 1e-12


def test_chinchilla_tokens_per_parameter_is_not_twenty():
    # the module docstring's figures, computed here
    ratios = [CHINCHILLA.tokens_per_parameter(c) for c in (1e18, 1e21, 5.76e23, 1e25)]
    np.testing.assert_allclose(ratios, [25.7, 50.1, 92.6, 122.1], rtol=2e-3)
    n, d = compute_optimal(5.76e23)
    assert n == pytest.approx(32.2e9, rel=1e-2) and d == pytest.approx(2.98e12, rel=1e-2)
    # vectorized over budgets, and the ratio grows as C**((alpha - beta) / (alpha + beta))
    c = np.array([1e20, 1e22])
    n, d = compute_optimal(c)
    assert n.shape == (2,)
    assert (d[1] / n[1]) / (d[0] / n[0]) == pytest.approx(100 ** (0.06 / 0.62))
    with pytest.raises(ValueError, match="flops"):
        compute_optimal(-1.0)
    with pytest.raises(TypeError, match="LossFit"):
        compute_optimal(1e20, fit=(1, 2, 3, 4, 5))


def test_isoflop_parabolas_find_the_law_minima_and_the_exponents():
    """IsoFLOP slices of a known law: parabola minima near the true optima; N_opt ~ C**(beta/(alpha+beta))."""
    budgets = np.logspace(16, 20, 5)
    c_all, n_all, l_all = [], [], []
    for c in budgets:
        n_true, _ = compute_optimal(c, TRUE)
        n = n_true * np.logspace(-0.5, 0.5, 9)  # a narrow window, where the curve is near a parabola in log N
        c_all.append(np.full(n.size, c))
        n_all.append(n)
        l_all.append(TRUE(n, c / (6 * n)))
    res = isoflop_minima(np.concatenate(c_all), np.concatenate(n_all), np.concatenate(l_all))
    assert res["interior"].all()
    n_true, d_true = compute_optimal(res["flops"], TRUE)
    np.testing.assert_allclose(res["n_opt"], n_true, rtol=0.03)
    np.testing.assert_allclose(res["d_opt"], d_true, rtol=0.03)
    np.testing.assert_allclose(res["loss_opt"], TRUE(n_true, d_true), rtol=1e-3)
    a = fit_power_law(res["flops"], res["n_opt"]).exponent
    b = fit_power_law(res["flops"], res["d_opt"]).exponent
    assert a == pytest.approx(TRUE.beta / 0.7, abs=0.01) and b == pytest.approx(TRUE.alpha / 0.7, abs=0.01)
    assert a + b == pytest.approx(1.0, abs=1e-9)  # D = C / 6N


def test_parabola_and_power_law_exact():
    n = np.array([1e3, 1e4, 1e5, 1e6])
    x = np.log(n)
    p = fit_parabola(n, 0.5 * (x - np.log(3e4)) ** 2 + 2.0)
    assert p.n_opt == pytest.approx(3e4) and p.loss_opt == pytest.approx(2.0)
    np.testing.assert_allclose(p(n), 0.5 * (x - np.log(3e4)) ** 2 + 2.0)
    assert np.isnan(fit_parabola(n, -(x**2)).n_opt)  # opens downwards: no minimum
    law = fit_power_law([1, 10, 100], [2, 2 * 10**0.7, 2 * 100**0.7])
    assert law.exponent == pytest.approx(0.7) and law.coefficient == pytest.approx(2.0)
    # a minimum beyond the sampled sizes is flagged as an extrapolation
    iso = isoflop_minima([1.0] * 4 + [2.0] * 4, np.r_[n, n], np.r_[0.5 * (x - np.log(3e4)) ** 2, 0.5 * (x - np.log(1e8)) ** 2])
    np.testing.assert_array_equal(iso["interior"], [True, False])
    with pytest.raises(ValueError, match="3 distinct"):
        fit_parabola([1, 1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="y"):
        fit_power_law([1, 2], [1, 0])
