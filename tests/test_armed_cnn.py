"""ARMED on a convolutional backbone: the network, the estimator, its baselines and interpretation."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from perslib.armed import (
    ARMEDImageClassifier,
    ARMEDNet,
    ClusterInputCNNClassifier,
    DomainAdversarialCNNClassifier,
    MixedEffectsCNNClassifier,
    MultiScaleAdversary,
    adversary_accuracy,
    fixed_effects_features,
    fresh_adversary_accuracy,
    mask_share,
    saliency_maps,
    site_probe_accuracy,
)
from perslib.armed._network import Objective
from perslib.cnn import CNNClassifier, ConvNet
from perslib.data import make_cluster_images, site_marker_masks

BACKBONE = {"image_size": (16, 12), "channels": (4, 8)}
FAST = {
    "channels": (4, 8),
    "hidden": (16,),
    "adversary_hidden": (8,),
    "zpredictor_channels": (4,),
    "zpredictor_hidden": (8,),
    "epochs": 3,
    "batch_size": 64,
    "device": "cpu",
    "progress": False,
}


def _site_images(n_per=40, K=4, seed=0):
    """Images whose site is written in them: a bright bar at a site-specific row; y from a stroke."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(K), n_per)
    X = rng.normal(0, 0.3, (len(g), 1, 16, 12)).astype(np.float32)
    X[np.arange(len(g)), 0, 2 + 3 * g, :] += 3.0  # the site marker
    y = rng.integers(0, 2, len(g))
    X[y == 1, 0, 6:10, 5:7] += 1.5  # the class signal
    return X, y, g


@pytest.fixture(scope="module")
def images():
    X, y, g = _site_images(n_per=50)
    return X, y, np.array([f"site{k}" for k in g], dtype=object)


@pytest.fixture(scope="module")
def fitted(images):
    X, y, g = images
    return ARMEDImageClassifier(random_state=0, **FAST).fit(X, y, groups=g)


def _net(K=4, **kw):
    torch.manual_seed(0)
    return ARMEDNet(1, K, hidden=(16,), slopes="nonlinear", adversary_hidden=(8,), backbone=BACKBONE, **kw)


def _objective(K, **kw):
    log_prior = torch.full((K,), -float(np.log(K)))
    return Objective(log_prior=log_prior, chance=float(np.log(K)), **kw)


# -- shapes --------------------------------------------------------------------------------------
def test_shapes_through_the_backbone():
    net = ConvNet(3, (16, 12), channels=(4, 8, 6), hidden=(10, 7), out_features=2)
    assert net.block_shapes() == [(4, 8, 6), (8, 4, 3), (6, 2, 1)]
    out, hiddens = net(torch.randn(5, 3, 16, 12), return_hidden=True)
    assert out.shape == (5, 2)
    assert [tuple(h.shape) for h in hiddens] == [(5, 4, 8, 6), (5, 8, 4, 3), (5, 6, 2, 1), (5, 10), (5, 7)]
    arm = _net()
    o = arm(torch.randn(5, 1, 16, 12), torch.arange(5) % 4)
    assert o["fixed"].shape == (5,) and o["mixed"].shape == (5,)
    assert [tuple(h.shape) for h in o["hidden"]] == [(5, 4, 8, 6), (5, 8, 4, 3), (5, 16)]
    assert arm.re.n_units == 1 + 16  # intercept + slopes on the last dense layer
    h = arm.adversary_input(o["hidden"], None)
    assert arm.adversary(h).shape == (5, 4)
    with pytest.raises(ValueError, match="too small for 3 conv blocks"):
        ConvNet(1, (7, 16), channels=(4, 4, 4))
    with pytest.raises(ValueError, match="needs the dense backbone"):
        ARMEDNet(1, 4, hidden=(8,), slopes="linear", backbone=BACKBONE)


def test_the_adversary_receives_every_block():
    net = _net()
    x = torch.randn(6, 1, 16, 12)
    hiddens = [h.detach().requires_grad_(True) for h in net(x)["hidden"]]
    logits = net.adversary(net.adversary_input(hiddens, x))
    grads = torch.autograd.grad(logits.square().sum(), hiddens)
    assert len(grads) == 3 and all(g.abs().sum() > 0 for g in grads)  # both conv blocks and h_F
    # ... and its gradient reaches the FE network's first block in a main step
    net.zero_grad()
    o = net(x)
    logits = net.adversary(net.adversary_input(o["hidden"], x))
    logits.square().sum().backward()
    assert net.fe.blocks[0][0].weight.grad.abs().sum() > 0
    assert isinstance(net.adversary, MultiScaleAdversary) and net.adversary.n_blocks == 2


