"""The syntactic question writer: a sentence and one of its facts in, questions about that fact out.

No LLM is needed (SmolLM2-135M does not follow "write a question whose answer is X"). The
sentence's dependency parse says where the answer sits; the answer is replaced by a wh-phrase
chosen from its entity type and its place in the sentence, and the clause is turned into a
question:

* the answer is the **subject**: "[The Denver Broncos] defeated the Carolina Panthers 24-10"
  -> "Who defeated the Carolina Panthers 24-10?";
* the answer is an **object** or sits in a **prepositional phrase** of the verb: the wh-phrase is
  moved to the front, with auxiliary inversion or *do*-support: "The game was played [on
  February 7, 2016]" -> "When was the game played?"; "... defeated [the Panthers]" -> "Who did
  the Denver Broncos defeat?";
* a **passive agent** is also asked in the active voice: "designed by [Gustave Eiffel]" -> "Who
  designed the tower?";
* **appositions** and **acronyms** give definition questions: "What does AFC stand for?";
* a **relative clause** about the answer gives "Who became the first ...?";
* any answer can also be asked **in place**, in the sentence's own order: "Warsaw has been the
  capital of what since 1596?" (people often ask that way).

Each way of asking comes in a full form and a short one (adjuncts without names or numbers
dropped), since people's questions are usually shorter than the sentence. Human SQuAD questions
often reuse the sentence's own words, which is why this covers them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from storinfer.precompute.generate.facts import Fact
from storinfer.precompute.generate.wh_text import (
    Lit,
    _informative,
    _lower_first,
    _no_parentheses,
    _render,
    _subtree,
    finish,
    same_answer,
)

SUBJECTS = {"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"}
ARGUMENTS = {"dobj", "attr", "dative", "oprd", "npadvmod", "acomp"}
DROPPED = {"advcl", "conj", "cc", "parataxis", "punct", "mark", "preconj", "dep", "discourse", "intj", "meta", "ccomp",
           "relcl"}
LOCATIVE = {"in", "at", "near", "inside", "within", "on", "to", "into", "from", "across", "throughout", "around"}
TEMPORAL = {"in", "on", "at", "during", "by", "around", "until", "till", "since", "before", "after", "from"}
PLACE_LABELS = {"GPE", "LOC", "FAC"}
TIME_LABELS = {"DATE", "TIME"}
NUMERIC = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME", "ORDINAL"}
WHAT_LABELS = {"EVENT", "WORK_OF_ART", "LAW", "PRODUCT", "LANGUAGE", "NORP", "ORG", "NP"}
_DO = {"VBD": "did", "VBZ": "does", "VBP": "do"}


def _has_name_or_number(tok: Any) -> bool:
    return any(t.pos_ in ("PROPN", "NUM") or t.ent_type_ for t in tok.subtree)


@functools.cache
def _is_common_noun(word: str) -> bool:
    from storinfer.precompute.generate.facts import load_nlp

    return load_nlp()(word)[0].tag_ in ("NN", "NNS")


def focus_noun(span: Any) -> str | None:
    """A generic noun naming what ``span`` is, when its head is one ("Levi's *Stadium*" -> stadium)."""
    head = span.root
    if head.tag_ not in ("NNP", "NNPS") or len(span) < 2 or not head.is_alpha:
        return None
    word = head.text.lower()
    return word if _is_common_noun(word) else None


def wh_phrases(fact: Fact, role: str, prep: Any = None) -> list[tuple[str, bool]]:
    """Wh-phrases for ``fact`` in ``role`` ("subject" / "object" / "pp"); each with whether it
    replaces the preposition too ("When was..." replaces "on February 7")."""
    lab, span = fact.label, fact.span
    p = prep.lower_ if prep is not None else ""
    if role == "pp" and lab in TIME_LABELS and p in TEMPORAL:
        whs = [("when", p in ("in", "on", "at", "during", "around"))]
        if p not in ("in", "on", "at", "during", "around"):
            whs = [(f"{p} when", True)]
        if re.fullmatch(r"\d{4}", span.text.strip()):
            whs.append((f"{p} what year" if p else "what year", True))
        return whs
    if role == "pp" and lab in PLACE_LABELS and p in LOCATIVE:
        return [("where", True)] + ([(f"{p} what {focus_noun(span)}", True)] if focus_noun(span) else [])
    named = any(t.pos_ == "PROPN" for t in span)
    if lab == "PERSON":
        base = ["whom"] if role == "pp" else ["who"]
    elif role == "subject" and named and lab in ("ORG", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT", "NP", "GPE"):
        base = ["who", "what"]  # the tagger's labels err ("Coldplay" as a FAC): ask both ways
    elif lab in ("MONEY", "QUANTITY"):
        base = ["how much"]
    elif lab == "PERCENT":
        base = ["what percentage"]
    elif lab in TIME_LABELS:
        base = ["when"] if role != "pp" else ["what"]
    elif lab == "CARDINAL":
        scoreline = re.search(r"\d\s*[-–]\s*\d", span.text)
        base = ["how many"] if role == "object" and span.root.dep_ in ("dobj", "attr") and not scoreline else []
    elif lab in PLACE_LABELS:
        focus = focus_noun(span)
        base = ["what"] + ([f"what {focus}"] if focus else [])
    elif lab == "ORG":
        base = ["what"]
    elif span.root.tag_ in ("NNP", "NNPS"):
        base = ["who", "what"] if role != "pp" else ["what", "whom"]
    else:
        base = ["what"]
    if role == "pp":
        return [(f"{p} {w}", True) for w in base]
    return [(w, False) for w in base]


def _place(span: Any) -> tuple[str, Any, Any, Any] | None:
    """Where the fact sits: ``(role, constituent, preposition, verb)``, or None when it is not an
    argument of a verb (then only the in-place question is asked)."""
    root = span.root
    if root.dep_ == "appos" and root.head.i < root.i:  # "the British rock group [Coldplay]": its head's place
        root = root.head
    head = root.head
    if root.dep_ in SUBJECTS and head.pos_ in ("VERB", "AUX"):
        return "subject", root, None, head
    if root.dep_ in ARGUMENTS and head.pos_ in ("VERB", "AUX"):
        return "object", root, None, head
    if root.dep_ == "pobj" and head.dep_ in ("prep", "agent") and head.head.pos_ in ("VERB", "AUX"):
        return ("agent" if head.dep_ == "agent" else "pp"), root, head, head.head
    return None


class _Clause:
    """A verb's clause taken apart: subject, auxiliaries, negation, and the other parts."""

    def __init__(self, verb: Any, moved: Any, *, short: bool) -> None:
        self.verb = verb
        kids = list(verb.children)
        self.subject = next((c for c in kids if c.dep_ in SUBJECTS), None)
        self.auxes = [c for c in kids if c.dep_ in ("aux", "auxpass") and c.i < verb.i]
        self.negs = [c for c in kids if c.dep_ == "neg"]
        taken = {c.i for c in self.auxes + self.negs} | {moved.i} | ({self.subject.i} if self.subject is not None else set())
        rest = [c for c in kids if c.i not in taken and c.dep_ not in DROPPED]
        if short:
            rest = [c for c in rest if c.dep_ in ARGUMENTS | {"prt", "xcomp", "acomp"} or _has_name_or_number(c)]
        anchor = self.subject.i if self.subject is not None else verb.i
        self.pre = [t for c in rest if c.i < anchor for t in _subtree(c, short=short)]
        self.mid = [t for c in rest if anchor < c.i < verb.i for t in _subtree(c, short=short)]
        self.post = [t for c in rest if c.i > verb.i for t in _subtree(c, short=short)]
        self.short = short

    def subject_words(self) -> list[Any]:
        subj = self.subject
        if subj is None:
            return []
        if subj.tag_ in ("WP", "WDT") or subj.lower_ == "that":  # a relative clause: its noun is the subject
            noun = self.verb.head if self.verb.dep_ == "relcl" else None
            if noun is None or any(not t.is_punct for t in noun.doc[noun.i + 1:self.verb.left_edge.i]):
                return []  # the relative clause is not right after its noun: the parse may be wrong
            skip = {t.i for t in self.verb.subtree} | {c.i for c in noun.children if c.dep_ == "punct"}
            return _lower_first(_subtree(noun, skip, short=self.short))
        return _lower_first(_subtree(subj, short=self.short))

    def tail(self) -> list[Any]:
        return self.post + _lower_first(self.pre)


