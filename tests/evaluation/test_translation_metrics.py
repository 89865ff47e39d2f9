"""Translation metrics: corpus BLEU and chrF equal to the sacreBLEU command line on the same files, sentence
scores, and format placeholders counted by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lmforge.evaluation.translation import (
    bleu_tokenizer,
    corpus_scores,
    placeholder_report,
    placeholders,
    sentence_scores,
)

HYPOTHESES = ["Die Datei konnte nicht geöffnet werden.", "Speichern unter", "Ein Fehler ist aufgetreten: %s",
              "Ordner %1$s enthält %2$d Dateien", "Bitte warten ..."]
REFERENCES = ["Die Datei konnte nicht geöffnet werden.", "Speichern unter …", "Es ist ein Fehler aufgetreten: %s",
              "Der Ordner %1$s enthält %2$d Dateien", "Bitte warten Sie …"]


def test_corpus_scores_agree_with_the_sacrebleu_command_line(tmp_path):
    (tmp_path / "hyp.txt").write_text("\n".join(HYPOTHESES) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(REFERENCES) + "\n", encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i", str(tmp_path / "hyp.txt"),
                          "-m", "bleu", "chrf", "--format", "json"], capture_output=True, text=True, check=True)
    reported = {entry["name"]: entry for entry in json.loads(cli.stdout)}
    ours = corpus_scores(HYPOTHESES, REFERENCES)
    assert ours["bleu"] == pytest.approx(reported["BLEU"]["score"], abs=0.05)
    assert ours["chrf"] == pytest.approx(reported["chrF2"]["score"], abs=0.05)
    assert ours["bleu_signature"] == "BLEU|" + reported["BLEU"]["signature"]
    assert corpus_scores(REFERENCES, REFERENCES)["bleu"] == pytest.approx(100.0)


def test_sentence_scores_and_the_chinese_tokenizer():
    scores = sentence_scores(HYPOTHESES, REFERENCES)
    assert scores[0] == {"bleu": pytest.approx(100.0), "chrf": pytest.approx(100.0)}
    assert all(0 <= s["bleu"] < 100 for s in scores[1:])
    assert bleu_tokenizer(["无法打开文件", "保存"]) == "zh" and bleu_tokenizer(REFERENCES) == "13a"


def test_placeholders_kept_are_counted_per_source():
    assert placeholders("%s of %d, %1$s, %(name)s, {0} and {name}, 100%% done") == \
        {"%s": 1, "%d": 1, "%1$s": 1, "%(name)s": 1, "{0}": 1, "{name}": 1}
    sources = ["Could not open %s", "Copy %d of %d", "Folder {0}", "No placeholder"]
    hypotheses = ["Konnte %s nicht öffnen", "Kopie %d von", "Ordner", "Kein Platzhalter %s"]
    report = placeholder_report(sources, hypotheses).to_json()
    assert report == {"sources_with_placeholders": 3, "placeholders": 4, "kept": 2, "kept_share": 0.5,
                      "sentences_all_kept_share": pytest.approx(1 / 3)}
