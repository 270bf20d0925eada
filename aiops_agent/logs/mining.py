"""Online log template mining: a Drain-style parse tree with one configuration for every log.

Each message is cut into tokens, what a program fills in (anything with a digit, hosts, paths,
values with their unit, `key=value` values, dates) becomes `<*>`, and the message is routed by
its token count and its first constant tokens to a short list of clusters; it joins the one
whose constants it all shares (or founds a new one).

What differs from drain3, and why one configuration is enough (bench/logmining.py judges it
leave-systems-out: rules are kept for how log statements are written, not for one file):
- the whole line goes in, header included, with no per-format setting: a header that ends in a
  level word (`<date> <time> INFO [thread name] ...`, `... RAS KERNEL FATAL ...`) and a syslog
  header (`Jun 14 15:16:01 host prog[pid]: `) are recognised and dropped, the level kept as a
  marker (`<INFO>`) that neither routes nor splits a template; elsewhere date parts, times and
  pids are masked, month and weekday names too, and `|` separates tokens like a blank does;
- routing skips masked tokens, so a timestamp or a host first does not flatten the tree;
- a word is not made a variable because it resembles another (similarity 1.0, where Drain needs
  a threshold per system): a position becomes a variable by the shape of a value or when
  several different words are seen in it, everything else alike (`RULES`: siblings, subsume);
  runs of variables collapse into one `<*>` (lists of any length), and empty `()` is a variable.
Template ids are stable: the hash of the template a cluster was founded with. A cluster merged
into another keeps its id as an alias (`clusters[old_id]` is the survivor). A miner can be
seeded with stored clusters, so ids (and the baselines keyed by them) survive restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiops_agent.logs.tokens import (
    ALL_RULES,
    RULES,
    WILDCARD,
    is_capitalized,
    is_enum,
    is_level_marker,
    tokenize,
    worse_level,
)

__all__ = [
    "ALL_RULES",
    "MINER_VERSION",
    "RULES",
    "WILDCARD",
    "Cluster",
    "MinerConfig",
    "TemplateMiner",
    "template_id_for",
    "tokenize",
]

MINER_VERSION = 3
"""Bumped when tokenizing changes the template a line gets (2: line headers dropped; 3: hosts,
paths, units and `key=value` values are variables). A log group mined by another version
re-warms before it alerts on new templates, so an upgrade does not page for every template it
now spells differently."""

SIBLINGS = 3
"""Distinct words seen in one position, all else alike, that make it a variable."""
SIBLINGS_SHARE = 2
"""Words siblings must have in common besides, and that a template must hold to subsume others:
one-word messages are not siblings, and `<*> done` says too little to take in `x done`."""


@dataclass(frozen=True)
class MinerConfig:
    """The one default configuration; fields exist for tests and experiments, not for tuning."""

    similarity: float = 1.0
    """Fraction of the cluster's constant positions that must agree for a message to join it.
    1.0: a word differing from a cluster's is not taken for a variable on resemblance alone
    (`Accepted`/`Failed`, `bytes`/`values`, `NEW`/`RUNNING` are words of different statements);
    a position becomes a variable on evidence: a value with a digit, a host, a path (tokenizing),
    or SIBLINGS different words in it (rules `siblings`, `subsume`). Drain's 0.4-0.7 merges on
    resemblance and needs a threshold fitted per system; leave-systems-out in bench/ says 1.0."""
    prefix_depth: int = 2
    """Constant tokens used to route a message before similarity is computed."""
    max_children: int = 100
    rules: frozenset[str] = RULES
    """Named tokenizing/merging rules (see `RULES`); the bench's ablations switch one off."""


def template_id_for(tokens: Iterable[str]) -> str:
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:12]


@dataclass
class Cluster:
    template_id: str
    tokens: list[str]
    size: int = 0
    routes: list[tuple[object, ...]] = field(default_factory=list, repr=False, compare=False)
    """The routes it is listed under."""
    order: int = field(default=0, repr=False, compare=False)
    """Founding order in its miner: the oldest of clusters that merge survives."""
    absorbed: bool = False
    """Merged into another cluster (see `siblings`): no longer matched; its id resolves to the
    survivor through `TemplateMiner.clusters`."""

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


