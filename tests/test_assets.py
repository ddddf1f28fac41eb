"""Offline assets: name resolution, checksum refusal, and which assets a config needs."""

from pathlib import Path

import pytest

from fedrai import assets
from fedrai.config import ExperimentConfig


def test_paths_and_hub_ids_pass_through():
    assert assets.resolve("/some/dir") == "/some/dir"
    assert assets.resolve("org/model") == "org/model"


def test_unknown_embedded_asset_lists_the_known_ones():
    with pytest.raises(assets.AssetError, match="smollm2-135m-instruct"):
        assets.resolve("embedded:nope")


def test_missing_asset_without_fetching_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDRAI_CACHE", str(tmp_path))
    with pytest.raises(assets.AssetError, match="fedrai assets fetch"):
        assets.resolve("embedded:advbench", fetch_missing=False)


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDRAI_CACHE", str(tmp_path / "cache"))

    def fake_download(asset, dest: Path, log) -> Path:
        path = dest / "pyrit-1.1.0-py3-none-any.whl"
        path.write_bytes(b"not the pinned wheel")
        return path

    monkeypatch.setattr(assets, "_download", fake_download)
    with pytest.raises(assets.AssetError, match="sha256"):
        assets.fetch("advbench", log=lambda m: None)
    assert not (tmp_path / "cache" / "advbench" / ".complete.json").exists()


def test_fetch_for_asks_only_for_what_the_config_uses(monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(assets, "resolve", lambda ref, fetch_missing=True: asked.append(ref) or ref)
    cfg = ExperimentConfig.from_dict({"eval": {"enabled": False}, "data": {"harmful_fraction": 0.0}})
    assets.fetch_for(cfg)
    assert sorted(asked) == ["embedded:instructlab", "embedded:smollm2-135m-instruct"]
    asked.clear()
    cfg = ExperimentConfig.from_dict({"data": {"harmful_fraction": 0.3}, "safety": {"enabled": True}})
    assets.fetch_for(cfg)
    assert {
        "embedded:harmful-pairs",
        "embedded:minilm-l6-v2",
        "embedded:advbench",
        "embedded:mtbench",
    } <= set(asked)


def test_fetch_for_adds_hhh_and_the_judge_questions_only_when_used(monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr(assets, "resolve", lambda ref, fetch_missing=True: asked.append(ref) or ref)
    assets.fetch_for(ExperimentConfig.from_dict({"eval": {"hhh_per_round": 0, "hhh_final": 0}}))
    assert "embedded:hhh" not in asked
    asked.clear()
    assets.fetch_for(ExperimentConfig.from_dict({"eval": {"hhh_per_round": 0, "hhh_final": 8}}))
    assert "embedded:hhh" in asked


def test_a_folder_member_of_an_sdist_keeps_only_the_named_files(tmp_path, monkeypatch):
    import io
    import tarfile

    monkeypatch.setenv("FEDRAI_CACHE", str(tmp_path / "cache"))
    asset = assets.ASSETS["hhh"]

    def fake_download(a, dest: Path, log) -> Path:
        path = dest / "bigbench-1.0.0.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            files = [*asset.keep, "task.json", "README.md", "../escape.json"]
            for rel in [*files, "other/README.md"]:
                data = b'{"examples": []}'
                info = tarfile.TarInfo(asset.member + rel)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return path

    monkeypatch.setattr(assets, "_download", fake_download)
    monkeypatch.setattr(assets, "_sha256", lambda p: asset.sha256)
    out = assets.fetch("hhh", log=lambda m: None)
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert kept == sorted(asset.keep)
    assert not (tmp_path / "cache" / "hhh" / "escape.json").exists()

    def short_download(a, dest: Path, log) -> Path:
        path = dest / "bigbench-1.0.0.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo(asset.member + "harmless/task.json")
            tf.addfile(info, io.BytesIO(b""))
        return path

    monkeypatch.setattr(assets, "_download", short_download)
    with pytest.raises(assets.AssetError, match="lacks .*helpful/task.json"):
        assets.fetch("hhh", force=True, log=lambda m: None)
