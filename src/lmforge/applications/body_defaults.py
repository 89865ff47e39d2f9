"""What a fine-tuned family gets when the command names none: epochs, LR, dropout and length per family and
task, the pooling of its head, the vocabulary of the word tokenizer a task body trains, and the fasttext
settings read off the training texts themselves (unspaced script, short or long texts)."""

from __future__ import annotations

import numpy as np

from lmforge.tasks.table import Task

DEFAULT_POOLING = {"bert": "cls", "gpt": "last", "lstm": "last", "gru": "last", "rnn": "last", "bilstm": "max",
                   "bigru": "max", "fasttext": "mean"}
# fine-tuning settings per family where the pretrained-Transformer ones do not suit: a body trained from
# scratch needs more epochs at a higher LR (fastText itself trains 5 epochs at SGD LR 0.1)
FAMILY_DEFAULTS = {"fasttext": dict(epochs=10.0, lr=1e-2, dropout=0.0, max_len=1024, batch_size=32),   # long texts
                   "bilstm": dict(epochs=6.0, lr=2e-3, dropout=0.3, max_len=128, batch_size=32),
                   "bigru": dict(epochs=6.0, lr=2e-3, dropout=0.3, max_len=128, batch_size=32)}
GENERAL_DEFAULTS = dict(epochs=3.0, lr=5e-4, dropout=0.1, max_len=128, batch_size=32)
# tagging with a bidirectional body: 3 epochs of 64 sentences at 3e-3 with model dropout 0.2 reached 95.1% on
# Brown POS valid in under 5 minutes on 2 cores (6 epochs of 32 at 2e-3, dropout 0.3: 94.9% after 8 minutes)
TASK_FAMILY_DEFAULTS = {("tag", body): dict(epochs=3.0, lr=3e-3, batch_size=64) for body in ("bilstm", "bigru")}
TASK_MODEL_DEFAULTS = {**{("tag", body): dict(dropout=0.2) for body in ("bilstm", "bigru")},
                       # two texts read as one sequence: mark the tokens the other text holds (DrQA)
                       **{(task, body): dict(match_features=True) for task in ("qa", "pair")
                          for body in ("bilstm", "bigru")}}
BIDIRECTIONAL = ("bilstm", "bigru")
WORD_VOCABULARY = 50_000   # words kept by the word tokenizer a task body trains when given none
WORDPIECE_VOCABULARY = 16_000   # tagging: frequent words whole, the rest in pieces (measured on Brown POS)


UNSPACED_NGRAMS = 3   # fasttext on unspaced text: its tokens are characters, so n-grams up to 3 characters
# fasttext on short spaced texts (sentences, UI messages): each token's character n-grams of 2-5 characters
# (fastText's -minn/-maxn; the range of the TF-IDF baseline's char_wb features). bench/default_commands.py,
# 3 seeds, valid (test): language id 0.9947 -> 0.9965 (0.9931 -> 0.9959), sentiment_uci_en 0.823 -> 0.835
# (0.852 -> 0.821, a wash); on long documents (spam e-mail) 0.993 -> 0.989 (0.980 -> 0.978), 135 s a command.
SHORT_TEXT_CHAR_NGRAMS = (2, 5)
SHORT_TEXT_WORDS = 64   # median words per training text at most this: "short"


def data_defaults(family: str, task: Task, train_items) -> dict:
    """fasttext settings chosen by what the training texts look like (below --model-args): text mostly in an
    unspaced script (Chinese, Japanese, Thai), where the word tokenizer's tokens are single characters, gets
    token n-grams up to 3 (a word of two or three characters), as TF-IDF's character n-grams read them;
    short spaced texts get character n-grams of each word, long ones neither."""
    from lmforge.data.documents import unspaced_share

    if family != "fasttext" or task.word_tokenizer != "word":
        return {}
    texts = task.word_texts(train_items[:2000])
    if unspaced_share("".join(texts)) > 0.5:
        return {"ngrams": UNSPACED_NGRAMS}
    if texts and np.median([len(t.split()) for t in texts]) <= SHORT_TEXT_WORDS:
        low, high = SHORT_TEXT_CHAR_NGRAMS
        return {"min_char_ngram": low, "max_char_ngram": high}
    return {}
