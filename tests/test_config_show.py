"""`metaagentx config show`: every key a config accepts, with its value, type and description."""

from __future__ import annotations

from typer.testing import CliRunner

from metaagentx.cli import app
from metaagentx.config import Config, valid_keys
from metaagentx.config_keys import config_keys, show_value, type_name

runner = CliRunner()


def test_every_leaf_key_is_listed_and_documented():
    rows = config_keys()
    sections = {k.rsplit(".", 1)[0] for k in valid_keys() if "." in k}
    assert [r.key for r in rows] == [k for k in valid_keys() if k not in sections]
    assert not [r.key for r in rows if not r.description]  # a knob without a word is a defect
    by_key = {r.key: r for r in rows}
    assert by_key["trainer.steps"].value == Config().trainer.steps
    assert by_key["generation.vllm.placement"].type == "Literal['colocated', 'server']"
    assert by_key["model.path"].type == "str | None"


def test_values_print_as_they_are_written():
    assert [show_value(v) for v in (None, True, [1, "a"], {"k": 1}, 0.5)] == [
        "null", "true", '[1, "a"]', '{"k": 1}', "0.5"]
    assert type_name(list[str]) == "list[str]" and type_name(int) == "int"


def test_config_show_prints_a_loaded_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("trainer:\n  steps: 7\n")
    shown = runner.invoke(app, ["config", "show", str(path), "trainer.phase_steps=3",
                                "--key", "trainer."], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    lines = {line.split("│")[1].strip(): line for line in shown.output.splitlines()
             if line.count("│") >= 4 and line.split("│")[1].strip()}
    assert "│ 7 " in lines["trainer.steps"] and "│ 3 " in lines["trainer.phase_steps"]
    assert not any(key.startswith("model.") for key in lines)


def test_config_show_refuses_bad_input_in_one_line(tmp_path):
    for args, message in (
        (["--key", "nope"], "no config key starts with 'nope'"),
        ([str(tmp_path / "missing.yaml")], "does not exist"),
        (["trainer.step=3"], "did you mean 'trainer.steps'"),
    ):
        refused = runner.invoke(app, ["config", "show", *args])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert "Traceback" not in refused.output
