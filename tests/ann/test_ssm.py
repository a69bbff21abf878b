"""selective_scan against a sequential PyTorch implementation of mamba's selective_scan_ref semantics."""

import numpy as np
import pytest
import torch

from ann.gradcheck import gradcheck
from ann.ssm import composed_selective_scan, s4d_discretize, s4d_scan, selective_scan
from ann.tensor import Tensor


def torch_selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The reference semantics, step by step (written here, independently of ann)."""
    if delta_bias is not None:
        delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    batch, dim, length = u.shape
    dstate = A.shape[1]

    def at(X, t):  # (batch, dim, dstate) view of B or C at step t
        if X.dim() == 2:
            return X.expand(batch, dim, dstate)
        if X.dim() == 3:
            return X[:, None, :, t].expand(batch, dim, dstate)
        return X[:, :, :, t].repeat_interleave(dim // X.shape[1], dim=1)

    x = u.new_zeros(batch, dim, dstate)
    ys = []
    for t in range(length):
        x = torch.exp(delta[:, :, t, None] * A) * x + delta[:, :, t, None] * at(B, t) * u[:, :, t, None]
        ys.append((x * at(C, t)).sum(-1))
    out = torch.stack(ys, dim=2)
    if D is not None:
        out = out + u * D[:, None]
    if z is not None:
        out = out * torch.nn.functional.silu(z)
    return out, x


def _case(rng, variant, batch=2, dim=4, dstate=3, length=9, groups=2):
    shapes = {"fixed": (dim, dstate), "variable": (batch, dstate, length), "grouped": (batch, groups, dstate, length)}
    return {
        "u": rng.standard_normal((batch, dim, length)),
        "delta": 0.5 * rng.standard_normal((batch, dim, length)),
        "A": -np.exp(rng.standard_normal((dim, dstate))),
        "B": rng.standard_normal(shapes[variant]),
        "C": rng.standard_normal(shapes[variant]),
        "D": rng.standard_normal(dim),
        "z": rng.standard_normal((batch, dim, length)),
        "delta_bias": 0.1 * rng.standard_normal(dim),
    }


@pytest.mark.parametrize("variant", ["fixed", "variable", "grouped"])
@pytest.mark.parametrize("extras", [(), ("D",), ("z", "delta_bias"), ("D", "z", "delta_bias")])
@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("with_last", [False, True], ids=["fused", "composed"])
def test_values_and_gradients_match_torch(variant, extras, softplus, with_last):
    """Without the last state the gradient runs through the fused kernels; with it, the composed parallel scan."""
    rng = np.random.default_rng(hash((variant, extras, softplus)) % 2**32)
    case = _case(rng, variant)
    names = ["u", "delta", "A", "B", "C", *extras]
    if not softplus:
        case["delta"] = np.abs(case["delta"])  # a positive step size without softplus
    torch_in = {n: torch.tensor(case[n], requires_grad=True) for n in names}
    ref, ref_last = torch_selective_scan_ref(**torch_in, delta_softplus=softplus)
    ours_in = {n: Tensor(case[n], requires_grad=True) for n in names}
    if with_last:
        out, last = selective_scan(**ours_in, delta_softplus=softplus, return_last_state=True)
        np.testing.assert_allclose(last.numpy(), ref_last.detach().numpy(), rtol=1e-10, atol=1e-12)
    else:
        out = selective_scan(**ours_in, delta_softplus=softplus)
        assert "selective_scan" in _ops(out)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    grad_out = rng.standard_normal(out.shape)
    ref.backward(torch.tensor(grad_out))
    out.backward(grad_out)
    for n in names:
        np.testing.assert_allclose(ours_in[n].grad, torch_in[n].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=n)


def _ops(t: Tensor) -> set:
    """Names of the ops in the graph behind ``t``."""
    seen, stack, ops = set(), [t], set()
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            ops.add(node._op)
            stack.extend(node._parents)
    return ops


@pytest.mark.parametrize("variant", ["fixed", "grouped", "fixed B, variable C"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_fused_gradients_equal_composed_reference(variant, dtype, tol):
    """The fused backward against the composed parallel-scan path, 100 channels, 150 steps."""
    rng = np.random.default_rng(7)
    b_variant, c_variant = ("fixed", "variable") if variant == "fixed B, variable C" else (variant, variant)
    case = _case(rng, b_variant, dim=100, length=150, groups=4)
    case["C"] = _case(rng, c_variant, dim=100, length=150, groups=4)["C"]
    grad_out = rng.standard_normal(case["u"].shape).astype(dtype)
    grads = []
    for path in (selective_scan, composed_selective_scan):
        xs = {k: Tensor(v.astype(dtype), requires_grad=True) for k, v in case.items()}
        out = path(**xs, delta_softplus=True)
        out.backward(grad_out)
        grads.append({k: x.grad for k, x in xs.items()} | {"y": out.numpy()})
    assert "selective_scan" in _ops(selective_scan(**{k: Tensor(v, requires_grad=True) for k, v in case.items()}))
    for k, ref in grads[1].items():
        np.testing.assert_allclose(grads[0][k], ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=k)


def test_float32_matches_float64():
    rng = np.random.default_rng(0)
    case = _case(rng, "variable", length=64)
    f64 = selective_scan(**case, delta_softplus=True).numpy()
    f32 = selective_scan(**{k: v.astype(np.float32) for k, v in case.items()}, delta_softplus=True).numpy()
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, f64, rtol=1e-4, atol=1e-4)


def test_gradcheck():
    rng = np.random.default_rng(1)
    case = _case(rng, "variable", batch=1, dim=2, dstate=2, length=4)
    names = ["u", "delta", "A", "B", "C", "D", "z"]
    inputs = [Tensor(case[n], requires_grad=True) for n in names]
    assert gradcheck(lambda *xs: selective_scan(*xs[:6], z=xs[6], delta_softplus=True), inputs)


def test_s4d_equals_direct_loop():
    rng = np.random.default_rng(2)
    dim, dstate, length = 3, 4, 20
    A = -np.exp(rng.standard_normal((dim, dstate)))
    B, C = rng.standard_normal((dim, dstate)), rng.standard_normal((dim, dstate))
    log_dt = np.log(0.1) * np.ones(dim)
    u = rng.standard_normal((2, dim, length))
    A_bar, B_bar = s4d_discretize(log_dt, A, B)
    y = s4d_scan(u, A_bar, B_bar, C, D=np.ones(dim)).numpy()
    dtA = 0.1 * A  # zero-order hold, written out
    Ab, Bb = np.exp(dtA), (np.exp(dtA) - 1) / A * B
    h = np.zeros((2, dim, dstate))
    expected = np.empty_like(u)
    for t in range(length):
        h = Ab * h + Bb * u[:, :, t, None]
        expected[:, :, t] = (h * C).sum(-1) + u[:, :, t]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_bad_shapes():
    rng = np.random.default_rng(3)
    case = _case(rng, "variable")
    with pytest.raises(ValueError, match="B of 3 dimensions must be"):
        selective_scan(case["u"], case["delta"], case["A"], case["B"][:, :, :3], case["C"])
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(case["u"], case["delta"], case["A"][:2], case["B"], case["C"])
    with pytest.raises(ValueError, match="G dividing D"):
        selective_scan(case["u"], case["delta"], case["A"], np.ones((2, 3, 3, 9)), case["C"])


@pytest.mark.parametrize("variant", ["fixed", "variable", "grouped", "fixed B, variable C"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("dim,extras", [(4, ("D", "z", "delta_bias")), (100, ("D", "z", "delta_bias")), (100, ())])
def test_fused_cpu_kernel_equals_composed_reference(variant, dtype, tol, dim, extras):
    """dim=100 spans two channel blocks of the kernel, the second partial; 150 steps end in a partial tile."""
    import ann.ssm_kernel  # noqa: F401  (registers the kernel)
    from neuro.kernels import call

    rng = np.random.default_rng(5)
    b_variant, c_variant = ("fixed", "variable") if variant == "fixed B, variable C" else (variant, variant)
    case = _case(rng, b_variant, dim=dim, length=150, groups=4)
    case["C"] = _case(rng, c_variant, dim=dim, length=150, groups=4)["C"]
    case = {k: v.astype(dtype) if k in ("u", "delta", "A", "B", "C") or k in extras else None for k, v in case.items()}
    args = [case[n] for n in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
    y_cpu, last_cpu = call("selective_scan", *args, True, impl="cpu")
    y_ref, last_ref = call("selective_scan", *args, True, impl="reference")
    assert y_cpu.dtype == dtype
    scale = np.abs(y_ref).max()
    np.testing.assert_allclose(y_cpu, y_ref, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(last_cpu, last_ref, rtol=tol, atol=tol * np.abs(last_ref).max())


def test_no_grad_call_uses_fused_kernel_with_same_numbers():
    from ann.tensor import no_grad

    rng = np.random.default_rng(6)
    case = _case(rng, "variable")
    with no_grad():
        fast = selective_scan(**case, delta_softplus=True)
    slow = selective_scan(**{k: Tensor(v, requires_grad=True) for k, v in case.items()}, delta_softplus=True)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-12, atol=1e-12)


def test_float32_polynomial_exp_is_within_float32_rounding():
    from ann.ssm_kernel import _exp_float32

    x = np.linspace(-87.3, 88.0, 200_001, dtype=np.float32)
    out, bits = np.empty_like(x), np.empty(x.size, dtype=np.int32)
    _exp_float32(x, out, bits, bits.view(np.float32))
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 2e-7  # float32 epsilon is 1.2e-7
    tiny = np.array([-87.4, -100.0, -np.inf], dtype=np.float32)
    _exp_float32(tiny, out[:3], bits[:3], bits[:3].view(np.float32))
    assert np.all(out[:3] == 0)


def test_float32_softplus_and_silu_gate_within_float32_rounding():
    """The kernel's vectorized softplus (polynomial exp and log1p) and silu gate against PyTorch in float64."""
    from ann.ssm_kernel import _silu_gate, _softplus

    x = np.concatenate([np.linspace(-100.0, 40.0, 100_001), [-1e-6, 0.0, 1e-6, 19.99, 20.0, 20.01]]).astype(np.float32)
    tmp, tmp2, bits = np.empty_like(x), np.empty_like(x), np.empty(x.size, dtype=np.int32)
    out = x.copy()
    _softplus(out, tmp, tmp2, bits, bits.view(np.float32), True)
    exact = torch.nn.functional.softplus(torch.from_numpy(x.astype(np.float64))).numpy()
    normal = x > -87  # below, exp underflows float32 and is flushed to 0
    assert np.max(np.abs(out - exact)[normal] / exact[normal]) < 3e-7
    assert np.max(np.abs(out - exact)[~normal]) < 2e-38
    z = x[np.abs(x) < 80]
    gated = np.ones_like(z)
    _silu_gate(gated, z, tmp[: z.size], tmp2[: z.size], bits[: z.size], bits[: z.size].view(np.float32), True)
    exact = torch.nn.functional.silu(torch.from_numpy(z.astype(np.float64))).numpy()
    np.testing.assert_allclose(gated, exact, rtol=3e-7, atol=1e-30)


