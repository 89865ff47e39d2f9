"""Applications: every documented `lmforge finetune` command on the dev datasets, in one run —
classical baselines (TF-IDF + logistic regression / linear SVM; most-frequent tag; the fastText library
when installed) beside lmforge's task bodies (fastText-style bag of n-grams, BiLSTM; their own defaults)
and tiny backbones trained from scratch and pretrained (masked LM or causal LM on the State of the Union
text, or on the tagging corpus's own text) for the same number of epochs. Prints one table with training
time on this machine, and the latency of `predict` on one short text.
    python bench/applications.py [--pretrain-seconds 300] [--only sentiment,spam,sotu,langid,pos]
                                 [--models tfidf-logreg,fasttext,...]
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
DATASETS = {  # name -> (folder, text field, label field, epochs, max length, windows of a long text)
    "sentiment": (SHARED / "sentiment_uci_en", "text", "label", 4, 64, 1),
    "spam": (SHARED / "spam_assassin", "text", "label", 3, 128, 1),
    "sotu": (SHARED / "sotu_speeches", "text", "label", 8, 128, 16),   # speeches of ~10k tokens: read 16 windows
    "langid": (SHARED / "gettext_ui_en_x", "tgt", "tgt_lang", 1, 64, 1),   # es/de/fr/zh_CN software messages
}
CLASSIFIERS = ("tfidf-logreg", "tfidf-svm", "fastText library", "fasttext", "bilstm", "bert scratch",
               "bert pretrained", "gpt pretrained")


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


def fasttext_library(dataset: str) -> dict | None:
    """The fastText library itself (the reference a user would pick), on the same lower-cased word split as
    lmforge's word tokenizer, with the settings its tutorial suggests for small sets (25 epochs, lr 0.5,
    bigrams); None when the library is not installed."""
    try:
        import fasttext
    except ImportError:
        return None
    import re

    from sklearn.metrics import accuracy_score, f1_score

    folder, field, label, _, _, _ = DATASETS[dataset]

    def read(split):
        path = next(folder.glob(f"{split}.jsonl*"), None)
        if path is None:
            return []
        with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as handle:
            return [json.loads(line) for line in handle]

    def words(text):
        return " ".join(re.findall(r"\w+|[^\w\s]", text.lower()))

    train, split = read("train"), "test" if read("test") else "valid"
    train_file = WORK / f"fasttext_{dataset}.txt"
    train_file.write_text("".join(f"__label__{r[label]} {words(r[field])}\n" for r in train))
    start = time.perf_counter()
    model = fasttext.train_supervised(str(train_file), epoch=25, lr=0.5, wordNgrams=2, thread=2, seed=1, verbose=0)
    seconds = time.perf_counter() - start
    gold = [str(r[label]) for r in read(split)]
    # model.f.predict: the binding's own call (fasttext 0.9.2's Python wrapper breaks under NumPy 2)
    predicted = [model.f.predict(words(r[field]) + "\n", 1, 0.0, "strict")[0][1][len("__label__"):]
                 for r in read(split)]
    return {"test": {"macro_f1": f1_score(gold, predicted, average="macro"),
                     "accuracy": accuracy_score(gold, predicted)} if split == "test" else None,
            "valid": {"macro_f1": f1_score(gold, predicted, average="macro"),
                      "accuracy": accuracy_score(gold, predicted)}, "train_seconds": seconds}


def classification_rows(dataset: str, runs: dict, models: tuple[str, ...]) -> list[dict]:
    folder, field, label, epochs, max_len, chunks = DATASETS[dataset]
    common = ["--task", "classify", "--data", folder, "--text-field", field, "--label-field", label]
    neural = [*common, "--epochs", epochs, "--max-len", max_len, "--chunks", chunks]
    rows = []
    for name, args in [("tfidf-logreg", ["--model", "tfidf-logreg"]), ("tfidf-svm", ["--model", "tfidf-svm"]),
                       ("fastText library", None),
                       ("fasttext", ["--model", "fasttext", "--chunks", chunks]),   # its defaults: 1024 tokens
                       ("bilstm", ["--model", "bilstm", "--max-len", max_len, "--chunks", chunks]),
                       ("bert scratch", ["--model", "bert", "--tokenizer", runs["tokenizer"], "--lr", "1e-3"]),
                       ("bert pretrained", ["--init", runs["bert"], "--lr", "1e-3"]),
                       ("gpt pretrained", ["--init", runs["gpt"], "--lr", "1e-3"])]:
        if name not in models:
            continue
        if args is None:
            result = fasttext_library(dataset)
            if result is None:
                continue
        else:
            plain = "tfidf" in name or name in ("fasttext", "bilstm")
            result = finetune(f"{dataset}-{name.replace(' ', '-')}", *(common if plain else neural), *args)
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

    from lmforge.inference.tasks import load_task_run, predict
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
    parser.add_argument("--only", default="sentiment,spam,sotu,langid,pos,seg,qa")
    parser.add_argument("--models", default=",".join(CLASSIFIERS), help="classification rows to run")
    args = parser.parse_args()
    only = args.only.split(",")
    models = tuple(args.models.split(","))
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    if set(only) & set(DATASETS):
        runs = pretrain("sotu", write_sotu_text(WORK / "sotu_text"), args.pretrain_seconds)
        for dataset in DATASETS:
            if dataset in only:
                rows += classification_rows(dataset, runs, models)
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
