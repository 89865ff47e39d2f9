"""Reading labelled data: CoNLL-U files through `conllu` (FORM and UPOS; multiword ranges and empty nodes
are not words), end to end through a tagger."""

from __future__ import annotations

from lmforge.tasks.data import read_conll

CONLLU = """# sent_id = 1
# text = Del río vino.
1-2\tDel\t_\t_\t_\t_\t_\t_\t_\t_
1\tDe\tde\tADP\t_\t_\t3\tcase\t_\t_
2\tel\tel\tDET\t_\t_\t3\tdet\t_\t_
3\trío\trío\tNOUN\t_\t_\t4\tnsubj\t_\t_
4\tvino\tvenir\tVERB\t_\t_\t0\troot\t_\t_
4.1\t_\t_\tX\t_\t_\t_\t_\t_\t_
5\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_

# sent_id = 2
1\tLlueve\tllover\tVERB\t_\t_\t0\troot\t_\t_
2\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

"""


def test_conllu_gives_forms_and_universal_tags(tmp_path):
    (tmp_path / "train.conllu").write_text(CONLLU, encoding="utf-8")
    sentences = list(read_conll(tmp_path / "train.conllu"))
    assert [s.words for s in sentences] == [["De", "el", "río", "vino", "."], ["Llueve", "."]]
    assert [s.tags for s in sentences] == [["ADP", "DET", "NOUN", "VERB", "PUNCT"], ["VERB", "PUNCT"]]
    assert sentences[1].source.endswith("train.conllu:sentence 2")


def test_a_tagger_reads_a_conllu_folder(cli, tmp_path):
    for split, copies in (("train", 20), ("valid", 3)):
        (tmp_path / f"{split}.conllu").write_text(CONLLU * copies, encoding="utf-8")
    result = cli("finetune", "--task", "tag", "--model", "most-frequent-tag", "--data", tmp_path, "--out",
                 tmp_path / "run", "--json")
    assert result.code == 0, result.err
    assert result.json()["valid"]["token_accuracy"] == 1.0 and result.json()["valid"]["words"] == 21
