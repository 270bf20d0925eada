"""Online log template mining: a Drain-style parse tree with one configuration for every log.

Each message is masked (numbers, addresses, ids, dates become `<*>`), cut into tokens, and routed
by its token count and its first constant tokens to a short list of clusters; it joins the most
similar one (or founds a new one), and positions where members differ become `<*>`.

What differs from drain3, and why one configuration is enough (bench/logmining.py shows it):
- the whole line goes in, header included, with no per-format setting: a header that ends in a
  level word (`<date> <time> INFO [thread name] ...`, `... RAS KERNEL FATAL ...`) and a syslog
  header (`Jun 14 15:16:01 host prog[pid]: `) are recognised and dropped, the level kept as a
  marker (`<INFO>`) that neither routes nor splits a template; elsewhere date parts, times and
  pids are masked, month and weekday names too, and `|` separates tokens like a blank does;
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
MINER_VERSION = 2
"""Bumped when tokenizing changes the template a line gets (2: line headers dropped). A log group
mined by another version re-warms before it alerts on new templates, so an upgrade does not
page for every template it now spells differently."""

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
_VARIABLE_RE = re.compile(r"\d|<\*>")
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


_LEVEL_RANK: dict[str, int] = {
    "trace": 0,
    "debug": 1,
    "info": 2,
    "notice": 3,
    "warn": 4,
    "warning": 4,
    "err": 5,
    "error": 5,
    "severe": 6,
    "crit": 7,
    "critical": 7,
    "alert": 8,
    "fatal": 9,
    "emerg": 9,
}
"""Level words, by severity: a template whose lines come at several levels shows the worst."""
_LEVELS = frozenset(_LEVEL_RANK)
_CALENDAR_OR_LEVELS = _CALENDAR | _LEVELS
_HEADERISH_RE = re.compile(r"\d|<\*>|^-$|^[A-Z][A-Z_]*$")
"""Holds a digit or a mask, or is `-` or an all-caps tag (`RAS`, `KERNEL`, `INFO`)."""
_SYSLOG_RE = re.compile(
    r"^(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) +\S+ +"
    r"[^\s:\[]+(?:\[\d*\])?: "
)
"""A syslog header (`Jun 14 15:16:01 host prog[pid]: `, or with an ISO time): time, host, tag."""
_HEADER_SCAN = 12
"""Leading tokens searched for a header that ends in a level word."""
_THREAD_SPAN = 8
"""Most tokens a `[thread name]` right after the level may span."""


def _is_level(tok: str) -> bool:
    return tok.strip("[]():<>").lower() in _LEVELS


def level_marker(tok: str) -> str:
    """The token a header's level word becomes: `[error]` and `ERROR` both give `<ERROR>`."""
    return f"<{tok.strip('[]():<>').upper()}>"


def is_level_marker(tok: str) -> bool:
    return len(tok) > 2 and tok[0] == "<" and tok[-1] == ">" and tok[1:-1].lower() in _LEVELS


def _worse_level(a: str, b: str) -> str:
    return a if _LEVEL_RANK[a[1:-1].lower()] >= _LEVEL_RANK[b[1:-1].lower()] else b


def _header_like(tok: str) -> bool:
    """A token a line header is made of: a number/date/address, `-`, or an all-caps tag."""
    return (
        _HEADERISH_RE.search(tok) is not None
        or tok.strip("[](),.:<>").lower() in _CALENDAR_OR_LEVELS
    )


def strip_header(tokens: list[str]) -> list[str]:
    """`tokens` without their line header, the level word kept as a marker (`<INFO>`).

    A header is a run of header-like tokens (timestamps, node ids, `-`, all-caps tags such as
    `RAS KERNEL`) that ends with a level word (`INFO`, `[error]`, ...), optionally followed by a
    `[thread name]`. These vary with where and when a line was written, not with what it says:
    kept, they split one message into many templates (a thread name per template) or their
    constant tags make different short messages look alike. The level stays in the template
    (it says how bad the message is) but does not split it: the miner routes and compares
    without it, and a template seen at several levels shows the worst. A line without such a
    header, a bare message, is left as it is.
    """
    level = -1
    for i, tok in enumerate(tokens[:_HEADER_SCAN]):
        if not _header_like(tok):
            break
        if _is_level(tok):
            level = i
    if level < 1:  # no header before the level word: a bare message, spelled as it came
        return tokens
    rest = level + 1
    if rest < len(tokens) and tokens[rest].startswith("["):
        for j in range(rest, min(len(tokens), rest + _THREAD_SPAN)):
            if tokens[j].endswith("]"):
                rest = j + 1
                break
    return [level_marker(tokens[level]), *tokens[rest:]]


def tokenize(message: str) -> list[str]:
    """Masked tokens of `message` (its header dropped, see `strip_header`): anything holding
    a digit, and date words, become `<*>`."""
    syslog = _SYSLOG_RE.match(message)
    if syslog is not None:
        message = message[syslog.end() :]
    masked = _MASK_RE.sub(WILDCARD, message)
    out: list[str] = []
    tokens = strip_header([t for t in _SPLIT_RE.split(masked) if t])
    if tokens and is_level_marker(tokens[0]):  # the only place a level marker can be
        out.append(tokens[0])
        tokens = tokens[1:]
    for tok in tokens:
        keyed = _KEYED_RE.match(tok)
        if keyed is not None and (WILDCARD in keyed[2] or _DIGIT_RE.search(keyed[2])):
            out.append(keyed[1] + WILDCARD)
        elif (
            tok in _EMPTY
            or _VARIABLE_RE.search(tok) is not None
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
            if tok != WILDCARD and not is_level_marker(tok):
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
            if merged and merged[0] == WILDCARD:  # two levels: the template shows the worse
                merged[0] = _merge_levels(best.tokens[0], tokens[0])
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
            if is_level_marker(cluster.tokens[0]):  # a level neither joins nor splits
                params += 1
                same -= cluster.tokens[0] == tokens[0]
            constant = n - params
            sim = same / constant if constant else 1.0
            key = (sim, params)
            if sim >= threshold and key > best_key:
                best, best_key = cluster, key
        return best


def _merge_levels(a: str, b: str) -> str:
    if is_level_marker(a) and is_level_marker(b):
        return _worse_level(a, b)
    return WILDCARD