@dataclass
class TemplateMiner:
    """Streaming miner. `add` learns and returns the message's cluster.

    `clusters` maps every id ever given out to its cluster: an id whose cluster was merged into
    another (rule `siblings`) maps to the survivor, so `clusters[tid].template_id` is the final
    id of a line mined earlier."""

    config: MinerConfig = field(default_factory=MinerConfig)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    _routes: dict[tuple[object, ...], list[Cluster]] = field(default_factory=dict)
    _by_length: dict[int, list[Cluster]] = field(default_factory=dict)
    _generalized: dict[int, list[Cluster]] = field(default_factory=dict)
    _siblings: dict[int, list[Cluster]] = field(default_factory=dict)
    """Clusters by `_sibling_keys` of the tokens they were founded with: a miss looks up its
    siblings there instead of comparing itself with every cluster of its length."""
    """By length, the clusters that absorbed siblings: reachable from any route."""

    def seed(self, template_id: str, template: str) -> Cluster:
        """Restore a stored cluster (its id and template) before any message is added.

        An id stored with the template of a cluster already seeded (one merged into another,
        stored under the survivor's template) becomes an alias of it, not a second cluster."""
        existing = self.clusters.get(template_id)
        if existing is not None:
            return existing
        tokens = template.split(" ") if template else []
        for same in self._by_length.get(len(tokens), ()):
            if same.tokens == tokens and not same.absorbed:
                self.clusters[template_id] = same
                return same
        cluster = Cluster(template_id, tokens)
        self._register(cluster, self._route(cluster.tokens))
        self._reachable(cluster)
        return cluster

    def _reachable(self, cluster: Cluster) -> None:
        """List `cluster` among those every route can reach when a variable sits among its
        routing tokens: `<*> logged out` is not on the route of `dave logged out`."""
        constants = 0
        for tok in cluster.tokens:
            if constants >= self.config.prefix_depth:
                return
            if tok == WILDCARD:
                generalized = self._generalized.setdefault(len(cluster.tokens), [])
                if cluster not in generalized:
                    generalized.append(cluster)
                return
            constants += not is_level_marker(tok)

    def _register(self, cluster: Cluster, route: tuple[object, ...]) -> None:
        cluster.order = len(self.clusters)
        self.clusters[cluster.template_id] = cluster
        self._listed(cluster, route)
        self._by_length.setdefault(len(cluster.tokens), []).append(cluster)
        keys = _sibling_keys(cluster.tokens)
        if "sibling_pairs" in self.config.rules:
            keys += _sibling_pair_keys(cluster.tokens)
        for key in keys:
            self._siblings.setdefault(key, []).append(cluster)

    def _listed(self, cluster: Cluster, route: tuple[object, ...]) -> None:
        self._routes.setdefault(route, []).append(cluster)
        cluster.routes.append(route)

    def _absorb(self, survivor: Cluster, other: Cluster) -> None:
        """`other` merges into `survivor`: its id resolves to it, its routes lead to it."""
        survivor.tokens = _merge(survivor.tokens, other.tokens)
        survivor.size += other.size
        other.absorbed = True
        self.clusters[other.template_id] = survivor
        for route in other.routes:
            listed = self._routes[route]
            if survivor in listed:
                listed.remove(other)
            else:
                listed[listed.index(other)] = survivor
                survivor.routes.append(route)

    def _subsume(self, general: Cluster) -> Cluster:
        """Merge the clusters `general` covers (same length, its constants in place) into the
        oldest of them: `user webmaster from <*>` is a line of `user <*> from <*>`. Returns the
        survivor, which takes the general template."""
        constants = sum(t != WILDCARD and not is_level_marker(t) for t in general.tokens)
        if constants < SIBLINGS_SHARE:  # `<*>` or `<*> done` covers too much to say
            return general
        family = {id(general): general}
        for route in general.routes:  # a specialization shares a route with it (not scanned all)
            for c in self._routes[route]:
                if (
                    not c.absorbed
                    and len(c.tokens) == len(general.tokens)
                    and all(
                        a in (WILDCARD, b) for a, b in zip(general.tokens, c.tokens, strict=True)
                    )
                ):
                    family[id(c)] = c
        if len(family) == 1:
            return general
        survivor, *rest = sorted(family.values(), key=lambda c: c.order)
        tokens = general.tokens
        for other in rest:
            self._absorb(survivor, other)
        survivor.tokens = _merge(survivor.tokens, tokens)
        return survivor

    def _route(self, tokens: list[str]) -> tuple[object, ...]:
        key: list[object] = [len(tokens)]
        for tok in tokens:
            if len(key) > self.config.prefix_depth:
                break
            if tok != WILDCARD and not is_level_marker(tok):
                eq = tok.find("=")  # `key=value`: the key routes, the value may vary
                key.append(tok if eq < 1 else tok[: eq + 1])
        return tuple(key)

    def add(self, message: str) -> Cluster:
        tokens = tokenize(message, self.config.rules)
        route = self._route(tokens)
        candidates = self._routes.setdefault(route, [])
        best = self._best(candidates, tokens)
        rules = self.config.rules
        if best is None and "any_route" in rules:
            best = self._best(self._by_length.get(len(tokens), []), tokens)
            if best is not None:
                self._listed(best, route)
        if best is None and "siblings" in rules:
            best = self._best(self._generalized.get(len(tokens), []), tokens)
            best = best or self._absorb_siblings(tokens)
            if best is not None and best not in candidates:
                self._listed(best, route)
        generalized = False
        if best is None:
            tid = template_id_for(tokens)
            while tid in self.clusters:  # the same text founded twice (after a merge): re-hash
                tid = template_id_for([tid, *tokens])
            best = Cluster(tid, tokens)
            self._register(best, route)
            generalized = WILDCARD in tokens
        else:
            merged = _merge(best.tokens, tokens)
            generalized = merged != best.tokens
            best.tokens = merged
        if generalized and "subsume" in rules:
            best = self._subsume(best)
        best.size += 1
        return best

    def _absorb_siblings(self, tokens: list[str]) -> Cluster | None:
        """The cluster that `tokens` and its siblings merge into, when there are enough of them.

        A sibling is a cluster of the same length that differs from `tokens` in exactly one
        position holding a word on both sides (not a level, not an ALL-CAPS enumerated word).
        When `SIBLINGS` distinct words have been seen in that one position with everything
        else alike, the position holds a variable (a user, a service, a queue name) rather than
        a word of the statement: the siblings merge into the oldest, which takes the message.
        With `sibling_pairs`, likewise for two positions. Siblings are looked up by key
        (`_sibling_keys`), so a miss costs the same with ten clusters or ten thousand.
        """
        rules = self.config.rules
        enums, capitalized = "enums" in rules, "capitalized" in rules
        pairs = "sibling_pairs" in rules
        first = 1 if tokens and is_level_marker(tokens[0]) else 0
        seen: set[int] = set()
        candidates: list[Cluster] = []
        keys = _sibling_keys(tokens) + (_sibling_pair_keys(tokens) if pairs else [])
        for key in keys:
            for cluster in self._siblings.get(key, ()):
                if not cluster.absorbed and id(cluster) not in seen:
                    seen.add(id(cluster))
                    candidates.append(cluster)
        candidates.sort(key=lambda c: c.order)
        by_positions: dict[tuple[int, ...], list[Cluster]] = {}
        for cluster in candidates:
            where: list[int] = []
            shared = 0
            for i, (a, b) in enumerate(zip(cluster.tokens, tokens, strict=True)):
                if a == b:
                    shared += a != WILDCARD and not is_level_marker(a)
                elif a != WILDCARD and b != WILDCARD:
                    if (
                        len(where) >= 1 + pairs
                        or is_level_marker(a)
                        or (enums and (is_enum(a) or is_enum(b)))
                        or (capitalized and i > first and (is_capitalized(a) or is_capitalized(b)))
                    ):
                        where = []
                        break
                    where.append(i)
            if where and shared >= SIBLINGS_SHARE + len(where) - 1:
                by_positions.setdefault(tuple(where), []).append(cluster)
        for positions, siblings in by_positions.items():
            if any(
                len({c.tokens[i] for c in siblings} | {tokens[i]}) < SIBLINGS for i in positions
            ):
                continue
            survivor, *others = siblings
            for other in others:
                self._absorb(survivor, other)
            for i in positions:
                survivor.tokens[i] = WILDCARD
            generalized = self._generalized.setdefault(len(tokens), [])
            if survivor not in generalized:
                generalized.append(survivor)
            return survivor
        return None

    def match(self, message: str) -> Cluster | None:
        """The cluster `message` would join, without learning from it."""
        tokens = tokenize(message, self.config.rules)
        found = self._best(self._routes.get(self._route(tokens), []), tokens)
        if found is None and "any_route" in self.config.rules:
            found = self._best(self._by_length.get(len(tokens), []), tokens)
        return found

    def _best(self, candidates: list[Cluster], tokens: list[str]) -> Cluster | None:
        n = len(tokens)
        if n == 0:
            for cluster in candidates:
                return cluster
            return None
        threshold = self.config.similarity
        best: Cluster | None = None
        best_key = (-1.0, -1)
        enums = "enums" in self.config.rules
        for cluster in candidates:
            if cluster.absorbed:
                continue
            same = 0
            params = 0
            clash = False
            for a, b in zip(cluster.tokens, tokens, strict=True):
                if a == WILDCARD:
                    params += 1
                elif a == b:
                    same += 1
                elif enums and is_enum(a) and is_enum(b):
                    clash = True
                    break
            if clash:
                continue
            if is_level_marker(cluster.tokens[0]):  # a level neither joins nor splits
                params += 1
                same -= cluster.tokens[0] == tokens[0]
            constant = n - params
            sim = same / constant if constant else 1.0
            key = (sim, params)
            if sim >= threshold and key > best_key:
                best, best_key = cluster, key
        return best


