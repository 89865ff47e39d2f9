"""Applications: every documented `lmforge finetune` command on the dev datasets, in one run —
classical baselines (TF-IDF + logistic regression / linear SVM; most-frequent tag; jieba; word overlap;
the fastText library) beside lmforge's task bodies (fastText-style bag of n-grams, BiLSTM; their own
defaults) and tiny backbones trained from scratch and pretrained (masked LM or causal LM on the State of the
Union text) for the same epochs. Every trained row runs --seeds (3 by default) and reports the mean, the
standard deviation and the range; a test split under 500 examples also gets a 95% bootstrap interval of
its macro-F1 (resampling the test examples of the first seed's confusion matrix). Clocks: "wall s" is the
whole command on both sides (`lmforge finetune` as a process: start-up, reading, encoding, training,
evaluation; the fastText library as a process: reading, training, predicting); "train s" is what each
reports for training alone. Also prints: the spam slice report, pruning before/after (sentiment BERT),
and `predict` latency as the CLI verb and in-process.
    python bench/applications.py [--seeds 1 2 3] [--pretrain-seconds 300] [--tapt-seconds 120]
                                 [--only sentiment,...,qa,prune] [--models tfidf-logreg,fasttext,...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/lmforge-bench-apps")
DATASETS = {  # name -> (folder, text field, label field, epochs, max length, windows of a long text)
    "sentiment": (SHARED / "sentiment_uci_en", "text", "label", 4, 64, 1),
    "spam": (SHARED / "spam_assassin", "text", "label", 3, 128, 1),
    "sotu": (SHARED / "sotu_speeches", "text", "label", 8, 128, 16),   # speeches of ~10k tokens: read 16 windows
    "langid": (SHARED / "gettext_ui_en_x", "tgt", "tgt_lang", 1, 64, 1),   # es/de/fr/zh_CN software messages
}
CLASSIFIERS = ("tfidf-logreg", "tfidf-svm", "fastText library", "fasttext", "fasttext +char n-grams", "bilstm",
               "bert scratch", "bert pretrained", "bert pretrained +TAPT", "gpt pretrained")
TAPT_SECONDS = 120   # --pretrain-time of the "+TAPT" row: masked LM on the task's training texts first
CHAR_NGRAMS = ("sentiment", "langid")   # where the character n-gram row runs
SMALL_TEST = 500


def lmforge(*args) -> tuple[dict, float]:
    """(JSON, wall seconds) of an lmforge command run as a user runs it, in a process of its own."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmforge", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lmforge {' '.join(map(str, args))}\n{done.stderr[-3000:]}")
    return (json.loads(done.stdout) if done.stdout.strip() else {}), time.perf_counter() - start


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
    result, wall = lmforge("finetune", *args, "--out", run, "--overwrite", "--json")
    return {**result, "run": run, "wall_seconds": wall}


def bootstrap_macro_f1(counts: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of macro-F1 when the test examples are drawn again: a multinomial over the confusion
    matrix's cells (an example is its (gold, predicted) cell)."""
    rng = np.random.default_rng(seed)
    cells, n = counts.flatten() / counts.sum(), int(counts.sum())
    scores = []
    for draw in rng.multinomial(n, cells, size=rounds):
        matrix = draw.reshape(counts.shape)
        tp = np.diag(matrix).astype(float)
        predicted, gold = matrix.sum(axis=0), matrix.sum(axis=1)
        f1 = np.where(predicted + gold > 0, 2 * tp / np.maximum(predicted + gold, 1), 0.0)
        scores.append(f1[gold > 0].mean())
    return float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5))


def spread(values: list[float]) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()), "n": len(values)}


