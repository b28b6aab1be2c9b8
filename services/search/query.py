"""Searching: the composable match, suggestions, and the API's ranked product list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, desc, func, or_, select
from sqlalchemy.orm import Session

from domain import Division, Product, ProductStatus

from . import store
from .text import (
    W_NAME_PARTS,
    ParsedQuery,
    Term,
    correction_candidates,
    deletion_keys,
    normalize,
    parse_query,
    replace_word,
    runs,
    split_syllables,
    typo_cost,
)

MAX_HIGHLIGHT_WORDS = 200
POSTED_ENOUGH = 200  # ten pages of results


@dataclass(frozen=True)
class SearchMatch:
    """What matched a query, to compose into a products query.

    `subquery` has columns product_id and rank (higher is better; integer, deterministic for a
    query, so (rank, product_id) is a keyset). Order by subquery.c.rank and subquery.c.product_id,
    both descending: that is the postings' index order, read without sorting (PostgreSQL also
    sees Product.id as equal; SQLite does not). It holds products of every status: filter them.
    `terms` are the Chinese strings to highlight; `corrected` the query actually searched when
    the one typed found nothing and a pinyin typo was corrected.
    """

    subquery: Subquery
    terms: list[str]
    corrected: str | None = None


@dataclass(frozen=True)
class SearchHit:
    product: Product
    rank: float
    county_name: str


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    corrected: str | None = None
    terms: list[str] = field(default_factory=list)


def matches(session: Session, q: str) -> SearchMatch | None:
    """The products matching q (Chinese, full pinyin or initials), ranked; None if q has nothing to search."""
    parsed = parse_query(q)
    if not parsed.terms:
        return None
    found = _plan(session, parsed)
    corrected = None
    if found is None and any(t.is_ascii for t in parsed.terms):
        fixed = _corrected(session, parsed)
        if fixed is not None and (found := _plan(session, fixed)) is not None:
            parsed, corrected = fixed, fixed.text
    if found is None:
        found = parsed, store.ranked_select(session, parsed.terms)  # nothing: an empty result
    used, ranked = found
    return SearchMatch(
        subquery=ranked.subquery("search_matches"),
        terms=_highlight_terms(session, used.terms),
        corrected=corrected,
    )


def _plan(session: Session, parsed: ParsedQuery) -> tuple[ParsedQuery, Select[Any]] | None:
    """How to find and rank the query's products, or None if nothing matches it.

    One word with many exact matches: those, straight from the rank-ordered postings (its weaker
    matches would rank below the first POSTED_ENOUGH anyway; leaving them out keeps a broad
    query's cost flat as the catalog grows). Otherwise every alternative, ranked per document;
    characters and syllables taken apart only if nothing else matches.
    """
    if len(parsed.terms) == 1:
        token = parsed.terms[0].text
        if store.posted_count(session, token, POSTED_ENOUGH) >= POSTED_ENOUGH:
            return parsed, store.posted_select(token)
    for candidate in dict.fromkeys((parsed.without_fallbacks(), parsed)):
        found = store.matching(session, candidate.terms)
        if found is not None:
            return candidate, found
    return None


def search(
    session: Session, q: str, limit: int = 20, *, where: Sequence[ColumnElement[bool]] = ()
) -> SearchResults:
    """Active products matching q, best first, with the county each comes from; `where`: more
    conditions on Product (services.browse.search_hits narrows to a campaign's products)."""
    match = matches(session, q)
    if match is None:
        return SearchResults([])
    ranked = match.subquery
    rows = session.execute(
        select(Product, ranked.c.rank)
        .join(ranked, ranked.c.product_id == Product.id)
        .where(Product.status == ProductStatus.ACTIVE, *where)
        .order_by(ranked.c.rank.desc(), ranked.c.product_id.desc())  # the postings index order
        .limit(limit)
    ).all()
    codes = {p.county_code for p, _ in rows}
    query = select(Division.code, Division.name).where(Division.code.in_(codes))
    counties = {code: name for code, name in session.execute(query)}
    hits = [SearchHit(p, float(rank), counties.get(p.county_code, "")) for p, rank in rows]
    return SearchResults(hits, match.corrected, match.terms)


def search_products(session: Session, q: str, limit: int = 20) -> list[tuple[Product, float]]:
    """Active products matching q with their rank, best first."""
    return [(hit.product, hit.rank) for hit in search(session, q, limit).hits]


def suggest(session: Session, prefix: str, limit: int = 8) -> list[str]:
    """Names of active products for what has been typed so far: Chinese, pinyin or initials."""
    parsed = parse_query(prefix, prefix_last=True)
    if not parsed.terms or (len(parsed.terms) == 1 and parsed.text.isascii() and len(parsed.text) < 2):
        return []  # one Latin letter matches half the catalog: wait for the next
    ranked = None
    typed = runs(normalize(prefix))
    if len(typed) == 1:  # 走地 is the start of 走地鸡, not 走 and 地
        ranked = store.posted_completions(session, typed[0], POSTED_ENOUGH)
    if ranked is None:
        ranked = store.ranked_select(session, parsed.terms)
    found = ranked.subquery("search_matches")
    best = func.max(found.c.rank).label("best")
    rows = session.execute(
        select(Product.name, best)
        .join(found, found.c.product_id == Product.id)
        .where(Product.status == ProductStatus.ACTIVE)
        .group_by(Product.name)
        .order_by(desc(best), Product.name)
        .limit(limit)
    ).all()
    return [name for name, _ in rows]


def _corrected(session: Session, parsed: ParsedQuery) -> ParsedQuery | None:
    """The query with each unknown pinyin word replaced by the nearest indexed one, if any."""
    words = [t.text for t in parsed.terms if t.is_ascii and t.text.isalpha() and len(t.text) >= 3]
    if not words:
        return None
    pinyin = store.search_words.c.pinyin
    known = set(session.scalars(select(pinyin).where(pinyin.in_(words))))
    text = parsed.text
    for word in words:
        if word in known:
            continue
        keys = sorted(deletion_keys(word))
        fuzzy = store.search_fuzzy.c
        candidates = correction_candidates(
            word, session.scalars(select(fuzzy.pinyin).where(fuzzy.key.in_(keys)).distinct()).all()
        )
        if candidates:
            # Among the equally close, the word more products use: lizji is lizhi, not liuji.
            close = [c for c in candidates[:5] if typo_cost(word, c) == typo_cost(word, candidates[0])]
            best = max(close, key=lambda c: (store.posted_count(session, c, 1000), -close.index(c)))
            text = replace_word(text, word, best)
    if text == parsed.text:
        return None
    return parse_query(text)


def _highlight_terms(session: Session, terms: Sequence[Term]) -> list[str]:
    """Chinese strings to mark: the Chinese query words, and the words whose pinyin or initials matched."""
    found: dict[str, None] = {}
    latin: list[str] = []
    for term in terms:
        if not term.is_ascii:
            found[term.text] = None
            for alt in term.alts:
                if alt.weight == W_NAME_PARTS:
                    found.update((c.token, None) for c in alt.conds if len(c.token) >= 2)
        elif term.text.isalpha():
            latin.append(term.text)
    if not latin:
        return list(found)
    words = store.search_words.c
    conditions = []
    for token in latin:
        conditions += [words.pinyin == token, words.initials == token]
        if len(token) >= 2:
            upper = token + "{"  # the code point after z: a prefix as an index range
            conditions += [and_(words.pinyin >= token, words.pinyin < upper)]
            conditions += [and_(words.initials >= token, words.initials < upper)]
    rows = session.execute(
        select(words.word, words.pinyin, words.initials).where(or_(*conditions)).limit(MAX_HIGHLIGHT_WORDS)
    ).all()
    unspelled: set[str] = set()  # lv, or syllables no indexed word spells: mark their characters
    for token in latin:
        whole = [w for w, p, i in rows if p.startswith(token) or i.startswith(token)]
        found.update((w, None) for w in whole)
        if not whole:
            unspelled.update(split_syllables(token) or ())
    if unspelled:
        found.update(
            (w, None)
            for w in session.scalars(
                select(words.word)
                .where(words.pinyin.in_(sorted(unspelled)), func.length(words.word) == 1)
                .limit(MAX_HIGHLIGHT_WORDS)
            )
        )
    return list(found)
