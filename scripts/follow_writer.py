"""A steady mixed writer for the follow benchmark: inserts, updates and deletes at a fixed
rate against one collection, for a fixed time, from several threads (one pymongo thread
does about 500 round trips a second here). Prints what it did as JSON.

    python3 follow_writer.py URI DB OPS_PER_SEC SECONDS [THREADS]
    python3 follow_writer.py URI DB bulk N [THREADS]

The bulk form writes N operations of the same mix as fast as the source takes them
(ordered bulk writes of 500 single-document operations: one change event each), to build
a backlog for measuring the tail's catch-up capacity.
"""
import json
import os
import random
import sys
import threading
import time

# pymongo and python-dotenv come from the scripts' private venv: run this with
# ~/.cache/mongoshift/venv-pymongo-4.10.1-dotenv-1.0.1/bin/python (scripts/install-pymongo).
from pymongo import MongoClient  # noqa: E402

from pymongo import DeleteOne, InsertOne, UpdateOne  # noqa: E402

bulk = sys.argv[3] == "bulk"
uri, db = sys.argv[1], sys.argv[2]
rate, secs = (0.0, 0.0) if bulk else (float(sys.argv[3]), float(sys.argv[4]))
bulk_ops = int(sys.argv[4]) if bulk else 0
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 8
coll = MongoClient(uri)[db]["orders"]
existing = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(20_000)]
base_id = coll.estimated_document_count() + 1_000_000
done = {"insert": 0, "update": 0, "delete": 0, "ops": 0}
lock = threading.Lock()


def work_bulk(k):
    rng = random.Random(7 + k)
    live = existing[k::threads]
    next_id = base_id + k * 10_000_000
    mine = {"insert": 0, "update": 0, "delete": 0}
    todo = bulk_ops // threads
    while todo > 0:
        ops = []
        for _ in range(min(500, todo)):
            roll = rng.random()
            if roll < 0.5 or len(live) < 100:
                ops.append(InsertOne({"_id": next_id, "user": rng.randrange(10_000), "amount": rng.random() * 100, "items": [1, 2, 3]}))
                live.append(next_id)
                next_id += 1
                mine["insert"] += 1
            elif roll < 0.85:
                _id = live[rng.randrange(len(live))]
                ops.append(UpdateOne({"_id": _id}, {"$set": {"status": "paid"}, "$inc": {"amount": 1}, "$push": {"items": 4}}))
                mine["update"] += 1
            else:
                ops.append(DeleteOne({"_id": live.pop(rng.randrange(len(live)))}))
                mine["delete"] += 1
        coll.bulk_write(ops, ordered=True)
        todo -= len(ops)
    with lock:
        for key, v in mine.items():
            done[key] += v
            done["ops"] += v


def work(k):
    rng = random.Random(7 + k)
    live = existing[k::threads]
    next_id = base_id + k * 10_000_000
    rate_k = rate / threads
    mine = {"insert": 0, "update": 0, "delete": 0}
    start = time.monotonic()
    n = 0
    while True:
        now = time.monotonic() - start
        if now >= secs:
            break
        if n >= int(now * rate_k):
            time.sleep(min(0.002, (n + 1) / rate_k - now))
            continue
        roll = rng.random()
        if roll < 0.5 or len(live) < 100:
            coll.insert_one({"_id": next_id, "user": rng.randrange(10_000), "amount": rng.random() * 100, "items": [1, 2, 3]})
            live.append(next_id)
            next_id += 1
            mine["insert"] += 1
        elif roll < 0.85:
            _id = live[rng.randrange(len(live))]
            coll.update_one({"_id": _id}, {"$set": {"status": "paid"}, "$inc": {"amount": 1}, "$push": {"items": 4}})
            mine["update"] += 1
        else:
            _id = live.pop(rng.randrange(len(live)))
            coll.delete_one({"_id": _id})
            mine["delete"] += 1
        n += 1
    with lock:
        for key, v in mine.items():
            done[key] += v
        done["ops"] += n


began = time.monotonic()
pool = [threading.Thread(target=work_bulk if bulk else work, args=(k,)) for k in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
elapsed = time.monotonic() - began
print(json.dumps({"seconds": round(elapsed, 1), "ops_per_sec": round(done["ops"] / elapsed), **done}))
