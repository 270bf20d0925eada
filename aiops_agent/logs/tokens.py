"""Tokenizing a log line for the miner: its header dropped, what a program fills in made `<*>`.

The rules here follow how log statements are written, not one file: a value printed by the
program (anything with a digit, a host, a path, a size or duration with its unit, the value of
`key=value`, a date word) is a variable; the words of the format string are the template.
See `ALL_RULES` for each; bench/logmining.py judges each leave-systems-out.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

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


ALL_RULES: frozenset[str] = frozenset(
    {
        *("hosts", "paths", "units", "kv_values"),
        *("enums", "capitalized", "siblings", "sibling_pairs", "subsume", "any_route"),
    }
)
"""- hosts: host names (`db.example.com`, `host:port`) and e-mail addresses are variables, and a
  dotted host is never taken for a `key:` (`proxy.example.com:8080` is one variable);
- paths: file paths and URLs (`/var/log/x`, `C:\\dir\\f`, `./a`, `hdfs://...`) are variables;
- units: a unit word right after a number (`5.2 KB`, `<1 sec`, `1190 bytes (1.16 KB)`) is part of
  the value, so a field printed with a varying unit or an optional human size is one variable;
- capitalized: past the first word, a Capitalized word (`VM Started`/`VM Paused`) is never
  taken for a variable by `siblings`;
- enums: two different ALL-CAPS words in one position (`NEW`/`RUNNING`, `GET`/`POST`) are
  enumerated constants, never generalized into one template;
- kv_values: the value of `key=value` is a variable even without a digit (`user=root`): the
  statement printed the key, the program filled in the value;
- siblings: a position where SIBLINGS different words have been seen, the message otherwise
  alike, is a variable (see `TemplateMiner._absorb_siblings`): user and service names, first
  word or not, while two alternatives (`Accepted`/`Failed`) stay two templates;
- sibling_pairs: the same for two positions at once (`<*> handed the ticket to <*>`), each
  with SIBLINGS different words and one more word in common; messages up to 16 tokens;
- subsume: a cluster that gains a variable takes in the clusters it now covers (same length,
  its constants in place): `user <*> from <*>` takes `user webmaster from <*>`, founded before
  the first value with a digit showed the position varies;
