"""Chinese and pinyin text processing for search: pure functions, no database.

One pipeline serves both sides. A product becomes a `Document` of space-separated tokens per
field; a query becomes `Term`s, each a list of weighted alternatives over those fields. The
database layer (services.search.store) only turns both into SQL.

jieba segments with a domain word list (services/search/words.txt) because its default
dictionary splits 农家菜心 into 农家菜+心 and misses 走地鸡 and 单丛茶; pypinyin gives pinyin, with
fixes from the same file for the polyphones it reads wrong in Guangdong place names (长隆, 都斛,
佛冈, 涌, 圩 …).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jieba
from markupsafe import Markup, escape
from pypinyin import Style, lazy_pinyin
from pypinyin.pinyin_dict import pinyin_dict

WORDS_FILE = Path(__file__).with_name("words.txt")

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
# Everything we index or query is a run of ideographs or of ASCII letters and digits; the rest
# (punctuation, spaces, symbols) only separates. The FTS5 unicode61 tokenizer and the tsvector
# literal both take these runs unchanged.
_RUN_RE = re.compile(f"[{_CJK}]+|[a-z0-9]+")
_LETTERS_RE = re.compile("[a-z]+")
_PLACE_SUFFIX_RE = re.compile(
    "(村民委员会|居民委员会|村委会|居委会|街道办事处|街道|社区|管理区|自治县|自治乡|区|县|市|镇|乡|村)$"
)
_ETHNIC_RE = re.compile(f"[{_CJK}]族$")

# Fields of a search document. The database keeps one column (SQLite FTS5) or one lexeme tag
# (PostgreSQL tsvector) per field.
NAME = "name"  # the words of the name and their heads (徐闻菠萝 → 徐闻菠萝, 菠萝)
PARTS = "parts"  # every dictionary word in the name (农家菜心 → 农家, 菜心 …; 农家自种菜心 → 菜心)
PINYIN = "pinyin"  # full pinyin of the name's words and heads, and of the name from each word on
INITIALS = "initials"  # initials of every word, and of the name from each word on
SYLLABLES = "syllables"  # the pinyin syllable of every character of the name
CHARS = "chars"  # every character of the name
PLACES = "places"  # origin (village … city) and category names, their words and pinyin
BODY = "body"  # description words and their pinyin
FIELDS = (NAME, PARTS, PINYIN, INITIALS, SYLLABLES, CHARS, PLACES, BODY)

MAX_QUERY_CHARS = 64
MAX_TERMS = 8
MAX_DESCRIPTION_CHARS = 500
MAX_NAME_LEN = 99  # the rank's tie-break subtracts the name length, capped here
MAX_POSTED_TOKEN = 64
RANK_SCALE = 100  # rank = score × RANK_SCALE − name length: the score always decides first

# Query words that carry no product meaning when other words are present ("我想买荔枝").
STOPWORDS = frozenset("的了和与及或我你想要买请有在是吗呢啊个")


# --- normalisation ------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), lower case, ü → v, Latin tone marks dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text).replace("u\u0308", "v")
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def runs(text: str) -> list[str]:
    """The ideograph runs and ASCII letter/digit runs of normalised text."""
    return _RUN_RE.findall(text)


def is_cjk(token: str) -> bool:
    return bool(token) and not token[0].isascii()


def place_stem(name: str) -> str:
    """A division name as people search it: 增城区 → 增城, 连南瑶族自治县 → 连南, 大黄村委会 → 大黄."""
    stem = name
    for _ in range(2):
        m = _PLACE_SUFFIX_RE.search(stem)
        if m is None or m.start() < 2:
            break
        stem = stem[: m.start()]
    while (m := _ETHNIC_RE.search(stem)) is not None and m.start() >= 2:
        stem = stem[: m.start()]
    return stem


# --- the lexicon: domain words and pinyin fixes -------------------------------------------


@dataclass(frozen=True)
class Lexicon:
    words: tuple[str, ...]  # product words and varieties
    places: frozenset[str]  # place name stems (their characters take the place readings)
    readings: dict[str, tuple[str, ...]]  # word → syllables, where pypinyin is wrong
    place_readings: dict[str, str]  # character → syllable inside place names (长 → chang)


def parse_lexicon(lines: Iterable[str]) -> Lexicon:
    """Read words.txt: `[section]` headers, `#` comments, one word (and optional pinyin) a line."""
    section = ""
    words: list[str] = []
    places: set[str] = set()
    readings: dict[str, tuple[str, ...]] = {}
    place_readings: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        word, *pinyin = line.split()
        word = normalize(word)
        if section == "place-readings":
            place_readings[word] = pinyin[0]
            continue
        if pinyin:
            if len(pinyin) != len(word):
                raise ValueError(f"{WORDS_FILE.name}: {word} needs one syllable per character")
            readings[word] = tuple(pinyin)
        if section == "places":
            places.add(word)
        else:
            words.append(word)
    return Lexicon(tuple(words), frozenset(places), readings, place_readings)


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    with WORDS_FILE.open(encoding="utf-8") as f:
        return parse_lexicon(f)


_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()


def tokenizer() -> jieba.Tokenizer:
    """jieba with the domain words, built once per process (about a second, on first use)."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.initialize()
                lex = lexicon()
                # Places first, so a product word is tuned against them (沙田 vs 沙田柚).
                for word in sorted(lex.places) + list(lex.words) + sorted(lex.readings):
                    tok.add_word(word)
                _tokenizer = tok
    return _tokenizer


