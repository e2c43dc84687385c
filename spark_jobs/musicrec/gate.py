"""The quality gate: does tonight's model replace the champion? Pure rules, no Spark.

A model is promoted only if
  1. it beats its baseline on the headline metric (RMSE: the bias baseline; NDCG@k: popularity), and
  2. when the dataset has a champion, it is not worse than the champion, scored on the same
     held-out interactions, by more than `tolerance` (relative: 0.01 = 1%).
`force` promotes anyway (first run after a deliberate reset, a known data change) and says what
the gate would have refused. A run of an older logical date than the champion's (a backfill) is
`superseded`: scored and recorded, never promoted (not even forced: publication never replaces a
newer date), and not a failure unless the model also fails its baseline. A model that beats its
baseline by less than MEANINGFUL_GAIN is promoted with a warning: ALS that adds nothing to the
biases or to the hits is worth a look.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

MEANINGFUL_GAIN = 0.01  # relative improvement over the baseline below which the report warns
REFUSED, SUPERSEDED = "refused", "superseded"  # the decisions that publish nothing


@dataclass(frozen=True)
class Decision:
    promote: bool
    decision: str  # "promoted", "refused", "forced" or "superseded"
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def relative_gain(model: float, reference: float, lower_is_better: bool) -> float:
    """How much better `model` is than `reference`, as a share of it (negative: worse)."""
    if reference == 0:
        if model == reference:
            return 0.0
        return math.inf if (model < reference if lower_is_better else model > reference) else -math.inf
    gain = (reference - model) if lower_is_better else (model - reference)
    return gain / abs(reference)


def decide(
    metric: str,
    lower_is_better: bool,
    model: float,
    baseline: float,
    champion: float | None,
    tolerance: float,
    force: bool = False,
    baseline_name: str = "baseline",
    champion_note: str = "",
    model_on_champion_rows: float | None = None,
    blocked: str | None = None,
    superseded: str | None = None,
) -> Decision:
    """The gate's decision on one run's scores (see the module docstring).

    `model` and `baseline` are scored on the test split. `champion` is the champion's score on
    the held-out rows it can be fairly scored on, where the model scored `model_on_champion_rows`
    (default: `model`). None: no champion to compare with, and `champion_note` says why (e.g. a
    first run). `blocked`: a champion exists but cannot be compared fairly: a refusal, so that a
    worse model never slips through unchecked. `superseded`: why this run cannot replace the
    champion (the champion is of a newer logical date); the champion is then not compared, and
    `force` cannot override a refusal (it could not publish anyway).
    """
    refusals, warnings, notes = ([blocked] if blocked else []), [], []
    if not math.isfinite(model):
        refusals.append(f"the model's {metric} is {model}: it scored nothing")
    elif not math.isfinite(baseline) or (champion is not None and not math.isfinite(champion)):
        refusals.append(f"the {baseline_name}'s {metric} ({baseline}) or the champion's ({champion}) is not a number: "
                        "nothing to compare with")
    else:
        gain = relative_gain(model, baseline, lower_is_better)
        if gain <= 0:
            refusals.append(
                f"the model's {metric} {model:.4f} does not beat the {baseline_name}'s {baseline:.4f}"
            )
        elif gain < MEANINGFUL_GAIN:
            warnings.append(
                f"the model beats the {baseline_name} by only {gain:.2%} on {metric} ({model:.4f} vs "
                f"{baseline:.4f}): the factors add little; try tune=true or a smaller reg_param"
            )
        if champion is not None:
            mine = model if model_on_champion_rows is None else model_on_champion_rows
            versus = relative_gain(mine, champion, lower_is_better)
            if versus < -tolerance:
                refusals.append(
                    f"the model's {metric} {mine:.4f} is {-versus:.2%} worse than the champion's {champion:.4f} "
                    f"on the same held-out interactions (tolerance {tolerance:.2%})"
                )
            else:
                notes.append(f"{metric} {mine:.4f} vs the champion's {champion:.4f} (tolerance {tolerance:.2%})")
    if champion is None and champion_note:
        notes.append(champion_note)
    if refusals and (not force or superseded):
        return Decision(False, REFUSED, refusals, warnings)
    if superseded:
        return Decision(False, SUPERSEDED, [superseded] + notes, warnings)
    if force:
        forced = [f"forced: the gate would have refused because {why}" for why in refusals]
        return Decision(True, "forced", forced + notes or ["forced promotion"], warnings)
    return Decision(True, "promoted", notes, warnings)
