"""Constitution files: the shipped default, YAML, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedrai.safety.cai import ConstitutionError, load_constitution
from fedrai.safety.cai.constitution import DEFAULT_CONSTITUTION

GOOD = """
name = "mine"
[[principles]]
name = "a"
critique = "Critique A."
revision = "Revise A."
[[principles]]
name = "b"
critique = "Critique B."
revision = "Revise B."
[[refusals]]
principle = "a"
text = "No, because A."
"""


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_default_constitution_loads_and_grounds_refusals() -> None:
    c = load_constitution(None)
    assert c.source == str(DEFAULT_CONSTITUTION)
    assert len(c.principles) >= 4
    names = {p.name for p in c.principles}
    assert {r.principle for r in c.refusals} <= names
    for p in c.principles:
        assert p.critique and p.revision


def test_toml_and_yaml_agree(tmp_path: Path) -> None:
    yaml_text = (
        "name: mine\nprinciples:\n"
        "  - {name: a, critique: Critique A., revision: Revise A.}\n"
        "  - {name: b, critique: Critique B., revision: Revise B.}\n"
        "refusals:\n  - {principle: a, text: 'No, because A.'}\n"
    )
    t = load_constitution(_write(tmp_path, GOOD))
    y = load_constitution(_write(tmp_path, yaml_text, "c.yaml"))
    assert t.principles == y.principles and t.refusals == y.refusals


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (GOOD.replace('critique = "Critique B."\n', ""), r"principles\[1\]: missing field 'critique'"),
        (GOOD.replace('"Revise A."', '"  "'), r"principles\[0\]\.revision: empty"),
        (GOOD.replace('name = "b"', 'name = "b"\nweight = 2'), r"principles\[1\]: unknown key\(s\) weight"),
        (GOOD.replace('name = "mine"', 'nmae = "mine"'), r"unknown key\(s\) nmae"),
        (GOOD.replace('principle = "a"', 'principle = "zzz"'), r"refusals\[0\]\.principle: 'zzz' is not"),
        (GOOD.replace('name = "b"', 'name = "a"'), "duplicate principle names: a"),
        ('name = "x"\n[[refusals]]\nprinciple = "a"\ntext = "t"\n', "non-empty list 'principles'"),
        (GOOD.split("[[refusals]]")[0], "non-empty list 'refusals'"),
        (
            GOOD.replace('critique = "Critique A."', "critique = 3"),
            r"principles\[0\]\.critique: expected a string",
        ),
        ("principles = [", "cannot parse"),
    ],
)
def test_validation_errors_name_file_entry_and_field(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConstitutionError, match=match) as err:
        load_constitution(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConstitutionError, match="not found"):
        load_constitution(tmp_path / "nope.toml")


def test_schedule_random_is_seeded_and_sequence_cycles(tmp_path: Path) -> None:
    c = load_constitution(_write(tmp_path, GOOD))
    a = c.schedule(50, 3, "random", seed=7)
    assert a == c.schedule(50, 3, "random", seed=7)
    assert a != c.schedule(50, 3, "random", seed=8)
    assert {i for row in a for i in row} == {0, 1}
    assert c.schedule(2, 3, "sequence", seed=0) == [[0, 1, 0], [0, 1, 0]]


def test_refusal_text_is_stable_per_prompt_and_varied() -> None:
    c = load_constitution(None)
    assert c.refusal_text("How to X?") == c.refusal_text("How to X?", "S1")
    texts = {c.refusal_text(f"prompt {i}") for i in range(40)}
    assert len(texts) > 1 and texts <= {r.text for r in c.refusals}