@lru_cache(maxsize=65536)
def cut(run: str) -> tuple[str, ...]:
    """The words of an ideograph run, precise mode (no HMM: the same text always cuts the same)."""
    return tuple(tokenizer().cut(run, HMM=False))


@lru_cache(maxsize=65536)
def cut_for_search(run: str) -> tuple[str, ...]:
    """The words of a run plus the dictionary words inside them (农家菜心 → 农家, 菜心, 农家菜心)."""
    seen: dict[str, None] = {}
    for word in tokenizer().cut_for_search(run, HMM=False):
        seen.setdefault(word, None)
    return tuple(seen)


# --- pinyin -----------------------------------------------------------------------------


def _toneless(reading: str) -> str:
    decomposed = unicodedata.normalize("NFD", reading.lower()).replace("u\u0308", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def syllables(word: str) -> tuple[str, ...]:
    """One toneless syllable per character of an ideograph word, ü as v; '' where unknown."""
    lex = lexicon()
    fixed = lex.readings.get(word)
    if fixed is not None:
        return fixed
    result = lazy_pinyin(word, style=Style.NORMAL)
    if len(result) != len(word):  # a character pypinyin does not know came back grouped
        result = [lazy_pinyin(ch, style=Style.NORMAL)[0] for ch in word]
    out = [s if _LETTERS_RE.fullmatch(s) else "" for s in result]
    if word in lex.places:
        out = [lex.place_readings.get(ch, s) for ch, s in zip(word, out, strict=True)]
    return tuple(out)


def u_forms(pinyin: str) -> tuple[str, ...]:
    """绿 is typed lv and lu: the v spelling and the u spelling."""
    return (pinyin, pinyin.replace("v", "u")) if "v" in pinyin else (pinyin,)


def full_pinyin(sylls: Sequence[str]) -> tuple[str, ...]:
    return u_forms("".join(sylls))


def initials(sylls: Sequence[str]) -> str:
    return "".join(s[0] for s in sylls if s)


@lru_cache(maxsize=1)
def valid_syllables() -> frozenset[str]:
    """Every toneless Mandarin syllable with a vowel (both v and u spellings of ü)."""
    found: set[str] = set()
    for value in pinyin_dict.values():
        for reading in value.split(","):
            s = _toneless(reading)
            if _LETTERS_RE.fullmatch(s) and any(v in s for v in "aeiouv"):
                found.update(u_forms(s))
    return frozenset(found)


@lru_cache(maxsize=4096)
def split_syllables(text: str) -> tuple[str, ...] | None:
    """lizhi → (li, zhi): the split into the fewest valid syllables, longest first; None if none."""
    if not _LETTERS_RE.fullmatch(text):
        return None
    valid = valid_syllables()
    n = len(text)
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[n] = ()
    for i in range(n - 1, -1, -1):
        for j in range(min(n, i + 6), i, -1):
            rest = best[j]
            if rest is not None and text[i:j] in valid:
                candidate = (text[i:j], *rest)
                current = best[i]
                if current is None or len(candidate) < len(current):
                    best[i] = candidate
    return best[0]


# --- ranking weights ------------------------------------------------------------------

# Weights: exact Chinese word and full pinyin first, then prefixes, places, initials,
# syllables, description. A term scores its best alternative; a query sums its terms.
W_NAME = 100
W_PINYIN = 90
W_PART = 80
W_NAME_PARTS = 70
W_NAME_PREFIX = 60
W_PINYIN_PREFIX = 55
W_PLACE = 40
W_INITIALS = 35
W_SYLLABLE = 32
W_INITIALS_PREFIX = 30
W_SYLLABLES = 25
W_BODY = 20
W_BODY_PINYIN = 15
W_CHARS = 10

# Exact tokens of these fields are also kept in rank order (services.search.store postings), so
# that a broad one-word query reads its best matches off an index instead of ranking them all.
POSTED_WEIGHTS = {NAME: W_NAME, PINYIN: W_PINYIN, PARTS: W_PART, PLACES: W_PLACE, INITIALS: W_INITIALS}


# --- documents --------------------------------------------------------------------------


@dataclass
class Document:
    """A product's search document: tokens per field, the name length, the vocabulary it adds."""

    fields: dict[str, list[str]]
    name_len: int
    # (word, pinyin, initials) of the Chinese words, for highlighting pinyin matches.
    words: set[tuple[str, str, str]] = field(default_factory=set)
    # token → best weight, for the exact tokens kept in rank order (POSTED_WEIGHTS)
    posted: dict[str, int] = field(default_factory=dict)

    def postings(self) -> list[tuple[str, int]]:
        """(token, rank) pairs: a one-word query's rank for this product is read off these."""
        return [(token, weight * RANK_SCALE - self.name_len) for token, weight in self.posted.items()]

    def text(self, name: str) -> str:
        """The field as stored: tokens between single spaces, with a space at each end."""
        return f" {' '.join(self.fields[name])} " if self.fields[name] else ""


class _Tokens:
    """An ordered set of tokens."""

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}

    def add(self, *tokens: str) -> None:
        for token in tokens:
            if token:
                self._seen.setdefault(token, None)

    def list(self) -> list[str]:
        return list(self._seen)