SIBLING_KEY_TOKENS = 64
"""Longer messages are not looked up for siblings (keys cost the square of the length)."""


def _sibling_keys(tokens: list[str]) -> list[int]:
    """One key per word position: the position and every other token. Two messages that
    differ in one word only share the key of that position."""
    if len(tokens) > SIBLING_KEY_TOKENS:
        return []
    return [
        hash((i, tuple(tokens[:i]), tuple(tokens[i + 1 :])))
        for i, tok in enumerate(tokens)
        if tok != WILDCARD and not is_level_marker(tok)
    ]


SIBLING_PAIR_TOKENS = 16
"""Longer messages are not looked up for siblings differing in two positions."""


def _sibling_pair_keys(tokens: list[str]) -> list[int]:
    """One key per pair of word positions: the pair and every other token."""
    if len(tokens) > SIBLING_PAIR_TOKENS:
        return []
    words = [i for i, tok in enumerate(tokens) if tok != WILDCARD and not is_level_marker(tok)]
    return [
        hash((i, j, tuple(tokens[:i]), tuple(tokens[i + 1 : j]), tuple(tokens[j + 1 :])))
        for n, i in enumerate(words)
        for j in words[n + 1 :]
    ]


def _merge(template: list[str], tokens: list[str]) -> list[str]:
    merged = [a if a == b else WILDCARD for a, b in zip(template, tokens, strict=True)]
    if merged and merged[0] == WILDCARD:  # two levels: the template shows the worse
        merged[0] = _merge_levels(template[0], tokens[0])
    return merged


def _merge_levels(a: str, b: str) -> str:
    if is_level_marker(a) and is_level_marker(b):
        return worse_level(a, b)
    return WILDCARD
