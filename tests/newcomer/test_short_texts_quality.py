"""The repetition rules count n-grams that repeat: a short review whose n-grams are all distinct is not
repetitive (its length is for the length rules), a review that repeats a phrase is."""

import pytest

from lmforge.data.documents import Document
from lmforge.data.quality import QualityConfig, gopher_repetition

pytest.importorskip("jieba")

SHORT_REVIEWS = ["交通方便，房间比较干静宽敞，总体来讲还说得过去。", "服务员态度很好，早餐种类也不少，下次还会再来住。",
                 "Great little phone, the battery lasts all day."]


@pytest.mark.parametrize("lang", ["zh", None])
def test_a_short_review_is_not_repetitive(lang):
    for text in SHORT_REVIEWS:
        doc = Document(text, "r", "s", {"lang": lang} if lang else {})
        assert gopher_repetition(doc, QualityConfig()) is None, text


def test_a_repeated_phrase_is_still_rejected():
    doc = Document("太好了，太好了，太好了，太好了，太好了，太好了，太好了，真的太好了。", "r", "s", {"lang": "zh"})
    assert gopher_repetition(doc, QualityConfig()).startswith("gopher_")
    english = Document("buy now buy now buy now buy now buy now, the best deal", "r", "s")
    assert gopher_repetition(english, QualityConfig()) == "gopher_top_2gram"
