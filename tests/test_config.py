import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedrai.config import ConfigError, ExperimentConfig, apply_override, reference_markdown


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_validate():
    cfg = ExperimentConfig()
    assert cfg.strategy.name == "fedavg"
    assert cfg.federation.wire_dtype == "float32"


def test_toml_and_overrides(tmp_path):
    path = write(tmp_path, 'name = "x"\n[train]\nlocal_steps = 3\n')
    cfg = ExperimentConfig.from_toml(
        path,
        [
            "train.local-steps=7",
            "strategy.name=fedadam",
            'lora.target_modules=["q_proj"]',
            "eval.enabled=false",
        ],
    )
    assert cfg.train.local_steps == 7
    assert cfg.strategy.name == "fedadam"
    assert cfg.lora.target_modules == ["q_proj"]
    assert cfg.eval.enabled is False


def test_unknown_key_names_key_and_allowed(tmp_path):
    path = write(tmp_path, "[train]\nlocal_stepz = 3\n")
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_toml(path)
    msg = str(err.value)
    assert "train.local_stepz" in msg and "unknown key" in msg and "local_steps" in msg
    assert str(path) in msg


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match="trian: unknown key"):
        ExperimentConfig.from_toml(write(tmp_path, "[trian]\nlocal_steps = 3\n"))


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.local_steps=0", "train.local_steps"),
        ("train.local_steps=abc", "train.local_steps"),
        ("data.harmful_fraction=1.5", "data.harmful_fraction"),
        ("federation.wire_dtype=bfloat16", "federation.wire_dtype"),
        ("safety.mode=everything", "safety.mode"),
    ],
)
def test_bad_values_name_the_key(tmp_path, override, fragment):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_toml(write(tmp_path, ""), [override])
    assert fragment in str(err.value)


def test_unknown_strategy_lists_valid(tmp_path):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_toml(write(tmp_path, ""), ["strategy.name=fedfoo"])
    msg = str(err.value)
    assert "fedfoo" in msg and "fedavg" in msg and "krum" in msg and "fedtrimmedavg" in msg


def test_cross_section_checks(tmp_path):
    with pytest.raises(ConfigError, match="min_train_clients"):
        ExperimentConfig.from_toml(
            write(tmp_path, ""), ["federation.num_clients=2", "strategy.min_train_clients=3"]
        )
    with pytest.raises(ConfigError, match="revise"):
        ExperimentConfig.from_toml(write(tmp_path, ""), ["safety.action=revise"])
    with pytest.raises(ConfigError, match="screen.max_benign_loss_increase = 0.1 needs benign probes"):
        ExperimentConfig.from_toml(write(tmp_path, ""), ["screen.max_benign_loss_increase=0.1"])
    with pytest.raises(
        ConfigError, match="screen.signal = 'specificity' compares .* screen.benign_probes >= 1"
    ):
        ExperimentConfig.from_toml(write(tmp_path, ""), ['screen.signal="specificity"'])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.local_steps")
    with pytest.raises(ConfigError, match="not a section"):
        apply_override({"name": "x"}, "name.sub=1")


def test_run_config_round_trip():
    cfg = ExperimentConfig.from_toml_text('name = "rt"\n[train]\nlocal_steps = 2\n')
    again = ExperimentConfig.from_run_config({"config-toml": cfg.to_toml(), "set": "train.batch_size=2"})
    assert again.name == "rt" and again.train.local_steps == 2 and again.train.batch_size == 2


def test_run_config_experiment_path(tmp_path):
    path = write(tmp_path, 'name = "from-path"\n')
    cfg = ExperimentConfig.from_run_config({"experiment": str(path), "config-toml": "", "set": ""})
    assert cfg.name == "from-path"
    with pytest.raises(ConfigError, match="file not found"):
        ExperimentConfig.from_run_config({"experiment": str(tmp_path / "missing.toml")})


def test_presets_validate():
    presets = sorted((Path(__file__).resolve().parents[1] / "fedrai" / "presets").glob("*.toml"))
    assert presets
    for p in presets:
        ExperimentConfig.from_toml(p)


def test_reference_lists_every_key():
    ref = reference_markdown()
    for key in ("`train.local_steps`", "`safety.threshold`", "`cai.placement`", "`federation.wire_dtype`"):
        assert key in ref


def test_client_cai_on_flagged_rows_needs_the_filter_to_hand_them_over(tmp_path):
    with pytest.raises(ConfigError, match="client_scope"):
        ExperimentConfig.from_toml(write(tmp_path, ""), ["cai.placement=client"])
    ok = ExperimentConfig.from_toml(
        write(tmp_path, ""), ["cai.placement=client", "safety.enabled=true", "safety.action=revise"]
    )
    assert ok.cai.client_scope == "flagged"
    assert ExperimentConfig.from_toml(write(tmp_path, ""), ["cai.placement=client", "cai.client_scope=all"])


def test_validating_a_config_imports_no_flower(tmp_path: Path) -> None:
    """The config owns the strategy names: reading and validating a TOML must not pull in Flower."""
    path = tmp_path / "exp.toml"
    path.write_text('[strategy]\nname = "fedadam"\n', encoding="utf-8")
    code = (
        "import sys, fedrai.config\n"
        "from fedrai.config import ExperimentConfig\n"
        f"ExperimentConfig.from_toml({str(path)!r})\n"
        "assert 'flwr' not in sys.modules, 'validating a config imported flwr'\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr


def test_config_and_registry_list_the_same_strategies() -> None:
    import fedrai.strategies.registry as registry
    from fedrai.config import STRATEGY_NAMES

    assert set(registry.STRATEGY_NAMES) == set(STRATEGY_NAMES)


def test_fedopt_has_its_own_server_step() -> None:
    from fedrai.config.federation import StrategyConfig
    from fedrai.strategies import build_strategy

    # Adaptive FedOpt steps each coordinate by about eta: FedAvgM's 1.0 blew up LoRA adapters
    cfg = StrategyConfig(name="fedadam")
    assert cfg.fedopt_eta == 0.01 and cfg.server_learning_rate == 1.0
    assert build_strategy(cfg, 4).eta == 0.01
    assert build_strategy(StrategyConfig(name="fedyogi", fedopt_eta=0.003), 4).eta == 0.003
