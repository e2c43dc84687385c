"""The per-run HTML report: embedded PNGs, escaping, missing sections, metric table, atomic write.

Pure Python (no Spark): the report takes plain data, so these tests build it by hand.
"""

from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib import pyplot as plt

from musicrec import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_PREFIX = "data:image/png;base64,"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
DATASET_URL = "https://example.org/datasets/ratings.zip"


class ReportParser(HTMLParser):
    """Collects what the tests look at: img tags, tables (as rows of cell texts), every URL attribute."""

    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.url_attributes: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.title = ""
        self._in_title = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.url_attributes += [value or "" for name, value in attrs.items() if name in ("src", "href")]
        if tag == "img":
            self.images.append(attrs)
        elif tag == "title":
            self._in_title = True
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> ReportParser:
    parser = ReportParser()
    parser.feed(text)
    parser.close()
    return parser


def full_facts() -> dict:
    return {
        "run": {"run_id": "run-2026-05-01-abc", "logical_date": "2026-05-01T00:00:00+00:00", "dataset_key": "movielens-100k"},
        "dataset": {
            "source_url": DATASET_URL, "dataset_format": "movielens", "feedback": "explicit",
            "rows_read": 100_000, "rows_kept": 99_990, "rows_rejected": 10,
            "rejected_by_reason": {"bad_rating": 7, "missing_user": 3}, "users": 943, "songs": 1682,
            "plays_aggregated": 0,
        },
        "split": {"kind": "random", "test_fraction": 0.2, "seed": 42, "train_rows": 80_000, "test_rows": 19_990},
        "params": {"rank": 10, "reg_param": 0.1, "max_iter": 10, "alpha": 1.0},
        "metrics": {
            "feedback": "explicit", "k": 10,
            "model": {"rmse": 0.81, "mae": 0.64, "ndcg_at_10": 0.12, "rows": 19_990, "note": "not a number"},
            "bias_baseline": {"rmse": 0.87, "mae": 0.69},
            "popularity_baseline": {"ndcg_at_10": 0.09},
            "champion": {"rmse": 0.83},
        },
        "headline": {"metric": "rmse", "lower_is_better": True, "model": 0.81, "baseline": 0.87, "champion": 0.83},
        "gate": {"decision": "promoted", "reasons": ["beats champion by 0.02"], "tolerance": 0.01},
        "tuning": [
            {"rank": 10, "reg_param": 0.1, "alpha": 1.0, "score": 0.81, "seconds": 12.5, "chosen": True},
            {"rank": 20, "reg_param": 0.05, "alpha": 1.0, "score": 0.84, "seconds": 20.1, "chosen": False},
        ],
        "warnings": ["model beats its baseline by only 6.9%"],
        "recommendations": {"rows": 9430, "users": 943, "csv_path": "/data/runs/x/recs.csv", "published": True, "publication": "v3"},
        "timings": {"download": 1.5, "preprocess": 8.25, "train": 30.0},
    }


