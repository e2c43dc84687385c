"""A self-contained HTML report of one pipeline run: facts, metric tables and embedded plots.

Pure Python and matplotlib (Agg): the caller collects small plain-Python data from Spark and
passes it in, so this module never starts or imports Spark. The page has no external CSS, JS,
fonts or images (plots are base64 PNG data URIs), so it opens offline and can be mailed or
archived as one file. Every text taken from `facts` is HTML-escaped: dataset URLs, rejection
reasons and gate reasons come from outside and may be hostile.

render_report(facts, plots) -> str      the HTML text
write_report(path, facts, plots) -> Path written atomically (tmp file + os.replace)
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on workers; must precede the pyplot import
import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not available"
# Small figures at a low dpi: five plots stay well under the ~1 MB budget of the whole page.
FIGURE_SIZE = (6.4, 3.6)
FIGURE_DPI = 80
MAX_SCATTER_POINTS = 3000  # beyond this a scatter turns into a blob: draw a hexbin instead
MAX_DISCRETE_VALUES = 20  # ratings with at most this many distinct values get one bar each

GATE_COLOURS = {"promoted": "good", "first": "good", "refused": "bad"}  # anything else: amber

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:60em;
 padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.4em;margin-bottom:.3em} h2{font-size:1.15em;border-bottom:1px solid #ddd;margin-top:1.6em}
h3{font-size:1em;margin:.8em 0 .2em}
table{border-collapse:collapse;margin:.4em 0} th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f4f4}
.gate{padding:.6em 1em;border-radius:6px;font-size:1.2em;font-weight:bold;color:#fff}
.gate.good{background:#1e7e34} .gate.bad{background:#b02a37} .gate.amber{background:#b36b00}
.gate.unknown{background:#6c757d}
.headline{display:flex;gap:1em;flex-wrap:wrap;margin:.8em 0}
.headline div{border:1px solid #ddd;border-radius:6px;padding:.4em .9em}
.headline b{display:block;font-size:1.4em}
.warnings{background:#fff3cd;border:1px solid #e0b000;border-radius:6px;padding:.4em 1em}
.na{color:#888;font-style:italic} tr.chosen td{background:#e8f5e9} img{max-width:100%}
code{word-break:break-all}
"""


# ---------------------------------------------------------------------------------------------
# Public API