def _word_entries(word: str) -> list[tuple[str, str, str]]:
    sylls = syllables(word)
    if not all(sylls):
        return []
    return [(word, p, initials(sylls)) for p in full_pinyin(sylls)]


@lru_cache(maxsize=16384)
def _place_tokens(name: str) -> tuple[tuple[str, ...], frozenset[tuple[str, str, str]]]:
    """Tokens of a place or category name: the name, its stem and the stem's words, with pinyin.

    增城区 gives 增城区, 增城, 区 and zengchengqu, zengcheng: the words inside the suffix
    (村委会 → 村委, 委会) would only add noise shared by every village.
    """
    tokens = _Tokens()
    words: set[tuple[str, str, str]] = set()
    norm = normalize(name)
    stem = place_stem(norm)
    for run in runs(norm):
        tokens.add(run)
        if is_cjk(run):
            tokens.add(*full_pinyin(syllables(run)))
    if stem != norm:
        suffix = norm[len(stem) :]
        if suffix[-1] in "区县市镇乡":  # 增城区 → 区, 连南瑶族自治县 → 县
            tokens.add(suffix[-1])
        elif "村" in suffix:  # 村委会, 村民委员会
            tokens.add("村")
    for run in runs(stem):
        if not is_cjk(run):
            continue
        for word in dict.fromkeys((run, *cut_for_search(run))):
            tokens.add(word)
            if len(word) >= 2:
                tokens.add(*full_pinyin(syllables(word)))
                words.update(_word_entries(word))
    return tuple(tokens.list()), frozenset(words)


