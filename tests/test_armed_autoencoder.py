"""ARMEDAutoencoder, its network and the batch-effect metrics: checks that can fail.

* the adversary's sign: the encoder's step raises a frozen adversary's loss (a wrong sign
  lowers it), for every generator objective;
* the batch-norm replacements are per cluster: gradient reaches only the rows of the
  clusters in the minibatch, and the learned output biases recover known additive shifts;
* ``transform`` depends on nothing but each row of ``X``;
* a simulation with known additive batch shifts: the fixed-effects latent's batch
  Davies–Bouldin is above the conventional autoencoder's;
* determinism, bad input, images, persistence;
* the metrics against scikit-learn, and Harmony (when installed) against plain PCA.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

import perslib
from perslib.armed import ARMEDAutoencoder, ARMEDAutoencoderNet, ClusterScaleBias, generator_loss
from perslib.armed._autoencoder_net import AutoencoderObjective
from perslib.evaluation import (
    batch_effect_intervals,
    batch_effect_scores,
    harmony_available,
    pca_harmony,
    reconstruction_mse,
    zscore,
)

FAST = {"device": "cpu", "progress": False, "random_state": 0}


def shifted_batches(n_per=150, K=4, p=20, shift=3.0, seed=0):
    """Two classes in a 3-d content space, mapped nonlinearly to ``p`` features, plus a known
    additive shift vector per batch. Returns X, y, batch, shifts (K, p)."""
    rng = np.random.default_rng(seed)
    n = n_per * K
    b = np.repeat(np.arange(K), n_per)
    y = rng.integers(0, 2, n)
    content = rng.normal(size=(n, 3)) + 1.5 * y[:, None]
    W = rng.normal(size=(3, p)) / np.sqrt(3)
    X = np.tanh(content @ W) + 0.1 * rng.normal(size=(n, p))
    shifts = shift * rng.normal(size=(K, p)) / np.sqrt(p) * 2
    return X + shifts[b], y, b, shifts


@pytest.fixture(scope="module")
def sim():
    return shifted_batches()


@pytest.fixture(scope="module")
def fitted(sim):
    X, y, b, _ = sim
    common = {"latent_dim": 4, "hidden": (32,), "epochs": 40, **FAST}
    conv = ARMEDAutoencoder(random_effects=False, adversary=False, **common).fit(X, y, groups=b)
    armed = ARMEDAutoencoder(**common).fit(X, y, groups=b)
    return conv, armed


# --------------------------------------------------------------------------- the adversary's sign
def _frozen_adversary_loss_change(mode: str, guard: str) -> tuple[float, float]:
    torch.manual_seed(0)
    K = 3
    net = ARMEDAutoencoderNet(6, K, latent_dim=3, hidden=(16,), adversary_hidden=(16,))
    z = torch.arange(96) % K
    x = torch.randn(96, 6) + 5.0 * torch.nn.functional.one_hot(z, 6).float()
    y = torch.zeros(96)
    net.train()
    opt = torch.optim.Adam(net.adversary.parameters(), lr=1e-2)
    for _ in range(300):  # a good adversary on the initial latent
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net.adversary(net.encode(x)[0].detach()), z)
        loss.backward()
        opt.step()

    log_prior = torch.log(torch.full((K,), 1 / K))

    def adv_loss():
        with torch.no_grad():
            logits = net.adversary(net.encode(x)[0])
            if guard == "confusion":  # its own objective: distance of A(e) from the batch proportions
                return -float(generator_loss(logits, z, log_prior, "confusion"))
            return float(torch.nn.functional.cross_entropy(logits, z))

    o = AutoencoderObjective(
        log_prior=log_prior,
        chance=math.log(K),
        lambda_adv=1.0,
        guard=guard,
        mode=mode,
        lambda_recon=0.0,
        lambda_class=0.0,
        use_random_effects=False,
    )
    main = torch.optim.Adam(net.encoder.parameters(), lr=1e-2)
    frozen = torch.optim.SGD(net.adversary.parameters(), lr=0.0)
    before = adv_loss()
    for _ in range(10):
        net.training_step((x, z, y), o, main, frozen)
    return before, adv_loss()


@pytest.mark.parametrize(
    ("mode", "guard"), [("alternating", "confusion"), ("alternating", "clamp"), ("reversal", "clamp")]
)
def test_encoder_step_raises_a_frozen_adversarys_loss(mode, guard):
    """-CE guards: the adversary's cross-entropy rises; confusion: A(e) moves towards the proportions."""
    before, after = _frozen_adversary_loss_change(mode, guard)
    if guard != "confusion":
        assert before < 0.5 * math.log(3), "the adversary should first name the batch well"
    assert after > before + 0.2, f"the encoder should fight the adversary ({before:.3f} -> {after:.3f})"


