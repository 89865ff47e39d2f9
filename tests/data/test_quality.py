"""Cleaners, quality filters (hand-made documents that pass or fail one rule each) and language id."""

from conftest import make_sentences
from lmforge.data import cleaning, quality
from lmforge.data.documents import Document
from lmforge.data.language import identify

Q = quality.QualityConfig()
GOOD = ("The river runs through the valley and the village stands near the water. "
        "People have lived there with their animals for a very long time. ") * 5  # repetitive but word-ok


def doc(text):
    return Document(text, "x", "test")


PROSE = """The northern rivers run cold and clear through the old forests of the valley.
Every spring the snow melts, and the water rises over the stones near the village.
Farmers who have lived there for generations say that the floods were worse in their childhood.
Engineers built a dam upstream in the last century, which changed the rhythm of the seasons.
Today, visitors come to walk along the banks and to watch the birds that nest in the reeds.
Nobody knows how long the quiet will last, but for now the valley is a calm and beautiful place."""


def test_good_prose_passes_every_filter():
    d = doc(PROSE)
    assert quality.gopher_quality(d, Q) is None
    assert quality.gopher_repetition(d, Q) is None
    assert quality.c4_lines(d, Q) is None
    assert d.text == PROSE


def test_gopher_quality_rules():
    assert quality.gopher_quality(doc("too few words here"), Q) == "gopher_short_document"
    assert quality.gopher_quality(doc("a b c d e f g h " * 20), Q) == "gopher_mean_word_length"
    assert quality.gopher_quality(doc("#tag word " * 40), Q) == "gopher_symbol_word_ratio"
    bullets = "\n".join("• item with several words in it" for _ in range(30))
    assert quality.gopher_quality(doc(bullets), Q) == "gopher_bullet_lines"
    ellipsis = "\n".join("the story goes on and on with words..." for _ in range(30))
    assert quality.gopher_quality(doc(ellipsis), Q) in ("gopher_ellipsis_lines", "gopher_symbol_word_ratio")
    no_stop = " ".join(["quantum", "chromodynamics", "lattice", "simulation", "results"] * 12)
    assert quality.gopher_quality(doc(no_stop), Q) == "gopher_stop_words"


def test_gopher_repetition_rules():
    assert quality.gopher_repetition(doc("same line here\n" * 10 + "other line"), Q) == "gopher_duplicate_lines"
    spam = " ".join(["buy cheap watches now"] * 40)
    assert quality.gopher_repetition(doc(spam), Q).startswith("gopher_")


def test_c4_rules_drop_documents_and_lines():
    assert quality.c4_lines(doc(GOOD + " lorem ipsum dolor."), Q) == "c4_lorem_ipsum"
    assert quality.c4_lines(doc(GOOD + " function() { return 1; }"), Q) == "c4_curly_bracket"
    d = doc("Menu\nPlease enable javascript to view this site.\n" + ".\n".join(
        f"This is proper sentence number {i} of the text" for i in range(6)) + ".")
    assert quality.c4_lines(d, Q) is None
    assert "Menu" not in d.text and "javascript" not in d.text and d.text.count("proper sentence") == 6
    assert quality.c4_lines(doc("One sentence only."), Q) == "c4_too_few_sentences"


def test_cleaners():
    assert cleaning.fix_unicode(doc("cafÃ© and â€œquotesâ€\x9d")).text == 'café and "quotes"'
    boiler = doc("We use cookies. Accept all\nHome | News | Sports | About\nReal content stays here.")
    assert cleaning.remove_boilerplate_lines(boiler).text == "Real content stays here."
    masker = cleaning.PIIMasker()
    masked = masker(doc("Mail bob.smith@example.com or call 555-123-4567, server 192.168.0.12 (not 999.1.1.1)."))
    assert masked.text == "Mail <EMAIL> or call <PHONE>, server <IP> (not 999.1.1.1)."
    assert masker.counts == {"email": 1, "ip_address": 1, "phone": 1}
    classic = cleaning.remove_stopwords(cleaning.strip_symbols(cleaning.lowercase(doc("The Cat, and THE dog!"))))
    assert classic.text == "cat dog"


def test_language_identification():
    import random

    assert identify(make_sentences(random.Random(0), 5))[0] == "en"
    lang, prob = identify("Това е българско изречение за времето днес и за града.")
    assert lang == "bg" and prob > 0.9


CHINESE = """北方的河流穿过古老的森林，清澈而寒冷。每到春天，积雪融化，河水漫过村庄附近的石头。
在这里生活了几代人的农民说，他们小时候的洪水比现在更大。上个世纪，工程师在上游修建了一座水坝，改变了季节的节奏。
如今，游客们沿着河岸散步，观看在芦苇中筑巢的鸟儿。没有人知道这份宁静会持续多久，但现在山谷是一个平静而美丽的地方。
老人们常常坐在桥边，讲述过去的故事。孩子们在夏天的傍晚跑到河边捉鱼，直到天色变暗才回家。"""


