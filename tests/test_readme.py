"""The README's config reference is generated; it must not drift from the config."""

from pathlib import Path

from fedrai.config import reference_markdown


def test_readme_config_reference_is_current():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme, (
        "regenerate: fedrai config reference (README section Configuration)"
    )
