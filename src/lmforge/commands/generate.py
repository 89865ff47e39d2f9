"""`lmforge generate`: sample text from a run (KV-cached), streaming to stdout.

Example (CPU, seconds):
    lmforge generate --run runs/tiny --prompt "It was" --max-new-tokens 200 --temperature 0.8 --top-p 0.95 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.config import add_config_args, build_config, values_from_args
from lmforge.errors import InputError
from lmforge.inference.generate import generate
from lmforge.inference.loading import load_decoder
from lmforge.inference.ngram_decoder import NgramDecoder, NgramText
from lmforge.inference.quantize import quantize_int8
from lmforge.inference.sampling import SamplingConfig
from lmforge.inference.speculative import ModelDrafter, PromptLookupDrafter, generate_speculative
from lmforge.ngram.store import is_ngram_run, load_ngram_run
from lmforge.training.distributed import pick_device


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory")
    parser.add_argument("--prompt", default=None, help="prompt text (default: empty)")
    parser.add_argument("--prompts-file", type=Path, help="one prompt per line; generates for each")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate per prompt")
    parser.add_argument("--stop", action="append", default=[], type=lambda text: text.lstrip("\x00"),
                        help="stop when this string appears (repeatable; --stop -- works too)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    parser.add_argument("--no-cache", action="store_true", help="recompute the whole context each step (slow)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--int8", action="store_true",
                        help="int8 weights for CPU decoding (3-4x faster for larger models, slightly different text)")
    parser.add_argument("--draft", type=Path, metavar="RUN",
                        help="speculative decoding with this smaller run of the same tokenizer as the drafter")
    parser.add_argument("--prompt-lookup", action="store_true",
                        help="speculative decoding with drafts copied from earlier n-gram matches in the context")
    parser.add_argument("--draft-tokens", type=int, default=4, help="tokens drafted per verification (default 4)")
    parser.add_argument("--json", action="store_true", help="print results as one JSON object, no streaming")
    add_config_args(parser, SamplingConfig)


def _prompts(args) -> list[str]:
    if args.prompts_file is None:
        return [args.prompt or ""]
    try:
        lines = args.prompts_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{args.prompts_file}: cannot read prompts ({error}); pass a UTF-8 text file.") from None
    return [line for line in lines if line.strip()]


def _drafter(args, model, tokenizer, device):
    """The drafter asked for (None: plain decoding); refuses what cannot be verified or does not match."""
    if args.draft is None and not args.prompt_lookup:
        return None
    if args.draft is not None and args.prompt_lookup:
        raise InputError("--draft and --prompt-lookup are two kinds of drafter; pass one of them.")
    if args.draft_tokens <= 0:
        raise InputError(f"--draft-tokens must be positive, got {args.draft_tokens}.")
    if not hasattr(model, "truncate"):
        raise InputError(f"{args.run}: speculative decoding needs a model whose state can be cut back (a gpt run); "
                         "a recurrent state cannot, so drop --draft/--prompt-lookup.")
    if args.prompt_lookup:
        return PromptLookupDrafter(ngram=3, k=args.draft_tokens)
    draft = load_decoder(args.draft, device)
    if draft.tokenizer.sha256 != tokenizer.sha256:
        raise InputError(f"{args.draft}/tokenizer.json: the draft run uses another tokenizer than {args.run}; "
                         "a drafter must share the target's tokenizer (train it on the same shards).")
    if not hasattr(draft.model, "truncate"):
        raise InputError(f"{args.draft}: the drafter must be a gpt run (its state is cut back after rejections).")
    return ModelDrafter(draft.model, k=args.draft_tokens)


def _generate_ngram(args, sampling: SamplingConfig) -> int:
    """Sampling from an n-gram run: sentences one after another (</s> is a line break)."""
    if args.draft is not None or args.prompt_lookup or args.int8:
        raise InputError(f"{args.run}: an n-gram run samples directly; drop --draft/--prompt-lookup/--int8.")
    loaded = load_ngram_run(args.run)
    model, text = NgramDecoder(loaded), NgramText(loaded)
    results = []
    for prompt in _prompts(args):
        ids = text.encode(prompt)
        prefix = text.decode(ids)
        if not args.json:
            # words are joined by spaces; a tokenizer's tokens carry their own
            sys.stdout.write(prefix + (" " if prefix and loaded.splitter.tokenizer is None else ""))
        out = generate(model, ids, max_new_tokens=args.max_new_tokens, sampling=sampling, seed=args.seed, eos_id=None,
                       decode=text.decode, stop_strings=args.stop,
                       on_text=None if args.json else lambda t: (sys.stdout.write(t), sys.stdout.flush()))
        if not args.json:
            sys.stdout.write("\n")
        results.append({"prompt": prompt, "text": out.text, "tokens": len(out.token_ids),
                        "stop_reason": out.stop_reason})
    if args.json:
        print(json.dumps({"generations": results}, ensure_ascii=False))
    return 0


def run(args: argparse.Namespace) -> int:
    sampling = build_config(SamplingConfig, values_from_args(args, SamplingConfig), source="command line")
    if args.max_new_tokens <= 0:
        raise InputError(f"--max-new-tokens must be positive, got {args.max_new_tokens}.")
    if is_ngram_run(args.run):
        return _generate_ngram(args, sampling)
    device = pick_device(args.device)
    loaded = load_decoder(args.run, device)
    model, tokenizer = loaded.model, loaded.tokenizer
    drafter = _drafter(args, model, tokenizer, device)
    if args.int8:
        model = quantize_int8(model)
    results = []
    for prompt in _prompts(args):
        def stream(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        if not args.json:
            stream(prompt)
        ids = tokenizer.encode(prompt)
        if not ids or model.max_context is None:
            # a recurrent model learned that documents start after EOS, from a fresh state
            ids = [tokenizer.eos_id, *ids]
        options = dict(max_new_tokens=args.max_new_tokens, sampling=sampling, seed=args.seed, eos_id=tokenizer.eos_id,
                       decode=tokenizer.decode, stop_strings=args.stop, on_text=None if args.json else stream)
        result = {"prompt": prompt}
        if drafter is None:
            out = generate(model, ids, use_cache=not args.no_cache, **options)
        else:
            out, stats = generate_speculative(model, ids, drafter, **options)
            result.update(drafted=stats.drafted, accepted=stats.accepted, acceptance=stats.acceptance,
                          target_passes=stats.target_passes)
            print(f"\nspeculative: {stats.accepted}/{stats.drafted} drafted tokens accepted "
                  f"({100 * stats.acceptance:.0f}%), {stats.target_passes} target passes for {len(out.token_ids)} "
                  "tokens", file=sys.stderr)
        if not args.json:
            sys.stdout.write("\n")
        results.append({**result, "text": out.text, "tokens": len(out.token_ids), "stop_reason": out.stop_reason})
    if args.json:
        print(json.dumps({"generations": results}, ensure_ascii=False))
    return 0
