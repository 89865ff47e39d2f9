"""Applications: every documented `lmforge finetune` command on the dev datasets, in one run —
classical baselines (TF-IDF + logistic regression / linear SVM; most-frequent tag) beside tiny
backbones trained from scratch and pretrained (masked LM or causal LM on the State of the Union text,
or on the tagging corpus's own text) for the same number of epochs. Prints one table with training
time on this machine, and the latency of `predict` on one short text.
    python bench/applications.py [--pretrain-seconds 300] [--only sentiment,spam,sotu,pos]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/lmforge-bench-apps")
DATASETS = {  # name -> (folder, text field, epochs, max length)
    "sentiment": (SHARED / "sentiment_uci_en", "text", 4, 64),
    "spam": (SHARED / "spam_assassin", "text", 3, 128),
    "sotu": (SHARED / "sotu_speeches", "text", 8, 128),
}


def lmforge(*args) -> dict:
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lmforge {' '.join(map(str, args))}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def pretrain(name: str, texts: Path, seconds: int, families=("bert", "gpt"), *prepare_args) -> dict[str, Path]:
    """prepare -> BPE 8k -> tokenize -> each family's tiny preset for `seconds`."""
    data = WORK / f"{name}_data"
    if not (data / "tokens").exists():
        lmforge("prepare", texts, "--out", data, "--overwrite", "--tokenizer", "bpe", "--vocab-size", "8192",
                *prepare_args)
    shards = next((data / "tokens").iterdir())
    runs = {}
    for family in families:
        run = WORK / f"{name}_{family}"
        if not (run / "model.safetensors").exists():
            lmforge("train", "--data", shards, "--model", family, "--preset", "tiny", "--max-time", seconds,
                    "--out", run)
        runs[family] = run
    runs["tokenizer"] = shards
    return runs


