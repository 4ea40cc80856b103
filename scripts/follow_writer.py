"""A steady mixed writer for the follow benchmark: inserts, updates and deletes at a fixed
rate against one collection, for a fixed time. Prints what it did as JSON.

    python3 follow_writer.py URI DB OPS_PER_SEC SECONDS
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.expanduser("~/.cache/mongoshift/pylib-pymongo-4.10.1"))
from pymongo import MongoClient  # noqa: E402

uri, db, rate, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
coll = MongoClient(uri)[db]["orders"]
rng = random.Random(7)
next_id = coll.estimated_document_count() + 1_000_000
live = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(20_000)]
done = {"insert": 0, "update": 0, "delete": 0}
start = time.monotonic()
n = 0
while True:
    now = time.monotonic() - start
    if now >= secs:
        break
    due = int(now * rate)
    if n >= due:
        time.sleep(min(0.002, (n + 1) / rate - now))
        continue
    roll = rng.random()
    if roll < 0.5 or len(live) < 100:
        coll.insert_one({"_id": next_id, "user": rng.randrange(10_000), "amount": rng.random() * 100, "items": [1, 2, 3]})
        live.append(next_id)
        next_id += 1
        done["insert"] += 1
    elif roll < 0.85:
        _id = live[rng.randrange(len(live))]
        coll.update_one({"_id": _id}, {"$set": {"status": "paid"}, "$inc": {"amount": 1}, "$push": {"items": 4}})
        done["update"] += 1
    else:
        _id = live.pop(rng.randrange(len(live)))
        coll.delete_one({"_id": _id})
        done["delete"] += 1
    n += 1
elapsed = time.monotonic() - start
print(json.dumps({"ops": n, "seconds": round(elapsed, 1), "ops_per_sec": round(n / elapsed), **done}))
