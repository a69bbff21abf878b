"""Readouts against scikit-learn, closed forms and finite differences."""

import numpy as np
import pytest
import sklearn.linear_model

from reservoirs import RLS, Ridge, SoftmaxReadout


def _data(n=400, d=12, o=3, seed=0, offset=2.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + offset
    y = X @ rng.standard_normal((d, o)) - 4.0 + 0.1 * rng.standard_normal((n, o))
    return X, y


@pytest.mark.parametrize("alpha", [1e-6, 0.5, 50.0])
def test_ridge_equals_sklearn_with_unpenalized_intercept(alpha):
    X, y = _data()
    ours = Ridge(alpha).fit(X, y)
    ref = sklearn.linear_model.Ridge(alpha=alpha, solver="cholesky").fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.predict(X[:7]), ref.predict(X[:7]), rtol=1e-10, atol=1e-10)


def test_ridge_without_intercept_is_the_normal_equations():
    X, y = _data()
    ours = Ridge(3.0, fit_intercept=False).fit(X, y)
    w = np.linalg.solve(X.T @ X + 3.0 * np.eye(X.shape[1]), X.T @ y)
    np.testing.assert_allclose(ours.coef_, w.T, rtol=1e-10)
    np.testing.assert_array_equal(ours.intercept_, 0.0)


def test_ridge_partial_fit_over_chunks_equals_one_fit():
    X, y = _data(n=900, offset=50.0)  # a large offset: accumulating around a shift point keeps precision
    full = Ridge(1e-3).fit(X, y)
    chunked = Ridge(1e-3)
    for part in np.array_split(np.arange(900), 7):
        chunked.partial_fit(X[part], y[part])
    np.testing.assert_allclose(chunked.coef_, full.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(chunked.predict(X), full.predict(X), rtol=1e-10, atol=1e-9)
    # batched (B, T, N) input is flattened over its leading axes
    batched = Ridge(1e-3).fit(X.reshape(3, 300, -1), y.reshape(3, 300, -1))
    np.testing.assert_allclose(batched.coef_, full.coef_, rtol=1e-10, atol=1e-12)


def test_ridge_singular_system_falls_back_to_least_squares():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((100, 1))
    X = np.hstack([a, a])  # collinear columns, ridge 0: X^T X singular
    y = 3.0 * a[:, 0] + 1.0
    model = Ridge(0.0).fit(X, y)
    np.testing.assert_allclose(model.coef_, [[1.5, 1.5]], atol=1e-8)  # minimum-norm solution
    np.testing.assert_allclose(model.predict(X), y, atol=1e-8)
    assert model.predict(X).shape == (100,)  # 1-D targets give 1-D predictions


def test_ridge_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="ridge"):
        Ridge(-1.0)
    with pytest.raises(ValueError, match="same number of samples"):
        Ridge().fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        Ridge().fit(np.where(X > 3, np.nan, X), y)
    with pytest.raises(RuntimeError, match="not fitted"):
        Ridge().predict(X)
    model = Ridge().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_rls_equals_closed_form_ridge(fit_intercept):
    X, y = _data(n=300, d=6, o=2, offset=0.5)
    rls = RLS(alpha=0.1, fit_intercept=fit_intercept).fit(X, y)
    Xa = np.hstack([X, np.ones((300, 1))]) if fit_intercept else X
    w = np.linalg.solve(Xa.T @ Xa + 0.1 * np.eye(Xa.shape[1]), Xa.T @ y)
    np.testing.assert_allclose(rls.coef_, w[:6].T, rtol=1e-7, atol=1e-8)
    if fit_intercept:
        np.testing.assert_allclose(rls.intercept_, w[6], rtol=1e-7, atol=1e-8)


def test_rls_forgetting_tracks_a_changing_target():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2000, 3))
    w1, w2 = np.array([1.0, -2.0, 0.5]), np.array([-1.0, 0.0, 2.0])
    y = np.concatenate([X[:1000] @ w1, X[1000:] @ w2])
    forgetful = RLS(1.0, forgetting=0.98).fit(X, y)
    plain = RLS(1.0).fit(X, y)
    assert np.abs(forgetful.coef_[0] - w2).max() < 1e-3
    assert np.abs(plain.coef_[0] - w2).max() > 0.5  # without forgetting it averages the two regimes
    with pytest.raises(ValueError, match="forgetting"):
        RLS(forgetting=1.5)


def test_softmax_readout_equals_sklearn_logistic_regression():
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((3, 5)) * 2
    labels = rng.integers(0, 3, 300)
    X = centers[labels] + rng.standard_normal((300, 5))
    l2 = 1e-2
    ours = SoftmaxReadout(l2=l2).fit(X, labels)
    ref = sklearn.linear_model.LogisticRegression(C=1.0 / (300 * l2), tol=1e-12, max_iter=10_000).fit(X, labels)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, labels) > 0.8


def test_softmax_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((20, 4))
    Y = np.eye(3)[rng.integers(0, 3, 20)]
    model = SoftmaxReadout(l2=0.3)
    theta = rng.standard_normal(3 * 4 + 3)
    _, grad = model._loss(theta, X, Y)
    eps = 1e-6
    numeric = np.array([
        (model._loss(theta + eps * e, X, Y)[0] - model._loss(theta - eps * e, X, Y)[0]) / (2 * eps)
        for e in np.eye(theta.size)
    ])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_errors():
    with pytest.raises(ValueError, match="two classes"):
        SoftmaxReadout().fit(np.ones((5, 2)), np.zeros(5))
    with pytest.raises(RuntimeError, match="not fitted"):
        SoftmaxReadout().predict(np.ones((5, 2)))


def test_softmax_readout_trained_with_ann_reaches_the_same_optimum():
    pytest.importorskip("ann")
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((3, 4)) * 1.5
    labels = rng.integers(0, 3, 200)
    X = centers[labels] + rng.standard_normal((200, 4))
    exact = SoftmaxReadout(l2=1e-2).fit(X, labels)
    adam = SoftmaxReadout(l2=1e-2, solver="ann", max_iter=3000, tol=1e-6, lr=0.05).fit(X, labels)
    np.testing.assert_allclose(adam.predict_proba(X), exact.predict_proba(X), atol=2e-3)
    np.testing.assert_array_equal(adam.predict(X), exact.predict(X))
    with pytest.raises(ValueError, match="solver"):
        SoftmaxReadout(solver="newton")


@pytest.mark.gpu
def test_softmax_readout_scores_cupy_labels():
    # score compared host predictions with device labels and failed
    import cupy

    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    clf = SoftmaxReadout().fit(cupy.asarray(X), cupy.asarray(y))
    assert clf.score(cupy.asarray(X), cupy.asarray(y)) == clf.score(X, y) > 0.9
