"""Losses against PyTorch (values and gradients), extreme logits, and the information-theory helpers."""

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as TF

import ann
import ann.functional as F

TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _check(ours, theirs, inputs, dtype, consts=()):
    """``inputs``: arrays that get gradients; ``consts``: passed as is (targets)."""
    xs = [ann.Tensor(a.astype(dtype), requires_grad=True) for a in inputs]
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in inputs]
    y = ours(*xs, *[c[0] for c in consts])
    yt = theirs(*ts, *[c[1] for c in consts])
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    yt.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        assert np.isfinite(x.grad).all()
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL[dtype])
    return y


rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((6, 5)) * 3
TARGET = np.array([0, 4, 2, 2, 1, 3])
TARGET_IGN = np.array([0, -100, 2, 2, -100, 3])
PROBS = rng.dirichlet(np.ones(5), size=6)
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5, 0.2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("case", ["index", "ignore", "probs", "weight", "spatial"])
def test_cross_entropy_matches_torch(case, smoothing, reduction, dtype):
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    logits, target = LOGITS, TARGET
    tw = None
    if case == "ignore":
        target = TARGET_IGN
    elif case == "probs":
        target = PROBS.astype(dtype)
    elif case == "weight":
        tw = WEIGHT.astype(dtype)
    elif case == "spatial":
        logits = rng.standard_normal((2, 5, 3, 2))
        target = np.random.default_rng(1).integers(0, 5, size=(2, 3, 2))
    t_torch = torch.tensor(target)
    _check(
        lambda x, t: F.cross_entropy(x, t, weight=tw, **kw),
        lambda x, t: TF.cross_entropy(x, t, weight=None if tw is None else torch.tensor(tw), **kw),
        [logits], dtype, consts=[(target, t_torch)],
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_finite_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [3.0, 1e4, -1e4]])
    target = np.array([0, 2, 1])
    y = _check(lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t), [logits], dtype,
               consts=[(target, torch.tensor(target))])
    assert np.isfinite(y.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_minus_inf_in_non_target_classes(dtype):
    logits = np.array([[2.0, -np.inf, 0.5], [-np.inf, -np.inf, 1.0], [0.0, 1.0, -np.inf]])
    target = np.array([0, 2, 1])
    y = _check(lambda x, t: F.cross_entropy(x, t), lambda x, t: TF.cross_entropy(x, t), [logits], dtype,
               consts=[(target, torch.tensor(target))])
    assert np.isfinite(y.numpy())
    # probability targets: zero probability on the -inf classes stays finite (0 log 0 = 0)
    probs = np.array([[0.7, 0.0, 0.3], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], dtype)
    x = ann.Tensor(logits.astype(dtype), requires_grad=True)
    loss = F.cross_entropy(x, probs)
    loss.backward()
    assert np.isfinite(loss.numpy()) and np.isfinite(x.grad).all()
    finite = np.where(np.isfinite(logits), logits, -1e30).astype(dtype)
    np.testing.assert_allclose(loss.numpy(), TF.cross_entropy(torch.tensor(finite), torch.tensor(probs)).numpy(), rtol=1e-5)


def test_cross_entropy_bad_targets_raise_clear_errors():
    x = ann.Tensor(LOGITS)
    with pytest.raises(TypeError, match="integer dtype"):
        F.cross_entropy(x, TARGET.astype(np.float32).reshape(6))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 4\]"):
        F.cross_entropy(x, np.array([0, 1, 2, 5, 0, 0]))
    with pytest.raises(ValueError, match="target values"):
        F.cross_entropy(x, np.array([0, 1, 2, -1, 0, 0]))
    with pytest.raises(ValueError, match="does not match input shape"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, TARGET, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, TARGET, label_smoothing=1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(reduction, dtype):
    logp = np.log(PROBS)
    for target, w in [(TARGET, None), (TARGET_IGN, WEIGHT)]:
        _check(lambda x, t: F.nll_loss(x, t, weight=w, reduction=reduction),
               lambda x, t: TF.nll_loss(x, t, weight=None if w is None else torch.tensor(w.astype(dtype)), reduction=reduction),
               [logp], dtype, consts=[(target, torch.tensor(target))])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses_match_torch(reduction, dtype):
    r = np.random.default_rng(4)
    a, b = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    b[0, 0] = a[0, 0]  # an exact tie for l1 / huber
    p = r.uniform(0.05, 0.95, (4, 3))
    t01 = r.uniform(0, 1, (4, 3)).astype(dtype)
    w = r.uniform(0.5, 2, (4, 3)).astype(dtype)
    pw = r.uniform(0.5, 2, (3,)).astype(dtype)
    k = dict(reduction=reduction)
    _check(lambda x, y: F.mse_loss(x, y, **k), lambda x, y: TF.mse_loss(x, y, **k), [a, b], dtype)
    _check(lambda x, y: F.l1_loss(x, y, **k), lambda x, y: TF.l1_loss(x, y, **k), [a, b], dtype)
    for delta in (1.0, 0.3):
        _check(lambda x, y: F.huber_loss(x, y, delta=delta, **k), lambda x, y: TF.huber_loss(x, y, delta=delta, **k),
               [a * 2, b], dtype)
    _check(lambda x: F.binary_cross_entropy(x, t01, weight=w, **k),
           lambda x: TF.binary_cross_entropy(x, torch.tensor(t01), weight=torch.tensor(w), **k), [p], dtype)
    _check(lambda x: F.binary_cross_entropy_with_logits(x, t01, **k),
           lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(t01), **k), [a * 5], dtype)
    _check(lambda x: F.binary_cross_entropy_with_logits(x, t01, weight=w, pos_weight=pw, **k),
           lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(t01), weight=torch.tensor(w),
                                                          pos_weight=torch.tensor(pw), **k), [a * 5], dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_losses_at_extremes(dtype):
    # logits of magnitude 1e4 and probabilities exactly 0 and 1 (logs clamped at -100, as PyTorch)
    logits = np.array([1e4, -1e4, 0.0, 30.0])
    target = np.array([0.0, 1.0, 1.0, 1.0], dtype)
    _check(lambda x: F.binary_cross_entropy_with_logits(x, target, reduction="none"),
           lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(target), reduction="none"), [logits], dtype)
    p = ann.Tensor(np.array([0.0, 1.0, 0.5], dtype))
    t = np.array([1.0, 0.0, 1.0], dtype)
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction="none").numpy(),
                               TF.binary_cross_entropy(torch.tensor(p.data), torch.tensor(t), reduction="none").numpy())
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(ann.Tensor(np.array([1.5])), np.array([1.0]))


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction, dtype):
    logq = np.log(PROBS)
    p = np.random.default_rng(2).dirichlet(np.ones(5), size=6)
    p[0, 1] = 0.0  # a zero target probability contributes 0
    p = p.astype(dtype)
    target = np.log(np.where(p > 0, p, 1e-30)).astype(dtype) if log_target else p
    _check(lambda x: F.kl_div(x, target, reduction=reduction, log_target=log_target),
           lambda x: TF.kl_div(x, torch.tensor(target), reduction=reduction, log_target=log_target), [logq], dtype)