def test_mixed_dtypes_take_the_composed_path_with_its_numbers():
    rng = np.random.default_rng(8)
    case = {k: v.astype(np.float32) for k, v in _case(rng, "variable").items()}
    case["delta_bias"] = case["delta_bias"].astype(np.float64)  # promotes the step size to float64
    xs = {k: Tensor(v, requires_grad=True) for k, v in case.items()}
    out = selective_scan(**xs, delta_softplus=True)
    ref = composed_selective_scan(**xs, delta_softplus=True)
    assert out.dtype == ref.dtype == np.float64 and "selective_scan" not in _ops(out)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["fixed", "variable", "grouped"])
def test_registered_backward_kernel_equals_its_reference(variant):
    import ann.ssm_kernel  # noqa: F401  (registers the kernels)
    from neuro.kernels import call

    rng = np.random.default_rng(9)
    case = _case(rng, variant, dim=70, length=40, groups=2)
    args = [case["u"], np.abs(case["delta"]), case["A"], case["B"], case["C"], rng.standard_normal(case["u"].shape)]
    fast = call("selective_scan_backward", *args, impl="cpu")
    ref = call("selective_scan_backward", *args, impl="reference")
    for name, a, b in zip(("u", "dt", "A", "B", "C"), fast, ref):
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max(), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["u", "delta"])
def test_fused_kernel_propagates_nan_like_the_recurrence(dtype, where):
    """A NaN input poisons its channel from that step on, and nothing else (fastmath must not hide it)."""
    from ann.ssm_kernel import selective_scan_arrays

    rng = np.random.default_rng(10)
    case = {k: v.astype(dtype) for k, v in _case(rng, "variable", dim=8, length=40).items()}
    case[where][0, 3, 10] = np.nan
    y, _ = selective_scan_arrays(case["u"], case["delta"], case["A"], case["B"], case["C"], case["D"], case["z"],
                                 None, True)
    assert np.isnan(y[0, 3, 10:]).all()
    assert np.isfinite(np.delete(y, 3, axis=1)).all() and np.isfinite(y[1]).all() and np.isfinite(y[0, 3, :10]).all()