@lru_cache(maxsize=65536)
def _name_fields(
    name: str,
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], int, frozenset[tuple[str, str, str]]]:
    fields = {f: _Tokens() for f in (NAME, PARTS, PINYIN, INITIALS, SYLLABLES, CHARS)}
    words: set[tuple[str, str, str]] = set()
    norm = normalize(name)
    sylls: list[str] = []  # one syllable per ideograph of the name, read in context
    starts: set[int] = set()  # where a word or a word inside a word begins, in `sylls`
    for run in runs(norm):
        if not is_cjk(run):
            fields[NAME].add(run)
            fields[PARTS].add(run)
            continue
        base = len(sylls)
        ends: dict[int, int] = {}  # end → start of each word of the precise cut
        for word, start, end in tokenizer().tokenize(run, HMM=False):
            ends[end] = start
            starts.add(base + start)
            word_sylls = syllables(word)  # in context: 长 of 长隆 is chang, not zhang
            sylls.extend(word_sylls)
            fields[NAME].add(word)
            fields[PINYIN].add(*full_pinyin(word_sylls))
            for ch, syllable in zip(word, word_sylls, strict=True):
                fields[CHARS].add(ch)
                fields[SYLLABLES].add(*u_forms(syllable))
                if syllable:  # so that lv can highlight the 绿 of 挂绿
                    words.update((ch, form, syllable[0]) for form in u_forms(syllable))
        # The words inside words (search mode), and every dictionary word anywhere in the run:
        # 农家自种菜心 cuts as 农家|自|种菜|心, yet it is 菜心 that is sold.
        spans = {(start, end) for _, start, end in tokenizer().tokenize(run, mode="search", HMM=False)}
        spans |= {(k, j + 1) for k, js in tokenizer().get_DAG(run).items() for j in js if j + 1 - k >= 2}
        for start, end in sorted(spans):
            word = run[start:end]
            starts.add(base + start)
            word_sylls = tuple(sylls[base + start : base + end])
            fields[PARTS].add(word)
            if word not in lexicon().places:
                # lz is both 荔枝 and 连州: on a produce market the product word is what is
                # meant; the place still matches as the prefix of the name's initials (lzcx…).
                fields[INITIALS].add(initials(word_sylls))
            words.update((word, p, initials(word_sylls)) for p in full_pinyin(word_sylls) if all(word_sylls))
            if end in ends and ends[end] <= start:
                # The head of a word: 菠萝 of 徐闻菠萝 is a pineapple, 菠萝 of 菠萝蜜 is not.
                fields[NAME].add(word)
                fields[PINYIN].add(*full_pinyin(word_sylls))
    posted = {f: tuple(fields[f].list()) for f in (NAME, PARTS, PINYIN, INITIALS)}  # not the tails
    # The name from each word on, so that a long pinyin or initials input matches as a prefix:
    # zengchengg… and zcgl… find 增城挂绿荔枝, gualvli… and gllz find it from 挂绿 on.
    for start in sorted(starts):
        fields[PINYIN].add(*full_pinyin(sylls[start:]))
        fields[INITIALS].add(initials(sylls[start:]))
    name_len = min(len(re.sub(r"\s+", "", norm)), MAX_NAME_LEN)
    return {k: tuple(v.list()) for k, v in fields.items()}, posted, name_len, frozenset(words)


def build_document(
    name: str, description: str = "", places: Iterable[str] = (), minor_places: Iterable[str] = ()
) -> Document:
    """The search document of a product from its name, description and place/category names.

    `places` (category, city, county, town) are also posted; `minor_places` (the village) are
    only searchable, to keep the postings small.
    """
    name_fields, posted_fields, name_len, name_words = _name_fields(name)
    fields = {f: list(name_fields.get(f, ())) for f in FIELDS}
    words = set(name_words)
    place_tokens = _Tokens()
    posted_places = _Tokens()
    for place, major in [(p, True) for p in places] + [(p, False) for p in minor_places]:
        tokens, entries = _place_tokens(place)
        place_tokens.add(*tokens)
        if major:  # not 区, 镇 …: every product of the province has one
            posted_places.add(*(t for t in tokens if len(t) > 1))
        words.update(entries)
    fields[PLACES] = place_tokens.list()
    posted: dict[str, int] = {}
    for f, tokens in (*posted_fields.items(), (PLACES, tuple(posted_places.list()))):
        weight = POSTED_WEIGHTS[f]
        for token in tokens:
            if len(token) <= MAX_POSTED_TOKEN and posted.get(token, 0) < weight:
                posted[token] = weight
    body = _Tokens()
    for run in runs(normalize(description[:MAX_DESCRIPTION_CHARS])):
        if not is_cjk(run):
            body.add(run)
            continue
        for word in cut_for_search(run):
            if len(word) >= 2:
                body.add(word, *full_pinyin(syllables(word)))
    fields[BODY] = body.list()
    return Document(fields, name_len, words, posted)


# --- queries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cond:
    """The document has `token` in `field` (or a token starting with it, when `prefix`)."""

    field: str
    token: str
    prefix: bool = False


@dataclass(frozen=True)
class Alt:
    """One way a term can match: all conditions hold. The term scores its best alternative.

    A `fallback` (characters or syllables taken apart) is tried only when the query finds
    nothing without it: it matches widely and its common characters have long posting lists.
    """

    weight: int
    conds: tuple[Cond, ...]
    fallback: bool = False