def fasttext_library(dataset: str, seed: int) -> dict:
    """The fastText library (the reference a user would pick) as a process of its own: reading, training with
    the settings its tutorial suggests for small sets (25 epochs, lr 0.5, bigrams, 2 threads), predicting."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--fasttext-library", dataset, "--seed", str(seed), "--work",
                           str(WORK)], capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout.splitlines()[-1]), "wall_seconds": time.perf_counter() - start}


def _fasttext_library_process(dataset: str, seed: int) -> None:
    import re

    import fasttext
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    folder, field, label, _, _, _ = DATASETS[dataset]

    def read(split):
        path = next(folder.glob(f"{split}.jsonl*"), None)
        with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as handle:
            return [json.loads(line) for line in handle]

    def words(text):   # the lower-cased word split of lmforge's word tokenizer
        return " ".join(re.findall(r"\w+|[^\w\s]", text.lower()))

    train, test = read("train"), read("test")
    train_file = WORK / f"fasttext_{dataset}_{seed}.txt"
    train_file.write_text("".join(f"__label__{r[label]} {words(r[field])}\n" for r in train))
    start = time.perf_counter()
    model = fasttext.train_supervised(str(train_file), epoch=25, lr=0.5, wordNgrams=2, thread=2, seed=seed, verbose=0)
    seconds = time.perf_counter() - start
    gold = [str(r[label]) for r in test]
    # model.f.predict: the binding's own call (fasttext 0.9.2's Python wrapper breaks under NumPy 2)
    predicted = [model.f.predict(words(r[field]) + "\n", 1, 0.0, "strict")[0][1][len("__label__"):] for r in test]
    counts = confusion_matrix(gold, predicted, labels=sorted(set(gold))).tolist()
    print(json.dumps({"test": {"macro_f1": f1_score(gold, predicted, average="macro"),
                               "accuracy": accuracy_score(gold, predicted), "examples": len(gold),
                               "confusion_matrix": {"counts": counts}}, "train_seconds": seconds}))


def classification_args(dataset: str, runs: dict) -> dict[str, list]:
    folder, field, label, epochs, max_len, chunks = DATASETS[dataset]
    common = ["--task", "classify", "--data", folder, "--text-field", field, "--label-field", label]
    neural = [*common, "--epochs", epochs, "--max-len", max_len, "--chunks", chunks]
    chars = ["--model-args", "min_char_ngram=3", "max_char_ngram=6"]
    return {"tfidf-logreg": [*common, "--model", "tfidf-logreg"], "tfidf-svm": [*common, "--model", "tfidf-svm"],
            "fastText library": None,
            "fasttext": [*common, "--model", "fasttext", "--chunks", chunks],   # its own defaults: 1024 tokens
            "fasttext +char n-grams": [*common, "--model", "fasttext", "--chunks", chunks, *chars],
            "bilstm": [*common, "--model", "bilstm", "--max-len", max_len, "--chunks", chunks],
            "bert scratch": [*neural, "--model", "bert", "--tokenizer", runs["tokenizer"], "--lr", "1e-3"],
            "bert pretrained": [*neural, "--init", runs.get("bert"), "--lr", "1e-3"],
            "bert pretrained +TAPT": [*neural, "--init", runs.get("bert"), "--lr", "1e-3", "--pretrain-time",
                                      TAPT_SECONDS],
            "gpt pretrained": [*neural, "--init", runs.get("gpt"), "--lr", "1e-3"]}


def classification_rows(dataset: str, runs: dict, models: tuple[str, ...], seeds: list[int]) -> list[dict]:
    rows = []
    for name, args in classification_args(dataset, runs).items():
        if name not in models or (name == "fasttext +char n-grams" and dataset not in CHAR_NGRAMS):
            continue
        deterministic = name == "tfidf-logreg"   # lbfgs on a fixed problem: every seed gives the same model
        results = []
        for seed in seeds[:1] if deterministic else seeds:
            results.append(fasttext_library(dataset, seed) if args is None else
                           finetune(f"{dataset}-{name.replace(' ', '-')}-{seed}", *args, "--seed", seed))
        rows.append(summary_row(dataset, name, results, deterministic))
        print(json.dumps(rows[-1]), flush=True)
    by_model = {row["model"]: row["macro_f1"] for row in rows}
    if {"bert pretrained", "bert pretrained +TAPT"} <= set(by_model):   # the gain the issue asks for, same seeds
        plain, adapted = by_model["bert pretrained"], by_model["bert pretrained +TAPT"]
        print(json.dumps({"dataset": dataset, "tapt_seconds": TAPT_SECONDS,
                          "tapt_gain_macro_f1": round(adapted["mean"] - plain["mean"], 4),
                          "sd_plain": round(plain["std"], 4),
                          "sd_tapt": round(adapted["std"], 4)}), flush=True)
    return rows


def summary_row(dataset: str, model: str, results: list[dict], deterministic: bool = False) -> dict:
    reports = [r.get("test") or r["valid"] for r in results]
    row = {"dataset": dataset, "model": model, "split": "test" if results[0].get("test") else "valid",
           "macro_f1": spread([r["macro_f1"] for r in reports]), "accuracy": spread([r["accuracy"] for r in reports]),
           "wall_s": spread([r["wall_seconds"] for r in results]),
           "train_s": spread([r["train_seconds"] for r in results]), "deterministic": deterministic}
    if reports[0]["examples"] < SMALL_TEST:
        row["macro_f1_ci95"] = bootstrap_macro_f1(np.asarray(reports[0]["confusion_matrix"]["counts"]))
        row["test_examples"] = reports[0]["examples"]
    return row


def tagged_rows(dataset: str, label: str, common: list, models: list[tuple], seeds: list[int], score) -> list[dict]:
    """Rows of a tagging, segmentation or QA set: each model over the seeds (baselines once)."""
    rows = []
    for name, args, seeded in models:
        results = [finetune(f"{label}-{name.replace(' ', '-')}-{seed}", *common, *args, *(["--seed", seed] if seeded
                                                                                       else []))
                   for seed in (seeds if seeded else seeds[:1])]
        row = {"dataset": dataset, "model": name, "split": "valid", "deterministic": not seeded,
               "wall_s": spread([r["wall_seconds"] for r in results]),
               "train_s": spread([r["train_seconds"] for r in results])}
        row.update({key: spread(values) for key, values in score(results).items()})
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    return rows


def pos_rows(pretrain_seconds: int, epochs: int, seeds: list[int]) -> list[dict]:
    text = conll_as_text(SHARED / "brown_pos_en" / "train.conll.gz", WORK / "brown_text", "brown.txt", " ")
    runs = pretrain("brown", text, pretrain_seconds, (), "--doc-split", "line")   # the tokenizer of the text
    models = [("most-frequent-tag", ["--model", "most-frequent-tag"], False),
              ("bilstm (its defaults)", ["--model", "bilstm"], True),
              (f"bert scratch, {epochs} epochs, lr 2e-3", ["--model", "bert", "--tokenizer", runs["tokenizer"],
                                                         "--epochs", epochs, "--lr", "2e-3"], True)]
    return tagged_rows("brown_pos_en", "pos", ["--task", "tag", "--data", SHARED / "brown_pos_en"], models, seeds,
                       lambda rs: {"token_accuracy": [r["valid"]["token_accuracy"] for r in rs]})


def segmentation_rows(pretrain_seconds: int, epochs: int, seeds: list[int]) -> list[dict]:
    text = conll_as_text(SHARED / "peoples_daily_pos_zh" / "train.conll.gz", WORK / "pd_text", "pd.txt", "")
    runs = pretrain("pd", text, pretrain_seconds, (), "--doc-split", "line")   # the tokenizer of the text
    models = [("jieba (default mode)", ["--model", "jieba"], False),
              ("bert scratch (BMES)", ["--model", "bert", "--tokenizer", runs["tokenizer"], "--epochs", epochs,
                                       "--lr", "1e-3"], True)]
    return tagged_rows("peoples_daily (seg)", "seg", ["--task", "segment", "--data", SHARED / "peoples_daily_pos_zh"],
                       models, seeds, lambda rs: {"word_f1": [r["valid"]["segmentation"]["f1"] for r in rs],
                                                  "precision": [r["valid"]["segmentation"]["precision"] for r in rs],
                                                  "recall": [r["valid"]["segmentation"]["recall"] for r in rs]})


def qa_rows(bert: Path, seeds: list[int]) -> list[dict]:
    models = [("overlap", ["--model", "overlap"], False),
              ("bert pretrained", ["--init", bert, "--epochs", "6", "--lr", "1e-3", "--qa-stride", "48"], True)]
    return tagged_rows("faq_qa_en", "qa", ["--task", "qa", "--data", SHARED / "faq_qa_en"], models, seeds,
                       lambda rs: {"f1": [r["valid"]["f1"] for r in rs],
                                   "exact_match": [r["valid"]["exact_match"] for r in rs]})


def spam_slices(seed: int) -> dict:
    """The slice report of the TF-IDF spam model on its test split, by the message's source (`group`)."""
    run = WORK / "ft" / f"spam-tfidf-logreg-{seed}"
    report, _ = lmforge("eval", "--run", run, "--split", "test", "--slice-field", "group", "--positive", "spam",
                        "--json")
    slices = report["slices"]
    return {"slices": {k: round(v["accuracy"], 4) for k, v in slices["slices"].items()},
            "worst": slices["worst_slice"], "gap": slices["gap"], "fairness": slices.get("fairness")}


