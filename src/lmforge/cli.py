"""The single verb table: `lmforge <verb> ...`; bad input exits 2 with one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from lmforge import __version__
from lmforge.errors import InputError, TrainingDiverged, TrainingInterrupted

VERBS = {
    "prepare": ("lmforge.commands.prepare", "clean, filter, dedup and split raw text files"),
    "tokenizer": ("lmforge.commands.tokenizer", "train a tokenizer (bpe, wordpiece, unigram, char, byte)"),
    "tokenize": ("lmforge.commands.tokenize", "encode prepared text into token shards"),
    "train": ("lmforge.commands.train", "train a model of any family on token shards (torchrun for many processes)"),
    "eval": ("lmforge.commands.eval", "loss, perplexity and bits-per-byte (masked-LM metrics for encoders; "
                                      "BLEU/chrF for translation)"),
    "generate": ("lmforge.commands.generate", "sample text from a run"),
    "chat": ("lmforge.commands.chat", "talk to a chat run in the terminal (streamed replies, /reset, /system)"),
    "serve": ("lmforge.commands.serve", "serve runs over HTTP: OpenAI-compatible API, continuous batching, playground"),
    "translate": ("lmforge.commands.translate", "translate sentences with a sequence-to-sequence run (beam search)"),
    "finetune": ("lmforge.commands.finetune", "fine-tune a run (or a baseline) for classification or tagging"),
    "predict": ("lmforge.commands.predict", "apply a fine-tuned run to new texts: labels and probabilities, or tags"),
    "prune": ("lmforge.commands.prune", "magnitude-prune a fine-tuned run: before/after metric, size, speed"),
    "ngram": ("lmforge.commands.ngram", "n-gram language models: train (Kneser-Ney), export/import ARPA, score"),
    "embed": ("lmforge.commands.embed", "word vectors: train (word2vec, GloVe), eval, neighbours, export, plot"),
    "export": ("lmforge.commands.export", "a run in another format (Hugging Face, ONNX, GGUF), verified there"),
    "import": ("lmforge.commands.import_model", "a Hugging Face Llama folder as an lmforge run, verified"),
    "summary": ("lmforge.commands.summary", "a run's model layer by layer (shapes, parameters) and a diagram PNG"),
    "runs": ("lmforge.commands.runs", "list the runs in a folder: family, data, steps, time, best val loss"),
    "compare": ("lmforge.commands.compare", "runs side by side: params, speed, val loss, bits/byte, curves"),
    "quickstart": ("lmforge.commands.quickstart", "the whole pipeline on an embedded corpus, CPU, minutes"),
}


def _chosen_verb(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The whole parser; a verb's arguments may depend on argv (train adds the chosen family's fields).
    Only the chosen verb's module is imported (the others only list their help line): `prepare` need
    not pay for importing torch, which is a second of start-up in every worker-count benchmark."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen_verb(argv)
    parser = argparse.ArgumentParser(prog="lmforge", description="Build, train and apply language models.")
    parser.add_argument("--version", action="version", version=f"lmforge {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    modules = {}
    for verb, (module_name, help_text) in VERBS.items():
        if verb != chosen:
            sub.add_parser(verb, help=help_text)
            continue
        module = importlib.import_module(module_name)
        modules[verb] = module
        verb_parser = sub.add_parser(verb, help=help_text, description=(module.__doc__ or help_text),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(verb_parser, argv)
    return parser, modules


def _stop_string_dashes(argv: list[str]) -> list[str]:
    """`--stop --` and `--stop=--`: argparse reads a bare `--` as the end of options (and turns
    `--stop=--` into an empty list), yet `--` is a natural stop string (`-- Author` ends a quotation)."""
    out: list[str] = []
    for arg in argv:
        if arg == "--" and out and out[-1] == "--stop":
            out[-1] = "--stop=\x00--"
        else:
            out.append("--stop=\x00--" if arg == "--stop=--" else arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _stop_string_dashes(list(sys.argv[1:] if argv is None else argv))
    parser, modules = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return modules[args.verb].run(args)
    except InputError as error:
        print(f"lmforge: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:  # not about a path the user gave: a bug, keep the traceback
            raise
        print(f"lmforge: error: {error.filename}: {error.strerror or error}; check that the path is a directory "
              "you can write (not under a file, /proc or a read-only mount).", file=sys.stderr)
        return 2
    except TrainingInterrupted as error:
        print(f"lmforge: {error}", file=sys.stderr)
        return 130
    except TrainingDiverged as error:
        print(f"lmforge: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lmforge: interrupted; the last checkpoint (if any) is intact.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