@dataclass(frozen=True)
class Term:
    text: str
    alts: tuple[Alt, ...]

    @property
    def is_ascii(self) -> bool:
        return self.text.isascii()


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the normalised query, terms separated by spaces
    terms: tuple[Term, ...]

    @property
    def has_fallbacks(self) -> bool:
        return any(a.fallback for t in self.terms for a in t.alts)

    def without_fallbacks(self) -> ParsedQuery:
        terms = tuple(Term(t.text, tuple(a for a in t.alts if not a.fallback)) for t in self.terms)
        return ParsedQuery(self.text, terms)


def _cover(word: str) -> tuple[list[str], list[str]] | None:
    """Dictionary words inside `word` covering most of it (农家菜心 → 农家 + 菜心), and the rest."""
    if len(word) < 3:
        return None
    starting: dict[int, list[int]] = {}
    for _, start, end in tokenizer().tokenize(word, mode="search", HMM=False):
        if 2 <= end - start < len(word):
            starting.setdefault(start, []).append(end)
    n = len(word)
    # best[i]: (characters left over, parts, parts as (start, end)) for word[i:]
    best: list[tuple[int, int, tuple[tuple[int, int], ...]]] = [(0, 0, ())] * (n + 1)
    for i in range(n - 1, -1, -1):
        left, count, parts = best[i + 1]
        options = [(left + 1, count, parts)]
        for end in starting.get(i, ()):
            left, count, parts = best[end]
            options.append((left, count + 1, ((i, end), *parts)))
        best[i] = min(options)
    _, count, spans = best[0]
    if count == 0:
        return None
    covered = {i for start, end in spans for i in range(start, end)}
    return [word[a:b] for a, b in spans], [ch for i, ch in enumerate(word) if i not in covered]


def _chinese_alts(word: str) -> tuple[Alt, ...]:
    alts = [Alt(W_NAME, (Cond(NAME, word),)), Alt(W_PART, (Cond(PARTS, word),))]
    cover = _cover(word)
    if cover is not None:
        parts, rest = cover
        alts.append(
            Alt(W_NAME_PARTS, tuple(Cond(PARTS, p) for p in parts) + tuple(Cond(CHARS, c) for c in rest))
        )
    alts.append(Alt(W_NAME_PREFIX, (Cond(PARTS, word, prefix=True),)))
    alts.append(Alt(W_PLACE, (Cond(PLACES, word),)))
    if len(word) >= 2:
        alts.append(Alt(W_BODY, (Cond(BODY, word),)))
    alts.append(Alt(W_CHARS, tuple(Cond(CHARS, c) for c in dict.fromkeys(word)), fallback=True))
    return tuple(alts)


def _ascii_alts(token: str, prefix_last: bool) -> tuple[Alt, ...]:
    alts = [Alt(W_NAME, (Cond(NAME, token),))]
    if not _LETTERS_RE.fullmatch(token):  # digits: only literal matches
        alts.append(Alt(W_BODY, (Cond(BODY, token),)))
        return tuple(alts)
    alts.append(Alt(W_PINYIN, (Cond(PINYIN, token),)))
    if len(token) >= 2 or prefix_last:
        alts.append(Alt(W_PINYIN_PREFIX, (Cond(PINYIN, token, prefix=True),)))
    alts.append(Alt(W_PLACE, (Cond(PLACES, token),)))
    alts.append(Alt(W_INITIALS, (Cond(INITIALS, token),)))
    if token in valid_syllables():
        alts.append(Alt(W_SYLLABLE, (Cond(SYLLABLES, token),)))
    if len(token) >= 2 or prefix_last:
        alts.append(Alt(W_INITIALS_PREFIX, (Cond(INITIALS, token, prefix=True),)))
    split = split_syllables(token)
    if split is not None and len(split) >= 2:
        alts.append(Alt(W_SYLLABLES, tuple(Cond(SYLLABLES, s) for s in dict.fromkeys(split)), fallback=True))
    alts.append(Alt(W_BODY_PINYIN, (Cond(BODY, token),)))
    return tuple(alts)


def _query_words(norm: str) -> list[str]:
    words: list[str] = []
    pending_syllables: list[str] = []  # "li zhi" typed with a space is one word

    def flush() -> None:
        if pending_syllables:
            words.append("".join(pending_syllables))
            pending_syllables.clear()

    for run in runs(norm):
        if is_cjk(run):
            flush()
            words.extend(w for w in cut(run) if w.strip())
        elif run in valid_syllables():
            pending_syllables.append(run)
        else:
            flush()
            words.append(run)
    flush()
    meaningful = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(meaningful or words))[:MAX_TERMS]


