"""``python -m perslib.distributed {armed,personalized}``: one rank of a data-parallel fit.

Launched by ``torchrun`` (every rank reads the whole file and trains on its slice of
each global minibatch); rank 0 writes ``--out`` with :meth:`DistributedFit.save`. Run
without ``torchrun`` it is a job of one process. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m perslib.distributed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="method", required=True, parser_class=_Parser)
    for name in ("armed", "personalized"):
        p = sub.add_parser(name, help=f"train {'ARMED' if name == 'armed' else 'personalized regression'}")
        p.add_argument("--data", required=True, help="a CSV file (columns) or an .npz file (arrays)")
        p.add_argument("--y", required=True, help="the target column (CSV) or array name (npz)")
        p.add_argument(
            "--x",
            nargs="+",
            metavar="COL",
            help="feature columns (CSV; default every other column) or the one npz array (default 'X')",
        )
        if name == "armed":
            p.add_argument("--groups", required=True, help="the cluster column / array")
        else:
            p.add_argument("--covariates", required=True, nargs="+", help="covariate columns, or one npz array (n, K)")
            p.add_argument("--rank", default="2", help="latent rank q, or 'none' for full rank (default 2)")
            p.add_argument("--objective", default="bound", choices=["bound", "match", "paper"])
        p.add_argument("--task", default="regression", choices=["regression", "classification"])
        p.add_argument("--steps", type=int, required=True, help="optimizer steps")
        p.add_argument("--batch-size", type=int, default=64, help="the global minibatch (a multiple of the processes)")
        p.add_argument("--lr", type=float, help="learning rate (default: the estimator's)")
        p.add_argument("--hidden", type=int, nargs="*", help="hidden widths (ARMED; encoder for personalized)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"])
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        p.add_argument("--timeout", type=float, default=120.0, help="seconds a collective may wait (default 120)")
        p.add_argument("--out", help="where rank 0 writes the parameters (torch.save)")
    return parser


def _load(args, extra: list[str]):
    path = Path(args.data)
    if not path.is_file():
        raise ValueError(f"--data: no such file {str(path)!r}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            names = list(data.keys())
            wanted = [(args.x or ["X"])[0], args.y, *extra]
            missing = [k for k in wanted if k not in names]
            if missing:
                raise ValueError(f"--data {path.name} has no array(s) {missing}; it has {names}")
            return data[wanted[0]], data[args.y], [data[k] for k in extra]
    if path.suffix.lower() != ".csv":
        raise ValueError(f"--data must be a .csv or .npz file, got {path.name!r}")
    import pandas as pd

    frame = pd.read_csv(path)
    cols = [args.y, *extra] + (args.x or [])
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"--data {path.name} has no column(s) {missing}; it has {list(frame.columns)}")
    features = args.x or [c for c in frame.columns if c not in {args.y, *extra}]
    return frame[features].to_numpy(np.float64), frame[args.y].to_numpy(), [frame[c].to_numpy() for c in extra]


def _estimator(args):
    kwargs = {} if args.lr is None else {"lr": args.lr}
    if args.method == "armed":
        from perslib.armed import ARMEDClassifier, ARMEDRegressor

        if args.hidden is not None:
            kwargs["hidden"] = tuple(args.hidden)
        cls = ARMEDClassifier if args.task == "classification" else ARMEDRegressor
        return cls(**kwargs)
    from perslib.personalized import PersonalizedClassifier, PersonalizedRegressor

    if args.hidden is not None:
        kwargs["encoder_hidden"] = tuple(args.hidden)
    rank = None if args.rank.lower() == "none" else int(args.rank)
    cls = PersonalizedClassifier if args.task == "classification" else PersonalizedRegressor
    return cls(rank, objective=args.objective, **kwargs)


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(_main)(argv)


def _main(argv):
    args = _parser().parse_args(argv)
    prog = "python -m perslib.distributed"
    from perslib.distributed import fit_armed_ddp, fit_personalized_ddp, init_distributed

    try:
        if args.method == "armed":
            X, y, (groups,) = _load(args, [args.groups])
        else:
            extra = args.covariates
            X, y, cov = _load(args, extra)
            if args.data.endswith(".npz"):
                covariates = cov[0]
            else:  # a DataFrame: text columns are categorical covariates
                import pandas as pd

                covariates = pd.DataFrame(dict(zip(extra, cov)))
        estimator = _estimator(args)
        info = init_distributed(args.backend, timeout=args.timeout, device=args.device)
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        common = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "info": info}
        if args.method == "armed":
            fit = fit_armed_ddp(estimator, X, y, groups, **common)
        else:
            fit = fit_personalized_ddp(estimator, X, y, covariates, **common)
        if info.is_main:
            if args.out:
                fit.save(args.out)
            summary = {k: fit.meta[k] for k in ("world_size", "batch_size", "steps", "step_time", "replica_divergence")}
            summary["final_loss"] = float(fit.history["loss"].iloc[-1])
            print(json.dumps(summary))
        if info.initialized:  # every rank gets here before any closes its connections (gloo can abort otherwise)
            import torch.distributed as dist

            dist.barrier()
    except ValueError as exc:
        print(f"{prog}: error (rank {info.rank}): {exc}", file=sys.stderr)
        return 2
    finally:
        if info.initialized:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0