- any_route: a message no cluster of its route takes is compared with every cluster of its
  length, so a variable word among the first tokens (a user, a service name) does not found a
  template per value; the cluster it joins is then reachable from that route too. Off by
  default: it also merges statements that differ only in their first word (`Accepted password
  for` / `Failed password for`), which is the commoner case (bench: OpenSSH 0.995 -> 0.733)."""
RULES: frozenset[str] = ALL_RULES - {"any_route"}
"""The default rules."""


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


def worse_level(a: str, b: str) -> str:
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


_TLDS = frozenset({"com", "net", "org", "edu", "gov", "io", "info", "biz", "local", "lan"})
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+([A-Za-z]{2,6})(?::\d+|:<\*>)?$"
)
_EMAIL_RE = re.compile(r"^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")
_PATH_RE = re.compile(
    r"^(?:[A-Za-z]:\\|\\\\|~?/[^/\s]|\.\.?/|[A-Za-z][A-Za-z0-9+.-]*://)"  # /x, C:\, ./, url
    r"|^[^/\s]+(?:/[^/\s]+){2,}$"  # a/b/c
    r"|^[^\\\s]+(?:\\[^\\\s]+){2,}$"  # a\b\c
)
_EDGE = "\"'([{<,;.)]}>"
_UNITS = frozenset(
    {
        *("b", "byte", "bytes", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib"),
        *("k", "m", "g", "%"),
        *("ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds"),
        *("min", "mins", "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "day", "days"),
    }
)
_CAPS_RE = re.compile(r"^[A-Z][A-Z_]+$")
_CAPITALIZED_RE = re.compile(r"^[A-Z][a-z]{2,}$")


def _is_host(tok: str) -> bool:
    """A dotted host name (`www.example.com`, `a.b.lan:8080`), not a reverse-DNS class name
    (`org.apache.Foo`, `com.example.ipc`): labels joined by dots ending in a lowercase TLD-like
    label, or in a port."""
    tok = tok.strip(_EDGE)
    found = _HOST_RE.match(tok)
    if found is None:
        return False
    labels = tok.split(":", 1)[0].split(".")
    if labels[0].lower() in _TLDS and len(labels) > 2:  # reverse DNS: a package, not a host
        return False
    tld = found[1]
    if ":" in tok:
        return True
    return tld.islower() and (len(labels) > 2 or tld in _TLDS)


def _is_path(tok: str) -> bool:
    return _PATH_RE.match(tok.strip(_EDGE)) is not None


def _is_unit(tok: str) -> bool:
    return tok.strip(_EDGE).lower() in _UNITS


def is_enum(tok: str) -> bool:
    """An ALL-CAPS word (`RUNNING`, `"GET`): an enumerated constant of the statement."""
    return _CAPS_RE.match(tok.strip("\"'([{,;.:)]}")) is not None


def is_capitalized(tok: str) -> bool:
    """A Capitalized word (`Started`, `Paused`): past a message's first word, a name the
    statement gives (an event, a state), not a value it fills in (users and hosts are spelled
    lowercase)."""
    return _CAPITALIZED_RE.match(tok.strip("\"'([{,;.:)]}")) is not None


def _classify(tok: str, rules: frozenset[str]) -> str:
    """What one token becomes: `<*>`, `key=<*>`, or itself."""
    hosts, paths = "hosts" in rules, "paths" in rules
    keyed = _KEYED_RE.match(tok)
    if keyed is not None and "://" not in tok and not (hosts and _is_host(tok)):
        value = keyed[2]
        if (
            ("kv_values" in rules and tok[len(keyed[1]) - 1] == "=")
            or WILDCARD in value
            or _DIGIT_RE.search(value)
            or (hosts and _is_host(value))
            or (paths and _is_path(value))
        ):
            return keyed[1] + WILDCARD
        return tok
    if (
        tok in _EMPTY
        or _VARIABLE_RE.search(tok) is not None
        or tok.strip("[](),.:").lower() in _CALENDAR
        or (hosts and ("." in tok or "@" in tok) and (_is_host(tok) or _EMAIL_RE.match(tok)))
        or (paths and ("/" in tok or "\\" in tok) and _is_path(tok))
    ):
        return WILDCARD
    return tok


_CACHE_LIMIT = 1 << 16
_CLASSIFIED: dict[frozenset[str], dict[str, str]] = {}
"""Per rule set, what recent tokens became: log words repeat, so most tokens are looked up."""


def tokenize(message: str, rules: frozenset[str] = RULES) -> list[str]:
    """Masked tokens of `message` (its header dropped, see `strip_header`): anything holding
    a digit (so addresses, ids, hex, uuids), date words, and (by `rules`) hosts, paths and units
    after a number become `<*>`."""
    syslog = _SYSLOG_RE.match(message)
    if syslog is not None:
        message = message[syslog.end() :]
    out: list[str] = []
    tokens = strip_header([t for t in _SPLIT_RE.split(message) if t])
    if tokens and is_level_marker(tokens[0]):  # the only place a level marker can be
        out.append(tokens[0])
        tokens = tokens[1:]
    units = "units" in rules
    cache = _CLASSIFIED.get(rules)
    if cache is None:
        cache = _CLASSIFIED.setdefault(rules, {})
    last = ""
    for tok in tokens:
        if last == WILDCARD and units and tok.strip(_EDGE).lower() in _UNITS:
            continue  # `5.2 KB`: the unit belongs to the value
        kind = cache.get(tok)
        if kind is None:
            kind = _classify(tok, rules)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[tok] = kind
        if kind != WILDCARD or last != WILDCARD:
            out.append(kind)
            last = kind
    return out
