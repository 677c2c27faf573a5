from pathlib import Path

import pytest
import yaml

from metaagentx.config import (
    Config,
    ConfigError,
    build_config,
    load_config,
    parse_override,
    save_config,
)


def test_defaults_validate():
    config = build_config()
    assert isinstance(config, Config)
    assert config.rollout.num_designs == 4 and config.rollout.num_executions == 4
    assert config.trainer.schedule == "stagewise" and config.trainer.phase_steps == 30


def test_overrides_are_typed():
    config = build_config(
        {}, ["trainer.steps=7", "generation.temperature=0.5", "eval.modes=[designed]", "seed=3"]
    )
    assert config.trainer.steps == 7
    assert config.generation.temperature == 0.5
    assert config.eval.modes == ["designed"]
    assert config.seed == 3


def test_yaml_then_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"steps": 5, "phase_steps": 2}, "output_dir": "x"}))
    config = load_config(path, ["trainer.steps=9"])
    assert (
        config.trainer.steps == 9 and config.trainer.phase_steps == 2 and config.output_dir == "x"
    )


@pytest.mark.parametrize(
    ("override", "named", "suggested"),
    [
        ("trainer.step=3", "trainer.step", "trainer.steps"),
        ("traner.steps=3", "traner.steps", "trainer.steps"),
        ("generation.temprature=1", "generation.temprature", "generation.temperature"),
        ("trainer.lr=1", "trainer.lr", "trainer.designer_lr"),
        ("seeed=1", "seeed", "seed"),
    ],
)
def test_unknown_override_key_is_named_with_suggestion(override, named, suggested):
    with pytest.raises(ConfigError) as info:
        build_config({}, [override])
    assert f"'{named}'" in str(info.value)
    assert f"did you mean '{suggested}'" in str(info.value)


def test_unknown_yaml_key_is_named(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("rollout:\n  num_design: 2\n")
    with pytest.raises(ConfigError, match=r"'rollout.num_design'.*'rollout.num_designs'"):
        load_config(path)


def test_bad_value_names_key_and_value():
    with pytest.raises(ConfigError, match=r"'trainer.steps'.*'abc'"):
        build_config({}, ["trainer.steps=abc"])
    with pytest.raises(ConfigError, match=r"generation\.top_p"):
        build_config({}, ["generation.top_p=1.5"])
    with pytest.raises(ConfigError, match=r"trainer\.schedule"):
        build_config({}, ["trainer.schedule=sometimes"])


def test_simultaneous_shared_training_needs_one_learning_rate():
    lrs = ["trainer.designer_lr=2e-4", "trainer.executor_lr=1e-4"]
    with pytest.raises(ConfigError, match=r"designer_lr \(0.0002\) and trainer.executor_lr"):
        build_config({}, ["trainer.schedule=simultaneous", *lrs])
    build_config({}, ["trainer.schedule=stagewise", *lrs])  # one role per step
    build_config({}, ["trainer.schedule=simultaneous", "model.parameter_sharing=lora", *lrs])
    build_config({}, ["trainer.schedule=simultaneous", "trainer.executor_lr=2e-4", lrs[0]])


def test_malformed_override_and_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("trainer.steps")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section"):
        build_config({}, ["trainer=3"])


def test_saved_config_round_trips(tmp_path: Path):
    config = build_config({}, ["trainer.steps=11", "model.path=/models/qwen"])
    path = save_config(config, tmp_path / "run")
    assert path.name == "config.yaml"
    assert load_config(path) == config
