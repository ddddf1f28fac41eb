"""load_rows: every source kind, the field mapping, and every bad-row kind in both modes."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

import fedrai.assets
from fedrai.config import DataConfig
from fedrai.data.loading import HARMFUL, HARMFUL_REFUSED, DataError, load_rows
from tests.conftest import write_jsonl


def _pairs(n: int, start: int = 0) -> list[dict]:
    return [{"prompt": f"question {i}", "response": f"answer {i}"} for i in range(start, start + n)]


def _fetched(name: str) -> bool:
    return any(a["name"] == name and a["fetched"] == "yes" for a in fedrai.assets.status())


def _write_csv(path: Path, header: list[str], records: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(records)
    return path


# ----------------------------------------------------------------------------- sources
def test_jsonl_prompt_response(pairs_jsonl: Path) -> None:
    result = load_rows(str(pairs_jsonl), DataConfig())
    assert len(result.rows) == 24 and result.skipped == 0 and result.skipped_reasons == {}
    row = result.rows[0]
    assert row["id"] == "pairs.jsonl:1"
    assert row["messages"] == [{"role": "user", "content": "Question 0: how do I bake bread?"}]
    assert row["response"].startswith("Mix flour")
    assert row["origin"] == "benign" and row["group"] == "pairs.jsonl"
    assert load_rows(str(pairs_jsonl), DataConfig(), origin="harmful").rows[0]["origin"] == "harmful"


def test_jsonl_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text(
        '{"prompt": "a", "response": "b"}\n\n   \n{"prompt": "c", "response": "d"}\n', encoding="utf-8"
    )
    assert [r["id"] for r in load_rows(str(path), DataConfig()).rows] == ["gaps.jsonl:1", "gaps.jsonl:4"]


def test_csv_with_custom_fields_and_system(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "d.csv",
        ["q", "a", "sys", "category"],
        [["hi, there", "hello\nworld", "Be brief.", "greet"], ["bye", "see you", "", "greet"]],
    )
    cfg = DataConfig(prompt_field="q", response_field="a", system_field="sys")
    rows = load_rows(str(path), cfg).rows
    assert [r["id"] for r in rows] == ["d.csv:1", "d.csv:2"]
    assert rows[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi, there"},
    ]
    assert rows[0]["response"] == "hello\nworld" and rows[0]["group"] == "greet"
    assert rows[1]["messages"] == [{"role": "user", "content": "bye"}]  # empty system cell: none


def test_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_pairs(3), indent=2), encoding="utf-8")
    rows = load_rows(str(path), DataConfig()).rows
    assert [r["id"] for r in rows] == ["d.json:1", "d.json:2", "d.json:3"]
    assert rows[2]["response"] == "answer 2"


def test_directory_is_read_sorted(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    write_jsonl(folder / "b.jsonl", _pairs(2, 10))
    _write_csv(folder / "a.csv", ["prompt", "response"], [["question 0", "answer 0"]])
    (folder / "sub" / "c.json").write_text(json.dumps(_pairs(1, 20)), encoding="utf-8")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    rows = load_rows(str(folder), DataConfig()).rows
    assert [r["id"] for r in rows] == ["a.csv:1", "b.jsonl:1", "b.jsonl:2", "sub/c.json:1"]


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="folder has no .jsonl/.csv/.json/.parquet files"):
        load_rows(str(tmp_path), DataConfig())


def test_saved_dataset_dir_and_dataset_dict(tmp_path: Path) -> None:
    import datasets

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    ds = datasets.Dataset.from_list([{"messages": messages, "group": "chat"}] * 3)
    ds.save_to_disk(str(tmp_path / "single"))
    rows = load_rows(str(tmp_path / "single"), DataConfig()).rows
    assert len(rows) == 3 and rows[0]["response"] == "hello" and rows[0]["group"] == "chat"
    assert rows[1]["id"] == f"{tmp_path / 'single'}:1"

    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert len(load_rows(str(tmp_path / "dict"), DataConfig(split="test")).rows) == 1
    with pytest.raises(DataError, match="no split 'validation'.*train"):
        load_rows(str(tmp_path / "dict"), DataConfig(split="validation"))


def test_hub_id_uses_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls: list[tuple[str, str]] = []

    def fake_load_dataset(name: str, split: str) -> datasets.Dataset:
        calls.append((name, split))
        return datasets.Dataset.from_list(_pairs(4))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    result = load_rows("org/pairs", DataConfig(split="train[:4]"))
    assert calls == [("org/pairs", "train[:4]")]
    assert [r["id"] for r in result.rows][:2] == ["org/pairs:0", "org/pairs:1"]


def test_hub_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(name: str, split: str) -> None:
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"org/missing: not a local file.*ConnectionError: Couldn't reach"):
        load_rows("org/missing", DataConfig())


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_rows(str(tmp_path / "nope.jsonl"), DataConfig())


def test_table_without_configured_columns(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "x.csv", ["question", "answer"], [["q", "a"]])
    with pytest.raises(DataError, match=r"x.csv: has neither a 'messages' column.*data.prompt_field"):
        load_rows(str(path), DataConfig(on_bad_row="skip"))


# ----------------------------------------------------------------------------- field mapping
def test_messages_mapping(tmp_path: Path) -> None:
    conv = [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "trailing question, no answer"},
    ]
    path = write_jsonl(
        tmp_path / "chat.jsonl", [{"messages": conv, "prompt": "ignored", "response": "ignored"}]
    )
    row = load_rows(str(path), DataConfig()).rows[0]
    assert row["response"] == "a2"
    assert [m["content"] for m in row["messages"]] == ["u1", "a1", "u2"]
    kept = load_rows(str(path), DataConfig(keep_system_prompt=True)).rows[0]
    assert kept["messages"][0] == {"role": "system", "content": "You are kind."}


def test_row_origin_and_group_fields_override(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "o.jsonl", [{"prompt": "p", "response": "r", "origin": "harmful", "group": "g1"}]
    )
    row = load_rows(str(path), DataConfig()).rows[0]
    assert row["origin"] == "harmful" and row["group"] == "g1"


def test_max_rows_is_a_seeded_sample(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", _pairs(50))
    cfg = DataConfig(max_rows=10)
    a, b = (load_rows(str(path), cfg, seed=1).rows for _ in range(2))
    c = load_rows(str(path), cfg, seed=2).rows
    assert len(a) == 10 and a == b and a != c
    ids = [int(r["id"].split(":")[1]) for r in a]
    assert ids == sorted(ids)  # file order is kept


# ----------------------------------------------------------------------------- bad rows
GOOD = '{"prompt": "p", "response": "r"}'
BAD_JSONL_LINES = {
    "malformed_json": b'{"prompt": "p", "response": ',
    "not_an_object": b'["p", "r"]',
    "missing_field": b'{"prompt": "p"}',
    "bad_text": b'{"prompt": 42, "response": "r"}',
    "empty_text": b'{"prompt": "p", "response": "   "}',
    "bad_encoding": b'{"prompt": "caf\xe9", "response": "r"}',
    "bad_messages": b'{"messages": [{"role": "user", "content": "only a question"}]}',
}
BAD_MESSAGES = {
    "not a list": {"messages": {"role": "user"}},
    "no role": {"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]},
    "unknown role": {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
    "no user": {"messages": [{"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}]},
}


def _bad_file(tmp_path: Path, bad: bytes) -> Path:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join([GOOD.encode(), GOOD.encode(), bad, GOOD.encode()]) + b"\n")
    return path


@pytest.mark.parametrize("reason", list(BAD_JSONL_LINES))
def test_bad_jsonl_row_error_names_file_and_line(tmp_path: Path, reason: str) -> None:
    path = _bad_file(tmp_path, BAD_JSONL_LINES[reason])
    with pytest.raises(DataError) as info:
        load_rows(str(path), DataConfig())
    assert f"{path}: line 3:" in str(info.value)
    assert "on_bad_row" in str(info.value)


@pytest.mark.parametrize("reason", list(BAD_JSONL_LINES))
def test_bad_jsonl_row_skipped_and_counted(tmp_path: Path, reason: str) -> None:
    path = _bad_file(tmp_path, BAD_JSONL_LINES[reason])
    result = load_rows(str(path), DataConfig(on_bad_row="skip"))
    assert [r["id"] for r in result.rows] == ["mixed.jsonl:1", "mixed.jsonl:2", "mixed.jsonl:4"]
    assert result.skipped == 1 and result.skipped_reasons == {reason: 1}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
def test_wrong_message_structure(tmp_path: Path, case: str) -> None:
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            BAD_MESSAGES[case],
        ],
    )
    with pytest.raises(DataError, match=r"m.jsonl: line 2: .*messages"):
        load_rows(str(path), DataConfig())
    assert load_rows(str(path), DataConfig(on_bad_row="skip")).skipped_reasons == {"bad_messages": 1}


def test_skip_mode_counts_every_kind_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"\n".join([GOOD.encode(), *BAD_JSONL_LINES.values()]) + b"\n")
    with caplog.at_level(logging.WARNING, logger="fedrai.data.loading"):
        result = load_rows(str(path), DataConfig(on_bad_row="skip"))
    assert len(result.rows) == 1 and result.skipped == len(BAD_JSONL_LINES)
    assert result.skipped_reasons == {k: 1 for k in sorted(BAD_JSONL_LINES)}
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped 7 bad rows (bad_encoding=1, bad_messages=1, bad_text=1, empty_text=1, "
        "malformed_json=1, missing_field=1, not_an_object=1)"
    ]


def test_nothing_usable_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "none.jsonl", [{"prompt": "p"}, {"prompt": "q"}])
    with pytest.raises(DataError, match=r"no usable rows; skipped 2 bad rows \(missing_field=2\)"):
        load_rows(str(path), DataConfig(on_bad_row="skip"))


def test_bad_csv_records(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(
        b"prompt,response\n"
        b"good,row\n"
        b"only one value\n"  # record 2: too few values
        b'"multi\nline",ok\n'  # record 3 spans lines 4-5
        b"caf\xe9,bad bytes\n"  # record 4: bad encoding, line 6
        b"a,b,c\n"  # record 5: too many values
        b",empty prompt\n"  # record 6
    )
    with pytest.raises(DataError, match=r"bad.csv: record 2 \(line 3\): 1 values for 2 columns"):
        load_rows(str(path), DataConfig())
    result = load_rows(str(path), DataConfig(on_bad_row="skip"))
    assert [r["id"] for r in result.rows] == ["bad.csv:1", "bad.csv:3"]
    assert result.skipped_reasons == {"bad_encoding": 1, "empty_text": 1, "malformed_record": 2}
    path.write_bytes(b"prompt,response\ngood,row\ncaf\xe9,bad bytes\n")
    with pytest.raises(
        DataError, match=r"bad.csv: record 2 \(line 3\): field 'prompt' has bytes that are not valid UTF-8"
    ):
        load_rows(str(path), DataConfig())


def test_bad_json_list_file(tmp_path: Path) -> None:
    path = tmp_path / "l.json"
    path.write_bytes(
        b'[\n {"prompt": "p", "response": "r"},\n {"prompt": "caf\xe9", "response": "r"},\n 7\n]'
    )
    with pytest.raises(DataError, match=r"l.json: line 3 \(record 2\): field 'prompt' has bytes"):
        load_rows(str(path), DataConfig())
    result = load_rows(str(path), DataConfig(on_bad_row="skip"))
    assert result.skipped_reasons == {"bad_encoding": 1, "not_an_object": 1}
    path.write_text('[\n {"prompt": "p", "response": "r"},\n {"prompt": oops}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"l.json: line 3: malformed JSON"):  # the whole file is unreadable
        load_rows(str(path), DataConfig(on_bad_row="skip"))
    path.write_text('{"prompt": "p"}', encoding="utf-8")
    with pytest.raises(DataError, match="expected a JSON list"):
        load_rows(str(path), DataConfig())


# ----------------------------------------------------------------------------- harmful-pairs format
def test_harmful_pairs_format_verdict_spellings(tmp_path: Path) -> None:
    verdicts = [
        ("Harmful\n\nReason: detailed steps", HARMFUL),
        ('"Harmful"', HARMFUL),
        ("**Harmful**\nIt helps.", HARMFUL),
        ("Answer: Harmful\n\nReason: x", HARMFUL),
        ("Not harmful.\n\nReason: refuses", HARMFUL_REFUSED),
        ("'Not harmful'", HARMFUL_REFUSED),
        ("Unclear", None),
    ]
    records = [
        {"user": f"bad request {i}", "assistant": f"answer {i}", "category": v}
        for i, (v, _) in enumerate(verdicts)
    ]
    path = tmp_path / "many_shot_examples.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataError, match=r"record 7\).*'unclear' starts with neither"):
        load_rows(str(path), DataConfig())
    result = load_rows(str(path), DataConfig(on_bad_row="skip"))
    assert [r["origin"] for r in result.rows] == [label for _, label in verdicts if label]
    assert result.skipped_reasons == {"bad_label": 1}
    assert result.rows[0]["messages"] == [{"role": "user", "content": "bad request 0"}]


# ----------------------------------------------------------------------------- embedded sources
@pytest.mark.skipif(
    not _fetched("instructlab"), reason="asset 'instructlab' not fetched (run `fedrai assets fetch`)"
)
def test_embedded_instructlab() -> None:
    result = load_rows("embedded:instructlab", DataConfig(max_rows=200), seed=3)
    assert len(result.rows) == 200 and result.skipped == 0
    row = result.rows[0]
    assert row["id"].startswith("train_all_pruned_SDG.jsonl:")
    assert [m["role"] for m in row["messages"]] == ["user"]  # the IBM system prompt is dropped
    assert row["origin"] == "benign"
    assert len({r["group"] for r in result.rows}) >= 5  # task kinds: something a Dirichlet split can skew


@pytest.mark.skipif(
    not _fetched("harmful-pairs"), reason="asset 'harmful-pairs' not fetched (run `fedrai assets fetch`)"
)
def test_embedded_harmful_pairs() -> None:
    result = load_rows("embedded:harmful-pairs", DataConfig())
    origins = [r["origin"] for r in result.rows]
    assert len(result.rows) == 400 and result.skipped == 0
    assert origins.count(HARMFUL) == 283 and origins.count(HARMFUL_REFUSED) == 117
