"""Autograd primitives against PyTorch (values and gradients) and finite differences."""

import numpy as np
import pytest
import torch

import ann
from ann.tensor import amax, amin, getitem, make_op, tsum, var

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _inputs(shapes, dtype, rng, domain):
    lo, hi = domain
    return [rng.uniform(lo, hi, size=s).astype(dtype) for s in shapes]


def _compare(ours, theirs, shapes, dtype, domain=(-2.0, 2.0), seed=0):
    rng = np.random.default_rng(seed)
    arrays = _inputs(shapes, dtype, rng, domain)
    xs = [ann.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    y = ours(*xs)
    yt = theirs(*ts)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **TOL[dtype])
    upstream = rng.standard_normal(yt.shape).astype(dtype)
    y.backward(upstream)
    yt.backward(torch.tensor(upstream))
    for x, t in zip(xs, ts):
        assert x.grad.shape == x.shape and x.grad.dtype == dtype
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOL[dtype])


BINARY = [
    ("add", lambda a, b: a + b, lambda a, b: a + b),
    ("sub", lambda a, b: a - b, lambda a, b: a - b),
    ("mul", lambda a, b: a * b, lambda a, b: a * b),
    ("div", lambda a, b: a / (b * b + 0.5), lambda a, b: a / (b * b + 0.5)),
    ("maximum", ann.maximum, torch.maximum),
    ("minimum", ann.minimum, torch.minimum),
    ("pow_tensor", lambda a, b: (a * a + 0.1) ** b, lambda a, b: (a * a + 0.1) ** b),
    ("where", lambda a, b: ann.where(a.data > 0, a, b), lambda a, b: torch.where(a > 0, a, b)),
]
BROADCAST_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((2, 1, 4), (3, 1)), ((), (3,))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("name,ours,theirs", BINARY, ids=[b[0] for b in BINARY])
def test_binary_ops_match_torch_with_broadcasting(name, ours, theirs, shapes, dtype):
    _compare(ours, theirs, shapes, dtype)


