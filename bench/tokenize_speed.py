"""Tokenize-stage throughput: lmforge `tokenize` end to end (read clean docs, encode, write shards)
vs `sentencepiece` raw encoding and `tokenizers` encode_batch of the same text (vocab 8k); and peak
memory of the stage when the corpus grows 10x.
    python bench/tokenize_speed.py [--mb 48]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def english_documents() -> list[str]:
    """Real English prose from ../shared/data (SOTU speeches, Moby Dick chapters, e-mails)."""
    docs = []
    sotu = SHARED / "sotu_speeches"
    for path in sorted(sotu.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            docs += [json.loads(line)["text"] for line in handle]
    for path in sorted((SHARED / "moby_dick_lm").glob("*.txt.gz")):
        docs += gzip.open(path, "rt").read().split("\n\n")
    if not docs:
        sys.exit(f"benchmark data not found under {SHARED}")
    return [d for d in docs if d.strip()]


def write_prepared(docs: list[str], target_mb: float, out: Path) -> int:
    """A `prepare`-style clean/ folder holding the documents repeated up to target_mb."""
    (out / "clean").mkdir(parents=True)
    total, written = target_mb * 1e6, 0
    with gzip.open(out / "clean" / "train-00000.jsonl.gz", "wt", compresslevel=1) as handle:
        while written < total:
            for doc in docs:
                handle.write(json.dumps({"text": doc}) + "\n")
                written += len(doc.encode())
                if written >= total:
                    break
    with gzip.open(out / "clean" / "val-00000.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"text": docs[0]}) + "\n")
    return written


def stage_in_subprocess(data: Path, tokenizer: Path) -> dict:
    """Run the real CLI stage in a fresh process, so its peak RSS is its own."""
    code = ("import json,resource,sys,time; from lmforge.cli import main; t=time.perf_counter(); "
            f"main(['tokenize', {str(data)!r}, '--tokenizer', {str(tokenizer)!r}]); "
            "print(json.dumps({'seconds': time.perf_counter()-t, "
            "'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=48.0)
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    import sentencepiece as spm

    from lmforge.tokenization.corpus import train_tokenizer_on
    from lmforge.tokenization.tokenizer import Tokenizer

    print(f"# {machine()}")
    docs = english_documents()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        size = write_prepared(docs, args.mb, tmp / "big")
        write_prepared(docs, args.mb / 10, tmp / "small")
        train_tokenizer_on(tmp / "small", "bpe", args.vocab_size, tmp / "tok")
        texts = [json.loads(line)["text"] for line in gzip.open(tmp / "big" / "clean" / "train-00000.jsonl.gz", "rt")]
        (tmp / "sp.txt").write_text("\n".join(docs))
        spm.SentencePieceTrainer.train(input=str(tmp / "sp.txt"), model_prefix=str(tmp / "sp"),
                                       vocab_size=args.vocab_size, model_type="bpe", num_threads=2, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=str(tmp / "sp.model"))
        start = time.perf_counter()
        sp.encode(texts, num_threads=2)
        sp_rate = size / 1e6 / (time.perf_counter() - start)
        hf = Tokenizer(tmp / "tok").hf
        start = time.perf_counter()
        for i in range(0, len(texts), 512):
            hf.encode_batch(texts[i:i + 512], add_special_tokens=False)
        hf_rate = size / 1e6 / (time.perf_counter() - start)
        big = stage_in_subprocess(tmp / "big", tmp / "tok")
        small = stage_in_subprocess(tmp / "small", tmp / "tok")
        ours = size / 1e6 / big["seconds"]
        print(json.dumps({"mb": round(size / 1e6, 1), "lmforge_tokenize_stage_mb_s": round(ours, 2),
                          "sentencepiece_encode_mb_s": round(sp_rate, 2), "hf_tokenizers_encode_batch_mb_s":
                          round(hf_rate, 2), "ratio_vs_sentencepiece": round(ours / sp_rate, 2),
                          "peak_rss_mb_1x": round(small["peak_mb"]), "peak_rss_mb_10x": round(big["peak_mb"])}))


if __name__ == "__main__":
    main()