def test_information_theory_helpers_match_scipy():
    r = np.random.default_rng(3)
    p = r.dirichlet(np.ones(6), size=4)
    q = r.dirichlet(np.ones(6), size=4)
    p[0, :3] = 0
    p[0] /= p[0].sum()
    np.testing.assert_allclose(F.entropy(p), scipy.stats.entropy(p, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(F.entropy(p, base=2), scipy.stats.entropy(p, axis=-1, base=2), rtol=1e-12)
    np.testing.assert_allclose(F.kl_divergence(p, q), scipy.stats.entropy(p, q, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy_of(p, q), F.entropy(p) + F.kl_divergence(p, q), rtol=1e-12)
    assert F.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert F.entropy([1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="probabilities"):
        F.entropy([-0.1, 1.1])


@pytest.mark.parametrize("call", [
    lambda F: F.entropy([3.0, 5.0]),
    lambda F: F.kl_divergence([0.5, 0.5], [0.2, 0.2]),
    lambda F: F.cross_entropy_of([2.0, 0.0], [0.5, 0.5]),
])
def test_information_helpers_reject_non_distributions(call):
    with pytest.raises(ValueError, match="summing to 1"):
        call(F)


@pytest.mark.parametrize("base", [0, 1, -2.0, np.inf])
def test_information_helpers_reject_bad_bases(base):
    for fn in (lambda: F.entropy([0.5, 0.5], base=base), lambda: F.kl_divergence([0.5, 0.5], [0.2, 0.8], base=base)):
        with pytest.raises(ValueError, match="base must be"):
            fn()


@pytest.mark.parametrize("p, t, bad", [([np.nan, 0.5], [0.0, 1.0], "input"), ([0.5, 0.5], [0.0, 1.5], "target"),
                                       ([0.5, 0.5], [np.nan, 1.0], "target")])
def test_binary_cross_entropy_rejects_nan_and_out_of_range_like_torch(p, t, bad):
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t))
    with pytest.raises(ValueError, match=f"{bad} must hold probabilities"):
        F.binary_cross_entropy(ann.Tensor(np.array(p)), np.array(t))


@pytest.mark.parametrize("case", ["all_ignored", "zero_weights"])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_mean_over_nothing_is_nan_like_torch(loss, case):
    target = np.full(6, -100) if case == "all_ignored" else TARGET
    kw = {"weight": np.zeros(5)} if case == "zero_weights" else {}
    x = ann.Tensor(LOGITS, requires_grad=True)
    xt = torch.tensor(LOGITS, requires_grad=True)
    y = getattr(F, loss)(x, target, **{k: v for k, v in kw.items()})
    yt = getattr(TF, loss)(xt, torch.tensor(target), **{k: torch.tensor(v) for k, v in kw.items()})
    assert np.isnan(y.item()) and torch.isnan(yt)
    y.backward()
    yt.backward()
    np.testing.assert_array_equal(x.grad, xt.grad.numpy())  # zeros when all ignored, nan for zero weights


def test_loss_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must be equal"):
        F.mse_loss(ann.Tensor(np.ones(3)), np.ones(4))


def test_gradcheck_losses():
    r = np.random.default_rng(7)

    def t(*shape, lo=-2.0, hi=2.0):
        return ann.Tensor(r.uniform(lo, hi, shape), requires_grad=True)

    y = r.uniform(0, 1, (3, 4))
    assert ann.gradcheck(lambda x: F.cross_entropy(x, np.array([0, 3, 1]), label_smoothing=0.1, weight=WEIGHT[:4]), [t(3, 4)])
    assert ann.gradcheck(lambda x: F.cross_entropy(x, PROBS[:3, :4] / PROBS[:3, :4].sum(1, keepdims=True)), [t(3, 4)])
    assert ann.gradcheck(lambda x: F.binary_cross_entropy(x, y), [t(3, 4, lo=0.1, hi=0.9)])
    assert ann.gradcheck(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=np.full(4, 2.0)), [t(3, 4)])
    assert ann.gradcheck(lambda x, z: F.huber_loss(x, z, delta=0.5), [t(3, 4), t(3, 4)])
    assert ann.gradcheck(lambda x: F.kl_div(F.log_softmax(x), PROBS[:3, :4], reduction="batchmean"), [t(3, 4)])