def write_sotu_text(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(SHARED / "sotu_speeches" / "train.jsonl.gz", "rt") as handle, open(out / "sotu.jsonl", "w") as w:
        for line in handle:
            w.write(json.dumps({"text": json.loads(line)["text"]}) + "\n")
    return out


def conll_as_text(conll: Path, out: Path, name: str, joiner: str) -> Path:
    """A CoNLL file's sentences as plain text, a sentence a line (words joined by `joiner`)."""
    out.mkdir(parents=True, exist_ok=True)
    lines, words = [], []
    with gzip.open(conll, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                continue
            if not line.strip():
                if words:
                    lines.append(joiner.join(words))
                words = []
                continue
            words.append(line.split("\t")[0])
    (out / name).write_text("\n".join(lines) + "\n")
    return out


def finetune(name: str, *args) -> dict:
    run = WORK / "ft" / name
    result = lmforge("finetune", *args, "--out", run, "--overwrite", "--json")
    result["run"] = run
    return result


def classification_rows(dataset: str, runs: dict) -> list[dict]:
    folder, field, epochs, max_len = DATASETS[dataset]
    common = ["--task", "classify", "--data", folder, "--text-field", field]
    neural = [*common, "--epochs", epochs, "--max-len", max_len]
    rows = []
    for name, args in [("tfidf-logreg", ["--model", "tfidf-logreg"]), ("tfidf-svm", ["--model", "tfidf-svm"]),
                       ("bert scratch", ["--model", "bert", "--tokenizer", runs["tokenizer"], "--lr", "1e-3"]),
                       ("bert pretrained", ["--init", runs["bert"], "--lr", "1e-3"]),
                       ("gpt pretrained", ["--init", runs["gpt"], "--lr", "1e-3"])]:
        result = finetune(f"{dataset}-{name.replace(' ', '-')}", *(common if "tfidf" in name else neural), *args)
        report = result.get("test") or result.get("valid")
        rows.append({"dataset": dataset, "model": name, "macro_f1": report["macro_f1"], "accuracy": report["accuracy"],
                     "train_s": result["train_seconds"], "split": "test" if "test" in result else "valid",
                     "examples_per_s": result.get("examples_per_s")})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def tagging_rows(pretrain_seconds: int, epochs: int) -> list[dict]:
    text = conll_as_text(SHARED / "brown_pos_en" / "train.conll.gz", WORK / "brown_text", "brown.txt", " ")
    runs = pretrain("brown", text, pretrain_seconds, ("bert",), "--doc-split", "line")
    common = ["--task", "tag", "--data", SHARED / "brown_pos_en"]
    rows = []
    for name, args in [("most-frequent-tag", ["--model", "most-frequent-tag"]),
                       ("bert scratch", ["--model", "bert", "--tokenizer", runs["tokenizer"], "--epochs", epochs,
                                         "--lr", "2e-3"]),
                       ("bert pretrained", ["--init", runs["bert"], "--epochs", epochs, "--lr", "2e-3"])]:
        result = finetune(f"pos-{name.replace(' ', '-')}", *common, *args)
        rows.append({"dataset": "brown_pos_en", "model": name, "token_accuracy": result["valid"]["token_accuracy"],
                     "train_s": result["train_seconds"], "split": "valid"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def segmentation_rows(pretrain_seconds: int, epochs: int) -> list[dict]:
    # the tokenizer (BPE 8k over the People's Daily text); no pretraining: on the Brown tags a 300 s MLM
    # start did worse than a fresh backbone, and each segmentation run takes minutes
    text = conll_as_text(SHARED / "peoples_daily_pos_zh" / "train.conll.gz", WORK / "pd_text", "pd.txt", "")
    runs = pretrain("pd", text, pretrain_seconds, (), "--doc-split", "line")
    common = ["--task", "segment", "--data", SHARED / "peoples_daily_pos_zh"]
    rows = []
    for name, args in [("jieba", ["--model", "jieba"]),
                       ("bert scratch", ["--model", "bert", "--tokenizer", runs["tokenizer"], "--epochs", epochs,
                                         "--lr", "1e-3"])]:
        result = finetune(f"seg-{name.replace(' ', '-')}", *common, *args)
        seg = result["valid"]["segmentation"]
        rows.append({"dataset": "peoples_daily (seg)", "model": name, "word_f1": seg["f1"],
                     "precision": seg["precision"], "recall": seg["recall"], "train_s": result["train_seconds"],
                     "split": "valid"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def qa_rows(bert: Path | None) -> list[dict]:
    common = ["--task", "qa", "--data", SHARED / "faq_qa_en"]
    rows = []
    models = [("overlap", ["--model", "overlap"])]
    if bert is not None:
        models.append(("bert pretrained", ["--init", bert, "--epochs", "6", "--lr", "1e-3", "--qa-stride", "48"]))
    for name, args in models:
        result = finetune(f"qa-{name.replace(' ', '-')}", *common, *args)
        rows.append({"dataset": "faq_qa_en", "model": name, "exact_match": result["valid"]["exact_match"],
                     "f1": result["valid"]["f1"], "train_s": result["train_seconds"], "split": "valid"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def predict_latency(run: Path) -> float:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import torch

    from lmforge.applications.tasks import load_task_run, predict
    from lmforge.tasks.reading import texts_as_examples

    torch.set_num_threads(2)
    task_run = load_task_run(run)
    items = texts_as_examples(["The food was great but the service was slow."])
    predict(task_run, items)
    start = time.perf_counter()
    for _ in range(50):
        predict(task_run, items)
    return (time.perf_counter() - start) / 50 * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pretrain-seconds", type=int, default=300)
    parser.add_argument("--tag-epochs", type=int, default=4)
    parser.add_argument("--only", default="sentiment,spam,sotu,pos,seg,qa")
    args = parser.parse_args()
    only = args.only.split(",")
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    if set(only) & set(DATASETS):
        runs = pretrain("sotu", write_sotu_text(WORK / "sotu_text"), args.pretrain_seconds)
        for dataset in DATASETS:
            if dataset in only:
                rows += classification_rows(dataset, runs)
    if "pos" in only:
        rows += tagging_rows(args.pretrain_seconds, args.tag_epochs)
    if "seg" in only:
        rows += segmentation_rows(args.pretrain_seconds, args.tag_epochs)
    if "qa" in only:
        bert = WORK / "sotu_bert"
        rows += qa_rows(bert if (bert / "model.safetensors").exists() else None)
    print(f"\n{machine()}")
    print(f"{'dataset':<20} {'model':<18} {'split':<6} {'score':>12} {'second':>9} {'train s':>8}   (score: macro-F1, "
          "token accuracy, word F1 or QA F1; second: accuracy, precision or exact match)")
    for r in rows:
        score = next(r[k] for k in ("macro_f1", "token_accuracy", "word_f1", "f1") if k in r)
        other = next((r[k] for k in ("accuracy", "exact_match", "precision") if k in r), score)
        print(f"{r['dataset']:<20} {r['model']:<18} {r['split']:<6} {score:>12.4f} {other:>9.4f} {r['train_s']:>8.1f}")
    latency_run = WORK / "ft" / "sentiment-bert-pretrained"
    if latency_run.exists():
        print(f"predict latency, one short text, bert tiny: {predict_latency(latency_run):.1f} ms")


if __name__ == "__main__":
    main()
