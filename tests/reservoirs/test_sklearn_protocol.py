"""Ridge, RLS, SoftmaxReadout and ESN as scikit-learn estimators, checked with scikit-learn itself."""

import subprocess
import sys

import numpy as np
import pytest

from reservoirs import ESN, RLS, NotFittedError, Ridge, SoftmaxReadout

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit, cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*delay parameter validation until fit:UserWarning")

# Deliberate differences from scikit-learn's conventions, each for a stated reason.
_DELIBERATE = {
    "check_do_not_raise_errors_in_init_or_set_params": "arguments are validated at construction (this project's rule: bad input fails at once, naming the argument)",
    "check_estimators_unfitted": "raises reservoirs.NotFittedError (a ValueError and AttributeError, as scikit-learn's), not scikit-learn's own class: importing scikit-learn would add ~0.9 s to `import reservoirs`",
    "check_complex_data": "rejected with this project's message ('X must hold real numbers, got dtype complex128'), not scikit-learn's wording",
    "check_dtype_object": "rejected with this project's message ('X must hold real numbers, got dtype object'), not scikit-learn's wording",
    "check_fit1d": "a 1-D X is a one-feature time series (T,) -> (T, 1), as everywhere in reservoirs",
    "check_fit2d_predict1d": "a 1-D X is a one-feature time series (T,) -> (T, 1), as everywhere in reservoirs",
    "check_supervised_y_2d": "labels (n, 1) are flattened silently (no DataConversionWarning: scikit-learn is not imported)",
}


def _expected_failures(estimator):
    classifier = isinstance(estimator, SoftmaxReadout)
    return {name: why for name, why in _DELIBERATE.items() if classifier or name != "check_supervised_y_2d"}


@parametrize_with_checks([Ridge(), RLS(), SoftmaxReadout(max_iter=200)], expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", [Ridge(3), RLS(0.5, forgetting=0.99), SoftmaxReadout(l2=1e-3, solver="ann"),
                                 ESN(50, spectral_radius=0.5, leak_rate=0.3, seed=4)])
def test_clone_gives_equal_params_and_unfitted_copy(est):
    copy = clone(est)
    assert type(copy) is type(est)
    assert copy.get_params() == est.get_params()
    assert repr(copy) == repr(est)


def test_get_and_set_params_keep_values_as_given():
    r = Ridge(1, fit_intercept=False)
    assert r.get_params() == {"ridge": 1, "fit_intercept": False}
    assert r.set_params(ridge=2.5) is r and r.ridge == 2.5
    with pytest.raises(ValueError, match="invalid parameter 'alpha'"):
        r.set_params(alpha=1.0)
    with pytest.raises(ValueError, match="ridge"):
        r.set_params(ridge=-1.0)
    assert r.ridge == 2.5  # a rejected value leaves the old one
    assert repr(r) == "Ridge(fit_intercept=False, ridge=2.5)"  # sorted, as scikit-learn
    assert repr(SoftmaxReadout()) == "SoftmaxReadout()"


def test_unfitted_errors_are_runtime_value_and_attribute_errors():
    for est in (Ridge(), SoftmaxReadout()):
        with pytest.raises(NotFittedError, match="not fitted") as info:
            est.predict(np.ones((3, 2)))
        assert isinstance(info.value, (RuntimeError,)) and isinstance(info.value, ValueError)
        assert not hasattr(est, "n_features_in_")


def test_regressor_score_is_r2_and_cross_val_score_runs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((200, 2))
    r = Ridge(1e-3).fit(X[:150], y[:150])
    assert r.score(X[150:], y[150:]) == pytest.approx(r2_score(y[150:], r.predict(X[150:])))
    scores = cross_val_score(Ridge(1e-3), X, y, cv=4)
    assert scores.shape == (4,) and np.all(scores > 0.9)


def test_softmax_binary_decision_function_is_scikit_learns():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 3))
    y = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "b", "a")
    clf = SoftmaxReadout().fit(X, y)
    d = clf.decision_function(X)
    assert d.shape == (100,)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(d > 0).astype(int)])
    w = np.where(y == "a", 2.0, 1.0)
    assert clf.score(X, y, sample_weight=w) == pytest.approx(np.average(clf.predict(X) == y, weights=w))
    with pytest.raises(ValueError, match="continuous"):
        SoftmaxReadout().fit(X, X[:, 0])


def test_esn_grid_search_over_time_series_splits():
    from reservoirs.tasks import mackey_glass

    x = mackey_glass(1200, seed=0)
    x = (x - x.mean()) / x.std()
    u, y = x[:-1], x[1:]
    esn = ESN(80, leak_rate=0.3, input_connectivity=1.0, ridge=1e-6, seed=1)
    search = GridSearchCV(esn, {"spectral_radius": [0.5, 0.9]}, cv=TimeSeriesSplit(3)).fit(u, y)
    assert search.best_params_["spectral_radius"] in (0.5, 0.9)
    assert search.best_score_ > 0.9
    fitted = esn.fit(u[:900], y[:900])
    assert fitted.score(u[900:], y[900:]) == pytest.approx(r2_score(y[900:], esn.predict(u[900:])))


def test_esn_set_params_rebuilds_reservoir_and_rejects_bad_values():
    esn = ESN(60, spectral_radius=0.5, seed=3)
    W_before = esn.W.toarray()
    esn.set_params(spectral_radius=0.8)
    assert esn.get_params()["spectral_radius"] == 0.8
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(esn.W.toarray())).max(), 0.8, rtol=1e-8)
    np.testing.assert_allclose(esn.W.toarray(), W_before * 1.6, rtol=1e-12)  # same int seed, same draw
    with pytest.raises(ValueError, match="units"):
        esn.set_params(units=0)
    assert esn.units == 60 and esn.get_params()["units"] == 60
    with pytest.raises(ValueError, match="invalid parameter"):
        esn.set_params(n_units=3)
    made = ESN.from_weights(np.eye(3) * 0.5, np.ones((3, 1)))
    assert repr(made) == "ESN.from_weights(units=3, inputs=1, leak_rate=1.0)"
    with pytest.raises(TypeError, match="from_weights"):
        made.get_params()


def test_import_reservoirs_does_not_import_scikit_learn():
    code = "import sys, reservoirs; print(any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