def all_plots() -> dict:
    return {
        "history": [
            {"logical_date": f"2026-04-{day:02d}", "run_id": f"r{day}", "score": 0.8 + day / 1000, "promoted": day % 3 == 0}
            for day in range(1, 15)
        ],
        "values": [1, 2, 3, 4, 5, 4, 4, 3, 5, 2] * 50,
        "predicted_vs_actual": [[actual, actual * 0.9 + 0.3] for actual in (1, 2, 3, 4, 5)] * 20,
        "user_ndcg": [index / 100 for index in range(100)],
        "popularity_vs_recommended": [[count, count // 3] for count in range(0, 500, 7)],
    }


def decoded_pngs(parsed: ReportParser) -> list[bytes]:
    sources = [image["src"] for image in parsed.images]
    assert all(source.startswith(DATA_URI_PREFIX) for source in sources), sources
    return [base64.b64decode(source[len(DATA_URI_PREFIX):], validate=True) for source in sources]


def metrics_table(parsed: ReportParser) -> dict[str, dict[str, str]]:
    """{metric: {column: cell text}} from the table whose header starts with 'metric'."""
    table = next(table for table in parsed.tables if table and table[0] and table[0][0] == "metric")
    header = table[0]
    return {row[0]: dict(zip(header[1:], row[1:])) for row in table[1:]}


def test_written_report_embeds_one_png_per_plot(tmp_path):
    path = report.write_report(tmp_path / "report.html", full_facts(), all_plots())

    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    parsed = parse(text)
    pngs = decoded_pngs(parsed)
    assert len(pngs) == len(all_plots())
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs)
    assert all(image.get("alt") for image in parsed.images)
    assert path.stat().st_size < 1_000_000  # small enough to mail or archive per run
    assert plt.get_fignums() == []  # every figure closed


def test_only_the_plots_given_are_drawn_and_the_others_noted():
    plots = {"values": [3.5, 4.0, 4.0, 5.0], "user_ndcg": [0.1, 0.5, 0.9], "history": []}

    text = report.render_report(full_facts(), plots)

    assert len(decoded_pngs(parse(text))) == 2  # the empty history is skipped like a missing plot
    assert "history: no data, skipped" in text
    assert "popularity_vs_recommended: no data, skipped" in text


def test_implicit_play_counts_and_zero_counts_still_plot():
    facts = {"run": {"run_id": "r"}, "dataset": {"feedback": "implicit"}}
    plots = {"values": [1, 1, 2, 3, 10, 250, 4000], "popularity_vs_recommended": [[0, 0], [1, 0], [5000, 30]]}

    assert len(decoded_pngs(parse(report.render_report(facts, plots)))) == 2


def test_title_and_first_screen_show_run_gate_headline_and_warnings():
    text = report.render_report(full_facts(), {})
    parsed = parse(text)

    assert "run-2026-05-01-abc" in parsed.title and "promoted" in parsed.title
    first_screen = text.split("<h2>", 1)[0]  # everything above the first section
    assert 'class="gate good"' in first_screen
    assert "model beats its baseline by only 6.9%" in first_screen
    assert "0.81" in first_screen and "0.87" in first_screen and "0.83" in first_screen


@pytest.mark.parametrize(("decision", "css"), [("promoted", "good"), ("first", "good"), ("refused", "bad"), ("forced", "amber")])
def test_gate_banner_colour(decision, css):
    facts = {"run": {"run_id": "r"}, "gate": {"decision": decision}}
    assert f'class="gate {css}"' in report.render_report(facts, {})


def test_hostile_text_is_escaped_everywhere():
    facts = full_facts()
    facts["run"]["run_id"] = HOSTILE
    facts["dataset"]["source_url"] = f"http://evil.example/{HOSTILE}"
    facts["dataset"]["rejected_by_reason"] = {HOSTILE: 3}
    facts["gate"]["reasons"] = [HOSTILE]
    facts["warnings"] = [HOSTILE]
    facts["metrics"]["model"][HOSTILE] = 1.0
    facts["timings"] = {HOSTILE: 1.0}

    text = report.render_report(facts, {})

    assert "<script" not in text.lower()
    assert text.count(HOSTILE_ESCAPED) >= 7  # each place it was put shows it, as text


def test_missing_sections_render_not_available():
    text = report.render_report({"run": {"run_id": "only-run"}}, {})

    sections = dict(re.findall(r"<h2>(.*?)</h2>\n(.*?)(?=<h2>|</body>)", text, flags=re.S))
    for title in ("Dataset", "Split", "Parameters", "Metrics", "Promotion gate", "Tuning", "Recommendations", "Timings"):
        assert report.NOT_AVAILABLE in sections[title], title
    assert "Gate decision: not available" in text
    assert "headline metric: not available" in text
    assert parse(text).images == []


def test_partial_facts_show_what_is_present():
    facts = {"run": {"run_id": "r"}, "dataset": {"rows_read": 1234}, "headline": {"metric": "ndcg_at_10", "model": 0.2}}

    text = report.render_report(facts, {})

    assert "1,234" in text
    assert "Rejected rows by reason" in text and report.NOT_AVAILABLE in text


def test_metrics_table_puts_each_value_under_its_column():
    table = metrics_table(parse(report.render_report(full_facts(), {})))

    assert table["rmse"] == {"model": "0.81", "bias_baseline": "0.87", "popularity_baseline": "—", "champion": "0.83"}
    assert table["mae"]["model"] == "0.64" and table["mae"]["bias_baseline"] == "0.69"
    assert table["ndcg_at_10"]["popularity_baseline"] == "0.09" and table["ndcg_at_10"]["bias_baseline"] == "—"
    assert table["rows"]["model"] == "19,990"
    assert "note" not in table  # non-numeric values are skipped


def test_atomic_write_leaves_no_tmp_file_and_replaces_the_old_report(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")

    report.write_report(target, full_facts(), {})

    assert sorted(os.listdir(tmp_path)) == ["report.html"]
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_failed_write_keeps_the_old_report_and_no_tmp_file(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old")

    def failing_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(report.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        report.write_report(target, full_facts(), {})

    assert sorted(os.listdir(tmp_path)) == ["report.html"]
    assert target.read_text() == "old"


def test_report_is_self_contained():
    text = report.render_report(full_facts(), all_plots())
    parsed = parse(text)

    assert parsed.url_attributes, "the images should be there to check"
    assert all(value.startswith(DATA_URI_PREFIX) for value in parsed.url_attributes)
    for external in ("<link", "<script", "@import", "url("):
        assert external not in text.lower(), external
    # The only http(s) text is the dataset URL, shown as text.
    assert set(re.findall(r"https?://[^\s<\"']*", text)) == {DATASET_URL}
