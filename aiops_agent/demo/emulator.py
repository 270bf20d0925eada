"""An embedded AWS emulator: moto's server mode, in its own process, on a loopback port.

Used by `aiops-agent demo` and by the test suite. It binds 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from types import TracebackType

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


INSTALL_HINT = 'the AWS emulator (moto) is not installed: pip install "aiops-agent[demo]"'
"""moto is an extra (`demo`), not a runtime dependency: the production image does not carry it."""


SERVER_MODULE = "aiops_agent.demo.moto_server"


class EmulatorMissing(RuntimeError):
    """moto's server is not importable in this environment."""


def emulator_installed() -> bool:
    try:
        return importlib.util.find_spec("moto.server") is not None
    except ModuleNotFoundError:  # `moto` itself is absent
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's server (`python -m aiops_agent.demo.moto_server -H 127.0.0.1 -p PORT`, which
    serializes DynamoDB's requests: see that module); `url` once started."""

    def __init__(self, port: int | None = None, start_timeout: float = 30.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        if not emulator_installed():
            raise EmulatorMissing(INSTALL_HINT)
        env = {**os.environ, **DUMMY_CREDENTIALS}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", SERVER_MODULE, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return self
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the AWS emulator did not start on {self.url}") from None
                time.sleep(0.1)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