def render_report(facts: dict, plots: dict) -> str:
    """The whole report as one HTML page (only facts["run"] is required)."""
    facts = facts or {}
    plots = plots or {}
    run = facts.get("run") or {}
    decision = (facts.get("gate") or {}).get("decision")
    title = f"musicrec run {run.get('run_id', NOT_AVAILABLE)}: {decision or 'no gate decision'}"
    body = [
        f"<h1>{esc(title)}</h1>",
        render_gate_banner(facts.get("gate")),
        render_headline(facts.get("headline")),
        render_warnings(facts.get("warnings")),
        section("Run", render_key_values(run, ["run_id", "logical_date", "dataset_key"])),
        section("Dataset", render_dataset(facts.get("dataset"))),
        section("Split", render_key_values(facts.get("split"), ["kind", "test_fraction", "seed", "train_rows", "test_rows"])),
        section("Parameters", render_key_values(facts.get("params"), ["rank", "reg_param", "max_iter", "alpha"])),
        section("Metrics", render_metrics_table(facts.get("metrics"))),
        section("Promotion gate", render_gate_details(facts.get("gate"))),
        section("Tuning", render_tuning(facts.get("tuning"))),
        section("Recommendations", render_key_values(facts.get("recommendations"), ["rows", "users", "csv_path", "published", "publication"])),
        section("Timings", render_timings(facts.get("timings"))),
        section("Plots", render_plots(plots, facts)),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            # Defence in depth: even if some text slipped through unescaped, nothing loads or runs.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style>",
            "</head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def write_report(path: Path, facts: dict, plots: dict) -> Path:
    """Write the report atomically: readers see the old file or the new one, never half of it."""
    path = Path(path)
    text = render_report(facts, plots)  # render first: a failure leaves nothing behind
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ---------------------------------------------------------------------------------------------
# Small helpers


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def is_number(value: Any) -> bool:
    """A real number (bools are ints in Python but are not metrics)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """Counts with thousands separators, floats to 4 significant digits, bools as yes/no."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.1f}" if abs(value) >= 10_000 else f"{value:.4g}"
    if isinstance(value, dict):  # e.g. metrics' relevance: {"threshold": 4.0, "based_on": ...}
        return ", ".join(f"{key}: {format_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(item) for item in value)
    return str(value)


def cell(value: Any) -> str:
    """A table cell, escaped; numbers right-aligned, missing values marked."""
    if value is None:
        return f'<td class="na">{NOT_AVAILABLE}</td>'
    css = ' class="num"' if is_number(value) else ""
    return f"<td{css}>{esc(format_value(value))}</td>"


def not_available(what: str = "") -> str:
    return f'<p class="na">{esc(what + ": " if what else "")}{NOT_AVAILABLE}</p>'


def section(title: str, content: str) -> str:
    return f"<h2>{esc(title)}</h2>\n{content}"


def ordered_keys(data: dict, preferred: Iterable[str]) -> list[str]:
    """The preferred keys first (when present), then any others in their own order."""
    preferred = [key for key in preferred if key in data]
    return preferred + [key for key in data if key not in preferred]


# ---------------------------------------------------------------------------------------------
# Sections


def render_key_values(data: dict | None, preferred: Iterable[str]) -> str:
    """A two-column table of a flat dict; nested dicts and lists are shown as their text."""
    if not data:
        return not_available()
    rows = [f"<tr><th>{esc(key)}</th>{cell(data[key])}</tr>" for key in ordered_keys(data, preferred)]
    return "<table>" + "".join(rows) + "</table>"


def render_dataset(dataset: dict | None) -> str:
    if not dataset:
        return not_available()
    flat = {key: value for key, value in dataset.items() if key != "rejected_by_reason"}
    preferred = ["source_url", "dataset_format", "feedback", "rows_read", "rows_kept", "rows_rejected",
                 "users", "songs", "plays_aggregated"]
    rows = []
    for key in ordered_keys(flat, preferred):
        value = flat[key]
        if key == "source_url" and value is not None:
            # Text, not a link: the page must not point anywhere (and the URL may be hostile).
            rows.append(f"<tr><th>{esc(key)}</th><td><code>{esc(value)}</code></td></tr>")
        else:
            rows.append(f"<tr><th>{esc(key)}</th>{cell(value)}</tr>")
    parts = ["<table>" + "".join(rows) + "</table>", "<h3>Rejected rows by reason</h3>"]
    reasons = dataset.get("rejected_by_reason")
    if reasons:
        parts.append("<table><tr><th>reason</th><th>rows</th></tr>"
                     + "".join(f"<tr><td>{esc(reason)}</td>{cell(count)}</tr>" for reason, count in reasons.items())
                     + "</table>")
    elif reasons == {}:  # counted, and there were none
        parts.append("<p>none: every row was kept</p>")
    else:
        parts.append(not_available())
    return "\n".join(parts)


def metric_columns(metrics: dict) -> list[str]:
    """model, then every baseline, then champion: the dict-valued entries that are result sets."""
    baselines = [key for key in metrics if key.endswith("baseline") and isinstance(metrics[key], dict)]
    columns = ["model", *baselines, "champion"]
    return [key for key in columns if isinstance(metrics.get(key), dict)]


def render_metrics_table(metrics: dict | None) -> str:
    """One table: a row per numeric metric name, a column per model / baseline / champion."""
    if not metrics:
        return not_available()
    columns = metric_columns(metrics)
    rows: list[str] = []
    for column in columns:  # metric names in order of first appearance
        rows += [name for name, value in metrics[column].items() if is_number(value) and name not in rows]
    if not rows:
        return not_available()
    header = "<tr><th>metric</th>" + "".join(f"<th>{esc(column)}</th>" for column in columns) + "</tr>"
    body = "".join(
        f"<tr><th>{esc(name)}</th>"
        + "".join(cell(metrics[column].get(name)) if is_number(metrics[column].get(name)) else "<td>—</td>"
                  for column in columns)
        + "</tr>"
        for name in rows
    )
    # Scalars beside the tables (feedback, k) and other small dicts (relevance) as context.
    context = {key: value for key, value in metrics.items() if key not in columns}
    extra = render_key_values(context, []) if context else ""
    return f"<table>{header}{body}</table>{extra}"


def render_gate_banner(gate: dict | None) -> str:
    """The first thing on the page: green when promoted (or first), red when refused."""
    decision = (gate or {}).get("decision")
    if not decision:
        return f'<div class="gate unknown">Gate decision: {NOT_AVAILABLE}</div>'
    colour = GATE_COLOURS.get(str(decision), "amber")
    return f'<div class="gate {colour}">Gate decision: {esc(decision)}</div>'


def render_headline(headline: dict | None) -> str:
    if not headline:
        return not_available("headline metric")
    metric = headline.get("metric", "score")
    lower = headline.get("lower_is_better")
    direction = {True: "lower is better", False: "higher is better"}.get(lower, "direction not given")
    boxes = [
        f"<div>{esc(label)}<b>{esc(format_value(headline.get(key)))}</b></div>"
        for label, key in (("model", "model"), ("baseline", "baseline"), ("champion", "champion"))
    ]
    return (f'<div class="headline"><div>headline: <b>{esc(metric)}</b>{esc(direction)}</div>{"".join(boxes)}</div>'
            + render_improvement(headline.get("model"), headline.get("baseline"), lower))


def render_improvement(model: Any, baseline: Any, lower_is_better: Any) -> str:
    """How far the model is from its baseline, in percent, signed so that positive is better."""
    if not (is_number(model) and is_number(baseline)) or baseline == 0 or lower_is_better is None:
        return ""
    gain = (baseline - model) / abs(baseline) if lower_is_better else (model - baseline) / abs(baseline)
    word = "better" if gain >= 0 else "worse"
    return f"<p>Model is {abs(gain):.1%} {word} than the baseline.</p>"


def render_warnings(warnings: list | None) -> str:
    if not warnings:
        return ""  # nothing to shout about: no box at the top
    items = "".join(f"<li>{esc(warning)}</li>" for warning in warnings)
    return f'<div class="warnings"><b>Warnings</b><ul>{items}</ul></div>'


def render_gate_details(gate: dict | None) -> str:
    if not gate:
        return not_available()
    rows = f"<tr><th>decision</th>{cell(gate.get('decision'))}</tr><tr><th>tolerance</th>{cell(gate.get('tolerance'))}</tr>"
    reasons = gate.get("reasons") or []
    listed = "<ul>" + "".join(f"<li>{esc(reason)}</li>" for reason in reasons) + "</ul>" if reasons else not_available("reasons")
    return f"<table>{rows}</table>\n{listed}"


def render_tuning(trials: list | None) -> str:
    """Every tried parameter set; the chosen one highlighted."""
    if not trials:
        return not_available()
    columns: list[str] = []
    for trial in trials:
        columns += [key for key in ordered_keys(trial, ["rank", "reg_param", "alpha", "score", "seconds"])
                    if key != "chosen" and key not in columns]
    header = "<tr>" + "".join(f"<th>{esc(column)}</th>" for column in columns) + "<th>chosen</th></tr>"
    rows = "".join(
        f'<tr{" class=chosen" if trial.get("chosen") else ""}>'
        + "".join(cell(trial.get(column)) for column in columns)
        + f"<td>{'✓' if trial.get('chosen') else ''}</td></tr>"
        for trial in trials
    )
    return f"<table>{header}{rows}</table>"


def render_timings(timings: dict | None) -> str:
    if not timings:
        return not_available()
    rows = "".join(f"<tr><th>{esc(step)}</th>{cell(seconds)}</tr>" for step, seconds in timings.items())
    total = sum(seconds for seconds in timings.values() if is_number(seconds))
    return f"<table><tr><th>step</th><th>seconds</th></tr>{rows}<tr><th>total</th>{cell(float(total))}</tr></table>"


# ---------------------------------------------------------------------------------------------
# Plots: one function per plot, each drawing on a given Axes from plain Python data.


def finite(values: Iterable[Any]) -> list[float]:
    return [float(value) for value in values if is_number(value) and math.isfinite(value)]


def finite_pairs(pairs: Iterable[Any]) -> np.ndarray:
    """[[x, y], ...] -> an (n, 2) array of the pairs whose both values are finite numbers."""
    kept = [(float(x), float(y)) for x, y in pairs if is_number(x) and is_number(y) and math.isfinite(x) and math.isfinite(y)]
    return np.array(kept, dtype=float).reshape(-1, 2)


def plot_history(ax, history: list[dict], facts: dict) -> bool:
    """The headline metric across past runs; promoted runs drawn as filled green dots."""
    runs = sorted((run for run in history if is_number(run.get("score"))), key=lambda run: str(run.get("logical_date", "")))
    if not runs:
        return False
    positions = np.arange(len(runs))
    scores = np.array([float(run["score"]) for run in runs])
    promoted = np.array([bool(run.get("promoted")) for run in runs])
    ax.plot(positions, scores, color="#888", linewidth=1, zorder=1)
    ax.scatter(positions[promoted], scores[promoted], color="#1e7e34", s=40, zorder=2, label="promoted")
    ax.scatter(positions[~promoted], scores[~promoted], color="#b02a37", marker="x", s=40, zorder=2, label="not promoted")
    step = max(1, len(runs) // 10)  # at most ~10 date labels: they would overlap otherwise
    ax.set_xticks(positions[::step], [str(run.get("logical_date", ""))[:10] for run in runs][::step], rotation=30, ha="right")
    ax.set_ylabel(str((facts.get("headline") or {}).get("metric", "score")))
    ax.set_xlabel("logical date")
    ax.legend(fontsize="small")
    return True


def plot_values(ax, values: list[float], facts: dict) -> bool:
    """Ratings (explicit: one bar per distinct value) or play counts (implicit: log bins)."""
    data = finite(values)
    if not data:
        return False
    feedback = (facts.get("dataset") or {}).get("feedback")
    if feedback == "implicit":
        positive = [value for value in data if value > 0]
        if not positive:
            return False
        bins = np.logspace(0 if min(positive) >= 1 else math.log10(min(positive)), math.log10(max(positive)) + 0.01, 30)
        ax.hist(positive, bins=bins, color="#3465a4")
        ax.set_xscale("log")
        ax.set_yscale("log")  # play counts are heavy-tailed: the tail vanishes on a linear axis
        ax.set_xlabel("play count")
    else:
        counts = Counter(data)
        if len(counts) <= MAX_DISCRETE_VALUES:
            keys = sorted(counts)
            width = 0.8 * min(np.diff(keys)) if len(keys) > 1 else 0.8
            ax.bar(keys, [counts[key] for key in keys], width=width, color="#3465a4")
            ax.set_xticks(keys)
        else:
            ax.hist(data, bins=30, color="#3465a4")
        ax.set_xlabel("rating")
    ax.set_ylabel("rows")
    return True


def plot_predicted_vs_actual(ax, pairs: list, facts: dict) -> bool:
    """Predicted against actual rating with the y = x line: distance from it is the error."""
    points = finite_pairs(pairs)
    if not len(points):
        return False
    actual, predicted = points[:, 0], points[:, 1]
    if len(points) > MAX_SCATTER_POINTS:
        ax.hexbin(actual, predicted, gridsize=40, bins="log", cmap="Blues", mincnt=1)
    else:
        ax.scatter(actual, predicted, s=6, alpha=0.3, color="#3465a4")
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="#b02a37", linewidth=1, label="y = x")
    ax.set_xlabel("actual rating")
    ax.set_ylabel("predicted rating")
    ax.legend(fontsize="small")
    return True


def plot_user_ndcg(ax, values: list[float], facts: dict) -> bool:
    """Per-user NDCG: a mean can hide many users the model serves badly."""
    data = finite(values)
    if not data:
        return False
    ax.hist(data, bins=20, range=(0.0, 1.0), color="#3465a4")
    ax.set_xlabel("NDCG per user")
    ax.set_ylabel("users")
    return True


def plot_popularity_vs_recommended(ax, pairs: list, facts: dict) -> bool:
    """Training popularity against times recommended, per song: a rising cloud is popularity bias."""
    points = finite_pairs(pairs)
    if not len(points):
        return False
    ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.4, color="#3465a4")
    # symlog: log-like for large counts but keeps the many songs recommended zero times visible.
    ax.set_xscale("symlog", linthresh=1)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("plays in training (symlog)")
    ax.set_ylabel("times recommended (symlog)")
    return True


PlotFunction = Callable[[Any, Any, dict], bool]
# key in `plots`, title, alt text, drawing function: in the order they appear on the page.
PLOTS: list[tuple[str, str, str, PlotFunction]] = [
    ("history", "Headline metric across runs", "line chart of the headline metric across past runs, promoted runs marked", plot_history),
    ("values", "Distribution of ratings or play counts", "histogram of the ratings or play counts", plot_values),
    ("predicted_vs_actual", "Predicted vs actual rating", "scatter of predicted against actual ratings with the y = x line", plot_predicted_vs_actual),
    ("user_ndcg", "NDCG per user", "histogram of per-user NDCG", plot_user_ndcg),
    ("popularity_vs_recommended", "Popularity vs times recommended", "scatter of each song's training plays against the times it was recommended", plot_popularity_vs_recommended),
]


def figure_to_png(draw: PlotFunction, data: Any, facts: dict) -> bytes | None:
    """Draw one plot into a fresh figure and return its PNG bytes (None: nothing to draw)."""
    fig, ax = plt.subplots(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    try:
        if not draw(ax, data, facts):
            return None
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        return buffer.getvalue()
    finally:
        plt.close(fig)  # pyplot keeps every figure alive until closed


def render_plot(key: str, title: str, alt: str, draw: PlotFunction, data: Any, facts: dict) -> str:
    if not data:
        return f"<h3>{esc(title)}</h3>" + not_available(f"{key}: no data, skipped")
    try:
        png = figure_to_png(draw, data, facts)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        # Malformed plot input costs that plot, not the whole report (and not the run).
        log.warning("report plot %s could not be drawn: %s", key, error)
        return f"<h3>{esc(title)}</h3>" + not_available(f"{key}: could not be drawn ({error})")
    if png is None:
        return f"<h3>{esc(title)}</h3>" + not_available(f"{key}: no usable values, skipped")
    encoded = base64.b64encode(png).decode("ascii")
    return f'<h3>{esc(title)}</h3><img src="data:image/png;base64,{encoded}" alt="{esc(alt)}">'


def render_plots(plots: dict, facts: dict) -> str:
    return "\n".join(render_plot(key, title, alt, draw, plots.get(key), facts) for key, title, alt, draw in PLOTS)
