"""Exports checked where they land: the exported files loaded by the other runtime (`transformers`,
`onnxruntime`, llama.cpp) and fed the same tokens as the lmforge model; the largest difference of their
outputs is recorded. An absent runtime is reported as such, never as a pass."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

import torch
from torch import Tensor

from lmforge.tokenization.specials import ROLES

SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog. 1,234 people said: \"hello, world!\""
TOLERANCE = 1e-4


@dataclass
class Sample:
    """Token ids (B, T) with the real-token mask and segments an encoder reads (row 1 is padded)."""

    ids: Tensor
    mask: Tensor
    segments: Tensor


def sample_inputs(tokenizer, max_len: int, encoder: bool, length: int = 32, padded: bool | None = None) -> Sample:
    """Two rows of `length` tokens: the sample text's ids, then deterministic other ids; an encoder's
    rows are framed by [CLS] ... [SEP] and cut into two segments; row 1 is right-padded when `padded`
    (default: for an encoder)."""
    padded = encoder if padded is None else padded
    length = min(length, max_len)
    generator = torch.Generator().manual_seed(0)
    text = tokenizer.encode(SAMPLE_TEXT)
    # no special token among the filler: RoBERTa-style encoders number positions by skipping pad ids
    first_plain = 1 + max(tokenizer.special_ids[role] for role in ROLES if role in tokenizer.special_ids)
    rows = []
    for row in range(2):
        filler = torch.randint(first_plain, tokenizer.vocab_size, (length,), generator=generator).tolist()
        ids = (text if row == 0 else text[::-1]) + filler
        if encoder:
            ids = [tokenizer.cls_id, *ids[:length - 2], tokenizer.sep_id]
        rows.append(ids[:length])
    ids = torch.tensor(rows)
    mask = torch.ones_like(ids, dtype=torch.bool)
    if padded:
        mask[1, length - length // 4:] = False
        ids[1, length - length // 4:] = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    segments = torch.zeros_like(ids)
    if encoder:
        segments[:, length // 2:] = 1
    return Sample(ids, mask, segments)


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def max_difference(ours: Tensor, theirs: Tensor, mask: Tensor | None = None) -> float:
    """Largest |ours - theirs| (over real tokens when `mask` (B, T) is given and the outputs are per token)."""
    ours, theirs = ours.float(), theirs.float()
    if ours.shape != theirs.shape:
        raise AssertionError(f"output shapes differ: {tuple(ours.shape)} vs {tuple(theirs.shape)}")
    diff = (ours - theirs).abs()
    if mask is not None and diff.dim() >= 2 and diff.shape[:2] == mask.shape:
        diff = diff[mask]
    return float(diff.max()) if diff.numel() else 0.0


def record(by: str, difference: float, sample: Sample, **more) -> dict:
    return {"by": f"{by} {version_of(by)}", "max_abs_diff": difference, "tolerance": TOLERANCE,
            "passed": difference <= TOLERANCE, "tokens": list(sample.ids.shape), **more}


def skipped(package: str, extra: str = "interop") -> dict:
    return {"by": None, "passed": None,
            "skipped": f"{package} is not installed (pip install 'lmforge[{extra}]' to verify)"}


def describe(check: dict) -> str:
    """One line: what compared the outputs and how far apart they were (or why nothing was compared)."""
    if check.get("passed") is None:
        return f"not verified: {check['skipped']}"
    parts = [f"{'verified' if check['passed'] else 'VERIFICATION FAILED'} with {check['by']}"]
    if "max_abs_diff" in check:
        parts.append(f"max |difference| {check['max_abs_diff']:.2e} (tolerance {check['tolerance']:g}) over "
                     f"{'x'.join(map(str, check['tokens']))} tokens")
    parts += [f"{name.replace('_', ' ')}: {value}" for name, value in check.items()
              if name not in ("by", "max_abs_diff", "tolerance", "passed", "tokens")]
    return "; ".join(parts)


# --- transformers --------------------------------------------------------------------------------
def hf_outputs(out_dir, architecture: str, sample: Sample, encoder: bool) -> Tensor:
    """The exported folder loaded by transformers and run on `sample`."""
    import transformers

    transformers.logging.set_verbosity_error()   # its load report and warnings are not ours to print
    transformers.utils.logging.disable_progress_bar()
    model = getattr(transformers, architecture).from_pretrained(str(out_dir), dtype=torch.float32).eval()
    kwargs = {"attention_mask": sample.mask.long(), "token_type_ids": sample.segments} if encoder else {}
    with torch.no_grad():
        result = model(input_ids=sample.ids, **kwargs)
    if architecture.endswith("ForQuestionAnswering"):
        return torch.stack([result.start_logits, result.end_logits], dim=-1)
    return result.logits


def hf_tokenizer_equal(out_dir, tokenizer, encoder: bool, chat) -> bool:
    """Whether `AutoTokenizer` on the folder gives our ids for the sample text (framed as our encoders
    frame it), and renders a conversation as our chat template does."""
    from transformers import AutoTokenizer, logging

    logging.set_verbosity_error()
    theirs = AutoTokenizer.from_pretrained(str(out_dir))
    ours = tokenizer.encode(SAMPLE_TEXT)
    if encoder:
        ours = [tokenizer.cls_id, *ours, tokenizer.sep_id]
    equal = theirs(SAMPLE_TEXT, add_special_tokens=encoder)["input_ids"] == ours
    if chat is not None:
        from lmforge.tokenization.chat import Message

        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SAMPLE_TEXT}]
        rendered = theirs.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        rendered = rendered["input_ids"] if isinstance(rendered, dict) or hasattr(rendered, "keys") else rendered
        equal = equal and list(rendered) == chat.prompt([Message(**m) for m in messages])
    return equal
