"""Learned suggestions: which expectations an imported work item is evidence of, ranked.

Three origins, in this order of authority (docs/architecture.md, "How a ServiceNow record
becomes evidence"):

- `rule`: an admin's suggestion rule matched the record (servicenow/sync/rules.py). Rules
  win where they match: their codes come first, and they stay suggested links as before.
- `learned`: a text model trained per ladder on this organisation's own triage — the
  expectations engineers linked when they accepted an imported item (positives), the
  suggestions they removed and the candidates they dismissed (negatives). TF-IDF over the
  record's text and fields, one logistic regression per expectation code (one-vs-rest, so an
  item may be evidence of several). Stored as a SuggestionModel row; `suggestions_train`
  (the nightly beat task and `manage.py suggestions_train`) makes a new version.
- `similar`: with too few labels to learn from (SUGGESTIONS_MIN_LABELS), TF-IDF cosine
  between the record's text and each expectation's text — a weak cold start (the words of a
  ticket are rarely the ladder's words; benchmarks/suggestions.py measures how weak).

Each suggestion is `{code, score, origin, reason}`, computed when a candidate is imported
and again for every open candidate after training, and stored on the candidate
(Evidence.suggestions): reading the inbox costs no query and no model.

The person's level orders what is offered, as for the rules (`level_rank`): among the
plausible codes (score at least SUGGESTIONS_PLAUSIBLE_RATIO of the best) their next level
first, then the levels above, then their own; never a level below their own unless nothing
else fits. A confident suggestion therefore stays first whatever its level.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings
from django.db import transaction

from .itemtext import work_item_text  # noqa: F401 (imported from here by callers)
from .models import Evidence, EvidenceLink, SuggestionModel

if TYPE_CHECKING:
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

# numpy, scipy, scikit-learn and joblib are imported where they are used: together they take
# about a second to import, which every web process and manage.py command would otherwise
# pay at start although only imports and training compute suggestions.

# --- the text of a work item ---------------------------------------------------------------

# Defined in itemtext.py (no Django there: the sync's fetching process computes it too).


# --- what a suggestion is ------------------------------------------------------------------


class Suggestion(NamedTuple):
    code: str
    score: float
    origin: str  # rule | learned | similar
    reason: str

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "score": round(float(self.score), 3),
            "origin": self.origin,
            "reason": self.reason,
        }


ORIGIN_RULE, ORIGIN_LEARNED, ORIGIN_SIMILAR = "rule", "learned", "similar"


def level_rank(expectation_level: int | None, level: int | None) -> int:
    """0 the person's next level, 1 above it, 2 their own, 3 unknown, 4 below their own: the
    one ordering of suggested levels (rules and models alike, candidates.suggestions_for_level)."""
    if level is None:
        return 0
    if expectation_level is None:
        return 3
    nxt = level + 1
    if expectation_level == nxt:
        return 0
    if expectation_level > nxt:
        return 1
    return 2 if expectation_level == level else 4


def order_for_level(
    scored: list[tuple[str, float]],
    *,
    level: int | None,
    levels: dict[str, int],
    ranks: dict[str, int] | None = None,
) -> list[tuple[str, float]]:
    """Scored codes in the order a person at `level` is offered them (module docstring):
    the plausible ones (within SUGGESTIONS_PLAUSIBLE_RATIO of the best) by level rank, then
    score; the rest by score; none below the person's level unless nothing else is left.
    Ties keep the order `scored` came in. `ranks` ({code: level_rank}) may be given for
    `level` when many items share it (LadderSuggester.suggest)."""
    if not scored:
        return []
    if ranks is None:
        ranks = {code: level_rank(levels.get(code), level) for code, _score in scored}
    floor = max(score for _code, score in scored) * settings.SUGGESTIONS_PLAUSIBLE_RATIO
    # Plain tuples sort in C: (rank, -score, position) for the plausible, (-score, position)
    # for the rest, the position keeping ties in the order they came.
    plausible, rest = [], []
    for n, (code, score) in enumerate(scored):
        if score >= floor:
            plausible.append((ranks[code], -score, n, code, score))
        else:
            rest.append((-score, n, code, score))
    plausible.sort()
    rest.sort()
    ordered = [(code, score) for _r, _s, _n, code, score in plausible]
    ordered += [(code, score) for _s, _n, code, score in rest]
    kept = [cs for cs in ordered if ranks[cs[0]] < 4]
    return kept or ordered


# --- the learned model ---------------------------------------------------------------------


def _vectorizer() -> TfidfVectorizer:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Bigrams help ("disk full" vs "full outage"); min_df drops one-off typos and ids; the
    # feature cap keeps the coefficient matrix (codes × features) a few MB.
    return TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=2,
        max_features=60_000,
        sublinear_tf=True,
        dtype=np.float32,
    )


@dataclass
class LearnedModel:
    """What a SuggestionModel row stores (joblib): the vectorizer, one linear scorer per code
    (coefficients stacked, so scoring a batch is one sparse × dense product), and the
    labelled items it learned from, for the "like INC… you linked" reason."""

    codes: list[str]
    vectorizer: TfidfVectorizer
    coef: np.ndarray  # (codes, features) float32
    intercept: np.ndarray  # (codes,)
    examples: sparse.csr_matrix  # (labelled items, features), rows L2-normalised
    example_codes: sparse.csr_matrix  # (labelled items, codes) 0/1
    example_person: np.ndarray  # (labelled items,) person ids
    example_number: list[str]
    code_counts: np.ndarray  # (codes,) labelled items per code
    _by_person: dict = field(default_factory=dict, repr=False, compare=False)

    def scores(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """(TF-IDF rows, probabilities (items × codes)) for these texts."""
        import numpy as np

        x = self.vectorizer.transform(texts)
        logits = np.asarray(x @ self.coef.T) + self.intercept
        return x, 1.0 / (1.0 + np.exp(-logits))

    def reasons_for(self, x, requests: Sequence[tuple[int, int | None, list[int]]]) -> list:
        """Why each code, for each (row of x, person id, code columns): the person's own most
        similar item they linked to that code, else how many items the organisation linked
        to it (another engineer's records are not named). One sparse product per person of
        the batch, not per item: a sync page computes reasons for hundreds of rows."""
        import numpy as np

        out: list = [None] * len(requests)
        by_person: dict = {}
        for k, (_row, person_id, _cols) in enumerate(requests):
            by_person.setdefault(person_id, []).append(k)
        for person_id, ks in by_person.items():
            mine = self._person(person_id)
            sims = None
            if mine is not None:
                rows, examples, codes_csc = mine
                sims = (examples @ x[[requests[k][0] for k in ks]].T).toarray()
            for col, k in enumerate(ks):
                whys = []
                for j in requests[k][2]:
                    code = self.codes[j]
                    if sims is not None:
                        linked = codes_csc.indices[codes_csc.indptr[j] : codes_csc.indptr[j + 1]]
                        if linked.size:
                            item_sims = sims[linked, col]
                            best = int(np.argmax(item_sims))
                            number = self.example_number[int(rows[int(linked[best])])]
                            if item_sims[best] > 0 and number:
                                whys.append(f"like {number} you linked to {code}")
                                continue
                    n = int(self.code_counts[j])
                    items = f"{n} item{'s' if n != 1 else ''}"
                    whys.append(f"like {items} linked to {code} in your organisation")
                out[k] = whys
        return out

    def _person(self, person_id: int | None):
        """(example row numbers, their TF-IDF rows, their codes by column) of one person's
        labelled items, sliced once per person and process."""
        import numpy as np

        if person_id is None:
            return None
        if not self._by_person:
            order = np.argsort(self.example_person, kind="stable")
            people, starts = np.unique(self.example_person[order], return_index=True)
            bounds = [*starts[1:], len(order)]
            self._by_person.update(
                {int(p): order[s:e] for p, s, e in zip(people, starts, bounds, strict=True)}
            )
        rows = self._by_person.get(int(person_id))
        if rows is None:
            return None
        if not isinstance(rows, tuple):
            rows = (rows, self.examples[rows], self.example_codes[rows].tocsc())
            self._by_person[int(person_id)] = rows
        return rows

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_by_person"] = {}  # rebuilt on first use, never stored
        return state


def model_dumps(model: LearnedModel) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def model_loads(blob: bytes, sha256: str) -> LearnedModel:
    """Unpickle a stored model. Pickle runs code, so only bytes this module wrote are read:
    the row's checksum must match (a column changed behind our back is refused)."""
    import joblib

    if hashlib.sha256(blob).hexdigest() != sha256:
        raise ValueError("The stored suggestion model does not match its checksum.")
    model = joblib.load(io.BytesIO(blob))
    if not isinstance(model, LearnedModel):
        raise ValueError("The stored suggestion model is not a LearnedModel.")
    return model


_CACHE: dict[int, tuple[int, LearnedModel]] = {}  # ladder id -> (model row id, model)
_CACHE_LOCK = threading.Lock()


def learned_model_for(ladder_id: int) -> LearnedModel | None:
    """The ladder's newest model, loaded once per process and version (one small query to
    learn which version is newest; the blob is read only when it changed)."""
    newest = (
        SuggestionModel.objects.filter(ladder_id=ladder_id)
        .order_by("-version")
        .values_list("pk", flat=True)
        .first()
    )
    if newest is None:
        return None
    cached = _CACHE.get(ladder_id)
    if cached and cached[0] == newest:
        return cached[1]
    blob, sha = SuggestionModel.objects.values_list("blob", "sha256").get(pk=newest)
    model = model_loads(bytes(blob), sha)
    with _CACHE_LOCK:
        _CACHE[ladder_id] = (newest, model)
    return model


# --- similarity (the cold start) -----------------------------------------------------------


def warm_up() -> None:
    """Import scikit-learn's text features now (1.5-3 s on a cold process), so the first sync
    page that suggests for a candidate does not pay it: worker processes call this at start
    (ladder_tracker/celery.py)."""
    import sklearn.feature_extraction.text  # noqa: F401


class SimilarityModel:
    """TF-IDF over the expectations' own text; an item's cosine to each."""

    def __init__(self, texts: dict[str, str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.codes = list(texts)
        self.vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([texts[c] for c in self.codes])
        self.terms = self.vectorizer.get_feature_names_out()

    def scores(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        import numpy as np

        x = self.vectorizer.transform(texts)
        return x, np.asarray((x @ self.matrix.T).todense())

    def reasons_for(self, x, requests: Sequence[tuple[int, int | None, list[int]]]) -> list:
        """The (up to three) words each item shares with each suggested expectation, the
        heaviest first; plain Python over the CSR arrays (slicing rows of a sparse matrix
        costs tens of microseconds each)."""
        if not hasattr(self, "_code_terms"):
            m = self.matrix.tocsr()
            self._code_terms = [
                dict(zip(m.indices[m.indptr[j] : m.indptr[j + 1]].tolist(),
                         m.data[m.indptr[j] : m.indptr[j + 1]].tolist(), strict=True))
                for j in range(m.shape[0])
            ]  # fmt: skip
        out = []
        for row, _person, cols in requests:
            lo, hi = x.indptr[row], x.indptr[row + 1]
            mine = list(zip(x.indices[lo:hi].tolist(), x.data[lo:hi].tolist(), strict=True))
            whys = []
            for j in cols:
                terms = self._code_terms[j]
                shared = sorted(((w * terms[t], t) for t, w in mine if t in terms), reverse=True)
                words = ", ".join(self.terms[t] for _w, t in shared[:3])
                whys.append(f"words in common with {self.codes[j]}: {words}")
            out.append(whys)
        return out


# --- suggesting ----------------------------------------------------------------------------


class ItemToSuggest(NamedTuple):
    person_id: int
    level: int | None
    text: str
    rules: tuple[tuple[str, str], ...] = ()  # (code, rationale), already in level order


class LadderSuggester:
    """Suggestions for items of one ladder's people: rules first, then the learned model's
    codes (or, without a model, the similar ones), each list best first."""

    def __init__(
        self,
        *,
        levels: dict[str, int],
        texts: dict[str, str],
        learned: LearnedModel | None,
    ):
        self.levels = levels
        self.learned = learned
        self._texts = texts
        self._similar: SimilarityModel | None = None

    @property
    def similar(self) -> SimilarityModel | None:
        if self._similar is None and self._texts:
            self._similar = SimilarityModel(self._texts)
        return self._similar

    def suggest(self, items: Sequence[ItemToSuggest]) -> list[list[dict]]:
        if not items:
            return []
        texts = [it.text for it in items]
        if self.learned is not None:
            model, origin, floor = self.learned, ORIGIN_LEARNED, settings.SUGGESTIONS_MIN_SCORE
        else:
            model, origin, floor = self.similar, ORIGIN_SIMILAR, 1e-6
        x = probs = None
        if model is not None and any(texts):
            x, probs = model.scores(texts)
            index = {code: j for j, code in enumerate(model.codes)}
        chosen_all: list[list[Suggestion]] = []
        tops: list[list[tuple[str, float]]] = []
        if probs is not None:
            import numpy as np

            codes = model.codes
            # The codes of this ladder's levels, once per call; each row is narrowed to the
            # ones at or above the floor in numpy before any per-code Python runs.
            known = np.array([j for j, code in enumerate(codes) if code in self.levels], int)
            ranks_of: dict[int | None, dict[str, int]] = {}
        for i, item in enumerate(items):
            chosen_all.append([Suggestion(code, 1.0, ORIGIN_RULE, why) for code, why in item.rules])
            top: list[tuple[str, float]] = []
            if probs is not None:
                taken = {code for code, _why in item.rules}
                row = np.asarray(probs[i]).ravel()
                scores = row[known]
                hits = scores >= floor
                scored = [
                    (codes[j], score)
                    for j, score in zip(known[hits].tolist(), scores[hits].tolist(), strict=True)
                    if codes[j] not in taken
                ]
                ranks = ranks_of.get(item.level)
                if ranks is None:
                    ranks = ranks_of[item.level] = {
                        code: level_rank(lvl, item.level) for code, lvl in self.levels.items()
                    }
                ordered = order_for_level(scored, level=item.level, levels=self.levels, ranks=ranks)
                top = ordered[: settings.SUGGESTIONS_MAX]
            tops.append(top)
        if probs is not None:
            x = x.tocsr()
            requests = [
                (i, item.person_id, [index[code] for code, _ in tops[i]])
                for i, item in enumerate(items)
            ]
            for i, whys in enumerate(model.reasons_for(x, requests)):
                chosen_all[i] += [
                    Suggestion(code, score, origin, why)
                    for (code, score), why in zip(tops[i], whys, strict=True)
                ]
        return [[s.as_dict() for s in chosen] for chosen in chosen_all]


# --- training ------------------------------------------------------------------------------


@dataclass
class TrainingSet:
    texts: list[str]
    person: list[int]
    number: list[str]
    positives: list[set[str]]  # empty for a dismissed item
    negatives: list[set[str]]  # codes explicitly refused: dismissed or removed suggestions

    @property
    def labelled(self) -> list[int]:
        return [i for i, p in enumerate(self.positives) if p]


def training_set(*, ladder_id: int, codes: Iterable[str]) -> TrainingSet:
    """This ladder's people's triaged imported items, as text and labels. Two queries."""
    known = set(codes)
    rows = list(
        Evidence.objects.filter(
            person__ladder_id=ladder_id,
            source=Evidence.Source.SERVICENOW,
            work_item__isnull=False,
            deleted_at__isnull=True,
            status__in=[Evidence.Status.ACCEPTED, Evidence.Status.DISMISSED],
        )
        .order_by("pk")
        .values_list(
            "pk",
            "person_id",
            "status",
            "suggestions",
            "work_item__table",
            "work_item__raw",
            "work_item__number",
        )
    )
    linked: dict[int, set[str]] = {}
    for ev_id, code in EvidenceLink.objects.filter(
        evidence__person__ladder_id=ladder_id,
        evidence__source=Evidence.Source.SERVICENOW,
        evidence__status=Evidence.Status.ACCEPTED,
        evidence__deleted_at__isnull=True,
        expectation__isnull=False,
    ).values_list("evidence_id", "expectation__code"):
        if code in known:
            linked.setdefault(ev_id, set()).add(code)
    ts = TrainingSet([], [], [], [], [])
    for pk, person_id, status, suggested, table, raw, number in rows:
        offered = {s.get("code") for s in (suggested or []) if isinstance(s, dict)} & known
        if status == Evidence.Status.ACCEPTED:
            positives = linked.get(pk, set())
            if not positives:
                continue  # accepted without a link says nothing about which expectation
            negatives = offered - positives
        else:
            positives, negatives = set(), offered
        ts.texts.append(work_item_text(table=table, raw=raw or {}))
        ts.person.append(person_id)
        ts.number.append(number or "")
        ts.positives.append(positives)
        ts.negatives.append(negatives)
    return ts


# An explicit "no" (a dismissed suggestion, a suggestion removed at accept) weighs more than
# the implicit one of an item linked elsewhere.
EXPLICIT_NEGATIVE_WEIGHT = 3.0


def model_fit(ts: TrainingSet, rows: Sequence[int], codes: Sequence[str]) -> LearnedModel:
    """Fit on these rows of the set; codes without a positive among them are left out."""
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    vectorizer = _vectorizer()
    x = vectorizer.fit_transform([ts.texts[i] for i in rows])
    n = len(rows)
    fitted, coefs, intercepts, counts = [], [], [], []
    for code in codes:
        y = np.fromiter((code in ts.positives[i] for i in rows), dtype=np.int8, count=n)
        positives = int(y.sum())
        if positives == 0:
            continue
        if positives == n:  # every item is this code: nothing to separate
            coefs.append(np.zeros(x.shape[1], dtype=np.float32))
            intercepts.append(5.0)
        else:
            weights = np.fromiter(
                (EXPLICIT_NEGATIVE_WEIGHT if code in ts.negatives[i] else 1.0 for i in rows),
                dtype=np.float64,
                count=n,
            )
            # The dual problem: more features (bigrams) than items, where liblinear's dual
            # solver converges ~10x sooner than the primal one, to the same accuracy (8.8 s
            # against 93 s for 34 codes × 18,500 items under load, benchmarks/suggestions.py).
            # C=2 ranks as well as C=10 there and converges faster.
            clf = LogisticRegression(C=2.0, solver="liblinear", dual=True, max_iter=200)
            clf.fit(x, y, sample_weight=weights)
            coefs.append(clf.coef_[0].astype(np.float32))
            intercepts.append(float(clf.intercept_[0]))
        fitted.append(code)
        counts.append(positives)
    labelled = [k for k, i in enumerate(rows) if ts.positives[i]]
    code_col = {c: j for j, c in enumerate(fitted)}
    pairs = [(r, code_col[c]) for r, k in enumerate(labelled) for c in ts.positives[rows[k]]]
    example_codes = sparse.csr_matrix(
        (np.ones(len(pairs), dtype=np.int8), ([r for r, _ in pairs], [j for _, j in pairs])),
        shape=(len(labelled), len(fitted)),
    )
    return LearnedModel(
        codes=fitted,
        vectorizer=vectorizer,
        coef=np.vstack(coefs) if coefs else np.zeros((0, x.shape[1]), dtype=np.float32),
        intercept=np.asarray(intercepts, dtype=np.float32),
        examples=x[labelled].tocsr(),
        example_codes=example_codes,
        example_person=np.asarray([ts.person[rows[k]] for k in labelled], dtype=np.int64),
        example_number=[ts.number[rows[k]] for k in labelled],
        code_counts=np.asarray(counts, dtype=np.int64),
    )


def topk_accuracy(model: LearnedModel, texts, positives, ks=(1, 3)) -> dict[int, float]:
    """Share of items whose k best codes (the model's own ranking over the ladder) include one
    the engineer linked."""
    import numpy as np

    if not texts:
        return {k: 0.0 for k in ks}
    _, probs = model.scores(texts)
    order = np.argsort(-probs, axis=1)
    hits = {k: 0 for k in ks}
    for i, wanted in enumerate(positives):
        for k in ks:
            if any(model.codes[j] in wanted for j in order[i, :k]):
                hits[k] += 1
    return {k: hits[k] / len(texts) for k in ks}


HELD_OUT_SHARE = 0.2


@dataclass
class TrainingResult:
    ladder_id: int
    labelled: int
    model: SuggestionModel | None = None
    skipped: str = ""  # why no model was made
    refreshed: int = 0  # open candidates whose suggestions were recomputed
    seconds: float = 0.0


def suggestions_train_ladder(*, ladder_id: int, codes: Sequence[str]) -> TrainingResult:
    """Train and store a new model version for one ladder (or say why not): held-out
    accuracy from a fit on 80% of the labelled items, then the stored model fit on all."""
    import numpy as np

    started = time.perf_counter()
    ts = training_set(ladder_id=ladder_id, codes=codes)
    labelled = ts.labelled
    result = TrainingResult(ladder_id=ladder_id, labelled=len(labelled))
    minimum = settings.SUGGESTIONS_MIN_LABELS
    if len(labelled) < minimum:
        result.skipped = f"{len(labelled)} labelled items, fewer than {minimum}"
        return result
    if len({c for i in labelled for c in ts.positives[i]}) < 2:
        result.skipped = "every labelled item is linked to the same expectation"
        return result
    rng = np.random.default_rng(20261203)  # a fixed split: versions are comparable
    shuffled = rng.permutation(labelled)
    n_test = max(1, int(len(shuffled) * HELD_OUT_SHARE))
    test = set(int(i) for i in shuffled[:n_test])
    train_rows = [i for i in range(len(ts.texts)) if i not in test]
    held_out_model = model_fit(ts, train_rows, codes)
    test_rows = sorted(test)
    accuracy = topk_accuracy(
        held_out_model, [ts.texts[i] for i in test_rows], [ts.positives[i] for i in test_rows]
    )
    model = model_fit(ts, range(len(ts.texts)), codes)
    blob = model_dumps(model)
    seconds = time.perf_counter() - started
    with transaction.atomic():
        last = (
            SuggestionModel.objects.select_for_update()
            .filter(ladder_id=ladder_id)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
        row = SuggestionModel.objects.create(
            ladder_id=ladder_id,
            version=(last or 0) + 1,
            training_size=len(labelled),
            negatives=sum(1 for n in ts.negatives if n) + (len(ts.texts) - len(labelled)),
            codes=len(model.codes),
            held_out=len(test_rows),
            accuracy_top1=accuracy[1],
            accuracy_top3=accuracy[3],
            training_seconds=round(seconds, 3),
            blob=blob,
            sha256=hashlib.sha256(blob).hexdigest(),
        )
        kept = settings.SUGGESTIONS_MODELS_KEPT
        old = list(
            SuggestionModel.objects.filter(ladder_id=ladder_id)
            .order_by("-version")
            .values_list("pk", flat=True)[kept:]
        )
        if old:
            SuggestionModel.objects.filter(pk__in=old).delete()
    result.model = row
    result.seconds = seconds
    return result
