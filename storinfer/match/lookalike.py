"""Look-alike rules: why two questions that embed close may still ask different things.

Sentence embeddings put "Which team represented the AFC?" and "... the NFC?" at cosine 0.94,
and "Super Bowl XLVII" next to "Super Bowl XLVIII" at 0.99. No threshold separates those from
true paraphrases, so after the cosine test a candidate must also agree with the query on:

* numbers and Roman numerals ("50", "fifty", "XLVIII");
* names and codes: capitalised words and acronyms (AFC/NFC, Denver, MVP) must occur in both;
* negation ("not", "never", "n't"...);
* referent-changing modifiers and ordinals present on one side only ("first", "prior",
  "average", "most");
* the question type, where both have one (who / when / where / how many / why / how long...);
* the thing asked for, where both name one ("What *team*..." vs "What *position*...").

The rules are general: no word list of one domain. :func:`conflict` is the first rule that fires, used by
deduplication; :func:`signals` gives every rule's finding, which :mod:`storinfer.match.verify` uses
as hard rules (numbers, names, negation) and as features of its learned score (the others).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

_TOKEN = re.compile(r"(?:[A-Z]\.){2,}|[^\W_]+(?:[’'][^\W_]+)?(?:[.,][0-9]+)*")
_ROMAN = re.compile(r"^M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})$")

# "one" is left out: "one of the..." is rarely a count.
_NUMBER_WORDS = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
    "million": "1000000", "billion": "1000000000",
}
_NEGATIONS = {"not", "no", "never", "none", "neither", "nor", "without", "cannot", "nobody", "nothing"}
# Words that change what is asked about when only one side has them, grouped so that synonyms
# agree ("last" = "final"). Kept short on purpose: each costs some true paraphrases (measured on
# SQuAD by benchmarks/threshold_pairs.py, at f5d32c9).
_MODIFIER_CLASSES = [
    {"previous", "previously", "prior", "before", "earlier", "former"}, {"after", "next", "later"},
    {"most", "highest", "largest", "biggest", "maximum"}, {"least", "lowest", "smallest", "minimum"},
    {"best"}, {"worst"}, {"longest"}, {"shortest"}, {"oldest"}, {"youngest"}, {"fastest"}, {"slowest"},
    {"last", "final", "latest"}, {"first"}, {"second"}, {"third"}, {"fourth"}, {"fifth"}, {"sixth"},
    {"seventh"}, {"eighth"}, {"ninth"}, {"tenth"}, {"once"}, {"twice"}, {"half"}, {"quarter"},
    {"average", "mean"}, {"total", "combined", "overall"}, {"more", "greater"}, {"less", "fewer"},
    {"against"}, {"except"}, {"other", "another"},
]
_PERSON_NOUNS = {"person", "people", "man", "woman", "team", "teams", "group", "company", "organization"}
_TIME_NOUNS = {"year", "years", "day", "date", "month", "time", "season", "decade", "century", "week",
               "era", "period", "hour"}
_PLACE_NOUNS = {"city", "state", "country", "venue", "place", "location", "area", "region", "town",
                "county", "site", "continent", "nation"}
_WH = {"who", "whom", "whose", "what", "which", "when", "where", "why", "how"}


@functools.lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[str, ...]:
    """Words with accents folded ("Beyoncé" -> "Beyonce"); "U.S." -> "US". Kept per text: a lookup reads
    the query's and each candidate's several times, and a hot key's across lookups."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return tuple(t.replace(".", "") if re.fullmatch(r"(?:[A-Z]\.){2,}", t) else t for t in _TOKEN.findall(plain))


@functools.lru_cache(maxsize=65536)
def _fold(token: str) -> str:
    """Case- and plural-insensitive form used to decide whether a word occurs on both sides."""
    t = token.lower().replace("’", "'")
    if t.endswith("'s"):
        t = t[:-2]
    t = t.replace(",", "")
    if len(t) > 3 and t.endswith("s") and not t.endswith("ss") and not t.isdigit():
        t = t[:-1]
    return t