# -- the objective ---------------------------------------------------------------------------------
def test_random_effects_change_after_one_training_step():
    """P2 of the official code: its ME-CNN never updated the random effects."""
    K = 4
    net = _net(K)
    before = {k: v.detach().clone() for k, v in net.re.named_parameters()}
    fe_before = net.fe.blocks[0][0].weight.detach().clone()
    opt_main, opt_adv = net.configure_optimizers(1e-2, 0.0, 10.0)
    X, y, g = _site_images(n_per=8, K=K)
    batch = (torch.as_tensor(X), torch.as_tensor(g), torch.as_tensor(y, dtype=torch.float32))
    losses = net.training_step(batch, _objective(K, kl_weight=1e-2), opt_main, opt_adv)
    assert {"nll_mixed", "nll_fixed", "kl", "adv_loss", "gen_loss"} <= set(losses)
    for name, value in net.re.named_parameters():
        assert not torch.equal(value.detach(), before[name]), f"random-effect parameter {name} did not move"
    assert not torch.equal(net.fe.blocks[0][0].weight.detach(), fe_before)


@pytest.mark.parametrize("lambda_adv", [1.0, 0.0])
def test_main_step_lowers_the_adversarys_accuracy_on_site_identifying_images(lambda_adv):
    """P1 of the official code: its DA/ME CNN *added* the adversary's loss, helping it instead."""
    K = 4
    X, y, g = _site_images(n_per=40, K=K)
    x, z, t = torch.as_tensor(X), torch.as_tensor(g), torch.as_tensor(y, dtype=torch.float32)
    net = _net(K)
    adv_opt = torch.optim.Adam(net.adversary.parameters(), lr=1e-2)

    def adversary_step():
        adv_opt.zero_grad()
        torch.nn.functional.cross_entropy(net.adversary(net.adversary_input(net(x)["hidden"], x)), z).backward()
        adv_opt.step()

    def accuracy():
        net.eval()
        with torch.no_grad():
            acc = (net.adversary(net.adversary_input(net(x)["hidden"], x)).argmax(1) == z).float().mean()
        net.train()
        return float(acc)

    for _ in range(60):  # the adversary learns to read the site marker
        adversary_step()
    start = accuracy()
    assert start > 0.9
    # main steps only: the adversary is frozen (lr 0), the FE net follows the generator term alone
    opt_main, _ = net.configure_optimizers(3e-2, 0.0, 10.0)
    frozen = torch.optim.SGD(net.adversary.parameters(), lr=0.0)
    objective = _objective(K, lambda_mixed=0.0, lambda_fixed=0.0, lambda_adv=lambda_adv, guard="none")
    for _ in range(15):
        net.training_step((x, z, t), objective, opt_main, frozen)
    end = accuracy()
    if lambda_adv > 0:
        assert end < start - 0.3, f"the main step should fool the adversary: {start:.2f} -> {end:.2f}"
    else:
        assert end > start - 0.1


