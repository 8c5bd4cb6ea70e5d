"""Plugin manager, entry-point loader and registry.

Built-ins and third-party plugins load the same way: one entry point each in the
``voltx`` group. The loader walks the entry points itself so that one broken plugin is
an entry under ``failures`` (and a warning), never a crash, unless
``VOLTX_STRICT_PLUGINS=1``. ``VOLTX_DISABLE_PLUGINS=a,b`` blocks entry points by name.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from voltx import hookspecs
from voltx.config import GLOBAL_TABLES
from voltx.errors import UsageError, closest
from voltx.plugin_specs import NAME_RE, SPEC_KINDS

GROUP = "voltx"
BUILTIN_DISTRIBUTION = "voltx"
REGISTER_HOOKS = {f"register_{kind}": kind for kind in SPEC_KINDS}
BUILTIN_COMMANDS = frozenset({"run", "phases", "plugins", "status", "logs", "report", "config", "think", "data", "doctor", "export", "attach"})
"""Subcommand names voltx itself owns (plugin commands and aliases may not take them; a test
keeps this in step with voltx.cli.main's parser)."""
RESERVED_NAMES = {"phases": frozenset(GLOBAL_TABLES)}
"""Names a kind may not use: a phase named ``run`` would collide with the ``[run]`` table."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded | failed | disabled | partial
    provides: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "status": self.status,
            "provides": self.provides,
        }


@dataclass
class PluginFailure:
    plugin: str
    distribution: str
    stage: str  # entry-point | import | registration | hook-name | register_<kind>
    error: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"plugin": self.plugin, "distribution": self.distribution, "stage": self.stage, "error": self.error}


@dataclass
class Registered:
    spec: Any
    plugin: str


class PluginSet:
    """Everything loaded: the pluggy manager, per-kind registries, plugin infos, failures."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self.registry: dict[str, dict[str, Registered]] = {kind: {} for kind in SPEC_KINDS}

    # -- lookups ---------------------------------------------------------------------------
    def specs(self, kind: str) -> dict[str, Any]:
        return {name: reg.spec for name, reg in sorted(self.registry[kind].items())}

    def provider(self, kind: str, name: str) -> str:
        return self.registry[kind][name].plugin

    def get(self, kind: str, name: str) -> Any:
        """The spec named ``name``, or a UsageError listing what is installed."""
        try:
            return self.registry[kind][name].spec
        except KeyError:
            valid = sorted(self.registry[kind])
            hint = closest(name, valid)
            singular = kind[:-1].replace("_", " ")
            msg = f"unknown {singular} {name!r}"
            if hint:
                msg += f" (did you mean {hint!r}?)"
            msg += f". Installed: {', '.join(valid) or 'none'}."
            failed = [f.plugin for f in self.failures]
            if failed:
                msg += f" Plugins that failed to load: {', '.join(failed)} (see `voltx plugins`)."
            raise UsageError(msg) from None

    # -- loading ---------------------------------------------------------------------------
    def add(self, obj: Any, *, name: str, distribution: str, version: str, strict: bool) -> None:
        """Register one plugin object (module or instance) and run its register hooks."""
        builtin = distribution == BUILTIN_DISTRIBUTION
        info = PluginInfo(name, getattr(obj, "__name__", type(obj).__name__), distribution, version, builtin)
        self.plugins[name] = info
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:  # pluggy validation errors (bad hook signatures)
            # pluggy may have added the hooks it checked before the bad one: drop them all,
            # so a failed plugin's lifecycle hooks are never called.
            if self.pm.get_plugin(name) is obj:
                self.pm.unregister(name=name)
            self._fail(info, "registration", exc, strict)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(obj) or [])
        for caller in self.pm.get_hookcallers(obj) or []:
            if not caller.has_spec():
                hint = closest(caller.name, [n for n in dir(hookspecs) if n.startswith(("register_", "on_"))])
                err = f"unknown hook {caller.name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                self._fail(info, "hook-name", ValueError(err), strict, partial=True)
        for hook_name, kind in REGISTER_HOOKS.items():
            self._run_register_hook(obj, info, hook_name, kind, strict)
        if info.status == "partial":  # some hook failed: "partial" only if something still works
            lifecycle = [h for h in info.hooks if h.startswith("on_") and hasattr(hookspecs, h)]
            if not info.provides and not lifecycle:
                info.status = "failed"

    def _run_register_hook(self, obj: Any, info: PluginInfo, hook_name: str, kind: str, strict: bool) -> None:
        caller = getattr(self.pm.hook, hook_name)
        impls = [impl for impl in caller.get_hookimpls() if impl.plugin is obj]
        spec_cls = SPEC_KINDS[kind]
        for impl in impls:
            staged: list[Any] = []

            def register(spec: Any, _staged: list = staged) -> None:
                if not isinstance(spec, spec_cls):
                    raise TypeError(f"{hook_name} expects {spec_cls.__name__} objects, got {type(spec).__name__}")
                names = [spec.name, *getattr(spec, "aliases", ())]  # a command's aliases are names too
                for n in names:
                    if not isinstance(n, str) or not NAME_RE.match(n):
                        raise ValueError(f"invalid {kind[:-1]} name {n!r}: use lower-case letters, digits, - and _")
                    if n in RESERVED_NAMES.get(kind, ()):
                        raise ValueError(f"{kind[:-1]} name {n!r} is reserved (it is a config table of voltx)")
                    if kind == "commands" and n in BUILTIN_COMMANDS:
                        raise ValueError(f"command name {n!r} is a built-in voltx command")
                    owner = self._owner(kind, n, _staged)
                    if owner is not None:
                        raise ValueError(f"{kind[:-1]} {n!r} is already registered by plugin {owner or info.name!r}")
                _staged.append(spec)

            try:
                impl.function(register=register)
            except Exception as exc:
                # Transactional: a hook that fails registers nothing, so no half-plugin.
                self._fail(info, hook_name, exc, strict, partial=True)
                continue
            for spec in staged:
                self.registry[kind][spec.name] = Registered(spec, info.name)
                info.provides.setdefault(kind, []).append(spec.name)

    def _owner(self, kind: str, name: str, staged: list[Any]) -> str | None:
        """The plugin that registered ``name`` (or one of its aliases); "" for this hook call."""
        for reg in self.registry[kind].values():
            if name in (reg.spec.name, *getattr(reg.spec, "aliases", ())):
                return reg.plugin
        if any(name in (s.name, *getattr(s, "aliases", ())) for s in staged):
            return ""
        return None

    def _fail(self, info: PluginInfo, stage: str, exc: BaseException, strict: bool, partial: bool = False) -> None:
        if strict:
            raise exc
        info.status = "partial" if partial and info.status in ("loaded", "partial") else "failed"
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.failures.append(PluginFailure(info.name, info.distribution, stage, f"{type(exc).__name__}: {exc}", detail))
        print(f"voltx: warning: plugin {info.name!r} ({stage}): {exc}", file=sys.stderr)

    def load_entry_points(self, strict: bool, disabled: set[str]) -> None:
        seen: dict[str, str] = {}  # entry-point name -> distribution
        eps = sorted(md.entry_points(group=GROUP), key=lambda ep: (ep.dist.name != BUILTIN_DISTRIBUTION if ep.dist else True, ep.name))
        for ep in eps:
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if ep.name in seen:
                if seen[ep.name] != dist:  # two distributions claim one name: the first one wins, loudly
                    info = PluginInfo(ep.name, ep.value, dist, version, False)
                    err = ValueError(f"entry point name {ep.name!r} is already used by distribution {seen[ep.name]!r}; rename it")
                    self._fail(info, "entry-point", err, strict)
                continue  # else: the same distribution found twice on sys.path
            seen[ep.name] = dist
            if ep.name in disabled:
                self.plugins[ep.name] = PluginInfo(ep.name, ep.value, dist, version, dist == BUILTIN_DISTRIBUTION, status="disabled")
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                info = PluginInfo(ep.name, ep.value, dist, version, dist == BUILTIN_DISTRIBUTION)
                self.plugins[ep.name] = info
                self._fail(info, "import", exc, strict)
                continue
            self.add(obj, name=ep.name, distribution=dist, version=version, strict=strict)


_CACHE: PluginSet | None = None


def load_plugins(extra: Iterable[tuple[str, Any]] = (), *, refresh: bool = False) -> PluginSet:
    """Load every ``voltx`` entry point once per process (plus ``extra`` (name, object) pairs)."""
    global _CACHE
    extra = list(extra)
    if _CACHE is not None and not refresh and not extra:
        return _CACHE
    strict = os.environ.get("VOLTX_STRICT_PLUGINS", "") not in ("", "0")
    disabled = {n.strip() for n in os.environ.get("VOLTX_DISABLE_PLUGINS", "").split(",") if n.strip()}
    ps = PluginSet()
    ps.load_entry_points(strict, disabled)
    for name, obj in extra:
        ps.add(obj, name=name, distribution="(in-process)", version="", strict=strict)
    _CACHE = ps
    return ps


def reset_plugins() -> None:
    """Forget the cached plugin set (tests; after installing a plugin in-process)."""
    global _CACHE
    _CACHE = None