FINITE = {"VBD", "VBZ", "VBP", "MD"}


def _ask_subject(wh: str, cl: _Clause) -> list[Any] | None:
    if not cl.auxes and cl.verb.tag_ not in FINITE:
        return None  # a participle or infinitive clause ("the collections being especially fine")
    return [Lit(wh), *cl.auxes, *cl.negs, *cl.mid, cl.verb, *cl.tail()]


def _ask_fronted(wh: str, cl: _Clause) -> list[Any] | None:
    subj = cl.subject_words()
    if not subj:
        return None
    verb = cl.verb
    if cl.auxes:
        first, others = cl.auxes[0], cl.auxes[1:]
        return [Lit(wh), Lit(first.lower_), *subj, *others, *cl.negs, *cl.mid, verb, *cl.tail()]
    if verb.lemma_ == "be" or verb.pos_ == "AUX":
        return [Lit(wh), Lit(verb.lower_), *subj, *cl.negs, *cl.mid, *cl.tail()]
    do = _DO.get(verb.tag_)
    if do is None:
        return None
    return [Lit(wh), Lit(do), *subj, *cl.negs, *cl.mid, Lit(verb.lemma_), *cl.tail()]


def _ask_active(wh: str, cl: _Clause) -> list[Any] | None:
    """A passive clause asked in the active voice: "Who designed the tower?"."""
    subj = cl.subject_words()
    if not subj or cl.verb.tag_ != "VBN":
        return None
    return [Lit(wh), cl.verb, *subj, *cl.tail()]


