"""Translation with a sequence-to-sequence run: sources encoded once per batch, then greedy, sampled or beam
decoding of the targets through the decoder protocol, with the encoder output as its memory.

Sources are sorted by length and decoded in batches (little padding); each row has its own length limit
(`max_length_ratio` x its source + 10 tokens), so a sentence's translation is the same in any batch. A source
longer than the model's max_seq_len is cut to it, with a warning that counts such sources."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lmforge.artifacts import load_weights
from lmforge.errors import InputError
from lmforge.inference.beam import beam_search
from lmforge.inference.decoding import generate_batch
from lmforge.inference.quantize import quantize_int8
from lmforge.inference.sampling import SamplingConfig
from lmforge.models import MODELS, ModelSpec
from lmforge.runs import TARGET_TOKENIZER, Run, open_run
from lmforge.tokenization.tokenizer import Tokenizer

EXTRA_TOKENS = 10


@dataclass
class LoadedSeq2Seq:
    """A translation run: the model (eval mode), both sides' tokenizers and the opened run."""

    model: torch.nn.Module
    src: Tokenizer
    tgt: Tokenizer
    run: Run
    spec: ModelSpec

    @property
    def has_attention(self) -> bool:
        return getattr(self.model.config, "attention", "cross") != "none"


def load_seq2seq(run: Run, device: torch.device | str = "cpu") -> LoadedSeq2Seq:
    spec = MODELS.get(run.family)
    if spec is None or spec.kind != "seq2seq":
        raise InputError(f"{run.config_path}: unknown sequence-to-sequence family {run.family!r}; this lmforge knows "
                         f"{', '.join(n for n, s in MODELS.items() if s.kind == 'seq2seq')}.")
    config = run.section("model", spec.config_cls, spec.fixed)
    model = spec.module_cls(config)
    load_weights(model, run.path / "model.safetensors")
    src, tgt = Tokenizer(run.path / "tokenizer.json"), Tokenizer(run.path / TARGET_TOKENIZER)
    if src.vocab_size > config.src_vocab_size or tgt.vocab_size > config.tgt_vocab_size:
        raise InputError(f"{run.path}: its tokenizers are larger than the model's vocabularies; the run directory "
                         "was mixed up.")
    return LoadedSeq2Seq(model.to(device).eval(), src, tgt, run, spec)


def open_seq2seq(path: Path, verb: str, device: torch.device | str = "cpu") -> LoadedSeq2Seq:
    """The translation run in `path`; another kind of run is refused with the verb that serves it."""
    run = open_run(path)
    if run.contract.kind == "lm":
        raise InputError(f"{run.path}: a {run.family} language model continues text; it does not translate. "
                         f"`lmforge {verb}` needs a sequence-to-sequence run (train one with `lmforge train --model "
                         "transformer` or `--model seq2seq-gru` on prepared pairs); use `lmforge generate` on this "
                         "one.")
    return load_seq2seq(run.require(verb, "seq2seq"), device)


