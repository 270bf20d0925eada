"""`python -m aiops_agent.demo.moto_server -H 127.0.0.1 -p PORT`: moto's server, with DynamoDB's
requests serialized.

moto runs each request on a thread of its own, and its TransactWriteItems is not isolated: it
snapshots every table the transaction touches and, when the transaction is cancelled (a failed
condition), puts those snapshots back, so a write that another thread made in between is lost
(measured: 8 of 60 PutItems made beside 60 cancelled transactions were gone). DynamoDB itself
never loses a committed write; our conditional saves then read a version that was acknowledged
and later vanished, and an action could run twice. Serializing DynamoDB's requests inside the
emulator gives back DynamoDB's guarantee; other services (SQS long polls above all) keep their
threads.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_DYNAMODB = threading.Lock()
_call_action = DynamoHandler.call_action


def _serialized(self: DynamoHandler) -> Any:
    with _DYNAMODB:
        return _call_action(self)


DynamoHandler.call_action = _serialized  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
