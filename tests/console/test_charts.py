"""The braille chart renderer: dots land where the data says, axes and legend are right."""

from __future__ import annotations

import numpy as np

from voltx.console.widgets.charts import GUTTER, render_chart


def plot_rows(text: str) -> list[str]:
    """The plot area of a rendered chart: rows between the title and the x axis, gutter cut off."""
    lines = text.split("\n")
    return [ln[GUTTER + 1 :] for ln in lines[1:-2]]


def dots(cell: str) -> int:
    return bin(ord(cell) - 0x2800).count("1") if "\u2800" < cell <= "\u28ff" else 0


def test_rising_line_goes_from_bottom_left_to_top_right():
    text = render_chart({"loss": ([0, 10], [0.0, 1.0])}, 50, 12, title="t").plain
    rows = plot_rows(text)
    assert len(rows) == 9 and all(len(r) == 50 - GUTTER - 1 for r in rows)
    assert dots(rows[-1][0]) and dots(rows[0][-1])  # both ends are drawn
    assert not dots(rows[0][0]) and not dots(rows[-1][-1])  # and nothing in the other corners
    filled = [next(i for i, c in enumerate(r) if dots(c)) for r in rows]
    assert filled == sorted(filled, reverse=True)  # each row up is further right: a monotone line


def test_flat_line_sits_mid_chart_and_is_continuous():
    rows = plot_rows(render_chart({"lr": ([0, 100], [3e-4, 3e-4])}, 40, 10).plain)
    drawn = [i for i, r in enumerate(rows) if any(dots(c) for c in r)]
    assert len(drawn) == 1 and 0 < drawn[0] < len(rows) - 1
    assert all(dots(c) for c in rows[drawn[0]])  # no gaps: every column has a dot


def test_axes_legend_and_labels():
    text = render_chart({"a": ([1, 2000], [0.5, 2.5]), "b": ([1, 2000], [1.0, 1.5])}, 60, 12, title="loss", note="sampled").plain
    head, *_, axis, labels = text.split("\n")
    assert head.startswith("loss  (sampled)") and "■ a" in head and "■ b" in head
    assert axis.strip().startswith("└") and set(axis.strip()[1:]) == {"─"}
    assert labels.split() == ["1", "1,000", "2,000"]
    assert text.split("\n")[1].strip().startswith("2.5┤") and "0.5┤" in text


def test_each_series_has_its_colour():
    chart = render_chart({"a": ([0, 1], [0, 0]), "b": ([0, 1], [1, 1])}, 40, 10)
    styles = {str(span.style) for span in chart.spans}
    assert {"cyan", "magenta"} <= styles


def test_empty_and_too_small():
    assert render_chart({}, 40, 10, title="t").plain == "t\nno data"
    assert "■ a" in render_chart({"a": ([0, 1], [0, 1])}, 15, 3).plain  # no room to plot: title and legend only


def test_noisy_series_keeps_spikes_and_stays_in_bounds():
    rng = np.random.default_rng(1)
    y = rng.random(500)
    y[250] = 50.0  # a spike must reach the top row
    rows = plot_rows(render_chart({"s": (list(range(500)), y.tolist())}, 80, 14).plain)
    assert any(dots(c) for c in rows[0])
    assert all(len(r) == 80 - GUTTER - 1 for r in rows)


def test_a_runs_stages_are_drawn_apart_and_named():
    """Two stages at different loss levels: no line joins the first stage's last point to the
    second's first (it would read as a jump), a rule marks where the second begins and a row names both."""
    steps = list(range(1, 101))
    losses = [1.0] * 50 + [3.0] * 50
    text = render_chart({"loss": (steps, losses)}, 60, 13, title="Loss", stages=(("encoder", 1.0), ("decoder", 51.0))).plain
    lines = text.split("\n")
    names = lines[1][GUTTER + 1 :]
    assert names.split() == ["encoder", "┊decoder"] and names.startswith("encoder")
    rows = [ln[GUTTER + 1 :] for ln in lines[2:-2]]
    assert len(rows) == 9  # the row of names is taken from the plot, not added to the height
    drawn = [i for i, r in enumerate(rows) if any(dots(c) for c in r)]
    assert drawn == [0, len(rows) - 1]  # the two flat stages only: nothing rises between them
    rule = names.index("┊")
    assert all(r[rule] == "┊" for r in rows[1:-1])  # the rule runs down the empty cells where decoder begins
    assert not any(dots(c) for c in rows[0][:rule]) and not any(dots(c) for c in rows[-1][rule + 1 :])


def test_one_stage_draws_as_before():
    joined = render_chart({"loss": ([1, 100], [1.0, 3.0])}, 60, 13).plain
    assert render_chart({"loss": ([1, 100], [1.0, 3.0])}, 60, 13, stages=(("encoder", 1.0),)).plain == joined
    assert "┊" not in joined


def test_names_too_close_for_one_row_are_staggered_and_each_rule_runs_past_the_names_below():
    text = render_chart({"loss": (list(range(1, 101)), [1.0] * 100)}, 40, 10,
                        stages=(("cognate-base", 1.0), ("cognate-reasoning", 11.0), ("cognate-memory", 90.0))).plain
    top, second = (line[GUTTER + 1 :] for line in text.split("\n")[1:3])
    assert top.startswith("cognate-base ") and "┊cog" in top  # the last name has only the room to the edge
    reasoning = second.index("┊cognate-reasoning")  # would run into cognate-base: a row down, whole
    memory = top.index("┊")
    assert second[memory] == "┊"  # the rule of the name above continues down to the plot
    rows = [line[GUTTER + 1 :] for line in text.split("\n")[3:-2]]
    assert len(rows) == 5  # the two rows of names are taken from the plot
    assert all(r[at] == "┊" for r in rows for at in (reasoning, memory) if not dots(r[at]))


def test_out_of_rows_a_stage_name_is_cut_to_the_room_before_the_next():
    text = render_chart({"loss": (list(range(1, 101)), [1.0] * 100)}, 40, 6,  # room for one row of names only
                        stages=(("cognate-base", 1.0), ("cognate-reasoning", 11.0), ("cognate-memory", 90.0))).plain
    names = text.split("\n")[1][GUTTER + 1 :]
    first, second, third = names.split("┊")
    assert first.rstrip() and "cognate-base".startswith(first.rstrip()) and first.endswith(" ")
    assert second.startswith("cognate-reasoning") and "cognate-memory".startswith(third.rstrip())


def test_a_series_that_begins_in_a_later_stage_shows_the_stages_it_spans():
    stages = (("tokenizer", 1.0), ("encoder", 11.0), ("decoder", 51.0))
    text = render_chart({"loss": (list(range(20, 101)), [1.0] * 81)}, 60, 12, stages=stages).plain
    assert text.split("\n")[1].split() == ["encoder", "┊decoder"]


def test_a_stage_that_begins_after_the_last_step_shown_is_not_marked():
    """A term only the encoder logs (steps 1-14), the decoder from step 15: the chart ends before the
    decoder begins, so a rule on its last column would mark a start that is not on it."""
    plain = render_chart({"contrastive": (list(range(1, 15)), [1.0] * 14)}, 60, 12).plain
    assert render_chart({"contrastive": (list(range(1, 15)), [1.0] * 14)}, 60, 12, stages=(("encoder", 1.0), ("decoder", 15.0))).plain == plain
