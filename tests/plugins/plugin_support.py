"""Helpers for the plugin tests: the root conftest's helpers, plugin sources, in-process loading.

The root conftest is loaded by path under its own name: ``import conftest`` names whichever
conftest.py pytest imported last, which changes as test directories gain their own.
docs/plugins.md uses the same example plugins (TOY_SOURCE, HELLO_SOURCE).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

from voltx.testing import fake_plugin_dist, only_run, plugin_env  # noqa: F401  (the plugin tests import them from here)

_ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def _load_root_conftest() -> types.ModuleType:
    name = "_voltx_tests_root_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _ROOT_CONFTEST)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_root = _load_root_conftest()
run_cli = _root.run_cli
REPO = _root.REPO


# --- example plugins (the same code as docs/plugins.md) -----------------------------------

TOY_SOURCE = '''\
"""voltx-toy: a phase that fits a linear model on 64 random rows with the shared loop."""

from __future__ import annotations

from dataclasses import dataclass

from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec


@dataclass
class ToyConfig:
    """The [toy] table of training_config.toml."""

    epochs: int = 2
    batch_size: int = 8
    lr: float = 0.05
    fail: bool = False
    """Raise inside the runner (to see a failed run)."""


def run(ctx):
    import torch  # heavy imports inside the runner, never at module top

    from voltx.train.batches import EpochBatches
    from voltx.train.loop import Stage, fit

    cfg = ctx.settings  # a ToyConfig with the config file, preset and overrides applied
    if cfg.fail:
        raise RuntimeError("toy phase asked to fail")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = torch.nn.Linear(4, 1).to(ctx.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)

    def collate(rows):
        xs, ys = zip(*rows)
        return torch.stack(xs).to(ctx.device), torch.stack(ys).to(ctx.device)

    def step(batch):
        xb, yb = batch
        return {"loss": torch.nn.functional.mse_loss(model(xb), yb)}

    def evaluate():
        mse = float(torch.nn.functional.mse_loss(model(x.to(ctx.device)), y.to(ctx.device)))
        return {"mse": mse, "mse_mean": float(y.var(unbiased=False))}  # the baseline: predict the mean

    batches = EpochBatches(list(zip(x, y)), cfg.batch_size, seed=ctx.config.run.seed, collate=collate)
    fit(ctx, Stage(name="fit", model=model, optimizer=opt, batches=batches, epochs=cfg.epochs,
                   step=step, lr_at=lambda s: cfg.lr, evaluate=evaluate))
    ctx.mark_stage_done("fit")


@hookimpl
def register_phases(register):
    register(PhaseSpec(
        name="toy",
        summary="fit a linear model on 64 random rows",
        runner="voltx_toy:run",
        config_class=ToyConfig,
        deliverables=(Deliverable("fit/mse", "<", 100.0, "far above any trained model's error",
                                  baselines=("fit/mse_mean",)),),
    ))
'''

HELLO_SOURCE = '''\
"""voltx-hello: adds `voltx hello [--name NAME] [--code N]`."""

from voltx import hookimpl
from voltx.plugin_specs import CommandSpec


def configure(parser):
    parser.add_argument("--name", default="world")
    parser.add_argument("--code", type=int, default=0, help="exit code to return")


def hello(args):
    print(f"hello {args.name}")
    return args.code


@hookimpl
def register_commands(register):
    register(CommandSpec("hello", "print a greeting", "voltx_hello:hello", configure, aliases=("hi",)))
'''

TOY_STEPS = 16
"""Optimizer steps of a default toy run: 64 rows / batch 8 x 2 epochs."""


def load_source(monkeypatch, name: str, source: str) -> types.ModuleType:
    """Execute ``source`` as module ``name`` (in sys.modules until the test ends)."""
    module = types.ModuleType(name)
    module.__file__ = f"<plugin source {name}>"
    monkeypatch.setitem(sys.modules, name, module)  # before exec: dataclasses look the module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def install(site: Path, dist: str, module: str, source: str, **kw) -> dict:
    """Install a fake plugin distribution under ``site``; return the env that loads it."""
    fake_plugin_dist(site, dist, module, source, **kw)
    return plugin_env(site)


def repo_distribution_plugins() -> list[str]:
    """Entry-point names of the plugin distributions in ``plugins/voltx-*/`` (the test command installs them)."""
    import tomllib

    names: list[str] = []
    for pyproject in sorted((REPO / "plugins").glob("voltx-*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        names += list(project.get("entry-points", {}).get("voltx", {}))
    return names


def without_repo_distributions(env: dict) -> dict:
    """``env`` with the repository's plugin distributions disabled: what a voltx-only install lists."""
    return {**env, "VOLTX_DISABLE_PLUGINS": ",".join(repo_distribution_plugins())}


def cli_json(*args: str, env: dict | None = None) -> dict:
    """``voltx ARGS --json`` parsed; fails the test on a non-zero exit."""
    proc = run_cli(*args, "--json", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

