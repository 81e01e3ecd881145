"""Saving and loading estimators as plain data, never as pickled objects.

``estimator.save(path)`` writes one file with :func:`torch.save`: the class name, the
perslib version, the constructor arguments and every fitted attribute, each converted
to plain data — numbers, strings, lists, dicts, tensors. NumPy arrays become tensors,
DataFrames tables of columns, torch modules their configuration plus ``state_dict``,
fitted scalers and neighbour indexes their arrays. :func:`load` reads it back with
``torch.load(weights_only=True)``, which refuses anything but such data, so a crafted
file cannot run code; the class must be one of perslib's estimators and the version
the same major.minor release. A loaded estimator lives on the CPU.

Plain ``pickle`` / ``joblib`` also work, as in scikit-learn — for files you trust.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["load", "save"]

FORMAT = "perslib-estimator/1"


def _version() -> str:
    import perslib

    return perslib.__version__


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


# --------------------------------------------------------------------------- registries


def _estimator_classes() -> dict[str, type]:
    """Every perslib estimator class, by ``module.QualName`` (the only classes ``load`` builds)."""
    from perslib._core.estimator import PerslibEstimator

    for family in ("perslib.mlp", "perslib.cnn", "perslib.personalized", "perslib.armed", "perslib.evaluation"):
        importlib.import_module(family)
    found, todo = {}, [PerslibEstimator]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("perslib.") and not sub.__name__.startswith("_"):
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return found


def _module_classes() -> dict[str, type]:
    """The torch modules an estimator may hold; each has a ``config`` dict of its constructor arguments."""
    from perslib.armed._autoencoder_net import ARMEDAutoencoderNet
    from perslib.armed._network import ARMEDNet
    from perslib.cnn import ConvNet
    from perslib.mlp import MLP

    return {"MLP": MLP, "ARMEDNet": ARMEDNet, "ConvNet": ConvNet, "ARMEDAutoencoderNet": ARMEDAutoencoderNet}


# --------------------------------------------------------------------------- encoding


def _encode(value, where: str):
    """Plain data for ``value`` (see the module docstring); ``where`` names it in errors."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    from perslib._core.estimator import PerslibEstimator

    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value).copy())}
        return {"__objects__": [_encode(v, where) for v in value.tolist()], "shape": list(value.shape)}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        items = [_encode(v, where) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, where), _encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
    if isinstance(value, pd.DataFrame):
        return {
            "__frame__": {
                "columns": _encode(np.asarray(value.columns, dtype=object), where),
                "data": [_encode(value.iloc[:, j].to_numpy(), where) for j in range(value.shape[1])],
                "index": _encode(value.index, where),
            }
        }
    if isinstance(value, pd.Series):
        return {
            "__series__": {
                "data": _encode(value.to_numpy(), where),
                "index": _encode(value.index, where),
                "name": _encode(value.name, where),
            }
        }
    if isinstance(value, pd.Index):
        return {
            "__index__": {"data": _encode(np.asarray(value, dtype=object), where), "name": _encode(value.name, where)}
        }
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, torch.nn.Module):
        name = type(value).__name__
        if name not in _module_classes() or not hasattr(value, "config"):
            raise TypeError(f"cannot save {where}: torch module {name} is not one perslib can rebuild")
        state = {k: v.detach().cpu().clone() for k, v in value.state_dict().items()}
        return {"__module__": name, "config": _encode(value.config, where), "state": state}
    if isinstance(value, StandardScaler):
        attrs = {
            k: getattr(value, k)
            for k in ("mean_", "scale_", "var_", "n_samples_seen_", "n_features_in_")
            if hasattr(value, k)
        }
        return {"__scaler__": _encode({"params": value.get_params(), "attrs": attrs}, where)}
    if isinstance(value, NearestNeighbors):
        return {"__neighbors__": _encode({"params": value.get_params(), "X": np.asarray(value._fit_X)}, where)}
    if isinstance(value, PerslibEstimator):
        return {"__estimator__": _state(value)}
    if hasattr(value, "__perslib_state__"):
        return {
            "__object__": f"{type(value).__module__}.{type(value).__qualname__}",
            "state": _encode(value.__perslib_state__(), where),
        }
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} have no plain-data form")


