"""Loopback port helpers for scripts/servers and scripts/test.

  ports.py free N        print N distinct free loopback ports (one line, space-separated)
  ports.py holder PORT   exit 0 when PORT is free; else print who holds it and exit 1
"""
import os
import socket
import sys


def free(n: int) -> None:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


def listening_inodes(port: int) -> set:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes


def holder_of(port: int) -> str:
    inodes = listening_inodes(port)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    cmd = "?"
                return f"pid {pid}: {cmd[:160]}"
    return "another process (not visible to this user)"


def holder(port: int) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As mongod and Garage bind: a port in TIME_WAIT is free, a listening one is not.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return 0
    except OSError:
        print(holder_of(port))
        return 1
    finally:
        s.close()


if __name__ == "__main__":
    if sys.argv[1] == "free":
        free(int(sys.argv[2]))
    elif sys.argv[1] == "holder":
        sys.exit(holder(int(sys.argv[2])))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
