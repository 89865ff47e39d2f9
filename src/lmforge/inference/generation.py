"""Generation from a run, as `lmforge generate` runs it: prompts (one, or a file's lines in batches) through
the run's decoder, sampled or greedy, by beam search, or speculatively with a drafter. A notebook calls
`generate_from_run(GenerateConfig(run=...), SamplingConfig(...))`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.devices import pick_device
from lmforge.errors import InputError
from lmforge.inference.beam import beam_search
from lmforge.inference.decoding import generate_batch
from lmforge.inference.loading import TextDecoder, text_decoder
from lmforge.inference.quantize import quantize_int8
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.speculative import ModelDrafter, PromptLookupDrafter, generate_speculative


def _stop_string(text: str) -> str:
    return text.lstrip("\x00")   # cli.py marks a `--stop --` so argparse keeps it


@dataclass
class GenerateConfig:
    run: Path = field(default=Path("."), metadata={"required": True})
    """run directory (a gpt, lstm, gru or rnn run, or an n-gram run)"""
    prompt: str | None = None
    """prompt text (None: empty)"""
    prompts_file: Path | None = None
    """one prompt per line (empty lines are skipped and counted); generates for each"""
    max_new_tokens: int = 200
    """tokens to generate per prompt"""
    stop: list[str] = field(default_factory=list, metadata={"append": True, "parse": _stop_string})
    """stop when this string appears (repeatable; --stop -- works too)"""
    seed: int | None = None
    """sampling seed of every prompt's own generator (None: random), so a prompt's text is the same in any batch"""
    batch_size: int = 1
    """prompts decoded together (rows leave the batch when they end); 1 streams the text as it comes"""
    beam: int | None = None
    """beam search with this many beams (deterministic: the sampling options are not used)"""
    length_penalty: float = 1.0
    """beam search: hypotheses are ranked by log-probability / length ** length_penalty (> 0 favours longer)"""
    n_best: int = 1
    """beam search: the best this many hypotheses of each prompt, with their scores"""
    no_cache: bool = False
    """recompute the whole context each step (slow)"""
    device: str = "auto"
    """auto, cpu, cuda, mps"""
    int8: bool = False
    """int8 weights for CPU decoding (3-4x faster for larger models, slightly different text)"""
    draft: Path | None = field(default=None, metadata={"metavar": "RUN"})
    """speculative decoding with this smaller run of the same tokenizer as the drafter"""
    prompt_lookup: bool = False
    """speculative decoding with drafts copied from earlier n-gram matches in the context"""
    draft_tokens: int = 4
    """tokens drafted per verification"""

    def __post_init__(self) -> None:
        checks = [
            (self.max_new_tokens > 0, f"--max-new-tokens must be positive, got {self.max_new_tokens}."),
            (self.batch_size > 0, f"--batch-size must be positive, got {self.batch_size}."),
            (self.beam is None or self.beam >= 1, f"--beam must be at least 1, got {self.beam}."),
            (self.n_best >= 1, f"--n-best must be at least 1, got {self.n_best}."),
            (self.n_best == 1 or (self.beam is not None and self.n_best <= self.beam),
             f"--n-best {self.n_best} needs --beam of at least {self.n_best} (got {self.beam})."),
            (self.draft_tokens > 0, f"--draft-tokens must be positive, got {self.draft_tokens}."),
            (not (self.draft is not None and self.prompt_lookup),
             "--draft and --prompt-lookup are two kinds of drafter; pass one of them."),
            (self.beam is None or (self.draft is None and not self.prompt_lookup),
             "--beam searches the target alone; drop --draft/--prompt-lookup."),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def speculative(self) -> bool:
        return self.draft is not None or self.prompt_lookup


@dataclass
class GenerationReport:
    generations: list[dict]
    """Per prompt: prompt, text, tokens, stop_reason (and beams, or the speculative counts)."""
    echoes: list[str]
    """Per prompt, the prompt as the model read it (what a printed generation starts with)."""

    def to_json(self) -> dict:
        return {"generations": self.generations}


def read_prompts(config: GenerateConfig) -> list[str]:
    if config.prompts_file is None:
        return [config.prompt or ""]
    try:
        lines = config.prompts_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{config.prompts_file}: cannot read prompts ({error}); pass a UTF-8 text file.") from None
    empty = [number for number, line in enumerate(lines, start=1) if not line.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        print(f"lmforge: warning: {config.prompts_file}: {len(empty)} empty line(s) skipped (line {shown})",
              file=sys.stderr)
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise InputError(f"{config.prompts_file}: no prompts (every line is empty); write one prompt per line.")
    return prompts


def _drafter(config: GenerateConfig, target: TextDecoder, device):
    """The drafter asked for (None: plain decoding); refuses what cannot be verified or does not match."""
    if not config.speculative:
        return None
    if target.model.max_context is None:
        raise InputError(f"{config.run}: speculative decoding needs a model whose state can be cut back anywhere (a "
                         "gpt run); a recurrent state cannot, so drop --draft/--prompt-lookup.")
    if config.prompt_lookup:
        return PromptLookupDrafter(ngram=3, k=config.draft_tokens)
    draft = text_decoder(config.draft, "generate --draft", device)
    if draft.tokenizer is None or draft.model.max_context is None:
        raise InputError(f"{config.draft}: the drafter must be a gpt run (its state is cut back after rejections).")
    if draft.tokenizer.sha256 != target.tokenizer.sha256:
        raise InputError(f"{config.draft}/tokenizer.json: the draft run uses another tokenizer than {config.run}; "
                         "a drafter must share the target's tokenizer (train it on the same shards).")
    return ModelDrafter(draft.model, k=config.draft_tokens)


def _decoder(config: GenerateConfig, device) -> TextDecoder:
    decoder = text_decoder(config.run, "generate", device)
    if decoder.tokenizer is None and (config.speculative or config.int8):
        raise InputError(f"{config.run}: an n-gram run samples directly; drop --draft/--prompt-lookup/--int8.")
    return decoder


def generate_from_run(config: GenerateConfig, sampling: SamplingConfig,
                      on_text: Callable[[str], None] | None = None) -> GenerationReport:
    """Every prompt's generation; with `on_text` (one prompt at a time) the text streams to it as it comes."""
    device = pick_device(config.device)
    decoder = _decoder(config, device)
    drafter = _drafter(config, decoder, device)
    if config.int8:
        decoder.model = quantize_int8(decoder.model)
    prompts = read_prompts(config)
    echoes = [decoder.echo(p) for p in prompts]
    if config.beam is not None:
        generations = _beams(config, decoder, prompts)
    elif drafter is not None:
        generations = [_speculative(config, sampling, decoder, drafter, p, e, on_text) for p, e in zip(prompts, echoes)]
    else:
        generations = []
        for first in range(0, len(prompts), config.batch_size):
            generations += _batch(config, sampling, decoder, prompts[first:first + config.batch_size],
                                  echoes[first:first + config.batch_size], on_text)
    return GenerationReport(generations, echoes)