def _decode(value):
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return value["__ndarray__"].numpy()
    if "__objects__" in value:
        out = np.empty(len(value["__objects__"]), dtype=object)
        out[:] = [_decode(v) for v in value["__objects__"]]
        return out.reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {_decode(k): _decode(v) for k, v in value["__dict__"]}
    if "__frame__" in value:
        f = value["__frame__"]
        columns = _decode(f["columns"])
        data = {j: _decode(col) for j, col in enumerate(f["data"])}
        frame = pd.DataFrame(data, index=_decode(f["index"]))
        frame.columns = pd.Index(list(columns))
        return frame
    if "__series__" in value:
        s = value["__series__"]
        return pd.Series(_decode(s["data"]), index=_decode(s["index"]), name=_decode(s["name"]))
    if "__index__" in value:
        i = value["__index__"]
        return pd.Index(list(_decode(i["data"])), name=_decode(i["name"]))
    if "__device__" in value:
        return torch.device("cpu")
    if "__module__" in value:
        module = _module_classes()[value["__module__"]](**_decode(value["config"]))
        module.load_state_dict(value["state"])
        return module.eval()
    if "__scaler__" in value:
        content = _decode(value["__scaler__"])
        scaler = StandardScaler(**content["params"])
        for k, v in content["attrs"].items():
            setattr(scaler, k, v)
        return scaler
    if "__neighbors__" in value:
        content = _decode(value["__neighbors__"])
        return NearestNeighbors(**content["params"]).fit(content["X"])
    if "__estimator__" in value:
        return _build(value["__estimator__"])
    if "__object__" in value:
        cls = _object_classes()[value["__object__"]]
        return cls.__from_perslib_state__(_decode(value["state"]))
    raise ValueError(f"unknown entry in a perslib model file: {sorted(value)[:3]}")


def _object_classes() -> dict[str, type]:
    from perslib.personalized._distances import CovariateSpace

    return {f"{c.__module__}.{c.__qualname__}": c for c in (CovariateSpace,)}


# --------------------------------------------------------------------------- estimators


def _state(estimator) -> dict:
    params = estimator.get_params(deep=False)
    skip = set(params) | set(type(estimator)._unsaved)
    fitted = {k: v for k, v in vars(estimator).items() if k not in skip}
    name = type(estimator).__name__
    return {
        "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "params": {k: _encode(v, f"{name}.{k}") for k, v in params.items()},
        "fitted": {k: _encode(v, f"{name}.{k}") for k, v in fitted.items()},
    }


def _build(state: dict):
    classes = _estimator_classes()
    if state["class"] not in classes:
        raise ValueError(f"the file holds a {state['class']!r}, which is not a perslib estimator")
    estimator = classes[state["class"]](**{k: _decode(v) for k, v in state["params"].items()})
    for k, v in state["fitted"].items():
        setattr(estimator, k, _decode(v))
    if hasattr(estimator, "device_"):
        estimator.device_ = torch.device("cpu")
    for cls_attr in type(estimator)._unsaved:
        setattr(estimator, cls_attr, None)
    return estimator


def save(estimator, path) -> Path:
    """Write ``estimator`` (fitted or not) to ``path``; see the module docstring."""
    path = Path(path)
    content = {"format": FORMAT, "perslib_version": _version(), "estimator": _state(estimator)}
    torch.save(content, path)
    return path


def load(path, expected: type | None = None):
    """Read an estimator written by :func:`save`.

    Parameters
    ----------
    path : str or Path
    expected : type, optional
        The class the estimator must be an instance of.

    Raises
    ------
    ValueError
        The file is not a perslib model file, holds anything but plain data, was written
        by another perslib release, or holds another class than ``expected``.
    """
    path = Path(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{path} is not a perslib model file, or holds more than plain data ({first[:200]})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ValueError(f"{path} is not a perslib model file (no {FORMAT!r} marker)")
    saved, current = str(content.get("perslib_version")), _version()
    if _release(saved) != _release(current):
        raise ValueError(
            f"{path} was written by perslib {saved}; this is perslib {current}: refit, or load it with {saved}"
        )
    estimator = _build(content["estimator"])
    if expected is not None and not isinstance(estimator, expected):
        raise ValueError(f"{path} holds a {type(estimator).__name__}, not a {expected.__name__}")
    return estimator