# --------------------------------------------------------------------------- random effects per cluster
def test_cluster_scale_bias_gets_gradient_only_from_its_own_cluster():
    torch.manual_seed(0)
    layer = ClusterScaleBias(5, 3)
    h = torch.randn(16, 5)
    z = torch.ones(16, dtype=torch.int64)  # cluster 1 only
    layer(h, z).square().sum().backward()
    grad = layer.re.loc.grad.abs().sum(1)
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0
    torch.manual_seed(0)
    out_none = ClusterScaleBias(5, 3).eval()(h, None)
    torch.manual_seed(0)
    out_zero = ClusterScaleBias(5, 3).eval()(h, torch.zeros(16, 3))
    torch.testing.assert_close(out_none, out_zero)  # z = 0 == no random effects


def test_learned_output_biases_recover_the_known_batch_shifts(sim, fitted):
    X, _, b, shifts = sim
    _, armed = fitted
    out = armed.net_.decoder.out_re
    n = out.n_units
    bias = out.re.loc.detach().numpy()[:, n:] * armed.scaler_.scale_  # standardized -> X units
    # shifts are recovered up to a common offset (the fixed part absorbs the mean shift)
    r = np.corrcoef((bias - bias.mean(0)).ravel(), (shifts - shifts.mean(0)).ravel())[0, 1]
    assert r > 0.6, f"the per-batch output biases should follow the true shifts (r = {r:.2f})"
    # and decoding one latent as each batch moves it by about that batch's shift
    e = armed.transform(X[:50])
    moved = [armed.decode(e, np.eye(armed.n_clusters_)[[k] * 50]).mean(0) for k in range(armed.n_clusters_)]
    d = np.array(moved) - np.mean(moved, axis=0)
    r2 = np.corrcoef(d.ravel(), (shifts - shifts.mean(0)).ravel())[0, 1]
    assert r2 > 0.9


# --------------------------------------------------------------------------- transform and batch removal
def test_transform_depends_only_on_each_row(sim, fitted):
    X = sim[0]
    _, armed = fitted
    full = armed.transform(X)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(armed.transform(X[perm]), full[perm], atol=1e-5)
    np.testing.assert_allclose(armed.transform(X[:3]), full[:3], atol=1e-5)
    with pytest.raises(TypeError):
        armed.transform(X, groups=sim[2])  # no batch label can enter the latent


def test_predictions_for_a_row_do_not_depend_on_the_batch(sim, fitted):
    X, _, b, _ = sim
    _, armed = fitted
    full = armed.predict_proba(X, groups=b)
    np.testing.assert_allclose(armed.predict_proba(X[5:8], groups=b[5:8]), full[5:8], atol=1e-5)
    np.testing.assert_allclose(full.sum(1), 1.0)
    rec = armed.reconstruct(X, groups=b)
    np.testing.assert_allclose(armed.reconstruct(X[:4], groups=b[:4]), rec[:4], atol=1e-5)


