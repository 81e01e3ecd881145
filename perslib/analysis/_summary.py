"""The report's plain-language summary: every sentence computed from the results."""

from __future__ import annotations

import numpy as np

from perslib.analysis._clustering import ClusteringResult
from perslib.analysis._data import ReportData
from perslib.analysis._models import FinalModels, ModelComparison, mixed_model_name
from perslib.analysis._personalize import PersonalizationResult

__all__ = ["METRIC_LABELS", "icc_verdict", "summarize"]

METRIC_LABELS = {"r2": "held-out R²", "mse": "held-out mean squared error", "auroc": "AUROC", "accuracy": "accuracy"}


def icc_verdict(icc: float) -> str:
    """A plain reading of an intraclass correlation (thresholds: 0.01, 0.05, 0.2)."""
    if icc < 0.01:
        return "the clusters barely differ, and a model that ignores them should do about as well"
    if icc < 0.05:
        return "the clusters differ a little; knowing the cluster can help somewhat"
    if icc < 0.2:
        return "the clusters differ clearly; models that know the cluster can gain"
    return "much of the variation is between clusters; models that ignore the cluster leave a lot on the table"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _names(items, k: int = 3) -> str:
    items = [f"`{i}`" for i in items][:k]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _comparison(c: ModelComparison, what: str) -> str:
    label = METRIC_LABELS[c.metric]
    means = c.means().drop("ARMED, fixed effects only")
    best = str(means.idxmax())
    name = {"ARMED": "ARMED", "MLP": "the conventional MLP"}.get(best, f"the {best}")
    row = c.summary.loc[(best, c.metric)]
    d, lo, hi = c.difference("ARMED", "MLP")
    if np.isnan(lo):
        verdict = "too few folds for an interval"
    elif lo > 0:
        verdict = "ARMED is ahead of the MLP (the interval excludes 0)"
    elif hi < 0:
        verdict = "ARMED is behind the MLP (the interval excludes 0)"
    else:
        verdict = "the folds cannot tell ARMED and the MLP apart (the interval includes 0)"
    return (
        f"**{what}** The best {label} comes from {name}: {row['mean']:.3f} "
        f"({c.level:.0%} corrected t interval over {int(row['n_folds'])} folds "
        f"{row['low']:.3f} to {row['high']:.3f})"
        + ("" if best == "MLP" else f"; the conventional MLP reaches {means['MLP']:.3f}")
        + ". "
        f"ARMED − MLP, fold by fold: {d:+.3f} ({lo:+.3f} to {hi:+.3f}): {verdict}."
    )


def summarize(
    data: ReportData,
    clustering: ClusteringResult,
    seen: ModelComparison,
    unseen: ModelComparison,
    final: FinalModels,
    personal: PersonalizationResult | None = None,
) -> str:
    """The summary at the top of the report, as Markdown bullets.

    Parameters
    ----------
    data, clustering, seen, unseen, final, personal
        The results of :func:`prepare_data`, :func:`clustering_matters`,
        :func:`compare_models` (``"seen"`` and ``"unseen"``), :func:`fit_final_models` and
        :func:`personalize` (None without covariates).

    Returns
    -------
    str
    """
    sizes = data.cluster_sizes
    dropped = data.n_rows_read - data.n_rows
    drop_text = (
        "no row was dropped"
        if dropped == 0
        else f"{dropped:,} row(s) were dropped ("
        + "; ".join(f"{r.rows:,}: {r.reason}" for r in data.dropped_rows.itertuples())
        + ")"
    )
    what = "the variance of the indicator" if data.task == "classification" else "the variance of"
    target = f"`{data.target}`" + (f" = {data.classes[1]}" if data.task == "classification" else "")
    test = (
        "one-way ANOVA of equal cluster means"
        if clustering.test == "one-way ANOVA"
        else "chi-square test of equal class shares in every cluster"
    )
    icc = clustering.icc
    lines = [
        f"**Data.** {data.n_rows:,} rows in {data.n_clusters:,} clusters of `{data.group}` ({sizes.min():,} to "
        f"{sizes.max():,} rows each, median {int(sizes.median()):,}), {len(data.features)} feature column(s) "
        f"({data.X.shape[1]} after encoding), a {data.task} task; {drop_text}.",
        f"**Does the clustering matter?** {icc.icc:.0%} of {what} {target} lies between clusters (intraclass "
        f"correlation {icc.icc:.3f} from a linear mixed model; {test} {_p(clustering.p_value)}): {icc_verdict(icc.icc)}. After the features, {clustering.icc_conditional.icc:.0%} "
        f"remains between clusters. The cluster means spread with s.d. {clustering.sd_of_means:.3g}, against "
        f"{clustering.sd_of_means_noise:.3g} expected from sampling noise alone.",
    ]
    if clustering.icc_latent is not None:
        lines[-1] += f" On the logit scale of a logistic mixed model the ICC is {clustering.icc_latent.icc:.3f}."
    lines.append(_comparison(seen, "Clusters seen in training."))
    lines.append(_comparison(unseen, "New clusters (whole clusters held out)."))
    intercepts = final.effects[final.effects["effect"] == "intercept"].set_index("cluster")["mean"].sort_values()
    unit = "points of the target" if data.task == "regression" else "on the logit scale"
    slopes = final.spread.drop("intercept", errors="ignore")
    slope_text = (
        f" Of the random slopes, `{slopes.index[0]}`'s varies most between clusters (s.d. {slopes.iloc[0]:.3g} per "
        "s.d. of the feature)."
        if len(slopes)
        else ""
    )
    lines.append(
        f"**What differs between clusters.** ARMED's random intercepts spread with s.d. "
        f"{final.spread.get('intercept', np.nan):.3g} ({unit}); highest: {_names(intercepts.index[::-1])}; lowest: "
        f"{_names(intercepts.index)}. They correlate {final.intercept_agreement:.2f} with the "
        f"{mixed_model_name(data.task)}'s.{slope_text}"
    )
    imp = final.importance
    lines.append(
        f"**Features.** ARMED's fixed effects rely most on {_names(imp['ARMED'].sort_values(ascending=False).index)}; "
        f"the MLP's on {_names(imp['MLP'].sort_values(ascending=False).index)}."
    )
    if personal is not None:
        sp = personal.spread.drop("intercept")
        score = "R²" if data.task == "regression" else "accuracy"
        w = personal.weights
        if len(w) > 1 and w.max() - w.min() < 0.02:
            metric = (
                f"Its covariate metric stayed uniform ({w.mean():.0%} per covariate): no covariate decides more than "
                "another which samples get similar models"
            )
        else:
            metric = f"Its covariate metric puts {w.iloc[0]:.0%} of the weight on `{w.index[0]}`" + (
                f" and {w.iloc[1]:.0%} on `{w.index[1]}`" if len(w) > 1 else ""
            )
        lines.append(
            f"**Personalized regression.** {metric}; the per-sample coefficients vary most for `{sp['sd'].idxmax()}` (s.d. {sp['sd'].max():.3g} per s.d. "
            f"of the feature) and form {personal.profiles.shape[0]} group(s) of models (silhouette "
            f"{personal.silhouette:.2f}; adjusted Rand index with the clusters {personal.agreement:.2f}). On its "
            f"{personal.n_heldout:,} held-out samples it reaches {score} {personal.heldout_score:.3f}, one population "
            f"model {personal.population_score:.3f}."
        )
    return "\n".join(f"* {line}" for line in lines)