IN_PLACE = {"pobj", "dobj", "attr", "appos", "conj", "dative", "oprd", "npadvmod", "nsubj", "nsubjpass"}


def in_place_wh(fact: Fact) -> str | None:
    """The wh-word that stands in the fact's own place: "... the capital of *what*?"."""
    root, lab = fact.span.root, fact.label
    prep = root.head.lower_ if root.dep_ == "pobj" else ""
    if lab in TIME_LABELS:
        return "when" if prep in ("", "in", "on", "at", "during") else "what"
    if lab in PLACE_LABELS and prep in ("in", "at", "near", "inside", "within"):
        return "where"
    if lab == "PERSON":
        return "whom" if prep else "who"
    if lab == "CARDINAL":
        return "how many" if wh_phrases(fact, "object") else None
    if lab in ("MONEY", "QUANTITY"):
        return "how much"
    return "what"


def _in_place(fact: Fact, wh: str | None) -> list[Any] | None:
    """The fact's sentence in its own order with the fact replaced by ``wh`` (main clause only):
    "Warsaw has been the capital of what since 1596?". Only for a whole phrase that is not the
    subject (that is the subject question already)."""
    span = fact.span
    root = span.root
    if wh is None or root.dep_ not in IN_PLACE or root.dep_ in SUBJECTS or span.start > root.left_edge.i:
        return None
    start, end = span.start, span.end
    if root.dep_ == "pobj" and wh in ("when", "where") and root.head.lower_ in ("in", "on", "at", "during", "near", "inside", "within"):
        start = root.head.i  # "on February 7" -> "when"
    sent = span.sent
    main = sent.root
    if main.pos_ not in ("VERB", "AUX"):
        return None  # a fragment ("New South Wales to the north, ..."): no clause to ask with
    subject = next((c for c in main.children if c.dep_ in SUBJECTS), None)
    if subject is None or start <= subject.right_edge.i:
        return None  # before the subject: a fronted adjunct ("By 1977, ...") reads badly in place
    skip: set[int] = set()
    for c in main.children:
        if c.dep_ in DROPPED and c.dep_ != "punct" and not (c.left_edge.i <= start <= c.right_edge.i):
            skip.update(t.i for t in c.subtree)
        elif c.i < subject.left_edge.i:
            skip.update(t.i for t in c.subtree)  # fronted adjuncts and their commas
    pieces: list[Any] = []
    for t in sent:
        if t.i in skip or start < t.i < end:
            continue
        pieces.append(Lit(wh) if t.i == start else t)
    return _lower_first(pieces)


def _definitions(fact: Fact) -> list[tuple[str, str]]:
    """``(question, answer)`` from an apposition or an acronym in parentheses next to the fact:
    "What does AFC stand for?", "Who was the AFC champion?" / "What was the Denver Broncos?"."""
    out: list[tuple[str, str]] = []
    root = fact.span.root
    be = "was" if fact.span.sent.root.tag_ == "VBD" else "is"
    for child in root.children:
        if child.dep_ != "appos":
            continue
        app = _no_parentheses(list(child.subtree))
        skip = {t.i for t in child.subtree}
        head = _no_parentheses([t for t in root.subtree if t.i not in skip and not (t.dep_ in ("relcl", "punct") and t.head == root)])
        app_text, head_text = _render(app), _render(head)
        if not app_text or not head_text:
            continue
        in_parens = child.left_edge.i > 0 and child.doc[child.left_edge.i - 1].text == "("
        if in_parens and app_text.isupper() and 2 <= len(app_text) <= 8:
            out.append((f"What does {app_text} stand for?", head_text))
            continue
        kinds = {child.ent_type_, root.ent_type_}
        if len(app) > 12 or len(head) > 12 or kinds & (NUMERIC | PLACE_LABELS):
            continue  # "7 feet (2.1 m)": a conversion, not a definition
        who_app = "Who" if child.ent_type_ == "PERSON" or child.tag_ in ("NNP", "NNPS") else "What"
        who_head = "Who" if root.ent_type_ == "PERSON" or root.tag_ in ("NNP", "NNPS") else "What"
        out.append((f"{who_app} {be} {_render(_lower_first(head))}?", app_text))
        out.append((f"{who_head} {be} {_render(_lower_first(app))}?", head_text))
    return out