def test_chinese_prose_passes_and_chinese_spam_is_rejected():
    d = doc(CHINESE)
    assert quality.gopher_quality(d, Q) is None       # was gopher_short_document: a line was one "word"
    assert quality.gopher_repetition(d, Q) is None
    assert quality.c4_lines(d, Q) is None and "北方的河流" in d.text
    spam = "\n".join(["点击这里立即购买最便宜的手机，限时优惠！"] * 30)
    assert quality.gopher_repetition(doc(spam), Q) == "gopher_duplicate_lines"
    assert quality.gopher_quality(doc("点击购买"), Q) == "gopher_short_document"


def test_prepare_keeps_chinese_documents_with_quality_filters_on(tmp_path, cli):
    import json

    with open(tmp_path / "zh.jsonl", "w", encoding="utf-8") as handle:
        for i in range(20):
            handle.write(json.dumps({"text": f"第{i}篇。" + CHINESE.replace("北方", f"第{i}条北方")},
                                    ensure_ascii=False) + "\n")
    result = cli("prepare", tmp_path / "zh.jsonl", "--out", tmp_path / "out", "--quality-filters", "on",
                 "--near-dedup", "false", "--val-fraction", "0")
    assert result.code == 0, result.err
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert sum(stats["docs_out"].values()) == 20, stats["rejected_docs"]
    assert stats["languages"] == {"zh": 20} and stats["languages_kept"] == {"zh": 20}
    assert "zh 20 (100% kept)" in result.err


def test_min_chars_counts_a_chinese_character_as_three():
    keep = cleaning.min_chars(32)
    assert keep(doc("这家餐厅的菜非常好吃，服务也很周到。"))            # 18 characters: a whole review
    assert not keep(doc("short English review."))                     # 21 characters
    assert keep(doc("x" * 32)) and not keep(doc("好吃"))


GERMAN = """Der Fluss fließt kalt und klar durch die alten Wälder im Norden des Tals.
Jeden Frühling schmilzt der Schnee, und das Wasser steigt über die Steine beim Dorf.
Die Bauern, die seit Generationen dort leben, sagen, dass die Hochwasser in ihrer Kindheit schlimmer waren.
Im letzten Jahrhundert wurde flussaufwärts ein Damm gebaut, der den Rhythmus der Jahreszeiten veränderte.
Heute kommen Besucher, um am Ufer zu wandern und die Vögel im Schilf zu beobachten."""
CITIES = "、".join("北京 上海 广州 深圳 天津 重庆 成都 武汉 南京 杭州 西安 苏州 郑州 长沙 沈阳 青岛 宁波 东莞 无锡 "
                  "昆明 大连 厦门 合肥 佛山 福州 哈尔滨 济南 温州 长春 石家庄 常州 泉州 南宁 贵阳 南昌 南通 金华 "
                  "徐州 太原 嘉兴 烟台 惠州 保定 台州 中山 绍兴 乌鲁木齐 潍坊 兰州 珠海 海口 扬州 洛阳 临沂 唐山 "
                  "镇江 盐城".split())


def identified(text, lang):
    d = doc(text)
    d.meta["lang"] = lang
    return d


def test_identified_languages_use_fineweb2_thresholds_and_stop_words():
    from lmforge.data.language_filters import words_of

    # German prose has none of the English stop words Gopher asks for; FineWeb-2's German list it has
    assert quality.gopher_quality(doc(GERMAN), Q) == "gopher_stop_words"
    assert quality.gopher_quality(identified(GERMAN, "de"), Q) is None
    assert quality.gopher_repetition(identified(GERMAN, "de"), Q) is None
    # Chinese is split by jieba and must hold some of FineWeb-2's Chinese stop words (的, 在, 是, ...)
    assert quality.gopher_quality(identified(CHINESE, "zh"), Q) is None
    assert quality.gopher_repetition(identified(CHINESE, "zh"), Q) is None
    assert quality.gopher_quality(doc(CITIES), Q) is None                   # characters: no stop-word rule
    assert quality.gopher_quality(identified(CITIES, "zh"), Q) == "gopher_stop_words"   # a bare list of names
    assert words_of("我们在北京学习。", "jieba") == ("我们", "在", "北京", "学习", "。")
    assert words_of("L'eau d’été", "spaced") == ("L'", "eau", "d'", "été")
    # the looser FineWeb-2 Chinese bound on duplicated lines (0.287 of lines) still catches spam
    spam = "\n".join(["点击这里立即购买最便宜的手机，限时优惠！"] * 30)
    assert quality.gopher_repetition(identified(spam, "zh"), Q) == "gopher_duplicate_lines"