def pruning(seed: int) -> dict:
    """`lmforge prune` on the sentiment BERT (pretrained, the first seed), 50% global sparsity, with one epoch
    of re-fine-tuning: the before/after rows (valid split), as the CLI prints them."""
    report, _ = lmforge("prune", "--run", WORK / "ft" / f"sentiment-bert-pretrained-{seed}", "--sparsity", "0.5",
                        "--retrain-epochs", "1", "--out", WORK / "ft" / "sentiment-bert-pruned", "--overwrite",
                        "--json")
    keep = ("macro_f1", "linear_sparsity", "file_mb", "gzip_mb", "examples_per_s")
    return {name: {k: round(v, 4) for k, v in report[name].items() if k in keep}
            for name in ("before", "after_pruning", "after", "after_int8") if name in report}


def cli_latency(run: Path, repeats: int = 5) -> float:
    """Median wall time, ms, of `lmforge predict --run RUN TEXT` as a new process (start-up included)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        lmforge("predict", "--run", run, "The food was great but the service was slow.", "--json")
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


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


def print_table(rows: list[dict]) -> None:
    print(f"\n{machine()}")
    print(f"{'dataset':<20} {'model':<34} {'split':<5} {'score (mean ± sd, range)':<32} {'95% CI':<15} "
          f"{'wall s':>7} {'train s':>8}   (macro-F1; token accuracy; word F1; QA F1)")
    for r in rows:
        key = next(k for k in ("macro_f1", "token_accuracy", "word_f1", "f1") if k in r)
        s = r[key]
        score = f"{s['mean']:.4f}" + ("" if s["n"] == 1 else f" ± {s['std']:.4f} ({s['min']:.3f}–{s['max']:.3f})")
        ci = "–".join(f"{v:.3f}" for v in r["macro_f1_ci95"]) if "macro_f1_ci95" in r else ""
        print(f"{r['dataset']:<20} {r['model']:<34} {r['split']:<5} {score:<32} {ci:<15} {r['wall_s']['mean']:>7.1f} "
              f"{r['train_s']['mean']:>8.1f}")


def main() -> None:
    global WORK, TAPT_SECONDS
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-seconds", type=int, default=300)
    parser.add_argument("--tag-epochs", type=int, default=4)
    parser.add_argument("--tapt-seconds", type=int, default=TAPT_SECONDS, help="--pretrain-time of the +TAPT row")
    parser.add_argument("--only", default="sentiment,spam,sotu,langid,pos,seg,qa,prune")
    parser.add_argument("--models", default=",".join(CLASSIFIERS), help="classification rows to run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lmforge-bench-apps"),
                        help="working folder (runs are reused from it)")
    parser.add_argument("--fasttext-library", help=argparse.SUPPRESS)   # one fastText-library run, in its process
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    WORK, TAPT_SECONDS = args.work, args.tapt_seconds
    if args.fasttext_library:
        return _fasttext_library_process(args.fasttext_library, args.seed)
    only, models, seeds = args.only.split(","), tuple(args.models.split(",")), args.seeds
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    families = tuple(f for f in ("bert", "gpt") if any(m.startswith(f"{f} pretrained") for m in models)
                     or f == "bert" and ("qa" in only or "prune" in only))
    runs = pretrain("sotu", write_sotu_text(WORK / "sotu_text"), args.pretrain_seconds, families)
    for dataset in DATASETS:
        if dataset in only:
            rows += classification_rows(dataset, runs, models, seeds)
    if "spam" in only and "tfidf-logreg" in models:
        print(json.dumps({"spam_slices": spam_slices(seeds[0])}), flush=True)
    if "pos" in only:
        rows += pos_rows(args.pretrain_seconds, args.tag_epochs, seeds)
    if "seg" in only:
        rows += segmentation_rows(args.pretrain_seconds, args.tag_epochs, seeds)
    if "qa" in only:
        rows += qa_rows(runs["bert"], seeds)
    print_table(rows)
    latency_run = WORK / "ft" / f"sentiment-bert-pretrained-{seeds[0]}"
    if latency_run.exists():
        print(json.dumps({"predict_cli_ms": round(cli_latency(latency_run)),
                          "predict_in_process_ms": round(predict_latency(latency_run), 1)}), flush=True)
        if "prune" in only:
            print(json.dumps({"pruning": pruning(seeds[0])}), flush=True)


if __name__ == "__main__":
    main()