def _relative(fact: Fact) -> list[tuple[str, str]]:
    """``(question, answer)`` from a relative clause about the fact: "Who became the first ...?"."""
    out = []
    root = fact.span.root
    for child in root.children:
        if child.dep_ != "relcl":
            continue
        subj = next((c for c in child.children if c.dep_ in SUBJECTS), None)
        if subj is None or not (subj.tag_ in ("WP", "WDT") or subj.lower_ == "that"):
            continue
        between = fact.span.doc[fact.span.end:child.left_edge.i]
        if any(not t.is_punct for t in between):
            continue  # not right after the fact: the parser may have hung it on the wrong noun
        who = "Who" if subj.lower_ == "who" else "What"
        skip = {subj.i} | {t.i for c in child.children if c.dep_ in DROPPED for t in c.subtree}
        q = finish([Lit(who), *[t for t in child.subtree if t.i not in skip]])
        if q:
            out.append((q, fact.text))
    return out


def _how_many(fact: Fact) -> list[list[Any] | None]:
    """A number counting a noun: "scored [24] points" -> "How many points did ... score?"."""
    root = fact.span.root
    noun = root.head
    if fact.label not in ("CARDINAL", "QUANTITY") or root.dep_ != "nummod" or noun.pos_ not in ("NOUN", "PROPN"):
        return []
    number = {t.i for t in root.subtree}
    kept = [t for t in noun.subtree if t.i not in number and t.dep_ not in ("det", "prep", "relcl", "acl", "punct")
            and t.head.dep_ not in ("prep", "relcl", "acl")]
    wh = "how many " + _render(kept)
    head_span = noun.doc[noun.left_edge.i: noun.right_edge.i + 1]
    place = _place(head_span)
    if place is None:
        return []
    role, moved, prep, verb = place
    found: list[list[Any] | None] = []
    for short in (False, True):
        if role == "subject":
            found.append(_ask_subject(wh, _Clause(verb, moved, short=short)))
        elif role == "object":
            found.append(_ask_fronted(wh, _Clause(verb, moved, short=short)))
        elif role == "pp":
            found.append(_ask_fronted(f"{prep.lower_} {wh}", _Clause(verb, prep, short=short)))
    return found


def questions(fact: Fact) -> list[str]:
    """Questions whose answer is ``fact``, best-formed first (may be empty)."""
    found: list[list[Any] | None] = []
    place = _place(fact.span)
    if place is not None:
        role, moved_root, prep, verb = place
        for short in (False, True):
            if role == "subject":
                cl = _Clause(verb, moved_root, short=short)
                found += [_ask_subject(w, cl) for w, _ in wh_phrases(fact, "subject")]
            elif role == "object":
                cl = _Clause(verb, moved_root, short=short)
                found += [_ask_fronted(w, cl) for w, _ in wh_phrases(fact, "object")]
            else:
                cl = _Clause(verb, prep, short=short)
                if role == "agent":
                    found += [_ask_active(w, cl) for w, _ in wh_phrases(fact, "subject")]
                found += [_ask_fronted(w, cl) for w, _ in wh_phrases(fact, "pp", prep)]
    found += _how_many(fact)
    found.append(_in_place(fact, in_place_wh(fact)))
    out: list[str] = []
    for pieces in found:
        q = finish(pieces) if pieces else None
        if q and q not in out and _informative(q, fact.text):
            out.append(q)
    return out


def definition_questions(fact: Fact) -> list[tuple[str, str]]:
    """Questions about the fact's apposition, acronym or relative clause, with their answers."""
    return [(q, a) for q, a in _definitions(fact) + _relative(fact) if _informative(q, a)]


def write(facts: Iterable[Fact]) -> list[tuple[str, Fact, str]]:
    """``(question, fact, answer)`` for every fact; a question written for two different answers
    is ambiguous and dropped."""
    by_question: dict[str, list[tuple[Fact, str]]] = {}
    for fact in facts:
        for q in questions(fact):
            by_question.setdefault(q, []).append((fact, fact.text))
        for q, answer in definition_questions(fact):
            by_question.setdefault(q, []).append((fact, answer))
    out = []
    for q, items in by_question.items():
        fact, answer = items[0]
        if all(same_answer(answer, other) for _f, other in items[1:]):
            out.append((q, fact, answer))
    return out