def test_known_shifts_fixed_effects_latent_separates_batches_less(sim, fitted):
    X, y, b, _ = sim
    conv, armed = fitted
    s_conv = batch_effect_scores(conv.transform(X), b, y)
    s_armed = batch_effect_scores(armed.transform(X), b, y)
    assert s_armed["batch_davies_bouldin"] > 2 * s_conv["batch_davies_bouldin"]
    assert s_armed["batch_calinski_harabasz"] < 0.25 * s_conv["batch_calinski_harabasz"]
    assert s_armed["label_knn_accuracy"] > 0.7, "the class must stay readable"
    # the batch's random effects give the batch back to the reconstruction
    assert reconstruction_mse(X, armed.reconstruct(X, groups=b)) < reconstruction_mse(X, armed.reconstruct(X))


# --------------------------------------------------------------------------- determinism and input
def test_same_seed_same_model_other_seed_other_model(sim):
    X, y, b, _ = sim
    kw = {"latent_dim": 3, "hidden": (8,), "epochs": 3, "device": "cpu", "progress": False}
    a = ARMEDAutoencoder(random_state=3, **kw).fit(X, y, groups=b).transform(X)
    a2 = ARMEDAutoencoder(random_state=3, **kw).fit(X, y, groups=b).transform(X)
    c = ARMEDAutoencoder(random_state=4, **kw).fit(X, y, groups=b).transform(X)
    np.testing.assert_array_equal(a, a2)
    assert not np.allclose(a, c)


def test_bad_input_gets_clear_errors(sim):
    X, y, b, _ = sim
    est = ARMEDAutoencoder(2, hidden=(4,), epochs=1, **FAST)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        est.fit(bad, y, groups=b)
    with pytest.raises(ValueError, match="groups"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="groups"):
        est.fit(X, y, groups=b[:-1])
    with pytest.raises(ValueError, match="at least 2 batches"):
        est.fit(X, y, groups=np.zeros(len(X)))
    with pytest.raises(ValueError, match="y"):
        est.fit(X, np.ones(len(X)), groups=b)
    with pytest.raises(ValueError, match="inconsistent"):
        est.fit(X, y[:-1], groups=b)
    with pytest.raises(ValueError, match="confusion"):
        ARMEDAutoencoder(adversary_mode="reversal").fit(X, y, groups=b)
    with pytest.raises(ValueError, match="latent_dim"):
        ARMEDAutoencoder(latent_dim=0).fit(X, y, groups=b)
    model = est.fit(X, groups=b)
    with pytest.raises(AttributeError, match="without y"):
        model.predict_proba(X, groups=b)
    with pytest.raises(ValueError, match="features"):
        model.transform(X[:, :3])
    with pytest.raises(ValueError, match="latent"):
        model.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="z"):
        model.reconstruct(X, z=np.ones((len(X), 2)))


def test_unseen_batches_use_the_zpredictor_with_a_warning(sim, fitted):
    X, _, b, _ = sim
    _, armed = fitted
    with pytest.warns(UserWarning, match="not seen in training"):
        rec = armed.reconstruct(X[:10], groups=np.full(10, 99))
    np.testing.assert_allclose(rec, armed.reconstruct(X[:10], z="zpredictor"))
    assert rec.shape == (10, X.shape[1])


def test_images_use_the_convolutional_backbone_and_save(tmp_path):
    rng = np.random.default_rng(0)
    g = np.repeat([0, 1, 2], 20)
    X = rng.normal(size=(60, 1, 8, 8)) + g[:, None, None, None]
    y = rng.integers(0, 2, 60)
    est = ARMEDAutoencoder(3, channels=(4, 4), epochs=2, zpredictor_channels=(4,), adversary_reads="all", **FAST)
    est.fit(X, y, groups=g)
    assert est.image_shape_ == (1, 8, 8)
    assert est.transform(X).shape == (60, 3)
    assert est.reconstruct(X, groups=g).shape == X.shape
    assert type(est.net_.adversary).__name__ == "MultiScaleAdversary"
    path = tmp_path / "ae.pt"
    est.save(path)
    loaded = perslib.load(path)
    np.testing.assert_allclose(loaded.reconstruct(X, groups=g), est.reconstruct(X, groups=g), atol=1e-6)
    with pytest.raises(ValueError, match="pixels"):
        est.transform(X[:, :, :4, :4])


