"""The ``perslib`` command: ``perslib report``, ``perslib site``, ``perslib example``.

* ``perslib report DATA --target COL --groups COL [--features ...] [--covariates ...] [--out DIR]``
  checks the table, runs the report notebook (08) on it and prints where the HTML went
  (:func:`perslib.analysis.run_report`). Bad input is one line on stderr and exit code 2,
  before anything runs; a failed analysis is exit code 1; nothing is written to ``--out``
  unless the report is complete.
* ``perslib site [--build build] [--out build/site]`` turns the executed notebooks of
  ``make run`` into a browsable course site (:func:`perslib.reports.build_site`).
* ``perslib example NAME FILE`` writes one of :mod:`perslib.data`'s real datasets as a CSV or
  Parquet file, to try ``perslib report`` on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), as the rest of the command."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="perslib", description="perslib: models that adapt to the sample or cluster they serve.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    rep = sub.add_parser(
        "report",
        help="analyse a clustered table: clustering, ARMED, mixed models, personalized regression",
        description="Check DATA, run the report notebook (08) on it and write DIR/report.html. "
        "Text columns are one-hot encoded; the networks standardize numbers inside.",
    )
    rep.add_argument("data", help="a CSV or Parquet file, or dataset:NAME (see perslib example --help)")
    rep.add_argument("--target", required=True, help="the outcome column (a number, or two classes)")
    rep.add_argument("--groups", required=True, help="the cluster column (hospital, school, batch, ...)")
    rep.add_argument("--features", nargs="+", metavar="COL", help="feature columns (default: every other column)")
    rep.add_argument(
        "--covariates", nargs="+", metavar="COL", default=[], help="covariates for personalized regression"
    )
    rep.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    rep.add_argument("--out", metavar="DIR", help="report folder (default: perslib-report-<file name>)")
    rep.add_argument("--folds", type=int, metavar="K", help="folds of both cross-validations (default 3)")
    rep.add_argument("--epochs", type=int, help="most training epochs per network (default 100)")
    rep.add_argument("--max-rows", type=int, metavar="N", help="a random subsample of about N rows, every cluster kept")
    rep.add_argument("--drop-small-clusters", action="store_true", help="drop clusters with fewer rows than folds")
    rep.add_argument("--missing", choices=["drop", "error"], help="a missing feature value drops its row (default)")
    rep.add_argument("--seed", type=int, help="random seed (default 0)")
    rep.add_argument("--jobs", type=int, metavar="N", help="processes fitting models in parallel (default 2)")
    rep.add_argument("--device", help="torch device of the networks (default auto)")
    rep.add_argument("--profile", help="smoke (quick), paper, or a YAML file of the notebook's parameters")
    rep.add_argument("--notebook", metavar="PATH", help="the report notebook (default: notebooks/08_report.py)")
    rep.add_argument("--timeout", type=float, default=3600, help="per-cell timeout in seconds (default 3600)")
    rep.add_argument("--quiet", action="store_true", help="print only where the report went")

    site = sub.add_parser("site", help="build the course site from the executed notebooks (make site)")
    site.add_argument("--build", default="build", help="where make run wrote the notebooks (default build)")
    site.add_argument("--out", default=None, help="site folder (default BUILD/site)")
    site.add_argument("--notebooks-dir", default="notebooks")
    site.add_argument("--readme", default="README.md")

    ex = sub.add_parser("example", help="write a packaged real dataset to a file, to try perslib report on")
    ex.add_argument("name", help="sleepstudy, math_achievement, grunfeld or contraception")
    ex.add_argument("file", help="output .csv or .parquet")
    return parser


def _report(args) -> int:
    from perslib.analysis import ReportDataError, run_report

    prog = "perslib report"
    t0 = time.perf_counter()
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = run_report(
            args.data,
            target=args.target,
            groups=args.groups,
            features=args.features,
            covariates=args.covariates,
            task=args.task,
            out=args.out,
            n_folds=args.folds,
            epochs=args.epochs,
            max_rows=args.max_rows,
            drop_small_clusters=True if args.drop_small_clusters else None,
            missing=args.missing,
            seed=args.seed,
            n_jobs=args.jobs,
            device=args.device,
            profile=args.profile,
            notebook=args.notebook,
            timeout=args.timeout,
            progress=say,
        )
    except (ReportDataError, ValueError) as exc:
        return _fail(prog, str(exc))
    if result.status != "ok":
        print(f"{prog}: the analysis failed: {result.error}", file=sys.stderr)
        print(f"{prog}: nothing was written to {result.out}", file=sys.stderr)
        return 1
    say(
        f"done in {time.perf_counter() - t0:.1f} s (notebook: wall {result.seconds:.1f} s, "
        f"CPU {result.cpu_seconds:.1f} s)"
    )
    print(f"report: {result.html}")
    return 0


def _site(args) -> int:
    from perslib.reports._site import SiteError, build_site

    try:
        index = build_site(args.build, args.out, notebooks_dir=args.notebooks_dir, readme=args.readme)
    except SiteError as exc:
        return _fail("perslib site", str(exc))
    print(f"site: {index}")
    return 0


def _example(args) -> int:
    from perslib.data import DATASET_LOADERS

    prog = "perslib example"
    if args.name not in DATASET_LOADERS:
        return _fail(prog, f"no dataset named {args.name!r}; the datasets are: {', '.join(sorted(DATASET_LOADERS))}")
    path = Path(args.file)
    if path.suffix.lower() not in (".csv", ".parquet"):
        return _fail(prog, f"file {path} must end in .csv or .parquet")
    if path.is_dir():
        return _fail(prog, f"file {path} is a folder")
    ds = DATASET_LOADERS[args.name]()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        ds.frame.to_csv(path, index=False, lineterminator="\n")
    else:
        ds.frame.to_parquet(path, index=False)
    covs = f" --covariates {' '.join(ds.covariates)}" if ds.covariates else ""
    print(f"wrote {path}: {len(ds.frame)} rows, {ds.n_groups} clusters; licence: {ds.licence}")
    print(
        f"try: perslib report {path} --target {ds.target} --groups {ds.group} --features {' '.join(ds.features)}{covs}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``perslib`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        import perslib

        print(f"perslib {perslib.__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    return {"report": _report, "site": _site, "example": _example}[args.command](args)