def parse_query(q: str, *, prefix_last: bool = False) -> ParsedQuery:
    """The terms of a query (all must match). `prefix_last`: the last word is still being typed."""
    words = _query_words(normalize(q[: MAX_QUERY_CHARS * 2])[:MAX_QUERY_CHARS])
    terms = []
    for i, word in enumerate(words):
        last = prefix_last and i == len(words) - 1
        alts = _ascii_alts(word, last) if word.isascii() else _chinese_alts(word)
        terms.append(Term(word, alts))
    return ParsedQuery(" ".join(words), tuple(terms))


# --- typo correction --------------------------------------------------------------------


def max_typo_distance(token: str) -> int:
    return 1 if len(token) <= 5 else 2


def _deletes(token: str) -> set[str]:
    return {token[:i] + token[i + 1 :] for i in range(len(token))}


def deletion_keys(token: str) -> set[str]:
    """The token and what is left after deleting one character (two, for long tokens).

    Two strings within the typo distance share a key (the symmetric-delete method), so the
    corrections of a query token are found by an index lookup, not by scanning a vocabulary.
    """
    keys = {token} | _deletes(token)
    if max_typo_distance(token) >= 2:
        for once in list(keys - {token}):
            keys |= _deletes(once)
    return {k for k in keys if k}


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, transpositions."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POS = {ch: (r, c) for r, row in enumerate(_KEY_ROWS) for c, ch in enumerate(row)}


def _near_keys(a: str, b: str) -> bool:
    """Neighbours on a QWERTY keyboard (h and j, u and i …): the likeliest slip of a finger."""
    (ra, ca), (rb, cb) = _KEY_POS.get(a, (9, 99)), _KEY_POS.get(b, (-9, -99))
    return abs(ra - rb) <= 1 and abs(ca - cb + (ra - rb) * 0.5) <= 1


def _far_substitutions(typed: str, word: str) -> int:
    """Substituted letters that are not a neighbouring key (0 unless the typo is substitutions)."""
    if len(typed) != len(word):
        return 0
    pairs = [(a, b) for a, b in zip(typed, word, strict=True) if a != b]
    if len(pairs) != edit_distance(typed, word):  # a transposition, not substitutions
        return 0
    return sum(1 for a, b in pairs if not _near_keys(a, b))


def typo_cost(typed: str, word: str) -> tuple[int, int]:
    """(edits, edits that are not a slip to a neighbouring key): lower is a likelier typo."""
    return edit_distance(typed, word), _far_substitutions(typed, word)


def correction_candidates(token: str, candidates: Iterable[str]) -> list[str]:
    """Candidates within the typo distance, best first: fewest edits, then slips of a finger to a
    neighbouring key, then the same length, then a–z. The caller may break ties by frequency."""
    limit = max_typo_distance(token)
    scored = sorted(
        (*cost, abs(len(c) - len(token)), c)
        for c in set(candidates)
        if c != token and (cost := typo_cost(token, c))[0] <= limit
    )
    return [c for *_, c in scored]


def best_correction(token: str, candidates: Iterable[str]) -> str | None:
    ranked = correction_candidates(token, candidates)
    return ranked[0] if ranked else None


def replace_word(query_text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![a-z0-9]){re.escape(old)}(?![a-z0-9])", new, query_text, count=1)


# --- highlighting -----------------------------------------------------------------------


def highlight(text: str, terms: Iterable[str]) -> Markup:
    """HTML-escaped `text` with every occurrence of a term wrapped in <mark>."""
    wanted = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
    if not wanted or not text:
        return escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE)
    parts: list[Markup] = []
    pos = 0
    for m in pattern.finditer(text):
        parts.append(escape(text[pos : m.start()]))
        parts.append(Markup("<mark>%s</mark>") % m.group())
        pos = m.end()
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def place_words(divisions: Iterable[tuple[str, str]]) -> set[str]:
    """The place words of (level, name) divisions: cities, counties and towns, as stems."""
    found: set[str] = set()
    for level, name in divisions:
        if level in ("city", "county") or (level == "town" and name.endswith(("镇", "街道", "乡"))):
            stem = place_stem(name)
            if 2 <= len(stem) <= 4:
                found.add(stem)
    return found