# --------------------------------------------------------------------------- metrics
def test_batch_scores_are_sklearns_on_zscored_columns():
    rng = np.random.default_rng(0)
    b = np.repeat([0, 1, 2], 40)
    L = rng.normal(size=(120, 4)) * [1, 10, 0.1, 3] + 4.0 * b[:, None]
    y = (L[:, 0] > np.median(L[:, 0])).astype(int)
    s = batch_effect_scores(L, b, y)
    Z = (L - L.mean(0)) / L.std(0)
    assert s["batch_davies_bouldin"] == pytest.approx(davies_bouldin_score(Z, b))
    assert s["batch_calinski_harabasz"] == pytest.approx(calinski_harabasz_score(Z, b))
    mixed = batch_effect_scores(rng.normal(size=(120, 4)), b)
    assert mixed["batch_davies_bouldin"] > 5 * s["batch_davies_bouldin"]
    assert mixed["batch_calinski_harabasz"] < 0.05 * s["batch_calinski_harabasz"]
    separable = batch_effect_scores(np.column_stack([b * 10.0, rng.normal(size=120)]), y, b)
    assert separable["label_knn_accuracy"] == 1.0
    ci = batch_effect_intervals(L, b, n_boot=30)
    assert (ci["low"] <= s["batch_davies_bouldin"]).iloc[0] and (ci["high"] >= s["batch_davies_bouldin"]).iloc[0]
    np.testing.assert_allclose(
        zscore(L, reference=L[:60]).mean(0)[:1], ((L[:, 0] - L[:60, 0].mean()) / L[:60, 0].std()).mean()
    )
    assert reconstruction_mse(np.zeros((2, 2)), np.ones((2, 2))) == 1.0
    with pytest.raises(ValueError, match="shape"):
        reconstruction_mse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 distinct"):
        batch_effect_scores(L, np.zeros(120))


@pytest.mark.skipif(not harmony_available(), reason="harmonypy not installed (extra 'batch')")
def test_harmony_removes_a_known_batch_shift_from_pca():
    # batches that overlap (shift 1): Harmony's soft clusters span batches and it corrects; at
    # shift 3 the batches do not overlap, every cluster is one batch and it changes little
    X, _, b, _ = shifted_batches(n_per=100, shift=1.0, seed=1)
    pcs, corrected = pca_harmony(X, b, 5, random_state=0)
    assert pcs.shape == corrected.shape == (len(X), 5)
    before = batch_effect_scores(pcs, b)["batch_calinski_harabasz"]
    after = batch_effect_scores(corrected, b)["batch_calinski_harabasz"]
    assert after < 0.25 * before


def test_no_warning_for_seen_batches(sim, fitted):
    X, _, b, _ = sim
    _, armed = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        armed.reconstruct(X[:5], groups=b[:5])
        armed.reconstruct(X[:5])  # batch-free: no groups is not a warning


def test_plot_embeddings_draws_one_panel_per_embedding_and_colouring():
    import matplotlib

    matplotlib.use("Agg")
    from perslib.plotting import plot_embeddings

    rng = np.random.default_rng(0)
    E = {"a": rng.normal(size=(50, 4)), "b": rng.normal(size=(50, 2))}
    fig = plot_embeddings(E, {"batch": np.repeat([0, 1], 25), "label": rng.integers(0, 2, 50)})
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    with pytest.raises(ValueError, match="2 columns"):
        plot_embeddings({"c": rng.normal(size=(50, 1))}, {"batch": np.zeros(50)})
    with pytest.raises(ValueError, match="inconsistent"):
        plot_embeddings(E, {"batch": np.zeros(49)})