@dataclass
class DecodeConfig:
    """How targets are searched for: beam search (the default), greedy (--beam 1) or sampling."""

    beam: int = 5
    """beams per source (1: greedy decoding)"""
    n_best: int = 1
    """hypotheses per source, best first, with their scores (at most --beam)"""
    length_penalty: float = 1.0
    """beam search ranks hypotheses by log-probability / length ** length_penalty"""
    early_stopping: bool = False
    """beam search ends a sentence once it holds --beam finished hypotheses (fairseq's rule, HF's
    early_stopping=True); off: while its best running beam could still win (HF's default)"""
    max_length_ratio: float = 2.0
    """a translation has at most this many times its source's tokens, plus 10"""
    no_repeat_ngram: int = 0
    """never repeat an n-gram of this size within a translation (0: off)"""
    sample: bool = False
    """sample each token instead of searching (back-translation); uses --temperature, --top-p, --seed"""
    temperature: float = 1.0
    """with --sample: softmax temperature"""
    top_p: float | None = None
    """with --sample: nucleus sampling"""
    seed: int | None = None
    """with --sample: the seed of the first sentence's generator (sentence n: seed + n; None: random)"""
    batch_size: int = 32
    """sources decoded together"""

    def __post_init__(self) -> None:
        checks = [(self.beam >= 1, f"--beam must be at least 1, got {self.beam}."),
                  (1 <= self.n_best <= self.beam, f"--n-best {self.n_best} must be between 1 and --beam {self.beam}."),
                  (self.max_length_ratio > 0, f"--max-length-ratio must be positive, got {self.max_length_ratio}."),
                  (self.no_repeat_ngram >= 0, f"--no-repeat-ngram must be >= 0, got {self.no_repeat_ngram}."),
                  (self.batch_size >= 1, f"--batch-size must be positive, got {self.batch_size}."),
                  (not (self.sample and self.beam > 1), "--sample draws one translation per source; use --beam 1.")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class Translation:
    source: str
    text: str
    source_ids: list[int]
    token_ids: list[int]
    hypotheses: list[dict] = field(default_factory=list)
    """With beam search: {"text", "score", "logprob", "tokens"} for each of the n best."""


def source_ids(tokenizer: Tokenizer, texts: list[str], max_len: int) -> tuple[list[list[int]], int]:
    """Each source as the encoder reads it (its ids + EOS, cut to max_len) and how many were cut."""
    cut, out = 0, []
    for ids in tokenizer.encode_batch(texts):
        if len(ids) + 1 > max_len:
            cut += 1
            ids = ids[:max_len - 1]
        out.append([*ids, tokenizer.eos_id])
    return out, cut


def encode_sources(model, sources: list[list[int]], pad_id: int, device):
    src = torch.full((len(sources), max(len(s) for s in sources)), pad_id, dtype=torch.long)
    mask = torch.zeros(src.shape, dtype=torch.bool)
    for row, ids in enumerate(sources):
        src[row, :len(ids)] = torch.tensor(ids)
        mask[row, :len(ids)] = True
    return model.encode(src.to(device), mask.to(device))


class Translator:
    """A loaded run ready to translate lists of sentences."""

    def __init__(self, loaded: LoadedSeq2Seq, int8: bool = False):
        self.loaded = loaded
        self.model = loaded.model
        if int8:
            self.model = quantize_int8(self.model, recurrent=True)
        self.max_len = loaded.model.config.max_seq_len
        self.device = next(loaded.model.parameters()).device

    def limits(self, sources: list[list[int]], config: DecodeConfig) -> list[int]:
        return [min(int(config.max_length_ratio * len(s)) + EXTRA_TOKENS, self.max_len - 1) for s in sources]

    @torch.inference_mode()
    def translate(self, texts: list[str], config: DecodeConfig, warn: bool = True) -> list[Translation]:
        sources, cut = source_ids(self.loaded.src, texts, self.max_len)
        if cut and warn:
            print(f"lmforge: warning: {cut} source(s) longer than the model's max_seq_len {self.max_len} were cut to "
                  "it (translate shorter segments for a full translation)", file=sys.stderr)
        order = sorted(range(len(texts)), key=lambda i: len(sources[i]))
        out: list[Translation | None] = [None] * len(texts)
        for first in range(0, len(order), config.batch_size):
            chunk = order[first:first + config.batch_size]
            for i, found in zip(chunk, self._batch([sources[i] for i in chunk], config, chunk)):
                out[i] = Translation(texts[i], found["text"], sources[i], found["ids"], found.get("hypotheses", []))
        return out

    def _batch(self, sources: list[list[int]], config: DecodeConfig, numbers: list[int]) -> list[dict]:
        """The translations of `sources`, the numbers[b]-th sentences of the input (sampling seeds follow them,
        so a sentence samples the same translation in any batch)."""
        tgt = self.loaded.tgt
        memory = encode_sources(self.model, sources, self.loaded.src.pad_id, self.device)
        prompts, limits = [[tgt.bos_id] for _ in sources], self.limits(sources, config)
        if config.beam == 1:
            sampling = SamplingConfig(temperature=config.temperature if config.sample else 0.0, top_p=config.top_p)
            seeds = [None if config.seed is None else config.seed + n for n in numbers] \
                if config.sample else [0] * len(sources)
            found = generate_batch(self.model, prompts, max_new_tokens=limits, sampling=sampling, seeds=seeds,
                                   eos_id=tgt.eos_id, decode=tgt.decode, memory=memory,
                                   no_repeat_ngram=config.no_repeat_ngram)
            return [{"text": g.text, "ids": g.token_ids} for g in found]
        found = beam_search(self.model, prompts, beams=config.beam, max_new_tokens=limits, eos_id=tgt.eos_id,
                            decode=tgt.decode, length_penalty=config.length_penalty, n_best=config.n_best,
                            memory=memory, no_repeat_ngram=config.no_repeat_ngram,
                            early_stopping=config.early_stopping)
        return [{"text": hyps[0].text, "ids": hyps[0].token_ids,
                 "hypotheses": [{"text": h.text, "score": h.score, "logprob": h.logprob, "tokens": len(h.token_ids)}
                                for h in hyps]} for hyps in found]

    @torch.inference_mode()
    def attention(self, translation: Translation) -> torch.Tensor:
        """Attention weights (layers, heads, target tokens + EOS, source tokens) of one translation, read by
        teacher forcing its own output."""
        if not self.loaded.has_attention:
            raise InputError(f"{self.loaded.run.path}: trained with --attention none, so it has no attention to map; "
                             "use a run with attention (bahdanau, luong-dot, luong-general) or a transformer run.")
        model, tgt = self.loaded.model, self.loaded.tgt
        src = torch.tensor([translation.source_ids], device=self.device)
        tgt_in = torch.tensor([[tgt.bos_id, *translation.token_ids]], device=self.device)
        return model.attention_maps(src, torch.ones_like(src, dtype=torch.bool), tgt_in)[:, 0].float().cpu()
