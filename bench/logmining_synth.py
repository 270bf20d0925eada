"""Synthetic held-out log styles for the miner: formats no rule was written against.

Each style is a small generator of `(line, template key)` pairs, written here from how log
statements are commonly printed (not copied from Loghub or any data set). The key is the format
string the line was printed with, so the ground truth follows the Loghub labelling convention:
what the program filled in (ids, numbers, hosts, paths, sizes with their unit, durations,
process names, user names) is a parameter, and the words of the format string, including
enumerated words such as states and HTTP verbs, are the template.

Deterministic (seeded): the same lines every run, so figures compare across commits.
"""

from __future__ import annotations

import random
from collections.abc import Callable

Line = tuple[str, str]
Style = Callable[[random.Random, int], list[Line]]

_WORDS = ("alpha", "bravo", "delta", "orion", "vega", "lyra", "atlas", "zephyr", "nova", "kilo")
_USERS = ("alice", "bob", "carol", "dave", "erin", "mallory", "svc_backup", "root", "oscar")
_TLDS = ("com", "net", "org", "io", "de")


def _host(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    labels = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        labels[0] += f"-{rng.randrange(1, 40)}"
    return ".".join([*labels, rng.choice(("example", "corp", "internal")), rng.choice(_TLDS)])


def _size(rng: random.Random) -> tuple[int, str]:
    n = rng.choice(
        (rng.randrange(0, 1000), rng.randrange(1000, 10**6), rng.randrange(10**6, 10**9))
    )
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return n, f"{n / scale:.2f} {unit}"
    return n, f"{n} B"


def _duration(rng: random.Random) -> str:
    return rng.choice(
        (
            "<1 sec",
            f"{rng.randrange(0, 59):02d}:{rng.randrange(0, 59):02d}",
            f"{rng.uniform(0.1, 90):.1f} s",
            f"{rng.randrange(1, 999)} ms",
        )
    )


def _path(rng: random.Random) -> str:
    parts = [rng.choice(("var", "opt", "srv", "etc", "home", "data"))]
    parts += [rng.choice(_WORDS + _USERS) for _ in range(rng.randint(1, 4))]
    name = rng.choice(_WORDS) + rng.choice((".conf", ".log", ".yaml", ".db", "", ".tar.gz"))
    if rng.random() < 0.3:
        return "C:\\" + "\\".join([p.capitalize() for p in parts] + [name])
    return "/" + "/".join([*parts, name])


def _ts(rng: random.Random) -> str:
    date = f"2031-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
    hms = f"{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}"
    return f"{date} {hms}.{rng.randrange(1000):03d}"


def transfers(rng: random.Random, n: int) -> list[Line]:
    """A connection broker: host:port first, sizes with a human size beside, mixed durations."""
    out: list[Line] = []
    for _ in range(n):
        peer = f"{_host(rng)}:{rng.choice((80, 443, 8080, 5432))}"
        r = rng.random()
        if r < 0.45:
            (a, ha), (b, hb) = _size(rng), _size(rng)
            line = (
                f"{peer} closed, {a} bytes ({ha}) out, {b} bytes ({hb}) in, lasted {_duration(rng)}"
            )
            out.append((line, "closed"))
        elif r < 0.75:
            mode = rng.choice(("TLS", "PLAIN"))
            out.append((f"{peer} opened through relay {_host(rng)} as {mode}", f"opened-{mode}"))
        elif r < 0.9:
            line = f"{peer} refused by relay {_host(rng)}, retry in {_duration(rng)}"
            out.append((line, "refused"))
        else:
            out.append(
                (f"relay {_host(rng)} is unreachable, {rng.randint(1, 9)} tries left", "unreach")
            )
    return out


def web(rng: random.Random, n: int) -> list[Line]:
    """An access log: client, user, bracketed time, request line, status, bytes, latency."""
    out: list[Line] = []
    for _ in range(n):
        verb = rng.choice(("GET", "GET", "GET", "POST", "DELETE"))
        path = rng.choice(
            (
                f"/api/v{rng.randint(1, 3)}/items/{rng.randrange(10**6)}",
                f"/static/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.css",
                f"/users/{rng.choice(_USERS)}/profile",
            )
        )
        user = rng.choice((*_USERS, "-"))
        line = (
            f'{_host(rng)} - {user} [{_ts(rng)}] "{verb} {path} HTTP/1.1" '
            f"{rng.choice((200, 201, 404, 500))} {rng.randrange(10**5)} {rng.uniform(0, 3):.3f}"
        )
        out.append((line, f"req-{verb}"))
    return out


def logfmt(rng: random.Random, n: int) -> list[Line]:
    """key=value lines (logfmt): the message is the constant, most values vary."""
    out: list[Line] = []
    for _ in range(n):
        lvl = rng.choice(("info", "warn", "error"))
        ts = f"time={_ts(rng).replace(' ', 'T')}Z level={lvl}"
        r = rng.random()
        if r < 0.4:
            key = f"{rng.choice(_WORDS)}:{rng.choice(_USERS)}"
            line = f'{ts} msg="cache miss" key={key} took={_duration(rng).replace(" ", "")}'
            out.append((line, "miss"))
        elif r < 0.7:
            job = f"job={rng.choice(_WORDS)} rows={rng.randrange(10**6)}"
            line = f'{ts} msg="job finished" {job} user={rng.choice(_USERS)}'
            out.append((line, "job"))
        else:
            line = (
                f'{ts} msg="upstream failed" upstream={_host(rng)} err="connection reset by peer"'
            )
            out.append((line, "upstream"))
    return out


def leading_variables(rng: random.Random, n: int) -> list[Line]:
    """Messages whose first tokens are filled in: user names, service names, bracketed workers."""
    out: list[Line] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            who = f"{rng.choice(_USERS)} logged in from {_host(rng)}"
            line = f"{who} using {rng.choice(('password', 'publickey'))}"
            out.append((line, "login"))  # the method is filled in, as sshd's "Accepted %s for"
        elif r < 0.5:
            out.append((f"{rng.choice(_USERS)} logged out", "logout"))
        elif r < 0.75:
            out.append((f"{rng.choice(_WORDS)}: health check passed in {_duration(rng)}", "health"))
        else:
            worker = f"[{rng.choice(('worker', 'pool'))}-{rng.randint(1, 16)}]"
            line = f"{worker} {rng.choice(_WORDS)} queue drained, {rng.randrange(500)} items left"
            out.append((line, "drained"))
    return out


def service(rng: random.Random, n: int) -> list[Line]:
    """A Java-style service with a header (time, level, thread, class): states are constants."""
    out: list[Line] = []
    states = (("QUEUED", "RUNNING"), ("RUNNING", "DONE"), ("RUNNING", "FAILED"))
    for _ in range(n):
        level = rng.choice(("INFO", "INFO", "WARN"))
        header = f"{_ts(rng)} {level} [exec-{rng.randint(1, 8)}] com.example.sched.Runner:"
        r = rng.random()
        if r < 0.5:
            a, b = rng.choice(states)
            line = f"{header} task task_{rng.randrange(10**5)} moved from {a} to {b}"
            out.append((line, f"move-{a}-{b}"))
        elif r < 0.8:
            line = (
                f"{header} loaded {rng.randint(1, 99)} rules from {_path(rng)} in {_duration(rng)}"
            )
            out.append((line, "loaded"))
        else:
            _, size = _size(rng)
            out.append((f"{header} spilled {size} to {_path(rng)}", "spill"))
    return out


def processes(rng: random.Random, n: int) -> list[Line]:
    """Syslog-like lines whose process name and pid are in the message, not a header."""
    out: list[Line] = []
    procs = ("nginx", "postgres", "chronyd", "dockerd", "sshd", "backupd")
    for _ in range(n):
        proc = f"{rng.choice(procs)}[{rng.randrange(100, 65000)}]"
        r = rng.random()
        if r < 0.4:
            line = f"{proc} exited with status {rng.randint(0, 3)} after {_duration(rng)}"
            out.append((line, "exit"))
        elif r < 0.7:
            line = f"watchdog: {proc} uses {_size(rng)[1]} of memory, limit {_size(rng)[1]}"
            out.append((line, "mem"))
        else:
            line = f"{proc} opened {_path(rng)} for writing"
            out.append((line, "open"))
    return out


def lifecycle(rng: random.Random, n: int) -> list[Line]:
    """A VM manager: Capitalized event names are the statement's words, pools are values."""
    out: list[Line] = []
    events = ("Started", "Paused", "Resumed", "Stopped")
    for _ in range(n):
        vm = "-".join(f"{rng.randrange(16**8):08x}" for _ in range(2))
        r = rng.random()
        if r < 0.6:
            event = rng.choice(events)
            out.append((f"[vm: {vm}] VM {event} (state change)", f"vm-{event}"))
        else:
            pool = rng.choice(_WORDS)
            line = f"[vm: {vm}] placed in pool {pool} after {_duration(rng)}"
            out.append((line, "placed"))
    return out


STYLES: dict[str, Style] = {
    "transfers": transfers,
    "web": web,
    "logfmt": logfmt,
    "leading_variables": leading_variables,
    "service": service,
    "processes": processes,
    "lifecycle": lifecycle,
}


def generate(style: str, n: int = 1000, seed: int = 15) -> tuple[list[str], list[str]]:
    pairs = STYLES[style](random.Random(seed), n)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def free_text(n: int = 20_000, seed: int = 15) -> list[str]:
    """Lines of random words: nearly every line a template of its own, the miner's worst case
    for work per line (a miss compares with nothing it can avoid). For speed, not accuracy."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnop"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(3000)]
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(4, 9))) for _ in range(n)]