# -- the estimators ----------------------------------------------------------------------------------
def test_estimator_api_and_attributes(images, fitted):
    X, y, g = images
    m = fitted
    assert m.n_features_in_ == 1 and m.image_shape_ == (1, 16, 12) and m.n_clusters_ == 4
    assert isinstance(m.net_.fe, ConvNet) and isinstance(m.zpredictor_, CNNClassifier)
    assert m.zpredictor_.classes_.tolist() == [0, 1, 2, 3]
    assert list(m.random_effects_.columns) == ["intercept", *[f"h{j}" for j in range(16)]]
    proba = m.predict_proba(X, groups=g)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    np.testing.assert_allclose(m.predict_proba(torch.as_tensor(X), groups=g), proba)  # tensors too
    Z = m.design_matrix(X[:5], groups=np.array(["new"] * 5), z="zpredictor")
    assert Z.shape == (5, 4) and np.allclose(Z.sum(1), 1)
    with pytest.warns(UserWarning, match="not seen in training"):
        unseen = m.decision_function(X[:5], groups=np.array(["new"] * 5))
    np.testing.assert_allclose(unseen, m.decision_function(X[:5], z=Z), rtol=1e-6)
    fixed = m.decision_function(X, groups=g, z="zero")
    with torch.no_grad():
        m.net_.eval()
        np.testing.assert_allclose(fixed, m.net_.fe(m._x_tensor(X))[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    assert m.epoch_time_ > 0 and set(m.history_.columns) >= {"adv_loss", "gen_loss", "val_loss"}


def test_same_seed_same_predictions_on_cpu(images):
    X, y, g = images
    a = ARMEDImageClassifier(random_state=3, **FAST).fit(X, y, groups=g).predict_proba(X, groups=g)
    b = ARMEDImageClassifier(random_state=3, **FAST).fit(X, y, groups=g).predict_proba(X, groups=g)
    c = ARMEDImageClassifier(random_state=4, **FAST).fit(X, y, groups=g).predict_proba(X, groups=g)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_bad_input_gives_clear_errors(images, fitted):
    X, y, g = images
    est = ARMEDImageClassifier(random_state=0, **FAST)
    with pytest.raises(
        ValueError, match=r"X must be images of shape \(n, C, H, W\) \(4 dimensions\), got shape \(200, 192\)"
    ):
        est.fit(X.reshape(len(X), -1), y, groups=g)
    with pytest.raises(ValueError, match=r"add the channel axis, X\[:, None\]"):
        est.fit(X[:, 0], y, groups=g)
    nan = X.copy()
    nan[3, 0, 4, 4] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        est.fit(nan, y, groups=g)
    with pytest.raises(ValueError, match="at least 2 sites"):
        est.fit(X, y, groups=np.zeros(len(X)))
    with pytest.raises(ValueError, match="too small for 2 conv blocks"):
        est.fit(X[:, :, :3, :3], y, groups=g)
    with pytest.raises(
        ValueError,
        match=r"X has 3 features, but ARMEDImageClassifier is expecting 1 features as input \(image channels",
    ):
        fitted.predict(np.repeat(X[:4], 3, axis=1), groups=g[:4])
    with pytest.raises(
        ValueError, match="X holds images of 16x16 pixels, but ARMEDImageClassifier was fitted on 16x12"
    ):
        fitted.predict(np.zeros((2, 1, 16, 16)), groups=g[:2])
    with pytest.raises(ValueError, match="X contains NaN"):
        fitted.predict(nan[:5], groups=g[:5])
    with pytest.raises(
        ValueError, match="'slopes' parameter of ARMEDImageClassifier must be one of 'nonlinear', 'none'"
    ):
        ARMEDImageClassifier(slopes="linear").fit(X, y, groups=g)
    with pytest.raises(ValueError, match="'adversary_channels' parameter .* one width per conv block"):
        ARMEDImageClassifier(adversary_channels=(4,), **{k: v for k, v in FAST.items()}).fit(X, y, groups=g)
    with pytest.raises(ValueError, match="'kernel_size' parameter of CNNClassifier must be odd"):
        CNNClassifier(kernel_size=4).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 sites"):
        ClusterInputCNNClassifier(epochs=1).fit(X, y, groups=np.zeros(len(X)))


def test_baselines_share_the_backbone(images):
    X, y, g = images
    kw = {k: v for k, v in FAST.items() if not k.startswith(("adversary", "zpredictor"))}
    da = DomainAdversarialCNNClassifier(random_state=0, **FAST).fit(X, y, groups=g)
    me = MixedEffectsCNNClassifier(random_state=0, **FAST).fit(X, y, groups=g)
    assert da.net_.re is None and da.net_.adversary is not None and da.zpredictor_ is None
    assert me.net_.re is not None and me.net_.adversary is None
    ci = ClusterInputCNNClassifier(random_state=0, **kw).fit(X, y, groups=g)
    assert ci.model_.hidden_layers[0].in_features == 8 * 4 * 3 + 4  # the one-hot site joins before the dense layer
    out = ci.decision_function(X[:6], groups=g[:6])
    other = ci.decision_function(X[:6], groups=np.array(["site3"] * 6, dtype=object))
    assert np.abs(out - other).max() > 0
    with pytest.warns(UserWarning, match="site input is the zero vector"):
        zero = ci.decision_function(X[:6], groups=np.array(["new"] * 6))
    with torch.no_grad():
        expected = ci.model_(ci._x_tensor(X[:6]))[:, 0].numpy()
    np.testing.assert_allclose(zero, expected, rtol=1e-5, atol=1e-6)
    cnn = CNNClassifier(random_state=0, **kw).fit(X, y, groups=g)
    assert cnn.model_.block_shapes() == da.net_.fe.block_shapes()


# -- interpretation --------------------------------------------------------------------------------
def test_saliency_is_the_input_gradient(images, fitted):
    X, _, _ = images
    maps = saliency_maps(fitted, X[:3])
    assert maps.shape == (3, 16, 12) and (maps >= 0).all()
    eps = 1e-2
    for i, (r, c) in enumerate([(7, 5), (2, 3), (12, 9)]):  # finite differences on the raw pixels
        up, down = X[i : i + 1].copy(), X[i : i + 1].copy()
        up[0, 0, r, c] += eps
        down[0, 0, r, c] -= eps
        p = fitted.predict_proba(np.concatenate([up, down]), z="zero")[:, 1]
        assert maps[i, r, c] == pytest.approx(abs(p[0] - p[1]) / (2 * eps), rel=0.05, abs=1e-4)
    share = mask_share(np.ones((2, 4, 4)), np.eye(4, dtype=bool)[None].repeat(2, 0))
    np.testing.assert_allclose(share, [0.25, 0.25])


def test_site_information_measures(images, fitted):
    X, y, g = images
    tr, te = np.arange(len(X)) % 2 == 0, np.arange(len(X)) % 2 == 1
    h = fixed_effects_features(fitted, X)
    with torch.no_grad():
        fitted.net_.eval()
        expected = fitted.net_.fe(fitted._x_tensor(X), return_hidden=True)[1][-1].numpy()
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6)
    acc = adversary_accuracy(fitted, X[te], g[te])
    with torch.no_grad():
        hid = fitted.net_(fitted._x_tensor(X[te]))["hidden"]
        manual = (fitted.net_.adversary(hid).argmax(1).numpy() == fitted._group_index.get_indexer(g[te])).mean()
    assert acc == pytest.approx(manual)
    # the site marker is in the pixels: a new adversary reads it from the first block
    assert fresh_adversary_accuracy(fitted, X[tr], g[tr], X[te], g[te], epochs=20) > 0.9
    probe = site_probe_accuracy(fitted, X[tr], g[tr], X[te], g[te])
    assert 0 <= probe <= 1
    with pytest.raises(ValueError, match="has no adversary"):
        adversary_accuracy(MixedEffectsCNNClassifier(random_state=0, **FAST).fit(X, y, groups=g), X, g)


# -- the data --------------------------------------------------------------------------------------
def test_site_markers_identify_the_site_and_nothing_else():
    plain, y0, s0, e0 = make_cluster_images(6, n_per_site=20, effect_strength=0.0, random_state=0)
    marked, y1, s1, e1 = make_cluster_images(6, n_per_site=20, effect_strength=0.0, site_marker=True, random_state=0)
    assert np.array_equal(y0, y1) and np.array_equal(s0, s1)
    masks = site_marker_masks(s1, e1, 16)
    assert (marked[:, 0][masks] == 1.0).all()  # value 1 where the marker is
    np.testing.assert_array_equal(marked[:, 0][~masks], plain[:, 0][~masks])  # the rest untouched
    assert masks.sum(axis=(1, 2)).tolist() == [4] * len(s1)  # 2 x 2 pixels at 16 x 16
    slots = set(zip(e1["marker_row"], e1["marker_col"]))
    assert len(slots) == 6  # one slot per site
    with pytest.raises(ValueError, match="14 marker slots, fewer than n_sites=15"):
        make_cluster_images(15, n_per_site=20, site_marker=True)
    with pytest.raises(ValueError, match="make the images with site_marker=True"):
        site_marker_masks(s0, e0, 16)


def test_extra_noise_is_the_same_in_every_site():
    a, *_ = make_cluster_images(4, n_per_site=200, effect_strength=0.0, random_state=1)
    b, _, s, e = make_cluster_images(4, n_per_site=200, effect_strength=0.0, noise=0.05, random_state=1)
    assert (e["noise_sd"] == 0.05).all()
    inner = (a > 0.2) & (a < 0.8)  # away from the clipping at 0 and 1
    assert np.std((b - a)[inner]) == pytest.approx(0.05, rel=0.1)
    smooth = ndimage.uniform_filter(b - a, size=(1, 1, 3, 3))
    assert np.abs(smooth).mean() < 0.05  # white noise: no structure


def test_site_information_and_saliency_figure(images, fitted):
    import matplotlib

    matplotlib.use("Agg")
    from perslib.armed import site_information
    from perslib.plotting import plot_saliency_maps

    X, _, g = images
    tr, te = np.arange(len(X)) % 2 == 0, np.arange(len(X)) % 2 == 1
    info = site_information(fitted, X[tr], g[tr], X[te], g[te], epochs=2)
    assert set(info) == {"own adversary", "fresh adversary", "linear probe", "chance"}
    assert info["chance"] == pytest.approx(0.25) and info["own adversary"] == adversary_accuracy(fitted, X[te], g[te])
    cnn = CNNClassifier(channels=(4,), hidden=(8,), epochs=1, device="cpu", random_state=0).fit(X, images[1])
    assert np.isnan(site_information(cnn, X[tr], g[tr], X[te], g[te], epochs=1)["own adversary"])
    maps = {"a": np.ones((16, 12)), "b": np.zeros((16, 12))}
    fig = plot_saliency_maps(maps, image=X[0, 0], region=np.eye(16, 12, dtype=bool))
    assert sum(ax.has_data() for ax in fig.axes) == 3
    with pytest.raises(ValueError, match="same shape"):
        plot_saliency_maps({"a": np.ones((4, 4)), "b": np.ones((5, 4))})
    with pytest.raises(ValueError, match="region must have the maps' shape"):
        plot_saliency_maps(maps, region=np.ones((4, 4), dtype=bool))
