"""`lmforge eval`: a run's metrics on a split, for every kind of run: loss, perplexity and bits-per-byte
for language models and n-gram models; masked-LM loss, masked-token accuracy and pseudo-perplexity for
encoders; the task report (per class, per slice) for fine-tuned runs and baselines; sacreBLEU BLEU and chrF
(with signatures; per sentence with --json), format placeholders kept and loss for translation runs.

Example (CPU, seconds):
    lmforge eval --run runs/tiny --json
    lmforge eval --run runs/tfm --split test --json
"""

from __future__ import annotations

import argparse
import json
import sys

from lmforge.applications.evaluate import EvalConfig, evaluate
from lmforge.config import add_config_args, config_from_args
from lmforge.runs import open_run
from lmforge.tasks.table import TASKS


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    add_config_args(parser, EvalConfig, switches=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def translation_lines(result: dict) -> str:
    kept = result["placeholders"]
    share = (f", placeholders kept {100 * kept['kept_share']:.1f}% of {kept['placeholders']:,}"
             if kept["kept_share"] is not None else "")
    return (f"eval {result['split']}: BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f} over "
            f"{result['sentences']:,} "
            f"sentences (beam {result['decode']['beam']}), loss {result['loss']:.4f} nats/token{share}\n"
            f"  {result['bleu_signature']}\n  {result['chrf_signature']}")


def summary_line(result: dict) -> str:
    if result["objective"] == "chat":
        from lmforge.applications.chat import chat_eval_line

        return "eval:" + chat_eval_line(result)
    """The one line of a language model's (or an n-gram model's) metrics."""
    if result["objective"] == "seq2seq":
        return translation_lines(result)
    if result["objective"] == "masked_lm":
        pppl = (f", pseudo-perplexity {result['pseudo_perplexity']:.2f} over {result['pseudo_scored_tokens']} tokens"
                if "pseudo_perplexity" in result else "")
        return (f"eval {result['split']}: masked-LM loss {result['mlm_loss']:.4f} nats/token, masked-token accuracy "
                f"{100 * result['masked_accuracy']:.1f}% over {result['masked_tokens']:,} masked tokens{pppl}")
    bpb = f"{result['bits_per_byte']:.4f} bits/byte" if result["bits_per_byte"] is not None else "bits/byte n/a"
    baseline = (f" (unigram baseline {result['unigram_bits_per_byte']:.4f})"
                if result.get("unigram_bits_per_byte") is not None else "")
    oov = (f" ({result['perplexity_excluding_oov']:.2f} excluding {result['oov_tokens']:,} OOV)"
           if result.get("oov_tokens") and "perplexity_excluding_oov" in result else
           f" ({result['oov_tokens']:,} <|unk|> tokens)" if result.get("oov_tokens") else "")
    return (f"eval {result['split']}: loss {result['val_loss']:.4f} nats/token, perplexity {result['perplexity']:.2f}"
            f"{oov}, {bpb}{baseline} over {result['tokens']:,} tokens")


def harness_table(result: dict) -> str:
    lines = [f"{result['harness']} on {result['run']} ({result['task_file']})"]
    for task, metrics in result["results"].items():
        shown = ", ".join(f"{name.replace(',none', '')} {value:.4f}" for name, value in metrics.items())
        lines.append(f"  {task}: {shown} over {result['n_samples'].get(task, {}).get('effective', '?')} examples")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(EvalConfig, args)
    result = evaluate(config)
    task = open_run(config.run).contract.task
    text = harness_table(result) if config.harness else TASKS[task].report_table(result) if task else \
        summary_line(result)
    print(text, file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0
