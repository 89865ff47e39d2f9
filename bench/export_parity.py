"""Each documented export and import, run on trained runs and checked in the other runtime: the numbers
`lmforge export` / `lmforge import` print (largest output difference, greedy tokens equal, tokenizer ids
equal). Runs: a GPT and a chat-less BERT (pre- and post-norm) trained 200 steps on the quickstart shards,
task runs fine-tuned on sentiment_uci_en (BERT, BiLSTM) and brown_pos_en (BERT tagger), and a translation
Transformer trained 120 s on gettext_ui_en_x en-de (CTranslate2).
    python bench/export_parity.py [--only lm|translation]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

QUICKSTART_SHARDS = "/tmp/lmforge-bench-quickstart/data/tokens/bpe"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN = ["--preset", "tiny", "--max-steps", "200", "--eval-every", "200", "--threads", "2"]
FINETUNE = ["--epochs", "1", "--max-len", "64", "--threads", "2"]


def lmforge(*args) -> dict:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def report(name: str, summary: dict) -> None:
    check = {k: v for k, v in summary["verified"].items() if k not in ("tolerance",)}
    print(json.dumps({"run": name, "format": summary.get("format", "import"),
                      "architecture": summary["architecture"], **check}), flush=True)


def translation(root: Path) -> None:
    """The documented translation commands, then the CTranslate2 export and its check."""
    data = root / "en-de"
    lmforge("prepare", "--pairs", SHARED / "gettext_ui_en_x", "--filter", "tgt_lang=de", "--out", data)
    lmforge("tokenizer", "train", data, "--joint", "--kind", "bpe", "--vocab-size", "4000", "--out", root / "tok-ende")
    lmforge("train", "--data", data, "--tokenizer", root / "tok-ende", "--model", "transformer", "--preset", "tiny",
            "--max-time", "120", "--out", root / "tfm")
    report("transformer en-de", lmforge("export", "--run", root / "tfm", "--format", "ctranslate2", "--out",
                                        root / "exports" / "tfm.ct2", "--json"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("lm", "translation"), default=None)
    args = parser.parse_args()
    if not Path(QUICKSTART_SHARDS, "meta.json").exists():
        raise SystemExit(f"{QUICKSTART_SHARDS}: run `lmforge quickstart` (bench/run_all.py does) first")
    print(f"# {machine()}; {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only != "lm":
            translation(root)
        if args.only == "translation":
            return
        runs = {"gpt": [], "bert-pre": ["--model", "bert"], "bert-post": ["--model", "bert", "--norm-position", "post"]}
        for name, extra in runs.items():
            lmforge("train", "--data", QUICKSTART_SHARDS, "--out", root / name, *TRAIN, *extra)
        sentiment, tags = SHARED / "sentiment_uci_en", SHARED / "brown_pos_en"
        lmforge("finetune", "--task", "classify", "--init", root / "bert-post", "--data", sentiment, "--out",
                root / "sent-bert", *FINETUNE)
        lmforge("finetune", "--task", "classify", "--model", "bilstm", "--data", sentiment, "--out",
                root / "sent-bilstm", *FINETUNE)
        lmforge("finetune", "--task", "tag", "--init", root / "bert-pre", "--data", tags, "--out", root / "pos-bert",
                "--max-len", "64", "--threads", "2", "--max-time", "60")
        for name, formats in {"gpt": ["hf", "onnx", "gguf"], "bert-pre": ["hf"], "bert-post": ["hf"],
                              "sent-bert": ["hf", "onnx"], "sent-bilstm": ["onnx"], "pos-bert": ["hf", "onnx"]}.items():
            for fmt in formats:
                out = root / "exports" / f"{name}.{fmt}"
                report(name, lmforge("export", "--run", root / name, "--format", fmt, "--out", out, "--json"))
        report("gpt f16", lmforge("export", "--run", root / "gpt", "--format", "gguf", "--dtype", "f16", "--out",
                                  root / "exports" / "gpt-f16.gguf", "--json"))
        back = lmforge("import", root / "exports" / "gpt.hf", "--out", root / "gpt-back", "--json")
        report("gpt (hf import)", back)
        losses = [lmforge("eval", "--run", run, "--data", QUICKSTART_SHARDS, "--json")["val_loss"]
                  for run in (root / "gpt", root / "gpt-back")]
        print(json.dumps({"eval_val_loss_original": losses[0], "eval_val_loss_imported": losses[1]}))


if __name__ == "__main__":
    main()