UNARY = [
    ("neg", lambda x: -x, lambda x: -x, (-2, 2)),
    ("exp", ann.exp, torch.exp, (-2, 2)),
    ("log", ann.log, torch.log, (0.1, 3)),
    ("sqrt", ann.sqrt, torch.sqrt, (0.1, 3)),
    ("abs", abs, torch.abs, (-2, 2)),
    ("tanh", ann.tanh, torch.tanh, (-3, 3)),
    ("sigmoid", ann.sigmoid, torch.sigmoid, (-5, 5)),
    ("erf", ann.erf, torch.erf, (-2, 2)),
    ("pow3", lambda x: x**3, lambda x: x**3, (-2, 2)),
    ("pow_half", lambda x: x**0.5, lambda x: x**0.5, (0.1, 2)),
    ("rpow", lambda x: 2.0**x, lambda x: 2.0**x, (-2, 2)),
    ("rsub", lambda x: 1.0 - x, lambda x: 1.0 - x, (-2, 2)),
    ("rdiv", lambda x: 1.0 / x, lambda x: 1.0 / x, (0.5, 2)),
    ("clip", lambda x: x.clip(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7), (-2, 2)),
    ("clip_min", lambda x: x.clip(min=0.1), lambda x: x.clamp(min=0.1), (-2, 2)),
    ("sum_all", lambda x: x.sum(), lambda x: x.sum(), (-2, 2)),
    ("sum_axis", lambda x: x.sum(axis=1), lambda x: x.sum(dim=1), (-2, 2)),
    ("sum_axes_keep", lambda x: x.sum(axis=(0, 2), keepdims=True), lambda x: x.sum(dim=(0, 2), keepdim=True), (-2, 2)),
    ("mean_axis", lambda x: x.mean(axis=-1), lambda x: x.mean(dim=-1), (-2, 2)),
    ("mean_all", lambda x: x.mean(), lambda x: x.mean(), (-2, 2)),
    ("var_axis", lambda x: x.var(axis=1), lambda x: x.var(dim=1, unbiased=False), (-2, 2)),
    ("var_ddof1", lambda x: x.var(ddof=1), lambda x: x.var(), (-2, 2)),
    ("max_axis", lambda x: x.max(axis=1), lambda x: x.amax(dim=1), (-2, 2)),
    ("max_all", lambda x: x.max(), lambda x: x.amax(), (-2, 2)),
    ("min_axis_keep", lambda x: x.min(axis=0, keepdims=True), lambda x: x.amin(dim=0, keepdim=True), (-2, 2)),
    ("reshape", lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1), (-2, 2)),
    ("transpose", lambda x: x.transpose(2, 0, 1), lambda x: x.permute(2, 0, 1), (-2, 2)),
    ("T", lambda x: x.T, lambda x: x.permute(2, 1, 0), (-2, 2)),
    ("slice", lambda x: x[1:, ::2, -1], lambda x: x[1:, ::2, -1], (-2, 2)),
    ("int_index", lambda x: x[np.array([0, 2, 0, 1])], lambda x: x[torch.tensor([0, 2, 0, 1])], (-2, 2)),
    ("int_index_2d", lambda x: x[np.array([0, 1, 1]), :, np.array([3, 0, 3])],
     lambda x: x[torch.tensor([0, 1, 1]), :, torch.tensor([3, 0, 3])], (-2, 2)),
    ("bool_index", lambda x: x[x.data > 0], lambda x: x[x > 0], (-2, 2)),
    ("split", lambda x: ann.split(x, [1, 3], axis=2)[1] * 2 + ann.split(x, 4, axis=2)[0],
     lambda x: torch.split(x, [1, 2, 1], dim=2)[1][..., :1] * 0 + torch.split(x, [1, 2, 1], dim=2)[1] * 2 + x[..., :1],
     (-2, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,ours,theirs,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_match_torch(name, ours, theirs, domain, dtype):
    _compare(ours, theirs, [(3, 2, 4)], dtype, domain)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                 ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_matches_torch_including_batched(shapes, dtype):
    _compare(lambda a, b: a @ b, torch.matmul, shapes, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concatenate_stack_match_torch(dtype):
    _compare(lambda a, b, c: ann.concatenate([a, b, c], axis=1), lambda a, b, c: torch.cat([a, b, c], dim=1),
             [(2, 3, 4), (2, 1, 4), (2, 2, 4)], dtype)
    _compare(lambda a, b: ann.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1), [(3, 4), (3, 4)], dtype)


# ------------------------------------------------------------------ gradcheck

GRADCHECK_CASES = [
    ("add", lambda a, b: a + b, [(3, 1), (4,)]),
    ("mul", lambda a, b: a * b, [(3, 4), (1, 4)]),
    ("div", lambda a, b: a / (b * b + 1), [(3, 4), (4,)]),
    ("pow", lambda a, b: (a * a + 0.5) ** b, [(3,), (3,)]),
    ("matmul", lambda a, b: a @ b, [(2, 3, 4), (4, 2)]),
    ("exp_log_sqrt", lambda a: ann.log(ann.sqrt(ann.exp(a) + 1.0)), [(5,)]),
    ("abs_clip", lambda a: abs(a).clip(0.3, 1.5), [(7,)]),
    ("tanh_sigmoid_erf", lambda a: ann.tanh(a) * ann.sigmoid(a) + ann.erf(a), [(6,)]),
    ("where_max", lambda a, b: ann.where(a.data > 0, a, b) + ann.maximum(a, b), [(4,), (4,)]),
    ("reductions", lambda a: tsum(a, 1) + amax(a, 1) + amin(a, 1) + var(a, 1), [(3, 5)]),
    ("shape_ops", lambda a: a.reshape(2, 6).T[1:, :], [(3, 4)]),
    ("indexing", lambda a: getitem(a, np.array([0, 0, 2])) * 2, [(3, 2)]),
    ("concat_stack_split", lambda a, b: ann.stack(ann.split(ann.concatenate([a, b]), 2), axis=1), [(2, 3), (2, 3)]),
]


@pytest.mark.parametrize("name,fn,shapes", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck_primitives(name, fn, shapes):
    rng = np.random.default_rng(1)
    inputs = [ann.Tensor(rng.uniform(-1.5, 1.5, s), requires_grad=True) for s in shapes]
    assert ann.gradcheck(fn, inputs)


def test_gradcheck_detects_a_wrong_gradient():
    def bad_square(x):
        return make_op(x.data**2, (x,), lambda g: (g * 3 * x.data,), "bad")

    with pytest.raises(ann.GradcheckError, match="gradient mismatch"):
        ann.gradcheck(bad_square, [ann.Tensor(np.array([0.5, 1.0]), requires_grad=True)])
    assert not ann.gradcheck(bad_square, [ann.Tensor(np.array([0.5]), requires_grad=True)], raise_exception=False)


def test_gradcheck_runs_in_float64_even_for_float32_inputs():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x * x

    ann.gradcheck(fn, [ann.Tensor(np.ones(2, np.float32), requires_grad=True)])
    assert set(seen) == {np.dtype(np.float64)}


# ------------------------------------------------------------ graph semantics


def test_gradients_accumulate_like_torch():
    x = ann.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 7.0])


def test_shared_subexpression_sums_paths():
    x = ann.Tensor(np.array([0.3, -1.2]), requires_grad=True)
    h = ann.tanh(x)
    y = (h * h + h).sum()
    y.backward()
    xt = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    ht = torch.tanh(xt)
    (ht * ht + ht).sum().backward()
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)


