"""The Compare screen: overlaid curves per shared loss term, a config diff, resumes and bad lines."""

from __future__ import annotations

import asyncio
import json

from run_factory import BASE_TIME, make_run
from textual.app import App
from textual.widgets import DataTable, Static
from voltx.console.widgets.charts import SeriesPlot

from voltx.console.screens.compare import CompareScreen, read_loss_curves
from voltx.console.testing import until


class Host(App):
    def __init__(self, screen):
        super().__init__()
        self._first = screen

    def on_mount(self) -> None:
        self.push_screen(self._first)


def drive(screen, check, size=(120, 40)):
    async def body():
        async with Host(screen).run_test(size=size) as pilot:
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            await check(pilot, pilot.app.screen)

    asyncio.run(body())


def test_two_runs_overlay_each_shared_term_and_diff_their_configs(tmp_path):
    a = make_run(tmp_path, "f1", steps=40)
    b = make_run(tmp_path, "f1", steps=60, created_at=BASE_TIME + 3600)
    cfg = (b / "config.toml").read_text().replace("lr = 0.001", "lr = 0.0003") + "warmup = 10\n"
    (b / "config.toml").write_text(cfg)

    async def check(pilot, screen):
        plots = list(screen.query(SeriesPlot))
        assert [p.id for p in plots] == ["compare-plot-loss", "compare-plot-loss_contrastive", "compare-plot-loss_role"]
        assert len(screen.runs) == 2
        steps_a, _ = screen.runs[0].curves["loss"]
        steps_b, _ = screen.runs[1].curves["loss"]
        assert (steps_a[-1], steps_b[-1]) == (40.0, 60.0)
        rendered = str(plots[0].render())  # both runs appear in the legend of the overlaid plot
        assert f"f1/{a.name}" in rendered and f"f1/{b.name}" in rendered
        table = screen.query_one("#compare-config", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)[1:]] for i in range(table.row_count)}
        assert rows == {"f1.lr": ["0.001", "0.0003"], "f1.warmup": ["—", "10"]}
        assert "2 config keys differ" in str(screen.query_one("#compare-config-note", Static).render())
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, CompareScreen)

    drive(CompareScreen([a, b]), check)


def test_identical_configs_and_a_run_without_metrics(tmp_path):
    a = make_run(tmp_path, "f1", steps=10)
    b = make_run(tmp_path, "f2", steps=0, created_at=BASE_TIME + 60)
    (b / "config.toml").write_text((a / "config.toml").read_text())

    async def check(pilot, screen):
        assert not list(screen.query(SeriesPlot))
        assert "share no logged loss term" in str(screen.query_one("#compare-no-curves", Static).render())
        assert "identical" in str(screen.query_one("#compare-config-note", Static).render())

    drive(CompareScreen([a, b]), check)


def test_fewer_than_two_runs_says_what_to_do(tmp_path):
    a = make_run(tmp_path, "f1", steps=5)

    async def check(pilot, screen):
        text = str(screen.query_one("#compare-runs", Static).render())
        assert "two or more runs" in text
        assert not screen.query_one("#compare-tabs").display

    drive(CompareScreen([a]), check)


def test_unreadable_config_is_named_not_a_crash(tmp_path):
    a = make_run(tmp_path, "f1", steps=5)
    b = make_run(tmp_path, "f1", steps=5, created_at=BASE_TIME + 60)
    (b / "config.toml").write_text("[f1\nlr = ")

    async def check(pilot, screen):
        assert "config.toml unreadable" in str(screen.query_one("#compare-runs", Static).render())
        assert screen.runs[1].problem

    drive(CompareScreen([a, b]), check)


def test_curves_drop_superseded_steps_skip_corrupt_lines_and_are_downsampled(tmp_path):
    run = make_run(tmp_path, "f1", steps=30, corrupt_tail=True)
    metrics = run / "metrics.jsonl"
    head, _, partial = metrics.read_text().rpartition("\n")
    # A resume from step 20 logs steps 21.. again with other values; the half line stays last.
    resumed = "".join(f'{{"step": {s}, "losses": {{"loss": 9.0}}}}\n' for s in range(21, 26))
    metrics.write_text(head + "\n" + resumed + partial)
    steps, values = read_loss_curves(metrics)["loss"]
    assert steps == [float(s) for s in range(1, 26)]
    assert values[19] != 9.0 and values[20:] == [9.0] * 5
    big = make_run(tmp_path, "f2", steps=1000)
    steps, _ = read_loss_curves(big / "metrics.jsonl", buckets=50)["loss"]
    assert len(steps) <= 100 and steps == sorted(steps) and steps[0] <= 20 and steps[-1] >= 980  # spans the run


