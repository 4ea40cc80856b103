"""A steady mixed writer for the follow benchmark: inserts, updates and deletes at a fixed
rate against one collection, for a fixed time, from several threads (one pymongo thread
does about 500 round trips a second here). Prints what it did as JSON.

    python3 follow_writer.py URI DB OPS_PER_SEC SECONDS [THREADS]
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

uri, db, rate, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 8
coll = MongoClient(uri)[db]["orders"]
existing = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(20_000)]
base_id = coll.estimated_document_count() + 1_000_000
done = {"insert": 0, "update": 0, "delete": 0, "ops": 0}
lock = threading.Lock()


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
pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
elapsed = time.monotonic() - began
print(json.dumps({"seconds": round(elapsed, 1), "ops_per_sec": round(done["ops"] / elapsed), **done}))
