"""The one data-source layer: resolution, every format, and the one bad-row policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedrai.data.sources import (
    PROMPT_SUFFIXES,
    BadRow,
    DataError,
    Record,
    first_text,
    iter_records,
    load_hub,
    local_path,
    read_records,
)


def _prompt(rec: Record) -> str:
    return first_text(rec.value, ("prompt",), "prompt text")


def test_every_file_format_gives_the_same_records(tmp_path: Path) -> None:
    import datasets

    rows = [{"prompt": "a"}, {"prompt": "b"}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "p.csv").write_text("prompt\na\nb\n", encoding="utf-8")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "p.parquet"))
    (tmp_path / "p.yaml").write_text("seeds:\n- value: a\n- value: b\n", encoding="utf-8")
    (tmp_path / "p.txt").write_text("a\n\nb\n", encoding="utf-8")
    for name in ("p.jsonl", "p.json", "p.csv", "p.parquet"):
        assert read_records(str(tmp_path / name), _prompt).items == ["a", "b"], name
    for name in ("p.yaml", "p.txt"):
        got = read_records(
            str(tmp_path / name), lambda r: first_text(r.value, ("value",), "x"), suffixes=PROMPT_SUFFIXES
        )
        assert got.items == ["a", "b"], name
    with pytest.raises(DataError, match=r"p\.txt: unsupported file type '\.txt'"):
        read_records(str(tmp_path / "p.txt"), _prompt)  # table readers do not take text files


def test_where_names_file_and_row_in_every_format(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text('# version=1\nprompt,other\n"a\nb",x\n,y\n', encoding="utf-8")
    records = list(iter_records(str(tmp_path / "p.csv"), csv_comments=True))
    assert [r.where.split(": ", 1)[1] for r in records] == ["record 1 (line 4)", "record 2 (line 5)"]
    (tmp_path / "p.json").write_text('[\n {"prompt": "a"},\n {"prompt": "b"}\n]', encoding="utf-8")
    assert [r.where.split(": ", 1)[1] for r in iter_records(str(tmp_path / "p.json"))] == [
        "line 2 (record 1)",
        "line 3 (record 2)",
    ]


def test_one_bad_row_policy_error_or_counted_skip(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n{"prompt": \n{"other": 1}\n\xff\xfe\n{"prompt": "b"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl: line 2: malformed JSON.*\(hint\)$"):
        read_records(str(path), _prompt, skip_hint="hint")
    loaded = read_records(str(path), _prompt, on_bad_row="skip")
    assert loaded.items == ["a", "b"]
    assert loaded.skipped_reasons == {"bad_encoding": 1, "malformed_json": 1, "missing_field": 1}
    assert loaded.skipped == 3
    (tmp_path / "none.jsonl").write_text('{"other": 1}\n', encoding="utf-8")
    with pytest.raises(
        DataError, match=r"none\.jsonl: no usable prompts; skipped 1 bad rows \(missing_field=1\)"
    ):
        read_records(str(tmp_path / "none.jsonl"), _prompt, what="prompts", on_bad_row="skip")


def test_converter_bad_rows_are_counted_by_their_reason(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n', encoding="utf-8")

    def reject_b(rec: Record) -> str:
        if rec.value["prompt"] == "b":
            raise BadRow("is_b", "b is not allowed")
        return rec.value["prompt"]

    assert read_records(str(path), reject_b, on_bad_row="skip").skipped_reasons == {"is_b": 1}
    with pytest.raises(DataError, match=r"p\.jsonl: line 2: b is not allowed$"):
        read_records(str(path), reject_b)


def test_resolution_paths_and_hub_ids(tmp_path: Path) -> None:
    assert local_path(str(tmp_path)) == tmp_path
    assert local_path("org/name") is None  # a hub dataset id
    assert local_path("squad") is None
    for missing in (str(tmp_path / "x.csv"), "./data", "a/b/c", "~/nope"):
        with pytest.raises(DataError, match="no such file or folder"):
            local_path(missing)


def test_hub_loader_is_the_real_library_on_a_local_dir(tmp_path: Path) -> None:
    """``datasets.load_dataset`` itself (no fake), pointed at a local folder: the hub path works offline."""
    (tmp_path / "train.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n', encoding="utf-8")
    ds = load_hub(str(tmp_path), "train")
    assert ds["prompt"] == ["a", "b"]
    with pytest.raises(DataError, match="failed: ValueError.*Offline, use a local file"):
        load_hub(str(tmp_path), "validation")


def test_offline_hub_id_fails_with_one_clear_line(tmp_path: Path) -> None:
    code = (
        "from fedrai.data.sources import DataError, read_records\n"
        "try:\n"
        "    read_records('fedrai-test/not-cached', lambda r: r.value)\n"
        "except DataError as err:\n"
        "    print(err)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith(
        "fedrai-test/not-cached: not a local file or folder, and loading it as a hub dataset"
    )
    assert "Offline, use a local file, folder or `embedded:NAME` instead" in line and "\n" not in line