def test_marking_two_runs_on_the_runs_screen_and_pressing_c_compares_them(tmp_path):
    from voltx.console.app import VoltxConsole

    root = tmp_path / "runs"
    a = make_run(root, "f1", steps=20)
    b = make_run(root, "f1", steps=30, created_at=BASE_TIME + 60)

    async def body():
        app = VoltxConsole([root], poll_s=30)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2, "both runs listed")
            await pilot.press("space", "down", "space", "c")
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, CompareScreen)
            assert sorted(screen.run_dirs) == sorted([a, b])
            assert len(list(screen.query(SeriesPlot))) == 3

    asyncio.run(body())


def test_a_failure_while_reading_is_shown_not_a_crash(tmp_path, monkeypatch):
    import voltx.console.screens.compare as compare

    def boom(run_dir):
        raise PermissionError(13, "Permission denied", str(run_dir))

    monkeypatch.setattr(compare, "load_run", boom)
    a, b = make_run(tmp_path, "f1", steps=3), make_run(tmp_path, "f1", steps=3, created_at=BASE_TIME + 60)

    async def check(pilot, screen):
        assert "Could not read the runs: PermissionError" in str(screen.query_one("#compare-runs", Static).render())
        assert pilot.app.is_running

    drive(CompareScreen([a, b]), check)


# --- the Ranking tab: runs ordered by their first deliverable's metric, through the run store ----------


def lvm_like_run(root, cosine: float, copy_last: float = 0.12):
    """A finished run as `voltx run lvm` leaves it: an evaluation beside its baselines, then verdicts."""
    from voltx.runs.store import RunWriter

    w = RunWriter.create(root, "lvm", config_toml="", overrides=[], preset=None, argv=["voltx", "run", "lvm"])
    metrics = {"lvm/cosine": cosine, "lvm/cosine_copy_last": copy_last, "lvm/cosine_context_mean": 0.15}
    w.event("evaluation", stage="lvm", step=10, epoch=1, metrics={**metrics, "lvm/cosine": cosine - 0.05})
    w.event("evaluation", stage="lvm", step=20, epoch=2, metrics=metrics)  # the latest value counts
    for threshold in (0.70, 0.85):
        w.event("deliverable", step=20, metric="lvm/cosine", op=">=", threshold=threshold, value=cosine,
                passed=cosine >= threshold, description="")
    w.close("finished", 0)
    return w.dir


def test_runs_are_ranked_by_their_deliverable_metric_beside_the_stage_metrics(tmp_path):
    from voltx.console.screens.compare import load_run, rank

    dirs = [lvm_like_run(tmp_path / "runs", c) for c in (0.12, 0.31, 0.2)]
    ranking = rank([load_run(d) for d in dirs])
    assert (ranking.metric, ranking.higher_is_better) == ("lvm/cosine", True)
    assert ranking.columns == ["lvm/cosine", "lvm/cosine_copy_last", "lvm/cosine_context_mean"]
    assert [(run.dir, values[0]) for run, values in ranking.rows] == [(dirs[1], 0.31), (dirs[2], 0.2), (dirs[0], 0.12)]

    async def check(pilot, screen):
        table = screen.query_one("#compare-ranking", DataTable)
        shown = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[0] for row in shown] == ["1", "2", "3"]
        assert [row[2] for row in shown] == ["0.3100", "0.2000", "0.1200"]
        assert [row[1] for row in shown] == [f"lvm/{dirs[i].name}" for i in (1, 2, 0)]
        assert "Ranked by lvm/cosine (higher is better)" in str(screen.query_one("#compare-ranking-note", Static).render())

    drive(CompareScreen(dirs), check)


def test_lower_is_better_and_a_metric_some_run_lacks_ranks_nothing(tmp_path):
    from voltx.console.screens.compare import RunCurves, rank

    def run(name, value, op="<"):
        r = RunCurves(tmp_path / name, name)
        if value is not None:
            r.evaluations = {"f2/quant_err": value, "f2/other": 1.0}
        r.deliverables = {"f2/quant_err": op}
        return r

    ranking = rank([run("a", 0.3), run("b", 0.1), run("c", 0.2)])
    assert not ranking.higher_is_better and [r.label for r, _ in ranking.rows] == ["b", "c", "a"]
    missing = rank([run("a", 0.3), run("b", None)])  # b never evaluated it: no order would be fair
    assert missing.metric is None and missing.columns == [] and [r.label for r, _ in missing.rows] == ["a", "b"]


