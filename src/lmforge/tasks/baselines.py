"""Classical baselines as first-class task models, stored without pickle (JSON + safetensors):
- `tfidf-logreg` / `tfidf-svm`: TF-IDF of word 1-2-grams and character 2-5-grams (scikit-learn's
  vectorizers), then logistic regression or a linear SVM; prediction is a NumPy dot product;
- `most-frequent-tag`: each word's most frequent training tag, the overall most frequent for others.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from lmforge.artifacts import atomic_write_text, save_arrays
from lmforge.errors import InputError

# baseline -> the tasks it serves, and what to say when it is asked for another
BASELINES = {"tfidf-logreg": ("classify", "pair"), "tfidf-svm": ("classify", "pair"),
             "most-frequent-tag": ("tag", "segment"), "jieba": ("segment",), "overlap": ("qa",)}
MISUSE = {"overlap": "the sliding-window QA baseline (--task qa)",
          "jieba": "the Chinese segmentation reference (--task segment)",
          "most-frequent-tag": "a tagging baseline (--task tag or segment)",
          "tfidf-logreg": "a classification baseline; for --task tag use most-frequent-tag",
          "tfidf-svm": "a classification baseline; for --task tag use most-frequent-tag"}
WORD_NGRAMS, CHAR_NGRAMS = (1, 2), (2, 5)


def _vectorizers():
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        raise InputError("the tfidf baselines use scikit-learn: pip install scikit-learn.") from None
    return (TfidfVectorizer(ngram_range=WORD_NGRAMS, min_df=1, sublinear_tf=True, max_features=200_000),
            TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, min_df=2, sublinear_tf=True,
                            max_features=300_000))


class TfidfLinear:
    """Single-label: one multinomial (or one-vs-rest SVM) model; multi-label: one binary classifier per label
    (one-vs-rest), whose logits are read through a sigmoid each."""

    def __init__(self, kind: str, vocabularies: list[dict], idfs: list[np.ndarray], coef: np.ndarray,
                 intercept: np.ndarray, labels: list[str], multi_label: bool = False):
        self.kind, self.vocabularies, self.idfs = kind, vocabularies, idfs
        self.coef, self.intercept, self.labels, self.multi_label = coef, intercept, labels, multi_label
        self._fitted = None   # the vectorizers with the stored vocabularies, built at the first prediction

    @classmethod
    def fit(cls, kind: str, texts: list[str], y: np.ndarray, labels: list[str], class_weight=None, seed: int = 0):
        from scipy.sparse import hstack
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        vectorizers = _vectorizers()
        features = hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
        model = LogisticRegression(C=10.0, max_iter=2000, class_weight=class_weight) if kind == "tfidf-logreg" \
            else LinearSVC(C=0.5, class_weight=class_weight, random_state=seed)
        multi_label = y.ndim == 2
        if multi_label:   # (N, L) multi-hot: a binary model per label
            from sklearn.multiclass import OneVsRestClassifier

            model = OneVsRestClassifier(model)
            model.fit(features, y.astype(np.int64))
            coef = np.vstack([np.atleast_2d(e.coef_) for e in model.estimators_])
            intercept = np.concatenate([np.atleast_1d(e.intercept_) for e in model.estimators_])
        else:
            model.fit(features, y)
            coef, intercept = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
            if coef.shape[0] == 1:   # binary: scikit-learn keeps one row for class 1
                coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
        return cls(kind, [{k: int(v) for k, v in vec.vocabulary_.items()} for vec in vectorizers],
                   [vec.idf_ for vec in vectorizers], coef.astype(np.float32), intercept.astype(np.float32), labels,
                   multi_label)

    def features(self, texts: list[str]):
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for v in self.vectorizers()]).tocsr()

    def vectorizers(self) -> tuple:
        """The vectorizers with the stored vocabularies and IDFs (scikit-learn is imported here, once: a
        loaded run then predicts in milliseconds)."""
        if self._fitted is None:
            self._fitted = _vectorizers()
            for vec, vocabulary, idf in zip(self._fitted, self.vocabularies, self.idfs):
                vec.vocabulary_ = vocabulary
                vec.idf_ = idf
        return self._fitted

    def logits(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.features(texts) @ self.coef.T) + self.intercept

    def save(self, out: Path) -> None:
        arrays = {"coef": self.coef, "intercept": self.intercept}
        arrays.update({f"idf.{i}": idf.astype(np.float64) for i, idf in enumerate(self.idfs)})
        save_arrays(Path(out) / "baseline.safetensors", arrays, "baseline")
        atomic_write_text(Path(out) / "baseline.json", json.dumps({"kind": self.kind, "labels": self.labels,
                                                                   "multi_label": self.multi_label,
                                                                   "vocabularies": self.vocabularies}))

    @classmethod
    def load(cls, run: Path, meta: dict, arrays: dict) -> TfidfLinear:
        idfs = [arrays[f"idf.{i}"] for i in range(len(meta["vocabularies"]))]
        model = cls(meta["kind"], meta["vocabularies"], idfs, arrays["coef"], arrays["intercept"], meta["labels"],
                    bool(meta.get("multi_label", False)))
        model.vectorizers()
        return model


class MostFrequentTag:
    def __init__(self, table: dict[str, str], default: str, labels: list[str]):
        self.table, self.default, self.labels = table, default, labels

    @classmethod
    def fit(cls, sentences, labels: list[str]) -> MostFrequentTag:
        counts: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for sentence in sentences:
            for word, tag in zip(sentence.words, sentence.tags):
                counts[word][tag] += 1
                overall[tag] += 1
        return cls({w: c.most_common(1)[0][0] for w, c in counts.items()}, overall.most_common(1)[0][0], labels)

    def tags(self, words: list[str]) -> list[str]:
        return [self.table.get(w, self.table.get(w.lower(), self.default)) for w in words]

    def save(self, out: Path) -> None:
        atomic_write_text(Path(out) / "baseline.json", json.dumps({"kind": "most-frequent-tag", "table": self.table,
                                                                   "default": self.default, "labels": self.labels},
                                                                  ensure_ascii=False))


class JiebaSegmenter:
    """jieba's default mode as a character tagger (S/B/M/E from its words), so it is scored like ours."""

    labels = ["B", "E", "M", "S"]

    def tags(self, chars: list[str]) -> list[str]:
        from lmforge.tasks.data import Sentence
        from lmforge.tasks.segment import jieba_words, to_bmes

        words = jieba_words("".join(chars))
        return to_bmes(Sentence(words, [""] * len(words)), joint_pos=False).tags

    def save(self, out: Path) -> None:
        atomic_write_text(Path(out) / "baseline.json", json.dumps({"kind": "jieba", "labels": self.labels}))


