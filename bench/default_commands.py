"""The documented default commands on data the defaults were not tuned on (issue 19): every dev
classification set through `lmforge finetune --task classify --model M --data FOLDER --out RUN` with
nothing else on the command line (no --epochs, --lr or --max-len), beside TF-IDF + logistic regression
on the same splits, in one run. Neural rows run 3 seeds (mean, sd, range); TF-IDF is deterministic. A
neural row "ties" when TF-IDF's figure lies inside its mean +- 2 sd (or its range), "wins" above it.
Figures are macro-F1 on the valid split (sentiment_zh_reviews has only train and valid here; the others'
test splits are also printed), read from the report every finetune writes. Then the documented tagging
command (`--task tag --model bilstm` on brown_pos_en: token accuracy and the whole command's wall time,
beside the most-frequent-tag baseline) and QA on faq_qa_en (the overlap baseline with sliding windows and
with paragraphs, and `--task qa --model bilstm` with its defaults), 3 seeds each. The seeds measure the
training's spread, not the valid split's size (309 sentences for sentiment_uci_en): each neural row also
prints a paired bootstrap 95% interval of its first seed's macro-F1 minus TF-IDF's, resampling the valid
examples with both systems' `lmforge predict` labels (an interval holding 0 is a tie on this data).
    python bench/default_commands.py [--seeds 1 2 3] [--sets zh,sentiment,spam,sotu,langid]
                                     [--models fasttext,bilstm] [--tasks classify,tag,qa]
                                     [--model-args FIELD=VALUE ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import machine

from lmforge.evaluation.classification import confusion_matrix, precision_recall_f1

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/lmforge-bench-defaults")
SETS = {  # name -> (folder, extra field flags: what the data needs, not tuning)
    "zh": (SHARED / "sentiment_zh_reviews", []),
    "sentiment": (SHARED / "sentiment_uci_en", []),
    "spam": (SHARED / "spam_assassin", []),
    "sotu": (SHARED / "sotu_speeches", ["--chunks", "16"]),   # speeches of ~10k tokens: the README's command
    "langid": (SHARED / "gettext_ui_en_x", ["--text-field", "tgt", "--label-field", "tgt_lang"]),
}


def finetune(folder: Path, flags: list[str], model: str, seed: int, out: Path, task: str = "classify") \
        -> tuple[dict, float]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lmforge", "finetune", "--task", task, "--model", model,
                           "--data", str(folder), *flags, "--seed", str(seed), "--out", str(out), "--json"],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"finetune {model} on {folder}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), time.perf_counter() - start


def valid_labels(folder: Path, flags: list[str]) -> tuple[Path, list[str]]:
    """The valid file and its gold labels (the label field the flags name, else "label")."""
    path = next(p for p in (folder / "valid.jsonl", folder / "valid.jsonl.gz") if p.exists())
    opener = gzip.open if path.suffix == ".gz" else open
    field = flags[flags.index("--label-field") + 1] if "--label-field" in flags else "label"
    with opener(path, "rt", encoding="utf-8") as lines:
        return path, [str(json.loads(line)[field]) for line in lines if line.strip()]


def predicted_labels(run: Path, path: Path, flags: list[str]) -> list[str]:
    """`lmforge predict --input` of the valid file: one label per line, in order."""
    text = flags[flags.index("--text-field"):flags.index("--text-field") + 2] if "--text-field" in flags else []
    done = subprocess.run([sys.executable, "-m", "lmforge", "predict", "--run", str(run), "--input", str(path),
                           *text, "--json"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"predict {run}:\n{done.stderr[-3000:]}")
    return [str(p["label"]) for p in json.loads(done.stdout)["predictions"]]


def macro_f1(gold: np.ndarray, predicted: np.ndarray, n: int) -> float:
    """lmforge's macro-F1 (the one the reports print) of label ids."""
    return precision_recall_f1(confusion_matrix(gold, predicted, n))["macro"]["f1"]


