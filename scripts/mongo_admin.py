"""Tiny admin helper for the test servers: readiness, replica-set initiation, and the
Atlas-like server's first user.

Used by scripts/servers only; mongoshift itself never depends on Python.
"""
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError


def wait_ready(uri: str, timeout: float = 60.0, **kw) -> MongoClient:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            client = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=1000, **kw)
            client.admin.command("ping")
            return client
        except PyMongoError as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    sys.exit(f"mongod at {uri} did not answer within {timeout}s: {last}")


def initiate_client(client: MongoClient, set_name: str, host: str) -> None:
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


def initiate(uri: str, set_name: str, host: str) -> None:
    initiate_client(wait_ready(uri), set_name, host)


def initiate_secure(uri: str, set_name: str, host: str, ca: str, user: str, password: str) -> None:
    """Initiate an --auth --tlsMode requireTLS replica set and create its root user.

    On a fresh data dir the localhost exception allows replSetInitiate and the first
    createUser; on a restart the user exists and the exception is closed, so log in."""
    tls = {"tls": True, "tlsCAFile": ca}
    anonymous = wait_ready(uri, **tls)  # ping needs no login
    root = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=5000,
                       username=user, password=password, authSource="admin", **tls)
    try:
        root.admin.command("connectionStatus")
        initiate_client(root, set_name, host)
        return
    except OperationFailure as exc:
        if exc.code != 18:  # AuthenticationFailed: no such user yet, a fresh data dir
            raise
    initiate_client(anonymous, set_name, host)
    anonymous.admin.command("createUser", user, pwd=password, roles=["root"])


def initiate_auth(uri: str, set_name: str, host: str, admin: str, admin_pw: str,
                  app: str, app_pw: str, app_db: str) -> None:
    """Initiate a keyFile-auth replica set (no TLS) with the tool's root user and the
    application's user (readWrite on app_db only). Idempotent like initiate_secure: on a
    restart the users exist and the localhost exception is closed, so log in."""
    anonymous = wait_ready(uri)
    root = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=5000,
                       username=admin, password=admin_pw, authSource="admin")
    try:
        root.admin.command("connectionStatus")
        initiate_client(root, set_name, host)
    except OperationFailure as exc:
        if exc.code != 18:  # AuthenticationFailed: a fresh data dir
            raise
        initiate_client(anonymous, set_name, host)
        anonymous.admin.command("createUser", admin, pwd=admin_pw, roles=["root"])
        root = MongoClient(uri, directConnection=True, serverSelectionTimeoutMS=5000,
                           username=admin, password=admin_pw, authSource="admin")
    if not root.admin.command("usersInfo", app)["users"]:
        root.admin.command("createUser", app, pwd=app_pw,
                           roles=[{"role": "readWrite", "db": app_db}])


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "ready":
        wait_ready(sys.argv[2])
    elif cmd == "initiate":
        initiate(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "initiate-secure":
        # The password comes on stdin so that it never shows in `ps`.
        initiate_secure(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
                        sys.stdin.readline().strip())
    elif cmd == "initiate-auth":
        # Both passwords come on stdin (admin's, then the application's): never in `ps`.
        admin_pw = sys.stdin.readline().strip()
        app_pw = sys.stdin.readline().strip()
        initiate_auth(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], admin_pw,
                      sys.argv[6], app_pw, sys.argv[7])
    else:
        sys.exit(f"unknown command {cmd}")
