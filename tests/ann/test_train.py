"""Training utilities, the digits MLP, and .npz save/load."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import ann
import ann.functional as F
from ann import nn, optim
from ann.train import DataLoader, EarlyStopping, accuracy, evaluate, fit, predict, top_k_accuracy, train_val_test_split


def _digits():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return x, d.target.astype(np.int64)


def test_digits_mlp_reaches_95_percent_with_adam():
    x, y = _digits()
    split = train_val_test_split(x, y, val_fraction=0.1, test_fraction=0.2, seed=0)
    model = nn.MLP([64, 128, 128, 10], activation="relu", seed=0)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    hist = fit(model, F.cross_entropy, opt, split.train, split.val, epochs=15, batch_size=32, seed=0,
               metrics={"accuracy": accuracy})
    assert hist["loss"][-1] < hist["loss"][0] / 5
    test_acc = accuracy(predict(model, split.test[0]), split.test[1])
    assert test_acc >= 0.95, test_acc
    assert hist["val_accuracy"][-1] >= 0.9
    assert len(hist["val_loss"]) == 15 and hist.epochs == 15


def test_split_is_deterministic_disjoint_and_complete():
    x = np.arange(100)
    y = np.arange(100) * 10
    s1 = train_val_test_split(x, y, val_fraction=0.15, test_fraction=0.25, seed=3)
    s2 = train_val_test_split(x, y, val_fraction=0.15, test_fraction=0.25, seed=3)
    s3 = train_val_test_split(x, y, val_fraction=0.15, test_fraction=0.25, seed=4)
    assert [len(p[0]) for p in (s1.train, s1.val, s1.test)] == [60, 15, 25]
    np.testing.assert_array_equal(s1.test[0], s2.test[0])
    assert not np.array_equal(s1.test[0], s3.test[0])
    np.testing.assert_array_equal(np.sort(np.concatenate([s1.train[0], s1.val[0], s1.test[0]])), x)
    np.testing.assert_array_equal(s1.train[1], s1.train[0] * 10)  # rows stay aligned
    with pytest.raises(ValueError, match="same length"):
        train_val_test_split(x, y[:5])
    with pytest.raises(ValueError, match="no training samples"):
        train_val_test_split(x, val_fraction=0.5, test_fraction=0.5)


def test_loader_batches_shuffle_and_drop_last():
    x = np.arange(10)
    assert [b[0].tolist() for b in DataLoader(x, batch_size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(DataLoader(x, batch_size=4, drop_last=True)) == 2
    a = [b[0].tolist() for b in DataLoader(x, batch_size=3, shuffle=True, seed=1)]
    b = [b[0].tolist() for b in DataLoader(x, batch_size=3, shuffle=True, seed=1)]
    assert a == b and sorted(sum(a, [])) == list(range(10)) and sum(a, []) != list(range(10))
    loader = DataLoader(x, batch_size=10, shuffle=True, seed=1)
    assert next(iter(loader))[0].tolist() != next(iter(loader))[0].tolist()  # new order each epoch
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, batch_size=0)


def test_accuracy_metrics():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 5.0, 1.0], [1.0, 0.0, 0.5]])
    y = np.array([0, 2, 0, 2])
    assert accuracy(logits, y) == 0.5
    assert top_k_accuracy(logits, y, k=2) == 0.75
    assert accuracy(np.array([0.9, 0.2, 0.6]), np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="does not fit"):
        accuracy(np.ones((3, 2, 2)), np.ones(4))


@pytest.mark.parametrize("k", [0, -1, 4])
def test_top_k_accuracy_rejects_k_outside_the_classes(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        top_k_accuracy(np.ones((2, 3)), np.array([0, 1]), k=k)
    with pytest.raises(TypeError, match="k must be an int"):
        top_k_accuracy(np.ones((2, 3)), np.array([0, 1]), k=1.5)


def test_early_stopping_stops_and_restores_the_best_weights():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    xv, yv = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 2, 32)  # unlearnable: val loss rises
    model = nn.MLP([5, 64, 2], seed=0)
    es = EarlyStopping(patience=2)
    hist = fit(model, F.cross_entropy, optim.Adam(model.parameters(), lr=0.05), (x, y), (xv, yv), epochs=200,
               batch_size=16, early_stopping=es)
    assert hist.stopped_epoch is not None and hist.stopped_epoch < 199
    assert hist.stopped_epoch == hist.best_epoch + 3
    best = min(hist["val_loss"])
    assert hist["val_loss"][hist.best_epoch] == best
    assert evaluate(model, F.cross_entropy, xv, yv)["loss"] == pytest.approx(best, rel=1e-5)
    with pytest.raises(ValueError, match="early_stopping needs val"):
        fit(model, F.cross_entropy, optim.SGD(model.parameters()), (x, y), early_stopping=es)


def test_fit_with_scheduler_clipping_and_callback():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    model = nn.Linear(3, 1, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    seen = []
    hist = fit(model, F.mse_loss, opt, (x, y), epochs=5, batch_size=8, scheduler=optim.StepLR(opt, 1, 0.5),
               clip_norm=1.0, callback=lambda e, logs: seen.append((e, logs["loss"])))
    assert [e for e, _ in seen] == list(range(5))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**5)
    assert hist["loss"][-1] < hist["loss"][0]


def test_model_save_load_roundtrip(tmp_path):
    m = nn.MLP([4, 6, 3], seed=0)
    ann.io.save(tmp_path / "m.npz", model=m)
    m2 = nn.MLP([4, 6, 3], seed=1)
    ann.io.load(tmp_path / "m.npz", model=m2)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(m(x).numpy(), m2(x).numpy())
    ann.io.save_state_dict(tmp_path / "sd.npz", m.state_dict())
    sd = ann.io.load_state_dict(tmp_path / "sd.npz")
    assert list(sd) == list(m.state_dict())
    with pytest.raises(KeyError, match="no optimizer state"):
        ann.io.load(tmp_path / "m.npz", optimizer=optim.Adam(m2.parameters()))


@pytest.mark.parametrize("content, says", [(np.random.default_rng(0).bytes(100), "not a zip archive"),
                                            (b"hello world", "not a zip archive"),
                                            (b"\x93NUMPY\x01\x00v\x00", "a .npy array")])
def test_loaders_say_what_is_wrong_with_the_file(tmp_path, content, says):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    for load in (ann.io.load_state_dict, lambda p: ann.io.load(p, model=nn.Linear(2, 2))):
        with pytest.raises(ValueError, match=f"is not an .npz archive.*{says}"):
            load(path)


def test_loading_a_truncated_archive_says_damaged(tmp_path):
    ann.io.save(tmp_path / "m.npz", model=nn.MLP([4, 6, 3], seed=0))
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged"):
        ann.io.load(tmp_path / "cut.npz", model=nn.MLP([4, 6, 3], seed=0))


def test_optimizer_state_of_another_model_is_refused_at_load(tmp_path):
    m = nn.MLP([4, 6, 3], seed=0)
    opt = optim.Adam(m.parameters())
    m(np.ones((2, 4), np.float32)).sum().backward()
    opt.step()
    ann.io.save(tmp_path / "m.npz", model=m, optimizer=opt)
    other = optim.Adam(nn.MLP([4, 5, 3], seed=0).parameters())
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(6, 4\), the parameter \(5, 4\)"):
        ann.io.load(tmp_path / "m.npz", optimizer=other)
    same = optim.Adam(nn.MLP([4, 6, 3], seed=1).parameters())
    ann.io.load(tmp_path / "m.npz", optimizer=same)  # the same architecture loads


def test_nan_weights_are_refused_at_load_or_warned(tmp_path):
    from neuro.validation import NonFiniteWarning

    m = nn.Linear(3, 2, seed=0)
    m.weight.data[0, 1] = np.nan
    ann.io.save(tmp_path / "m.npz", model=m)
    ann.io.save_state_dict(tmp_path / "sd.npz", m.state_dict())
    with pytest.raises(ValueError, match="'model/weight' contains 1 NaN"):
        ann.io.load(tmp_path / "m.npz", model=nn.Linear(3, 2))
    with pytest.raises(ValueError, match="'weight' contains 1 NaN"):
        ann.io.load_state_dict(tmp_path / "sd.npz")
    fresh = nn.Linear(3, 2)
    with pytest.warns(NonFiniteWarning, match="weight"):
        ann.io.load(tmp_path / "m.npz", model=fresh, on_nonfinite="warn")
    assert np.isnan(fresh.weight.data[0, 1])


def test_non_finite_loss_warns_and_stops():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32) * 100
    y = rng.standard_normal((32, 1)).astype(np.float32)
    model = nn.Linear(4, 1, seed=0)
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(ann.NonFiniteLossWarning, match="training loss became"):
        hist = fit(model, F.mse_loss, optim.SGD(model.parameters(), lr=10.0), (x, y), epochs=50, batch_size=8)
    assert hist.stopped_epoch is not None and hist.stopped_epoch < 49
    assert not np.isfinite(hist["loss"][-1])


def test_dropout_p1_warns():
    with pytest.warns(ann.AnnWarning, match="p=1"):
        y = F.dropout(ann.Tensor(np.ones(3)), 1.0)
    assert (y.numpy() == 0).all()