_MODIFIER = {_fold(_w): i for i, group in enumerate(_MODIFIER_CLASSES) for _w in group}


def _numbers(tokens: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for tok in tokens:
        low = tok.lower().replace(",", "")
        if any(ch.isdigit() for ch in low):
            digits = re.sub(r"(st|nd|rd|th|s)$", "", low)
            out.add(digits)
        elif low in _NUMBER_WORDS:
            out.add(_NUMBER_WORDS[low])
        elif tok.isupper() and tok not in ("I", "A") and _ROMAN.match(tok):
            out.add(f"roman:{tok}")
    return out


def _name_spans(tokens: Sequence[str]) -> list[list[str]]:
    """Runs of capitalised words after the first word ("Peyton Manning"), and acronyms anywhere."""
    spans: list[list[str]] = []
    current: list[str] = []
    for i, tok in enumerate(tokens):
        low = tok.lower()
        acronym = len(tok) >= 2 and tok.isupper() and tok.isalpha() and not _ROMAN.match(tok)
        capital = i > 0 and tok[:1].isupper() and not _ROMAN.match(tok)
        if (acronym or capital) and low not in _WH and low not in _NUMBER_WORDS:
            if acronym and current:
                spans.append(current)
                current = []
            current.append(tok)
            if acronym:
                spans.append(current)
                current = []
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    return spans


def _missing_names(spans: list[list[str]], own_folded: set[str], other_spans: list[list[str]],
                   other_folded: set[str]) -> list[str]:
    """Names (``spans``, from :func:`_name_spans`) of one question absent from the other (its
    name spans and folded words). A name counts as present when its head (last word: "Manning"
    of "Peyton Manning") is there, in any case, and the words it lacks there only lead the name
    ("Peyton"), unless the other side leads the same head with words of its own ("Eli Manning",
    "Summit Airlines" / "Juniper Airlines"). "California *State* University" is not "University
    of California"."""
    other_spans = [[_fold(w) for w in span] for span in other_spans]
    out = []
    for span in spans:
        present = [_fold(w) in other_folded for w in span]
        if not present[-1] or any(not p for k, p in enumerate(present) if any(present[:k])):
            out.append(" ".join(span))
        elif not all(present):  # leading words lacking there: does the other name lead with its own?
            head = _fold(span[-1])
            if any(w not in own_folded for o in other_spans if head in o for w in o[: o.index(head)]):
                out.append(" ".join(span))
    return out


@functools.lru_cache(maxsize=16384)
def question_type(text: str) -> str | None:
    """Coarse answer type asked for: person, time, place, quantity, reason, manner... or None."""
    words = [w.lower() for w in _tokens(text)]
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in ("who", "whom", "whose"):
            return "person"
        if w == "when":
            return "time"
        if w == "where":
            return "place"
        if w == "why":
            return "reason"
        if w == "how":
            if nxt in ("many", "much"):
                return "quantity"
            if nxt in ("long",):
                return "duration"
            if nxt in ("old",):
                return "age"
            return "manner"
        if w in ("what", "which"):
            if _fold(nxt) in {_fold(n) for n in _TIME_NOUNS}:
                return "time"
            if _fold(nxt) in {_fold(n) for n in _PLACE_NOUNS}:
                return "place"
            if _fold(nxt) in {_fold(n) for n in _PERSON_NOUNS}:
                return None  # "what team" may be asked as "who": do not decide
            if {"name", "named", "called", "nickname"} & set(words):
                return "name"
            return None
    return None


_AUX = {"is", "was", "are", "were", "do", "does", "did", "has", "have", "had", "will", "would", "can",
        "could", "should", "may", "might", "must", "shall", "the", "a", "an", "of", "kind", "type", "sort"}


_FOCUS_SYNONYMS = {"date": "day", "stadium": "venue", "arena": "venue", "town": "city", "nation": "country",
                   "film": "movie", "firm": "company", "business": "company"}


@functools.lru_cache(maxsize=16384)
def question_focus(text: str) -> str | None:
    """The noun a question asks for: "What *team*...", "Which *city*...", "How many *yards*..."."""
    words = _tokens(text)
    low = [w.lower() for w in words]
    for i, w in enumerate(low):
        if w in ("what", "which") or (w == "how" and i + 1 < len(low) and low[i + 1] in ("many", "much")):
            j = i + 2 if w == "how" else i + 1
            if j < len(low) and low[j] not in _AUX and low[j] not in _WH:
                focus = _fold(words[j])
                return _FOCUS_SYNONYMS.get(focus, focus)
            return None
    return None


RULES = ("numbers", "names", "negation", "modifiers", "question_type", "focus")
_COUNTED = {"time", "quantity", "age", "duration"}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december", "century", "centuries", "decade", "ago", "today", "tomorrow", "yesterday"}


def answer_mismatch(query: str, answer: str | None) -> str | None:
    """Why a stored ``answer`` cannot answer ``query`` by its type, or None: a when / how many /
    how old / how long question needs a number, a date or a time word in its answer."""
    if not answer:
        return None
    q_type = question_type(query)
    if q_type not in _COUNTED:
        return None
    words = {w.lower() for w in _tokens(answer)}
    if any(ch.isdigit() for ch in answer) or words & (set(_NUMBER_WORDS) | _MONTHS | {"one"}) or _numbers(_tokens(answer)):
        return None
    return f"answer has no number or date for a {q_type} question"


def signals(query: str, candidate: str) -> dict[str, str | None]:
    """Each rule's finding for the pair: a reason string where the two differ, else None."""
    qt, ct = _tokens(query), _tokens(candidate)
    out: dict[str, str | None] = dict.fromkeys(RULES)
    qn, cn = _numbers(qt), _numbers(ct)
    if qn != cn:
        out["numbers"] = f"numbers differ: {' '.join(sorted(qn)) or '-'} / {' '.join(sorted(cn)) or '-'}"
    qf, cf = {_fold(t) for t in qt}, {_fold(t) for t in ct}
    qs, cs = _name_spans(qt), _name_spans(ct)
    missing_q, missing_c = _missing_names(qs, qf, cs, cf), _missing_names(cs, cf, qs, qf)
    if missing_q or missing_c:
        out["names"] = f"names differ: {', '.join(missing_q) or '-'} / {', '.join(missing_c) or '-'}"
    q_low = {t.lower() for t in qt} | {"not" for t in qt if t.lower().endswith("n't")}
    c_low = {t.lower() for t in ct} | {"not" for t in ct if t.lower().endswith("n't")}
    if (q_low & _NEGATIONS) != (c_low & _NEGATIONS):
        out["negation"] = "negation differs"
    q_mod = {_MODIFIER[t] for t in qf if t in _MODIFIER}
    c_mod = {_MODIFIER[t] for t in cf if t in _MODIFIER}
    if q_mod != c_mod:
        only_q = sorted(t for t in qf if _MODIFIER.get(t, -1) in q_mod - c_mod)
        only_c = sorted(t for t in cf if _MODIFIER.get(t, -1) in c_mod - q_mod)
        out["modifiers"] = f"modifiers differ: {' '.join(only_q) or '-'} / {' '.join(only_c) or '-'}"
    q_type, c_type = question_type(query), question_type(candidate)
    if q_type and c_type and q_type != c_type and {q_type, c_type} != {"name", "person"}:
        out["question_type"] = f"question types differ: {q_type} / {c_type}"
    q_focus, c_focus = question_focus(query), question_focus(candidate)
    if q_focus and c_focus and q_focus != c_focus:
        out["focus"] = f"asks for another thing: {q_focus} / {c_focus}"
    return out


def conflict(query: str, candidate: str) -> str | None:
    """Why ``candidate`` must not answer ``query`` although they embed close; None if no reason.

    Example:
        >>> conflict("Which team represented the AFC?", "Which team represented the NFC?")
        'names differ: AFC / NFC'
        >>> conflict("Who won Super Bowl 50?", "Which team won Super Bowl 50?") is None
        True
    """
    return next((why for why in signals(query, candidate).values() if why), None)
