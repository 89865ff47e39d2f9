"""The task table: each fine-tuning task is one class that owns its reading, encoding, head, objective,
validation score, report, summary lines and per-example predictions; `TASKS` is the table. A new task
is one class and one row; applications/ only orchestrates.

A task works on items (examples or sentences) and on the logits a task model gives for their encoded
sequences (tasks/batches.py runs the model); baselines (tasks/baselines.py) give outputs directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lmforge.errors import InputError
from lmforge.evaluation.classification import confusion_matrix, precision_recall_f1
from lmforge.evaluation.task_report import classify_report, plot_confusion, tag_report
from lmforge.tasks.data import Example, Sentence, read_hub_splits, read_records, read_splits, to_example
from lmforge.tasks.encode import IGNORE, Encoded, Labels, encode_classification, encode_tagging, mean_by_origin
from lmforge.tasks.multilabel import decide
from lmforge.tasks.multilabel import report as multi_label_report
from lmforge.tasks.qa import answer_exact, answers, qa_encoded, qa_report, read_qa, windows_of
from lmforge.tasks.reading import TaskFields, example_loader, hub_example, qa_loader, sentence_loader, texts_as_examples
from lmforge.tasks.segment import from_bmes, segment_report


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Task:
    """The behaviour every task shares; the rows below override what differs."""

    name = ""
    head = "classify"        # TaskHeadConfig.task: classify | tag | span
    objective = "classify"   # a key of training/objectives.py OBJECTIVES
    per_token = False        # logits per position rather than per example
    predict_batch = 64       # sequences per forward pass when predicting
    lowercase_words = True   # a word tokenizer of the task's own folds case (a bag of words is better so)
    word_tokenizer = "word"  # the kind of tokenizer a task body trains on the task's texts when given none
    class_weighted = True    # --class-weights balanced applies
    baselines: tuple[str, ...] = ()
    needs_bidirectional = False

    # --- options and data ----------------------------------------------------------------------
    def check(self, fields: TaskFields) -> None:
        """Refuse options this task cannot use (one line naming the flag)."""
        if fields.chunks > 1:
            raise InputError("--chunks reads long single texts: it is for --task classify without --text2-field.")

    def loader(self, fields: TaskFields):
        """path -> the items of one file."""
        return example_loader(fields)

    def split_key(self, item) -> str:
        """What the hash split of a file without named splits reads."""
        return item.text + (item.text2 or "")

    def read_splits(self, source: str, fields: TaskFields):
        """train/valid/test items of a file or folder (split by name or by hash), or of a hub dataset."""
        if str(source).startswith("hf:"):
            return read_hub_splits(str(source), hub_example(fields))
        return read_splits(source, self.loader(fields), self.split_key, fields.valid_fraction)

    def read_eval(self, source: str, fields: TaskFields, split: str) -> list:
        """A file: all its items; a folder or hub dataset: the split asked for (valid or test)."""
        if Path(source).is_file():
            return list(self.loader(fields)(Path(source)))
        return getattr(self.read_splits(source, fields), split)

    def read_input(self, path: Path, fields: TaskFields) -> list[Example]:
        """The records `predict --input` reads (labels optional)."""
        return [to_example(r, w, fields.text_field, None, fields.text2_field) for r, w in read_records(path)]

    def multi_label(self, train: list) -> bool:
        return False

    def labels(self, train: list) -> Labels:
        return Labels.from_training([e.label for e in train], "label")

    def word_texts(self, train: list) -> list[str]:
        """Texts a word tokenizer of this task's own is trained on."""
        return [t for e in train for t in (e.text, e.text2) if t]

    def items_to_predict(self, texts: list[str], records: list[Example] | None, fields: TaskFields) -> list:
        """What `predict` reads from its arguments (or the records of --input)."""
        items = records if records is not None else texts_as_examples(texts)
        empty = [e.source for e in items if not e.text.strip()]
        if empty:
            raise InputError(f"{empty[0]}: an empty text has nothing to predict from; remove it.")
        return items

    # --- encoding, training signal -------------------------------------------------------------
    def encode(self, items, tokenizer, encoder: bool, max_len: int, labels: Labels, fields: TaskFields,
               multi_label: bool) -> tuple[Encoded, dict]:
        enc, unseen = encode_classification(items, tokenizer, encoder, max_len, labels, multi_label, fields.chunks)
        return enc, {"unseen_labels": unseen, **({"windows": len(enc.ids)} if enc.origin else {})}

    def validation_score(self, logits: list[np.ndarray], encoded: Encoded, n_labels: int,
                         multi_label: bool) -> tuple[float, float, str]:
        """(loss, score, score name) of the valid split: macro-F1 of single-label classes, micro-F1 of
        multi-label ones; the loss as the objective computes it."""
        stacked = np.stack(logits)
        if multi_label:
            labels = torch.from_numpy(np.asarray(encoded.labels, dtype=np.float32))
            loss = F.binary_cross_entropy_with_logits(torch.from_numpy(stacked), labels).item()
            return loss, _micro_f1(stacked > 0, labels.numpy() > 0.5), "micro_f1"
        gold = np.asarray(encoded.labels)
        if encoded.origin is not None:   # windows of long texts: score each text on its windows' mean logits
            firsts = np.unique([number for number, _ in encoded.origin], return_index=True)[1]
            stacked, gold = mean_by_origin(stacked, encoded.origin).astype(np.float32), gold[firsts]
        known = gold >= 0
        loss = F.cross_entropy(torch.from_numpy(stacked[known]), torch.from_numpy(gold[known])).item()
        confusion = confusion_matrix(gold[known], stacked[known].argmax(axis=1), n_labels)
        return loss, precision_recall_f1(confusion)["macro"]["f1"], "macro_f1"

    # --- outputs -------------------------------------------------------------------------------
    def outputs(self, logits: list[np.ndarray], encoded: Encoded, items, labels: Labels, multi_label: bool) -> list:
        """Per item: class probabilities (multi-label: each label's own)."""
        rows = np.stack(logits)
        if encoded.origin is not None:   # a long text's windows: the mean of their logits
            rows = mean_by_origin(rows, encoded.origin)
        if multi_label:
            return [1 / (1 + np.exp(-row)) for row in rows]
        return list(softmax(rows))

    def baseline_outputs(self, baseline, items) -> list:
        logits = baseline.logits([pair_text(e) for e in items])
        if getattr(baseline, "multi_label", False):   # one-vs-rest: each label's own probability
            return list(1 / (1 + np.exp(-logits)))
        return list(softmax(logits))

    def report(self, items, outputs, labels: Labels, multi_label: bool, plot_to=None, slice_field: str | None = None,
               positive: str | None = None, thresholds: np.ndarray | None = None) -> dict:
        if multi_label:
            gold, _ = labels.multi_hot([e.label if isinstance(e.label, list) else [e.label] for e in items])
            return multi_label_report(np.stack(outputs), gold, labels.names, thresholds)
        gold, unseen = labels.ids([e.label for e in items])
        slices = None
        if slice_field is not None:
            missing = [e.source for e in items if slice_field not in e.fields]
            if missing:
                raise InputError(f"{missing[0]}: no field {slice_field!r} for --slice-field ({len(missing)} examples "
                                 "lack it).")
            slices = [e.fields[slice_field] for e in items]
        report = classify_report(np.stack(outputs), gold, labels.names, slices, positive)
        report["unseen_labels"] = unseen
        if plot_to is not None:
            plot_confusion(report, plot_to)
        return report

    def headline(self, report: dict) -> dict:
        """The metrics a before/after table (pruning) compares."""
        keys = ("accuracy", "macro_f1") if "accuracy" in report else ("micro_f1", "exact_match")
        return {k: report[k] for k in keys}

    def summary_line(self, split: str, report: dict) -> str:
        if "accuracy" not in report:
            return (f"  {split}: micro-F1 {report['micro_f1']:.4f}, macro-F1 {report['macro_f1']:.4f}, exact match "
                    f"{report['exact_match']:.4f} over {report['examples']:,} examples")
        auc = f", ROC-AUC {report['roc_auc']:.4f}" if report.get("roc_auc") is not None else ""
        return (f"  {split}: accuracy {100 * report['accuracy']:.2f}%, macro-F1 {report['macro_f1']:.4f}{auc} over "
                f"{report['examples']:,} examples")

    def report_table(self, report: dict) -> str:
        """What `eval` prints: the headline, per class, per slice."""
        if "accuracy" not in report:
            return "\n".join(_multi_label_table(report))
        return "\n".join(_classify_table(report))

    def prediction(self, item, output, labels: Labels, multi_label: bool, thresholds: np.ndarray | None = None) -> dict:
        names = labels.names
        out = {"text": item.text, "label": names[int(np.argmax(output))],
               "probabilities": {name: float(v) for name, v in zip(names, output)}}
        if multi_label:   # every label at or above its threshold, the most probable first
            chosen = decide(np.asarray(output)[None], thresholds)[0]
            out["labels"] = [names[i] for i in np.argsort(-np.asarray(output)) if chosen[i]]
        return out

    def prediction_line(self, p: dict) -> str:
        top = sorted(p["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        label = ",".join(p["labels"]) if "labels" in p else p["label"]
        return f"{label}\t" + "  ".join(f"{k} {v:.3f}" for k, v in top) + f"\t{p['text'][:60]}"


def pair_text(example) -> str:
    return example.text if example.text2 is None else f"{example.text} ||| {example.text2}"


def _micro_f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    tp = (predicted & gold).sum()
    return float(2 * tp / max(predicted.sum() + gold.sum(), 1))


def _multi_label_table(report: dict) -> list[str]:
    lines = [f"eval {report.get('split', '')}: {report['examples']:,} examples, micro-F1 {report['micro_f1']:.4f}, "
             f"macro-F1 {report['macro_f1']:.4f}, exact match {report['exact_match']:.4f}, "
             f"{report['labels_per_example']:.2f} labels per example (thresholds {report['thresholds']})",
             f"{'label':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8} {'threshold':>9}"]
    for name, row in report["per_label"].items():
        lines.append(f"{name[:20]:<20} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
                     f"{row['support']:>8} {row['threshold']:>9.2f}")
    return lines


def _classify_table(report: dict) -> list[str]:
    lines = [f"eval {report['split']}: {report['examples']:,} examples, accuracy {100 * report['accuracy']:.2f}%, "
             f"macro-F1 {report['macro_f1']:.4f}, weighted-F1 {report['weighted_f1']:.4f}"
             + (f", ROC-AUC {report['roc_auc']:.4f}" if report.get("roc_auc") is not None else "")
             + (f", ECE {report['ece']:.4f}" if report.get("ece") is not None else ""),
             f"{'class':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for name, row in report["per_class"].items():
        lines.append(f"{name[:20]:<20} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} "
                     f"{row['support']:>8}")
    if "slices" in report:
        s = report["slices"]
        lines.append(f"slices by accuracy (worst {s['worst_slice']}, gap {s['gap']:.4f}; macro-F1 over the classes "
                     "each slice holds):")
        for name, row in s["slices"].items():
            lines.append(f"  {name[:30]:<30} {row['examples']:>6} examples  accuracy {row['accuracy']:.4f}  "
                         f"macro-F1 {row['macro_f1']:.4f}")
        fair = s.get("fairness")
        if fair and fair["demographic_parity_difference"] is not None:
            eo = fair["equal_opportunity_difference"]
            lines.append(f"  demographic parity difference {fair['demographic_parity_difference']:.4f}, equal "
                         f"opportunity difference {'n/a' if eo is None else f'{eo:.4f}'}")
    return lines


class Classify(Task):
    """Texts to labels; a list label makes the task multi-label."""

    name = "classify"
    baselines = ("tfidf-logreg", "tfidf-svm")

    def check(self, fields: TaskFields) -> None:
        if fields.chunks > 1 and fields.text2_field:
            super().check(fields)

    def multi_label(self, train: list) -> bool:
        return any(isinstance(e.label, list) for e in train)


class Pair(Classify):
    """Two texts to a label (entailment, paraphrase): [CLS] a [SEP] b [SEP] for an encoder."""

    name = "pair"

    def check(self, fields: TaskFields) -> None:
        if not fields.text2_field:
            raise InputError("--task pair needs --text2-field (the second text of each pair).")
        Task.check(self, fields)


VALIDATION_CHUNK = 256   # sentences a tagger's validation scores together


class Tag(Task):
    """A tag per word (POS, named entities) from CoNLL files; a word's tag sits on its first piece."""

    name = "tag"
    head = objective = "tag"
    per_token = True
    lowercase_words = False   # tags read case: capitals mark proper nouns
    # WordPiece: a frequent word is one piece, a rare or unseen one its pieces (its suffix among them),
    # which a bidirectional body reads into the word's first piece; a word vocabulary makes it <|unk|>
    word_tokenizer = "wordpiece"
    baselines = ("most-frequent-tag",)

    def loader(self, fields: TaskFields):
        return sentence_loader(fields, characters=False)

    def split_key(self, item) -> str:
        return " ".join(item.words)

    def read_splits(self, source: str, fields: TaskFields):
        return read_splits(source, self.loader(fields), self.split_key, fields.valid_fraction)

    def labels(self, train: list) -> Labels:
        return Labels.from_training([t for s in train for t in s.tags], "tag")

    def word_texts(self, train: list) -> list[str]:
        return [" ".join(s.words) for s in train]

    def items_to_predict(self, texts, records, fields) -> list:
        return [Sentence(e.text.split(), [], e.source) for e in super().items_to_predict(texts, records, fields)]

    def encode(self, items, tokenizer, encoder, max_len, labels, fields, multi_label):
        enc, unseen, split = encode_tagging(items, tokenizer, encoder, max_len, labels)
        return enc, {"unseen_labels": unseen, "sentences_continued_past_max_len": split}

    def validation_score(self, logits, encoded, n_labels, multi_label):
        """Mean loss and accuracy over the words (first pieces), a few hundred sentences at a time: the
        whole split's (positions, tags) logits would be hundreds of MB to copy at every validation."""
        loss, correct, words = 0.0, 0, 0
        for start in range(0, len(logits), VALIDATION_CHUNK):
            gold = np.concatenate(encoded.labels[start:start + VALIDATION_CHUNK])
            stacked = np.concatenate(logits[start:start + VALIDATION_CHUNK])
            keep = gold != IGNORE
            scores, targets = stacked[keep], gold[keep]
            loss += F.cross_entropy(torch.from_numpy(scores), torch.from_numpy(np.maximum(targets, 0)),
                                    reduction="sum").item()
            correct, words = correct + int((scores.argmax(axis=1) == targets).sum()), words + len(targets)
        return loss / max(words, 1), correct / max(words, 1), "word_accuracy"

    def outputs(self, logits, encoded, items, labels, multi_label) -> list[list[str]]:
        """Per sentence its words' tags: the sequences of one sentence, in order."""
        tags: list[list[str]] = [[] for _ in items]
        for (number, _), first, row in zip(encoded.origin, encoded.word_starts, logits):
            tags[number].extend(labels.names[i] for i in row[first].argmax(axis=1))
        return tags

    def baseline_outputs(self, baseline, items) -> list:
        return [baseline.tags(s.words) for s in items]

    def report(self, items, outputs, labels, multi_label, plot_to=None, slice_field=None, positive=None) -> dict:
        return tag_report([s.tags for s in items], outputs)

    def headline(self, report: dict) -> dict:
        return {"token_accuracy": report["token_accuracy"]}

    def summary_line(self, split: str, report: dict) -> str:
        entity = f", entity F1 {report['entity']['f1']:.4f}" if "entity" in report else ""
        return f"  {split}: token accuracy {100 * report['token_accuracy']:.2f}% over {report['words']:,} words{entity}"

    def report_table(self, report: dict) -> str:
        entity = f", entity F1 {report['entity']['f1']:.4f}" if "entity" in report else ""
        return f"eval {report['split']}: token accuracy {100 * report['token_accuracy']:.2f}% over " \
               f"{report['words']:,} words{entity}"

    def prediction(self, item, output, labels, multi_label) -> dict:
        return {"words": item.words, "tags": output}

    def prediction_line(self, p: dict) -> str:
        return " ".join(f"{w}/{t}" for w, t in zip(p["words"], p["tags"]))


class Segment(Tag):
    """Chinese word segmentation as B/M/E/S character tags (joined with POS under --joint-pos)."""

    name = "segment"
    baselines = ("most-frequent-tag", "jieba")
    word_tokenizer = "word"   # its words are characters already

    def loader(self, fields: TaskFields):
        return sentence_loader(fields, characters=True)

    def items_to_predict(self, texts, records, fields) -> list:   # characters, spaces dropped
        return [Sentence([c for c in e.text if not c.isspace()], [], e.source)
                for e in Task.items_to_predict(self, texts, records, fields)]

    def report(self, items, outputs, labels, multi_label, plot_to=None, slice_field=None, positive=None) -> dict:
        return segment_report(items, outputs)

    def headline(self, report: dict) -> dict:
        return {"word_f1": report["segmentation"]["f1"]}

    def summary_line(self, split: str, report: dict) -> str:
        seg = report["segmentation"]
        return (f"  {split}: word P/R/F1 {seg['precision']:.4f}/{seg['recall']:.4f}/{seg['f1']:.4f} over "
                f"{seg['words']:,} words, character tags {100 * report['char_tag_accuracy']:.2f}%")

    def report_table(self, report: dict) -> str:
        seg = report["segmentation"]
        return (f"eval {report['split']}: word precision {seg['precision']:.4f}, recall {seg['recall']:.4f}, F1 "
                f"{seg['f1']:.4f} over {seg['words']:,} words; character tags {100 * report['char_tag_accuracy']:.2f}%")

    def prediction(self, item, output, labels, multi_label) -> dict:
        return dict(zip(("words", "pos"), from_bmes(item.words, output)))

    def prediction_line(self, p: dict) -> str:
        return " ".join(w if pos is None else f"{w}/{pos}" for w, pos in zip(p["words"], p["pos"]))


MAX_ANSWER_TOKENS = 512


class QA(Task):
    """Extractive question answering (SQuAD layout): start and end of the answer span in the context."""

    name = "qa"
    head = objective = "span"
    per_token = True
    predict_batch = 32
    class_weighted = False
    baselines = ("overlap",)
    needs_bidirectional = True

    def loader(self, fields: TaskFields):
        return qa_loader

    def split_key(self, item) -> str:
        return item.question + item.context

    def read_splits(self, source: str, fields: TaskFields):
        return read_splits(source, self.loader(fields), self.split_key, fields.valid_fraction)

    def labels(self, train: list) -> Labels:
        return Labels(["start", "end"])

    def word_texts(self, train: list) -> list[str]:
        return [t for e in train for t in (e.question, e.context)]

    def items_to_predict(self, texts, records, fields) -> list:
        if records is None:
            raise InputError("predict on a QA run: give --input FILE.jsonl with question and context fields.")
        return records

    def read_input(self, path, fields) -> list:
        return read_qa(path)[0]

    def encode(self, items, tokenizer, encoder, max_len, labels, fields, multi_label):
        windows = windows_of(items, tokenizer, max_len, fields.qa_stride, unit=fields.qa_unit)
        return qa_encoded(windows), {"windows": len(windows), "windows_with_answer": sum(w.start > 0 for w in windows)}

    def validation_score(self, logits, encoded, n_labels, multi_label):
        """The share of questions whose chosen answer across their windows is the gold one (qa.answer_exact),
        as prediction chooses it. Scoring each window alone rewarded pointing at [CLS] everywhere, and a
        paragraph window's own span says nothing of whether its paragraph outranks the others."""
        gold = np.asarray(encoded.labels)
        loss = float(np.mean([_span_loss(row, g) for row, g in zip(logits, gold)]))
        return loss, answer_exact(encoded.windows, logits, MAX_ANSWER_TOKENS), "answer_exact"

    def outputs(self, logits, encoded, items, labels, multi_label) -> list[str]:
        return answers(items, encoded.windows, logits, MAX_ANSWER_TOKENS)

    def baseline_outputs(self, baseline, items) -> list:
        return [baseline.answer(e) for e in items]

    def report(self, items, outputs, labels, multi_label, plot_to=None, slice_field=None, positive=None) -> dict:
        return qa_report(items, outputs)

    def headline(self, report: dict) -> dict:
        return {"exact_match": report["exact_match"], "f1": report["f1"]}

    def summary_line(self, split: str, report: dict) -> str:
        return (f"  {split}: exact match {100 * report['exact_match']:.2f}%, F1 {100 * report['f1']:.2f}% over "
                f"{report['examples']:,} questions")

    def report_table(self, report: dict) -> str:
        return (f"eval {report['split']}: exact match {100 * report['exact_match']:.2f}%, F1 {100 * report['f1']:.2f}% "
                f"over {report['examples']:,} questions")

    def prediction(self, item, output, labels, multi_label) -> dict:
        return {"question": item.question, "answer": output}

    def prediction_line(self, p: dict) -> str:
        return f"{p['question'][:60]}\t{p['answer'][:200]!r}"


def _span_loss(row: np.ndarray, gold: np.ndarray) -> float:
    logits = torch.from_numpy(row.T)                                             # (2, T)
    return F.cross_entropy(logits, torch.from_numpy(gold)).item()


TASKS: dict[str, Task] = {task.name: task for task in (Classify(), Pair(), Tag(), Segment(), QA())}


def task_of(fields: TaskFields) -> Task:
    return TASKS[fields.task]
