"""Data augmentation for small training sets.

- `eda` (Wei & Zou 2019): each new copy applies one of synonym replacement, random insertion of a
  synonym, random swap and random deletion to about `alpha` of its words. Synonyms are the nearest
  neighbours (cosine >= 0.5) in word vectors: an embed run or vectors file given with
  `--augment-vectors`; without them the copy uses swap, deletion or insertion of a word of the text.
- `char-noise`: typos (a character dropped, doubled, swapped with the next, or replaced by a
  neighbour), to train or test robustness.
- `back-translate`: paraphrases by a round trip through translation runs (`--augment-via EN-DE,DE-EN`:
  sampled into the pivot language, the way back by beam search), as in UDA (Xie et al. 2019); the
  translating is the caller's (`paraphrase`), since tasks do not run models.
Only training examples are augmented; every copy keeps its label. Seeded, so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from lmforge.errors import InputError

METHODS = ("eda", "char-noise", "back-translate")


class Synonyms:
    def __init__(self, vectors, top: int = 5, threshold: float = 0.5, limit: int = 50_000):
        from lmforge.embeddings.evaluate import Lookup

        self.lookup = Lookup(vectors, limit)
        self.top, self.threshold = top, threshold
        self.cache: dict[str, list[str]] = {}

    def of(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self.cache:
            row = self.lookup.get(key)
            found: list[str] = []
            if row is not None:
                scores = self.lookup.unit @ self.lookup.unit[row]
                scores[row] = -1
                best = np.argsort(-scores)[:self.top]
                found = [self.lookup.words[i] for i in best if scores[i] >= self.threshold]
            self.cache[key] = found
        return self.cache[key]


def eda(text: str, rng: random.Random, synonyms: Synonyms | None, alpha: float = 0.1) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    n = max(1, round(alpha * len(words)))
    operation = rng.choice(["synonym", "insert", "swap", "delete"] if synonyms else ["insert", "swap", "delete"])
    words = list(words)
    if operation == "synonym":
        candidates = [i for i, w in enumerate(words) if synonyms.of(w)]
        for i in rng.sample(candidates, min(n, len(candidates))):
            words[i] = rng.choice(synonyms.of(words[i]))
    elif operation == "insert":
        for _ in range(n):
            source = rng.choice(words)
            options = synonyms.of(source) if synonyms else []
            words.insert(rng.randrange(len(words) + 1), rng.choice(options) if options else source)
    elif operation == "swap":
        for _ in range(n):
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
    else:
        kept = [w for w in words if rng.random() > alpha]
        words = kept or [rng.choice(words)]
    return " ".join(words)


KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


def char_noise(text: str, rng: random.Random, rate: float = 0.05) -> str:
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        if c.isalpha() and rng.random() < rate:
            kind = rng.randrange(4)
            if kind == 0:                       # drop
                i += 1
                continue
            if kind == 1:                       # double
                out += [c, c]
            elif kind == 2 and i + 1 < len(chars):   # swap with the next
                out += [chars[i + 1], c]
                i += 2
                continue
            else:                               # a neighbouring key
                k = KEYBOARD.find(c.lower())
                out.append(KEYBOARD[(k + rng.choice([-1, 1])) % len(KEYBOARD)] if k >= 0 else c)
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def augment_examples(examples: list, method: str, factor: float, seed: int, synonyms: Synonyms | None = None,
                     paraphrase=None) -> list:
    """The examples and (factor - 1) x as many augmented copies (factor 2 doubles the set). `paraphrase(texts,
    seed) -> texts` rewrites a list of texts (back-translation); copy k of the set uses seed + k."""
    if method not in METHODS:
        raise InputError(f"--augment {method}: choose {', '.join(METHODS)}.")
    if factor < 1:
        raise InputError(f"--augment-factor {factor}: must be at least 1 (1 adds nothing, 2 doubles the data).")
    if method == "back-translate" and paraphrase is None:
        raise InputError("--augment back-translate needs the translation runs: --augment-via RUN1,RUN2 (into a pivot "
                         "language and back).")
    extra = round((factor - 1) * len(examples))
    sources = [examples[k % len(examples)] for k in range(extra)]
    if method == "back-translate":
        return list(examples) + _paraphrased(sources, len(examples), seed, paraphrase)
    rng = random.Random(seed)
    copies = []
    for source in sources:
        change = (lambda t: eda(t, rng, synonyms)) if method == "eda" else (lambda t: char_noise(t, rng))
        copies.append(replace(source, text=change(source.text),
                              text2=change(source.text2) if source.text2 is not None else None,
                              source=f"{source.source} (augmented)"))
    return list(examples) + copies


def _paraphrased(sources: list, n: int, seed: int, paraphrase) -> list:
    """Each pass over the set (n examples) is paraphrased with its own seed, so a second copy differs."""
    copies = []
    for first in range(0, len(sources), n):
        chunk = sources[first:first + n]
        texts = paraphrase([s.text for s in chunk], seed + first // n)
        seconds = paraphrase([s.text2 for s in chunk if s.text2 is not None], seed + first // n) \
            if any(s.text2 is not None for s in chunk) else []
        pairs = iter(seconds)
        copies += [replace(s, text=t, text2=next(pairs) if s.text2 is not None else None,
                           source=f"{s.source} (back-translated)") for s, t in zip(chunk, texts)]
    return copies