class OverlapQA:
    """The lexical-overlap QA baseline: the window (the training answers' median length in words) of the
    context that shares the most words with the question; with the paragraph unit, the paragraph that does."""

    labels = ["start", "end"]

    def __init__(self, width: int, unit: str = "span"):
        self.width, self.unit = width, unit

    @classmethod
    def fit(cls, examples, unit: str = "span") -> OverlapQA:
        lengths = [len(e.answer.split()) for e in examples if e.answer]
        return cls(int(np.median(lengths)) if lengths else 20, unit)

    def answer(self, example) -> str:
        from lmforge.data.stopwords import ENGLISH_STOPWORDS
        from lmforge.tasks.qa import overlap_baseline, overlap_paragraph

        if self.unit == "paragraph":
            return overlap_paragraph(example, ENGLISH_STOPWORDS)
        return overlap_baseline(example, self.width, ENGLISH_STOPWORDS)

    def save(self, out: Path) -> None:
        atomic_write_text(Path(out) / "baseline.json", json.dumps({"kind": "overlap", "width": self.width,
                                                                   "unit": self.unit, "labels": self.labels}))


def fit_baseline(name: str, task: str, train: list, labels, balanced: bool, seed: int, multi_label: bool = False,
                 qa_unit: str = "span"):
    """A baseline fitted on the training items of `task` (examples, sentences or QA examples)."""
    if task not in BASELINES[name]:
        raise InputError(f"--model {name} is {MISUSE[name]}.")
    if name == "overlap":
        return OverlapQA.fit(train, qa_unit)
    if name == "jieba":
        return JiebaSegmenter()
    if name == "most-frequent-tag":
        return MostFrequentTag.fit(train, labels.names)
    if multi_label:
        y, _ = labels.multi_hot([e.label if isinstance(e.label, list) else [e.label] for e in train])
    else:
        y, _ = labels.ids([e.label for e in train])
    texts = [e.text if e.text2 is None else f"{e.text} ||| {e.text2}" for e in train]
    return TfidfLinear.fit(name, texts, y, labels.names, "balanced" if balanced else None, seed)


def load_baseline(run: Path):
    from safetensors.numpy import load_file

    meta = json.loads((Path(run) / "baseline.json").read_text(encoding="utf-8"))
    if meta["kind"] == "jieba":
        return JiebaSegmenter()
    if meta["kind"] == "overlap":
        return OverlapQA(meta["width"], meta.get("unit", "span"))
    if meta["kind"] == "most-frequent-tag":
        return MostFrequentTag(meta["table"], meta["default"], meta["labels"])
    return TfidfLinear.load(run, meta, load_file(str(Path(run) / "baseline.safetensors")))
