"""Tiny admin helper for the test servers: readiness and replica-set initiation.

Used by scripts/servers only; mongoshift itself never depends on Python.
"""
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError


def wait_ready(uri: str, timeout: float = 60.0) -> MongoClient:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            client = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=1000)
            client.admin.command("ping")
            return client
        except PyMongoError as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    sys.exit(f"mongod at {uri} did not answer within {timeout}s: {last}")


def initiate(uri: str, set_name: str, host: str) -> None:
    client = wait_ready(uri)
    try:
        client.admin.command(
            "replSetInitiate", {"_id": set_name, "members": [{"_id": 0, "host": host}]}
        )
    except OperationFailure as exc:
        if exc.code != 23:  # 23 = AlreadyInitialized: a restart of an existing data dir
            raise
    deadline = time.time() + 60
    while time.time() < deadline:
        if client.admin.command("hello").get("isWritablePrimary"):
            return
        time.sleep(0.2)
    sys.exit(f"replica set {set_name} at {host} elected no primary within 60s")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "ready":
        wait_ready(sys.argv[2])
    elif cmd == "initiate":
        initiate(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {cmd}")