def _batch(config, sampling, decoder: TextDecoder, prompts: list[str], echoes: list[str], on_text) -> list[dict]:
    if on_text:
        on_text(echoes[0])
    outs = generate_batch(decoder.model, [decoder.encode(p) for p in prompts], max_new_tokens=config.max_new_tokens,
                          sampling=sampling, seeds=[config.seed] * len(prompts), eos_id=decoder.eos_id,
                          decode=decoder.decode, stop_strings=config.stop, on_text=[on_text] * len(prompts),
                          use_cache=not config.no_cache)
    if on_text:
        on_text("\n")
    return [{"prompt": p, "text": o.text, "tokens": len(o.token_ids), "stop_reason": o.stop_reason}
            for p, o in zip(prompts, outs)]


def _speculative(config, sampling, decoder: TextDecoder, drafter, prompt: str, echo: str, on_text) -> dict:
    if on_text:
        on_text(echo)
    out, stats = generate_speculative(decoder.model, decoder.encode(prompt), drafter,
                                      max_new_tokens=config.max_new_tokens, sampling=sampling, seed=config.seed,
                                      eos_id=decoder.eos_id, decode=decoder.decode, stop_strings=config.stop,
                                      on_text=on_text)
    if on_text:
        on_text("\n")
    print(f"speculative: {stats.accepted}/{stats.drafted} drafted tokens accepted ({100 * stats.acceptance:.0f}%), "
          f"{stats.target_passes} target passes for {len(out.token_ids)} tokens", file=sys.stderr)
    return {"prompt": prompt, "drafted": stats.drafted, "accepted": stats.accepted, "acceptance": stats.acceptance,
            "target_passes": stats.target_passes, "text": out.text, "tokens": len(out.token_ids),
            "stop_reason": out.stop_reason}


def _beams(config: GenerateConfig, decoder: TextDecoder, prompts: list[str]) -> list[dict]:
    out = []
    for first in range(0, len(prompts), config.batch_size):
        chunk = prompts[first:first + config.batch_size]
        found = beam_search(decoder.model, [decoder.encode(p) for p in chunk], beams=config.beam,
                            max_new_tokens=config.max_new_tokens, eos_id=decoder.eos_id, decode=decoder.decode,
                            length_penalty=config.length_penalty, n_best=config.n_best, stop_strings=config.stop)
        for prompt, hypotheses in zip(chunk, found):
            beams = [{"text": h.text, "score": h.score, "logprob": h.logprob, "tokens": len(h.token_ids),
                      "stop_reason": h.stop_reason} for h in hypotheses]
            out.append({"prompt": prompt, "text": beams[0]["text"], "tokens": beams[0]["tokens"],
                        "stop_reason": beams[0]["stop_reason"], "beams": beams})
    return out
