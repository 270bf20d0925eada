"""Online log template mining: a Drain-style parse tree with one configuration for every log.

Each message is masked (numbers, addresses, ids, dates become `<*>`), cut into tokens, and routed
by its token count and its first constant tokens to a short list of clusters; it joins the most
similar one (or founds a new one), and positions where members differ become `<*>`.

What differs from drain3, and why one configuration is enough (bench/logmining.py shows it):
- the whole line goes in, header included: date parts, times and pids are masked, month and
  weekday names too, and `|` separates tokens like a blank does;
- routing skips masked tokens, so a timestamp prefix does not flatten the tree;
- similarity counts only the cluster's constant positions, `key=value` keeps its key, runs of
  variables collapse into one `<*>` (lists of ids of any length), and empty `()` is a variable.
Template ids are stable: the hash of the template a cluster was founded with. A miner can be
seeded with stored clusters, so ids (and the baselines keyed by them) survive restarts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

WILDCARD = "<*>"

_MASKS: tuple[str, ...] = (
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",  # uuid
    r"(?:/?\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d+)?)",  # ipv4[:port]
    r"\b0[xX][0-9a-fA-F]+\b",  # hex literal
    r"\b[0-9a-fA-F]{16,}\b",  # long hex ids
)
_MASK_RE = re.compile("|".join(_MASKS))
_SPLIT_RE = re.compile(r"[\s|]+")
_KEYED_RE = re.compile(r"^([A-Za-z_][A-Za-z_.\-]+[:=])(.+)$")
_DIGIT_RE = re.compile(r"\d")
_EMPTY = frozenset({"()", "[]", "{}", "''", '""', "<>"})
_CALENDAR = frozenset(
    [
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]
)


@dataclass(frozen=True)
class MinerConfig:
    """The one default configuration; fields exist for tests and experiments, not for tuning."""

    similarity: float = 0.7
    """Fraction of the cluster's constant positions that must agree for a message to join it."""
    prefix_depth: int = 2
    """Constant tokens used to route a message before similarity is computed."""
    max_children: int = 100


def tokenize(message: str) -> list[str]:
    """Masked tokens of `message`: anything holding a digit, and date words, become `<*>`."""
    masked = _MASK_RE.sub(WILDCARD, message)
    out: list[str] = []
    for tok in _SPLIT_RE.split(masked):
        if not tok:
            continue
        keyed = _KEYED_RE.match(tok)
        if keyed is not None and (WILDCARD in keyed[2] or _DIGIT_RE.search(keyed[2])):
            out.append(keyed[1] + WILDCARD)
        elif (
            tok in _EMPTY
            or WILDCARD in tok
            or any(ch.isdigit() for ch in tok)
            or (tok.strip("[](),.:").lower() in _CALENDAR)
        ):
            if not out or out[-1] != WILDCARD:
                out.append(WILDCARD)
        else:
            out.append(tok)
    return out


def template_id_for(tokens: Iterable[str]) -> str:
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:12]


@dataclass
class Cluster:
    template_id: str
    tokens: list[str]
    size: int = 0

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


@dataclass
class TemplateMiner:
    """Streaming miner. `add` learns and returns the message's cluster."""

    config: MinerConfig = field(default_factory=MinerConfig)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    _routes: dict[tuple[object, ...], list[Cluster]] = field(default_factory=dict)

    def seed(self, template_id: str, template: str) -> Cluster:
        """Restore a stored cluster (its id and template) before any message is added."""
        existing = self.clusters.get(template_id)
        if existing is not None:
            return existing
        cluster = Cluster(template_id, template.split(" ") if template else [])
        self.clusters[template_id] = cluster
        self._routes.setdefault(self._route(cluster.tokens), []).append(cluster)
        return cluster

    def _route(self, tokens: list[str]) -> tuple[object, ...]:
        key: list[object] = [len(tokens)]
        for tok in tokens:
            if len(key) > self.config.prefix_depth:
                break
            if tok != WILDCARD:
                key.append(tok)
        return tuple(key)

    def add(self, message: str) -> Cluster:
        tokens = tokenize(message)
        route = self._route(tokens)
        candidates = self._routes.setdefault(route, [])
        best = self._best(candidates, tokens)
        if best is None:
            tid = template_id_for(tokens)
            while tid in self.clusters:  # the same text founded twice (after a merge): re-hash
                tid = template_id_for([tid, *tokens])
            best = Cluster(tid, tokens)
            self.clusters[tid] = best
            candidates.append(best)
        else:
            merged = [a if a == b else WILDCARD for a, b in zip(best.tokens, tokens, strict=True)]
            best.tokens = merged
        best.size += 1
        return best

    def match(self, message: str) -> Cluster | None:
        """The cluster `message` would join, without learning from it."""
        tokens = tokenize(message)
        return self._best(self._routes.get(self._route(tokens), []), tokens)

    def _best(self, candidates: list[Cluster], tokens: list[str]) -> Cluster | None:
        n = len(tokens)
        if n == 0:
            for cluster in candidates:
                return cluster
            return None
        threshold = self.config.similarity
        best: Cluster | None = None
        best_key = (-1.0, -1)
        for cluster in candidates:
            same = 0
            params = 0
            for a, b in zip(cluster.tokens, tokens, strict=True):
                if a == WILDCARD:
                    params += 1
                elif a == b:
                    same += 1
            constant = n - params
            sim = same / constant if constant else 1.0
            key = (sim, params)
            if sim >= threshold and key > best_key:
                best, best_key = cluster, key
        return best
