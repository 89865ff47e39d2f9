"""Translation metrics: sacreBLEU BLEU and chrF on detokenised text, with the signatures that make the
figures reproducible, per-sentence scores, and the share of format placeholders (`%s`, `%1$d`, `{0}`,
`{name}`) of each source that its translation keeps (software messages break when one is lost)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"%(?:\d+\$)?(?:\([A-Za-z_]\w*\))?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L)?[sdifuxXoeEgGcp]"
                         r"|\{[A-Za-z_0-9.\[\]]*(?:![rsa])?(?::[^{}]*)?\}")


def placeholders(text: str) -> Counter:
    """The format placeholders of a message, counted (`%%` is a literal percent sign, not one)."""
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


@dataclass
class PlaceholderReport:
    sources_with: int          # sources that have any placeholder
    total: int                 # placeholders in those sources
    kept: int                  # of them, present in the translation (as many times)
    all_kept: int              # sources whose translation keeps every one

    def to_json(self) -> dict:
        return {"sources_with_placeholders": self.sources_with, "placeholders": self.total, "kept": self.kept,
                "kept_share": self.kept / self.total if self.total else None,
                "sentences_all_kept_share": self.all_kept / self.sources_with if self.sources_with else None}


def placeholder_report(sources: list[str], hypotheses: list[str]) -> PlaceholderReport:
    report = PlaceholderReport(0, 0, 0, 0)
    for source, hypothesis in zip(sources, hypotheses):
        wanted = placeholders(source)
        if not wanted:
            continue
        found = placeholders(hypothesis)
        kept = sum(min(count, found[p]) for p, count in wanted.items())
        report.sources_with += 1
        report.total += sum(wanted.values())
        report.kept += kept
        report.all_kept += kept == sum(wanted.values())
    return report


def bleu_tokenizer(references: list[str]) -> str:
    """sacreBLEU's tokenizer for the target language: `zh` for Chinese (and Japanese) text, else `13a`."""
    sample = "".join(references[:200])
    cjk = sum("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in sample)
    return "zh" if sample and cjk / len(sample) > 0.2 else "13a"


def corpus_scores(hypotheses: list[str], references: list[str], tokenize: str | None = None) -> dict:
    """Corpus BLEU and chrF (chrF2, character 6-grams) with their sacreBLEU signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    tokenize = tokenize or bleu_tokenizer(references)
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    b, c = bleu.corpus_score(hypotheses, [references]), chrf.corpus_score(hypotheses, [references])
    return {"bleu": b.score, "chrf": c.score, "bleu_signature": f"BLEU|{bleu.get_signature()}",
            "chrf_signature": f"chrF2|{chrf.get_signature()}", "bleu_detail": str(b), "sentences": len(hypotheses)}


def sentence_scores(hypotheses: list[str], references: list[str], tokenize: str | None = None) -> list[dict]:
    """Each sentence's BLEU (smoothed, as sacreBLEU's sentence_bleu) and chrF."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu = BLEU(tokenize=tokenize or bleu_tokenizer(references), effective_order=True)
    chrf = CHRF()
    return [{"bleu": bleu.sentence_score(h, [r]).score, "chrf": chrf.sentence_score(h, [r]).score}
            for h, r in zip(hypotheses, references)]
