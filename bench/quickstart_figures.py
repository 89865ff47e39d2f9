"""The figures README quotes about the quickstart corpus (the Python documentation `lmforge quickstart`
embeds), from the documented commands: `lmforge quickstart` itself (its report: bits per byte against the
unigram baseline, steps, end-to-end time), n-gram models over its BPE tokenizer's tokens (Kneser-Ney 5- and
3-gram, Witten-Bell 5-gram, add-0.01 3-gram: `lmforge ngram train DATA --tokenizer TOK`, then `eval`), and
how many of its BPE tokens word vectors of the same text cover (`lmforge embed train DATA --method
skipgram`, then the matching `--init-embeddings` reports).
    python bench/quickstart_figures.py
then, for the table of every family on the same shards (run_all.py runs both):
    python bench/cli_defaults.py --shards /tmp/lmforge-bench-quickstart/data/tokens/bpe \
        --families gpt lstm gru rnn bert --budgets 60
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import machine

WORK = Path("/tmp/lmforge-bench-quickstart")
NGRAMS = [("kneser-ney 5-gram", ["--order", "5"]), ("kneser-ney 3-gram", ["--order", "3"]),
          ("witten-bell 5-gram", ["--order", "5", "--smoothing", "witten-bell"]),
          ("add-0.01 3-gram", ["--order", "3", "--smoothing", "add-k", "--add-k", "0.01"])]


def lmforge(*args) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lmforge {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    return (json.loads(done.stdout) if done.stdout.strip() else {}), time.perf_counter() - start


def coverage(vectors: Path, tokenizer: Path) -> dict:
    """What `--init-embeddings VECTORS` reports for a model on this tokenizer."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lmforge.models.gpt import GPT, GPTConfig
    from lmforge.tokenization.tokenizer import Tokenizer
    from lmforge.training.embedding_init import init_embeddings

    tok = Tokenizer(tokenizer)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, d_model=100, n_heads=2, n_layers=1, max_seq_len=8))
    report = init_embeddings(model, [tok.hf.id_to_token(i) or "" for i in range(tok.vocab_size)], vectors)
    return {"matched": report.matched, "tokens": report.tokens, "share": report.matched / report.tokens}


def main() -> None:
    report, wall = lmforge("quickstart", "--out", WORK, "--json")
    print(f"# {machine()}", flush=True)
    print(json.dumps({"quickstart": {k: report[k] for k in ("steps", "val_loss", "bits_per_byte",
                                                            "unigram_bits_per_byte", "seconds")}, "wall_s": wall}),
          flush=True)
    data, tokenizer = WORK / "data", WORK / "tokenizer"
    for name, args in NGRAMS:
        run = WORK / "runs" / name.replace(" ", "-")
        built, seconds = lmforge("ngram", "train", data, "--tokenizer", tokenizer, *args, "--out", run, "--overwrite",
                                 "--json")
        evaluated, _ = lmforge("eval", "--run", run, "--json")
        print(json.dumps({"ngram": name, "bits_per_byte": evaluated["bits_per_byte"], "wall_s": round(seconds, 1),
                          "ngrams": built["ngrams"]}), flush=True)
    vectors = WORK / "runs" / "w2v"
    lmforge("embed", "train", data, "--method", "skipgram", "--dim", "100", "--out", vectors, "--overwrite", "--json")
    print(json.dumps({"init_embeddings_coverage": coverage(vectors, tokenizer)}), flush=True)


if __name__ == "__main__":
    main()