def test_graph_is_freed_unless_retain_graph():
    x = ann.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (ann.exp(x) * 2.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * np.exp([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_releases_each_intermediate_once_its_gradient_is_passed_on():
    # the walk must not keep every node alive to the end: a node nothing else holds is freed
    # (with its array) as soon as its backward ran, before the nodes behind it run theirs
    import weakref

    x = ann.Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    alive_when_behind_ran = []

    def backward(g):
        alive_when_behind_ran.append(ref() is not None)
        return (g,)

    y = make_op(x.data.copy(), (x,), backward, "probe")
    a = ann.exp(y)
    ref = weakref.ref(a)
    loss = a.sum()
    del a, y
    loss.backward()
    assert alive_when_behind_ran == [False]
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]), rtol=1e-6)


def test_no_grad_records_nothing():
    x = ann.Tensor(np.array([1.0]), requires_grad=True)
    with ann.no_grad():
        y = x * 2.0
        assert not ann.is_grad_enabled()
        with ann.enable_grad():
            z = x * 2.0
    assert ann.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_detach_and_retain_grad():
    x = ann.Tensor(np.array([1.0, -1.0]), requires_grad=True)
    h = (x * 2.0).retain_grad()
    d = h.detach()
    assert not d.requires_grad and d.data is h.data
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, [4.0, -4.0])
    np.testing.assert_allclose(x.grad, [8.0, -8.0])


def test_python_scalars_keep_float32_and_lists_become_float32():
    x = ann.Tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == np.float32
    y = (x * 2.5 + 1.0) / 3.0 - 0.5
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_numpy_scalars_do_not_promote_float32():
    x = ann.Tensor(np.ones(2, np.float32), requires_grad=True)
    y = np.float64(2.0) * x + np.float64(1.0) - x * np.int64(3)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [-1.0, -1.0])


def test_numpy_array_operand_on_the_left():
    x = ann.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, ann.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_backward_on_non_scalar_needs_grad():
    x = ann.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(3))


def test_matmul_shape_mismatch_is_a_clear_error():
    a = ann.Tensor(np.ones((2, 3)))
    b = ann.Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul shape mismatch.*\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match="at least 1 dimension"):
        ann.matmul(ann.Tensor(np.float64(2.0)), b)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        ann.Tensor(np.arange(3), requires_grad=True)


def test_split_rejects_uneven_sections():
    with pytest.raises(ValueError, match="does not divide"):
        ann.split(ann.Tensor(np.ones(5)), 2)


def test_item_numpy_and_repr():
    t = ann.Tensor(np.array([[2.5]]))
    assert t.item() == 2.5 and float(t) == 2.5
    assert isinstance(t.numpy(), np.ndarray)
    assert "Tensor" in repr(t)
    with pytest.raises(ValueError, match="one element"):
        ann.Tensor(np.ones(2)).item()
