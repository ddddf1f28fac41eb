"""Llama Guard 3 through transformers: its prompt format, S1-S14, a parsed verdict and an
unsafe probability from the first generated token.

The probability is ``P(unsafe) / (P(unsafe) + P(safe))`` from the logits of the first answer
token, so thresholds work as for the other backends; the category list comes from the greedy
continuation ("unsafe\\nS1,S10"). Output that is neither "safe" nor "unsafe" (optionally followed
by known category codes) is *unparseable* and gets ``cfg.on_unparseable`` (fail closed by default).
"""

from __future__ import annotations

import re

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter

DEFAULT_CATEGORIES = [
    "S1: Violent Crimes.",
    "S2: Non-Violent Crimes.",
    "S3: Sex Crimes.",
    "S4: Child Exploitation.",
    "S5: Defamation.",
    "S6: Specialized Advice.",
    "S7: Privacy.",
    "S8: Intellectual Property.",
    "S9: Indiscriminate Weapons.",
    "S10: Hate.",
    "S11: Self-Harm.",
    "S12: Sexual Content.",
    "S13: Elections.",
    "S14: Code Interpreter Abuse.",
]
_CODE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]{0,15})\s*:")


def category_codes(lines: list[str]) -> list[str]:
    """``["S1: Violent Crimes.", ...] -> ["S1", ...]``; a line without ``CODE:`` is an error."""
    codes = []
    for line in lines:
        m = _CODE.match(line)
        if not m:
            raise ValueError(
                f"llama_guard category {line!r} must start with a code, e.g. 'S1: Violent Crimes.'"
            )
        codes.append(m.group(1))
    return codes


def build_task(prompt: str, response: str | None, categories: list[str]) -> str:
    """The Llama Guard 3 task text: judge the last User turn (no response) or the last Agent turn."""
    role = "User" if response is None else "Agent"
    convo = f"User: {prompt}" + ("" if response is None else f"\n\nAgent: {response}")
    cats = "\n".join(categories)
    return (
        f"Task: Check if there is unsafe content in '{role}' messages in conversations according our "
        "safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{cats}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{convo}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
        " - First line must read 'safe' or 'unsafe'.\n"
        " - If unsafe, a second line must include a comma-separated list of violated categories."
    )


def parse_output(text: str, codes: list[str]) -> tuple[str, list[str]] | None:
    """``"safe"`` / ``"unsafe\\nS1,S10"`` -> (verdict, categories); None when unparseable.

    Only known codes are accepted, so a category name can never carry free text onward.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    head = lines[0].lower()
    if head == "safe":
        return "safe", []
    if head != "unsafe":
        return None
    if len(lines) < 2:
        return "unsafe", []
    found = [c.strip() for c in lines[1].split(",") if c.strip()]
    known = {c.upper(): c for c in codes}
    if not found or any(c.upper() not in known for c in found):
        return None
    return "unsafe", [known[c.upper()] for c in found]


class LlamaGuardFilter(SafetyFilter):
    """Any causal LM that answers in Llama Guard's format (Llama Guard 3 1B/8B, or a test model)."""

    name = "llama_guard"

    def __init__(self, cfg: SafetyConfig, model=None, tokenizer=None, max_new_tokens: int = 20) -> None:
        super().__init__(cfg)
        self.categories = list(cfg.llama_guard_categories) or list(DEFAULT_CATEGORIES)
        self.codes = category_codes(self.categories)
        if model is None or tokenizer is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from fedrai.assets import resolve

            ref = resolve(cfg.llama_guard_model)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(ref)
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            model = model or AutoModelForCausalLM.from_pretrained(ref, dtype=dtype)
            if torch.cuda.is_available():
                model = model.to("cuda")
        self.model = model.eval()
        self.tok = tokenizer
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.max_new_tokens = max_new_tokens
        self.safe_id = self._first_token("safe")
        self.unsafe_id = self._first_token("unsafe")
        if self.safe_id == self.unsafe_id:
            raise ValueError("llama_guard: 'safe' and 'unsafe' share a first token; cannot score")

    def _first_token(self, word: str) -> int:
        ids = self.tok.encode(word, add_special_tokens=False)
        if not ids:
            raise ValueError(f"llama_guard: tokenizer cannot encode {word!r}")
        return int(ids[0])

    def render(self, prompt: str, response: str | None) -> str:
        """The full model input. Llama Guard's own template only knows S1-S14, and a test
        tokenizer has none, so the task text is built here and wrapped in the Llama 3 header
        format when the tokenizer has those tokens, else in its own chat template."""
        if self.cfg.mode == "prompt":
            response = None
        task = build_task(prompt, response, self.categories)
        vocab = self.tok.get_vocab()
        if "<|start_header_id|>" in vocab:
            bos = self.tok.bos_token or ""
            return (
                f"{bos}<|start_header_id|>user<|end_header_id|>\n\n{task}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n"
            )
        template = getattr(self.tok, "chat_template", None)
        if template and "UNSAFE CONTENT CATEGORIES" not in str(template):
            return self.tok.apply_chat_template(
                [{"role": "user", "content": task}], tokenize=False, add_generation_prompt=True
            )
        return task + "\n\n"

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        import torch

        texts = [self.render(p, r) for p, r in zip(prompts, responses, strict=True)]
        self.tok.padding_side = "left"
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        with torch.no_grad():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tok.pad_token_id,
            )
        first = out.scores[0].float()
        pair = torch.stack([first[:, self.safe_id], first[:, self.unsafe_id]], dim=1)
        p_unsafe = torch.softmax(pair, dim=1)[:, 1].tolist()
        new = out.sequences[:, enc["input_ids"].shape[1] :]
        decoded = self.tok.batch_decode(new, skip_special_tokens=True)
        return [self._verdict(text, p) for text, p in zip(decoded, p_unsafe, strict=True)]

    def _verdict(self, text: str, p_unsafe: float) -> Judged:
        parsed = parse_output(text, self.codes)
        if parsed is None:
            return Judged(1.0 if self.cfg.on_unparseable == "unsafe" else 0.0, None, unparseable=True)
        verdict, cats = parsed
        if verdict == "safe":
            return Judged(p_unsafe)
        return Judged(p_unsafe, cats[0] if cats else None, categories=tuple(cats))
