import random

import numpy as np
import pandas as pd
import pytest
import torch

from perslib._core import (
    check_array,
    check_consistent_length,
    check_random_state,
    progress_enabled,
    resolve_device,
    set_seed,
)


def test_set_seed_reproduces_every_generator():
    set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    set_seed(124)
    assert torch.rand(3).tolist() != a[2].tolist()


def test_set_seed_rejects_non_int():
    with pytest.raises(ValueError, match="seed"):
        set_seed("1")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type in {"cpu", "mps"}
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("PERSLIB_PROGRESS", "0")
    assert progress_enabled() is False
    assert progress_enabled(True) is True
    monkeypatch.setenv("PERSLIB_PROGRESS", "1")
    assert progress_enabled() is True


def test_check_array_errors_name_the_argument():
    with pytest.raises(ValueError, match="X contains NaN"):
        check_array([[1.0, np.nan]], "X")
    with pytest.raises(ValueError, match="covariates contains inf"):
        check_array([[1.0, np.inf]], "covariates")
    with pytest.raises(ValueError, match="X must have 2 dimension"):
        check_array([1.0, 2.0], "X", ndim=2)
    frame = pd.DataFrame({"a": [1.0, 2.0], "site": ["x", "y"]})
    with pytest.raises(ValueError, match=r"X must be numeric \(non-numeric columns: \['site'\]\)"):
        check_array(frame, "X")
    assert check_array([[1.0, np.nan]], "X", allow_nan=True).shape == (1, 2)


def test_check_consistent_length():
    assert check_consistent_length(X=np.zeros((3, 2)), y=np.zeros(3), groups=None) == 3
    with pytest.raises(ValueError, match="X has 3, y has 2"):
        check_consistent_length(X=np.zeros((3, 2)), y=np.zeros(2))


def test_check_random_state():
    g = np.random.default_rng(0)
    assert check_random_state(g) is g
    assert check_random_state(5).integers(1000) == np.random.default_rng(5).integers(1000)
    with pytest.raises(ValueError, match="random_state"):
        check_random_state("seed")


def test_torch_threads_restores_the_setting():
    from perslib._core import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with torch_threads(0):
            pass
