"""Rate rules against known theory: Hebb diverges, Oja finds PC1, Sanger the top-k PCs, BCM becomes selective."""

import numpy as np

import plasticity as P


def correlated_data(n=5, samples=4000, eigvals=(4.0, 2.0, 1.0, 0.5, 0.25), seed=0):
    """Zero-mean Gaussian samples with a known covariance (random rotation of diag(eigvals))."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    cov = q @ np.diag(eigvals[:n]) @ q.T
    X = rng.multivariate_normal(np.zeros(n), cov, size=samples)
    w, v = np.linalg.eigh(cov)
    return X, cov, v[:, ::-1].T  # rows: principal components by decreasing eigenvalue


def cosine(a, b):
    return abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))


def test_hebb_norm_grows_without_bound_full_batch_proof():
    # Full-batch linear Hebb is deterministic: w <- w (I + lr C) with C the sample covariance, so
    # |w'|^2 = |w|^2 + 2 lr w'Cw + lr^2 |Cw|^2 >= (1 + 2 lr lambda_min) |w|^2: geometric growth, no bound.
    X, _, _ = correlated_data(samples=2000)
    X = X - X.mean(axis=0)
    C = X.T @ X / len(X)
    lam = np.linalg.eigvalsh(C)
    lr = 0.05
    rule = P.Hebb(lr=lr)
    w = np.full((1, 5), 0.1)
    norms = [np.linalg.norm(w)]
    for _ in range(400):
        rule.step(w, X, X @ w.T)
        norms.append(np.linalg.norm(w))
    norms = np.array(norms)
    ratio_sq = (norms[1:] / norms[:-1]) ** 2
    assert np.all(ratio_sq >= 1 + 2 * lr * lam[0] - 1e-12)  # the lower bound of the proof holds at every step
    assert np.isclose(norms[-1] / norms[-2], 1 + lr * lam[-1], rtol=1e-9)  # growth rate -> 1 + lr lambda_max
    assert norms[-1] > 1e12 * norms[0]


def test_hebb_stochastic_norm_grows_and_decay_bounds_it():
    X, cov, pcs = correlated_data()
    lam = np.linalg.eigvalsh(cov)
    w0 = np.full((1, 5), 0.1)
    grown = P.train(P.Hebb(lr=0.01), w0, X, seed=1, record_every=500)
    norms = np.linalg.norm(grown.history[:, 0], axis=1)
    assert np.all(np.diff(np.log(norms)) > 0)
    assert norms[-1] > 1e10 * norms[0]
    assert cosine(grown.weights[0], pcs[0]) > 0.9  # it grows mainly along the top eigenvector
    # decay larger than the top eigenvalue makes E[dw] = lr w (C - decay I) contracting
    shrunk = P.train(P.Hebb(lr=0.01, decay=1.5 * lam[-1]), w0, X, seed=1)
    assert np.linalg.norm(shrunk.weights) < 1e-3 * np.linalg.norm(w0)


def test_oja_converges_to_first_pc_with_unit_norm():
    X, cov, pcs = correlated_data()
    w0 = np.random.default_rng(3).standard_normal((1, 5)) * 0.1
    res = P.train(P.Oja(lr=0.01), w0, X, epochs=3, batch_size=10, seed=2)
    w = res.weights[0]
    assert cosine(w, pcs[0]) > 0.99
    assert abs(np.linalg.norm(w) - 1.0) < 0.02


def test_sanger_rows_converge_to_top_k_pcs_in_order():
    X, cov, pcs = correlated_data()
    W0 = np.random.default_rng(4).standard_normal((3, 5)) * 0.1
    res = P.train(P.Sanger(lr=0.005), W0, X, epochs=8, batch_size=10, seed=5)
    W = res.weights
    for i in range(3):
        assert cosine(W[i], pcs[i]) > 0.99, i
        assert abs(np.linalg.norm(W[i]) - 1.0) < 0.03
    # Sanger's rows are mutually orthogonal (unlike independent Oja neurons, which all find PC1)
    G = W @ W.T
    assert np.max(np.abs(G - np.diag(np.diag(G)))) < 0.05
    oja = P.train(P.Oja(lr=0.01), W0, X, epochs=4, batch_size=10, seed=5).weights
    assert all(cosine(oja[i], pcs[0]) > 0.98 for i in range(3))


def test_bcm_two_patterns_selective_and_theta_tracks_mean_square():
    patterns = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.3]])
    rng = np.random.default_rng(0)
    rule = P.BCM(lr=0.005, tau_theta=20.0)
    W = rng.uniform(0.2, 0.5, size=(4, 3))
    state = rule.init_state(W.shape)
    theta_log, y2_log = [], []
    n = 12000
    for t, k in enumerate(rng.integers(0, 2, size=n)):
        x = patterns[k]
        y = W @ x
        rule.step(W, x, y, state)
        if t >= n // 2:
            theta_log.append(state["theta"].copy())
            y2_log.append(y**2)
    responses = patterns @ W.T  # (2 patterns, 4 units)
    hi, lo = np.max(np.abs(responses), axis=0), np.min(np.abs(responses), axis=0)
    selectivity = 1 - lo / hi
    assert np.all(selectivity > 0.9), selectivity
    # the fixed point for two equiprobable independent patterns: y = theta = E[y^2] = y^2 / 2 -> y = 2
    assert np.allclose(hi, 2.0, rtol=0.1), hi
    # theta tracks E[y^2] (time averages over the second half)
    assert np.allclose(np.mean(theta_log, axis=0), np.mean(y2_log, axis=0), rtol=0.05)


def test_bcm_theta_is_exponential_average_of_y_squared():
    # with the weights frozen by a tiny lr, theta follows theta += (1/tau)(y^2 - theta) exactly
    rule = P.BCM(lr=1e-12, tau_theta=5.0)
    W = np.array([[1.0, 0.0]])
    state = rule.init_state(W.shape)
    theta = 0.0
    for y in [1.0, 2.0, 0.5, 3.0]:
        rule.step(W, np.array([y, 0.0]), np.array([y]), state)
        theta += (y * y - theta) / 5.0
        assert np.isclose(state["theta"][0], theta)
    # with dt the time constant is in time units: factor dt / tau
    rule = P.BCM(lr=1e-12, tau_theta=5.0, dt=0.5)
    state = rule.init_state(W.shape)
    rule.step(W, np.array([2.0, 0.0]), np.array([2.0]), state)
    assert np.isclose(state["theta"][0], 4.0 * 0.5 / 5.0)


def test_foldiak_decorrelates_lateral_network():
    # y = x + W y (lateral weights W): y = (I - W)^-1 x; anti-Hebbian W drives off-diagonal <y_i y_j> to 0
    X, cov, _ = correlated_data(n=4, eigvals=(3.0, 1.0, 0.5, 0.3), samples=3000)
    rule = P.Foldiak(lr=0.01)
    W = np.zeros((4, 4))
    rng = np.random.default_rng(1)
    for _ in range(3):
        for idx in np.array_split(rng.permutation(len(X)), len(X) // 10):
            Y = np.linalg.solve(np.eye(4) - W, X[idx].T).T
            rule.step(W, Y, Y)
    Y = np.linalg.solve(np.eye(4) - W, X.T).T
    corr_before = np.corrcoef(X.T)
    corr_after = np.corrcoef(Y.T)
    off = ~np.eye(4, dtype=bool)
    assert np.max(np.abs(corr_before[off])) > 0.3
    assert np.max(np.abs(corr_after[off])) < 0.05
    assert np.all(np.diag(W) == 0)


def test_covariance_rule_ignores_the_mean():
    # data with a large common mean: Hebb learns the mean direction, the covariance rule the top PC
    X, cov, pcs = correlated_data()
    mean = np.array([3.0, -2.0, 1.0, 0.0, 2.0])
    Xm = X + mean
    w0 = np.random.default_rng(6).standard_normal((1, 5)) * 0.01
    rule = P.Covariance(lr=0.001, tau_mean=50.0, constraints=[P.RowNorm()])
    res = P.train(rule, w0, Xm, epochs=2, batch_size=5, seed=0)
    assert cosine(res.weights[0], pcs[0]) > 0.98
    assert np.allclose(res.state["pre_mean"], mean, atol=0.5)
    hebb = P.train(P.Hebb(lr=0.001, constraints=[P.RowNorm()]), w0, Xm, epochs=2, batch_size=5, seed=0)
    assert cosine(hebb.weights[0], mean) > 0.9