def paired_interval(gold: list[str], reference: list[str], system: list[str], figures: tuple[float, float],
                    rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """macro-F1(system) - macro-F1(reference) on the valid examples and its bootstrap 95% interval; the
    predictions must give the reports' figures (reference, system) first."""
    names = {name: i for i, name in enumerate(sorted(set(gold) | set(reference) | set(system)))}
    g, r, s = (np.array([names[x] for x in xs]) for xs in (gold, reference, system))
    rng, n = np.random.default_rng(seed), len(names)
    if not np.allclose([macro_f1(g, r, n), macro_f1(g, s, n)], figures, atol=1e-6):
        raise SystemExit(f"predict's labels give macro-F1 {macro_f1(g, r, n)}, {macro_f1(g, s, n)}; the reports "
                         f"say {figures}")
    gaps = []
    for _ in range(rounds):
        pick = rng.integers(0, len(g), len(g))
        gaps.append(macro_f1(g[pick], s[pick], n) - macro_f1(g[pick], r[pick], n))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return macro_f1(g, s, n) - macro_f1(g, r, n), float(low), float(high)


def verdict(reference: float, scores: list[float]) -> str:
    mean, sd = float(np.mean(scores)), float(np.std(scores))
    low, high = min(min(scores), mean - 2 * sd), max(max(scores), mean + 2 * sd)
    return "wins" if low > reference else "ties" if low <= reference <= high else "behind"


def seeded(task: str, folder: Path, model: str, flags: list[str], seeds: list[int], metric: str, name: str,
           also: tuple[str, ...] = (), reference: float | None = None) -> dict:
    """The mean, sd and range of `metric` over the seeds, the means of the `also` metrics, and the verdict
    against a deterministic `reference` figure when one is given."""
    results, walls = [], []
    for seed in seeds:
        result, wall = finetune(folder, flags, model, seed, WORK / f"{name}-{model}-{seed}", task)
        results.append(result["valid"])
        walls.append(wall)
    scores = [r[metric] for r in results]
    row = {"set": name, "model": model, "flags": flags, f"valid_{metric}_mean": round(float(np.mean(scores)), 4),
           "sd": round(float(np.std(scores)), 4), "range": [round(min(scores), 4), round(max(scores), 4)],
           "wall_s_mean": round(float(np.mean(walls)), 1)}
    row.update({f"valid_{other}_mean": round(float(np.mean([r[other] for r in results])), 4) for other in also})
    if reference is not None:
        row["vs_reference"] = verdict(reference, scores)
    return row


def tagging(seeds: list[int]) -> None:
    folder = SHARED / "brown_pos_en"
    base, wall = finetune(folder, [], "most-frequent-tag", 1, WORK / "pos-mft", "tag")
    print(json.dumps({"set": "brown_pos", "model": "most-frequent-tag",
                      "valid_token_accuracy": round(base["valid"]["token_accuracy"], 4), "wall_s": round(wall, 1)}),
          flush=True)
    print(json.dumps(seeded("tag", folder, "bilstm", [], seeds, "token_accuracy", "brown_pos")), flush=True)


def qa(seeds: list[int]) -> None:
    folder = SHARED / "faq_qa_en"
    for unit in ("span", "paragraph"):
        base, _ = finetune(folder, ["--qa-unit", unit], "overlap", 1, WORK / f"qa-overlap-{unit}", "qa")
        print(json.dumps({"set": "faq_qa", "model": f"overlap ({unit})", "valid_f1": round(base["valid"]["f1"], 4),
                          "valid_exact_match": round(base["valid"]["exact_match"], 4)}), flush=True)
    reference = base["valid"]["f1"]   # the paragraph unit's, the default for these passage answers
    # the documented command, then the same without DrQA's exact-match features (what they add)
    for name, flags in (("faq_qa", []), ("faq_qa-no-match-features", ["--model-args", "match_features=false"])):
        print(json.dumps(seeded("qa", folder, "bilstm", flags, seeds, "f1", name, ("exact_match",), reference)),
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--models", default="fasttext,bilstm")
    parser.add_argument("--tasks", default="classify,tag,qa")
    parser.add_argument("--model-args", nargs="+", default=[],
                        help="FIELD=VALUE given to the neural classify rows (not TF-IDF): what a default adds")
    args = parser.parse_args()
    extra = ["--model-args", *args.model_args] if args.model_args else []
    print(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d"), "seeds": args.seeds}), flush=True)
    tasks = args.tasks.split(",")
    if "tag" in tasks:
        tagging(args.seeds)
    if "qa" in tasks:
        qa(args.seeds)
    for name in (args.sets.split(",") if "classify" in tasks else []):
        folder, flags = SETS[name]
        if not folder.exists():
            print(json.dumps({"set": name, "skipped": f"{folder} is missing"}), flush=True)
            continue
        base, wall = finetune(folder, flags, "tfidf-logreg", 1, WORK / f"{name}-tfidf")
        reference = base["valid"]["macro_f1"]
        valid_path, gold = valid_labels(folder, flags)
        tfidf_labels = predicted_labels(WORK / f"{name}-tfidf", valid_path, flags)
        print(json.dumps({"set": name, "model": "tfidf-logreg", "valid_macro_f1": round(reference, 4),
                          "test_macro_f1": round(base["test"]["macro_f1"], 4) if base.get("test") else None,
                          "wall_s": round(wall, 1)}), flush=True)
        for model in args.models.split(","):
            valid, test, walls = [], [], []
            for seed in args.seeds:
                result, wall = finetune(folder, flags + extra, model, seed, WORK / f"{name}-{model}-{seed}")
                valid.append(result["valid"]["macro_f1"])
                test += [result["test"]["macro_f1"]] if result.get("test") else []
                walls.append(wall)
            gap = paired_interval(gold, tfidf_labels, predicted_labels(WORK / f"{name}-{model}-{args.seeds[0]}",
                                                                        valid_path, flags), (reference, valid[0]))
            print(json.dumps({"set": name, "model": model, "model_args": args.model_args,
                              "valid_macro_f1_mean": round(float(np.mean(valid)), 4),
                              "sd": round(float(np.std(valid)), 4), "range": [round(min(valid), 4),
                                                                             round(max(valid), 4)],
                              "test_macro_f1_mean": round(float(np.mean(test)), 4) if test else None,
                              "vs_tfidf": verdict(reference, valid),
                              "seed1_minus_tfidf_ci95": [round(x, 4) for x in gap], "valid_examples": len(gold),
                              "wall_s_mean": round(float(np.mean(walls)), 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
