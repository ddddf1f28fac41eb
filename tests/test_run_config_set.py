"""`set` in Flower's run config: TOML values with spaces and lists survive the split."""

from __future__ import annotations

import pytest
from flwr.common.config import parse_config_args

from fedrai.config import ConfigError, ExperimentConfig, split_overrides


def test_split_keeps_strings_with_spaces_and_lists_whole() -> None:
    text = (
        """setting='FL + filter' lora.target_modules=["q_proj", "v_proj"]  federation.num_rounds=2 name=x"""
    )
    assert split_overrides(text) == [
        "setting='FL + filter'",
        'lora.target_modules=["q_proj", "v_proj"]',
        "federation.num_rounds=2",
        "name=x",
    ]


def test_split_handles_escapes_triple_quotes_and_inline_tables() -> None:
    text = r'''a="say \"hi there\"" b="""x y""" c={ k = [1, 2] } d='''
    assert split_overrides(text) == [r'a="say \"hi there\""', 'b="""x y"""', "c={ k = [1, 2] }", "d="]
    assert split_overrides("  ") == []


@pytest.mark.parametrize("bad", ["setting='FL + filter", 'lora.target_modules=["q_proj", "v_proj"'])
def test_split_refuses_unclosed_quote_or_bracket(bad: str) -> None:
    with pytest.raises(ConfigError, match="run config 'set': unclosed"):
        split_overrides(bad)


def test_flwr_run_config_line_reaches_the_config_intact() -> None:
    # What `flwr run . --run-config "..."` hands the ServerApp, parsed by Flower's own parser.
    line = """experiment='' set="setting='FL + filter' lora.target_modules=['q_proj', 'v_proj'] federation.num_rounds=2" """
    run_config = parse_config_args([line])
    cfg = ExperimentConfig.from_run_config(run_config)
    assert cfg.setting == "FL + filter"
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.federation.num_rounds == 2


def test_flwr_run_clients_keep_state_in_the_run_dir(tmp_path) -> None:
    # Under a plain `flwr run` no run-dir is sent: the clients' audits go where the ServerApp writes.
    from fedrai.clients.worker import client_state_dir

    run_config = {"experiment": "", "config-toml": "", "run-dir": "", "set": f"output.dir='{tmp_path / 'r'}'"}
    assert client_state_dir(run_config, {}, 3) == tmp_path / "r" / "clients" / "client-3"
    assert (
        client_state_dir({**run_config, "run-dir": str(tmp_path / "x")}, {}, 1)
        == tmp_path / "x" / "clients" / "client-1"
    )