def _decoder_from(run, first: int, rise: float = 0.0) -> None:
    """Rewrite ``run``'s metrics so its steps from ``first`` are a "decoder" stage, their losses ``rise`` higher."""
    metrics = run / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    for rec in records[first - 1:]:
        rec["stage"] = "decoder"
        rec["losses"] = {k: v + rise for k, v in rec["losses"].items()}
    metrics.write_text("".join(json.dumps(rec) + "\n" for rec in records))


def test_each_runs_stages_are_drawn_apart_as_on_the_loss_tab(tmp_path):
    """Two translator-like runs (encoder then decoder, the decoder from step 26 in one, 31 in the
    other): each run's curve is broken where its own decoder begins, and both starts are marked
    and named (the Loss tab's chart code)."""
    a = make_run(tmp_path, "f1", steps=40)
    b = make_run(tmp_path, "f1", steps=40, created_at=BASE_TIME + 3600)
    for run, first in ((a, 26), (b, 31)):
        _decoder_from(run, first, rise=5.0)  # a joining line would be a tall rise

    async def check(pilot, screen):
        assert [r.stages for r in screen.runs] == [(("encoder", 1.0), ("decoder", 26.0)), (("encoder", 1.0), ("decoder", 31.0))]
        plot = screen.query_one("#compare-plot-loss", SeriesPlot)
        assert plot.stages == (("encoder", 1.0), ("decoder", 26.0), ("decoder", 31.0))
        rows = plot.text(100, 16).split("\n")
        assert rows[1].split() == ["encoder", "┊decoder", "┊decoder"]
        for at in [i for i, c in enumerate(rows[1]) if c == "┊"]:  # no line climbs either rule: it is whole
            assert all(row[at] == "┊" for row in rows[3:-4]), "\n".join(rows)

    drive(CompareScreen([a, b]), check)


def test_runs_that_change_stage_a_step_apart_are_both_named_whole_in_their_colours(tmp_path):
    """The decoder begins at step 26 in one run and 27 in the other: on an 80-column screen the two
    rules are two cells apart, so one row would cut the first name to its rule. The second name goes a
    row down, and each is drawn in its run's colour, so the reader can tell whose decoder begins where."""
    a = make_run(tmp_path, "f1", steps=40)
    b = make_run(tmp_path, "f1", steps=40, created_at=BASE_TIME + 3600)
    for run, first in ((a, 26), (b, 27)):
        _decoder_from(run, first)

    async def check(pilot, screen):
        screen.query_one("#compare-tabs").active = "compare-curves-tab"
        await pilot.pause()
        plot = screen.query_one("#compare-plot-loss", SeriesPlot)
        chart = plot.render()
        lines = chart.plain.split("\n")
        named = [(n, line.index("┊decoder")) for n, line in enumerate(lines[1:4], start=1) if "┊decoder" in line]
        assert [n for n, _ in named] == [1, 2], "\n".join(lines)  # one name a row, both whole
        (first_at, second_at) = (at for _, at in named)
        assert lines[2][first_at] == "┊"  # the first run's rule runs down past the second name
        offsets = [sum(len(line) + 1 for line in lines[:n]) + at + 1 for n, at in named]  # "decoder", after the ┊
        colours = [{s.style for s in chart.spans if s.start <= at < s.end} for at in offsets]
        legend = {s.style for s in chart.spans if s.end <= len(lines[0])} - {"bold", "dim"}
        assert colours[0] != colours[1] and all(c <= legend and c for c in colours)  # each in one run's legend colour

    drive(CompareScreen([a, b]), check, size=(80, 30))


def test_a_legend_wider_than_the_plot_is_cut_and_the_step_axis_stays_on_screen(tmp_path):
    """Two runs' names (``translator/<date>-<time>-<id>``) are wider than an 80-column plot: the legend
    line is cut, not wrapped (a wrapped legend pushed every row down and the step labels off the bottom)."""
    from textual.geometry import Region

    a = make_run(tmp_path, "translator", steps=40)
    b = make_run(tmp_path, "translator", steps=40, created_at=BASE_TIME + 3600)

    async def check(pilot, screen):
        screen.query_one("#compare-tabs").active = "compare-curves-tab"
        await pilot.pause()
        plot = screen.query_one("#compare-plot-loss", SeriesPlot)
        lines = [strip.text for strip in plot.render_lines(Region(0, 0, plot.size.width, plot.size.height))]
        assert lines[0].startswith("loss  ■ translator/") and "┤" in lines[1]  # the legend on one line, the plot below it
        assert lines[-2].strip().startswith("└") and lines[-1].split() == ["1", "20", "40"]

    drive(CompareScreen([a, b]), check, size=(80, 24))
