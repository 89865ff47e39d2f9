"""`lmforge export`: a run in another ecosystem's format, checked there by comparing outputs on the same
tokens (the other runtime must be installed to check; `pip install 'lmforge[interop]'`).

Formats: hf (a transformers folder: LlamaForCausalLM for GPT runs, BertForMaskedLM or
RobertaPreLayerNormForMaskedLM for BERT runs, *ForSequenceClassification / *ForTokenClassification /
*ForQuestionAnswering for task runs on them), onnx (task runs and the GPT forward, for onnxruntime),
gguf (GPT runs, for llama.cpp), ctranslate2 (the translation Transformer).

Examples (CPU, seconds):
    lmforge export --run runs/gpt --format hf --out hf/gpt
    lmforge export --run runs/sent-bert --format onnx --out sent.onnx
    lmforge export --run runs/gpt --format gguf --out gpt.gguf --dtype f16
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmforge.interop.export import ExportConfig, export_run
from lmforge.interop.formats import FORMATS
from lmforge.interop.parity import describe


def add_arguments(parser: argparse.ArgumentParser, argv=()) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory to export")
    parser.add_argument("--format", choices=FORMATS, required=True, help="target format")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (hf, ctranslate2) or file (onnx, gguf)")
    parser.add_argument("--dtype", default="f32", choices=("f32", "f16"), help="gguf weights (default f32)")
    parser.add_argument("--no-verify", action="store_true", help="write without loading the export to compare outputs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    summary = export_run(ExportConfig(args.run, args.format, args.out, args.dtype, not args.no_verify, args.overwrite))
    print(f"exported {summary['run']} -> {summary['out']} ({summary['architecture']}, {summary['format']})\n"
          f"{describe(summary['verified'])}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary))
    # a failed comparison is our bug (exit 1); the files stay for inspection
    return 1 if summary["verified"].get("passed") is False else 0
