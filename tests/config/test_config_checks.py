"""The public config checks plugin phases share (voltx.config_checks): one message per mistake."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from voltx.config_checks import require_at_least, require_fraction, require_mix_weights
from voltx.errors import EXIT_CONFIG, ConfigError


def test_each_check_names_the_setting_what_it_got_and_what_is_expected():
    table = SimpleNamespace(epochs=0, layers=2, valid_fraction=1.0, dev_fraction=0.1)
    with pytest.raises(ConfigError, match=r"^demo\.epochs must be at least 1, got 0$") as exc:
        require_at_least("demo", table, ("layers", "epochs"))
    assert exc.value.exit_code == EXIT_CONFIG
    with pytest.raises(ConfigError, match=r"^demo\.valid_fraction must be in \[0, 1\), got 1\.0$"):
        require_fraction("demo", table, ("dev_fraction", "valid_fraction"))
    with pytest.raises(ConfigError, match=r"demo\.data: the mix weights must sum to 1, got 0\.5 \+ 0\.2 = 0\.7 in .*e\.g\. X\.$"):
        require_mix_weights("demo.data", ["a.jsonl:0.5", "b.jsonl:0.2"], "X")
    with pytest.raises(ConfigError, match="got none = 0"):
        require_mix_weights("demo.data", [], "X")
    require_at_least("demo", table, ("layers",))
    require_fraction("demo", {"dev_fraction": 0.0, "valid_fraction": 0.2})
    require_mix_weights("demo.data", ["a.jsonl:0.5", "b.jsonl:0.5"], "X")
