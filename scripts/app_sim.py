"""A small predixi application for the demo: it places bets and moves market volumes at a
steady rate through whatever database its .env file names, read with python-dotenv before
every write, as an app that reloads its config would. A write refused while the cutover
freezes writes (or while the primary changes) is retried with the same _id until it is
acknowledged, so every write the app was told succeeded can be checked afterwards.

    python3 app_sim.py ENV_FILE DB OPS_PER_SEC STOP_FILE REPORT_JSON

Runs until STOP_FILE exists, then writes REPORT_JSON: acknowledged inserts (their _ids),
acknowledged market updates, retries, and writes per host.
"""
import json
import os
import random
import sys
import time

# pymongo and python-dotenv come from the scripts' private venv: run this with
# ~/.cache/mongoshift/venv-pymongo-4.10.1-dotenv-1.0.1/bin/python (scripts/install-pymongo).
from bson import ObjectId  # noqa: E402
from dotenv import dotenv_values  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.errors import DuplicateKeyError, PyMongoError  # noqa: E402
from pymongo.write_concern import WriteConcern  # noqa: E402

env_file, db_name, rate, stop_file, report = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]

clients = {}


def database():
    uri = dotenv_values(env_file)["MONGO_URI"]
    if uri not in clients:
        clients[uri] = MongoClient(uri, serverSelectionTimeoutMS=2000)
    return uri, clients[uri][db_name]


def host(uri):
    return uri.split("://", 1)[-1].split("@")[-1].split("/")[0]


rng = random.Random(11)
_, db = database()
markets = [m["_id"] for m in db["markets"].find({}, {"_id": 1}).limit(200)]
acked_ids, acked_updates = [], 0
retries, per_host, seq = 0, {}, 0
start = time.monotonic()
while not os.path.exists(stop_file):
    due = start + seq / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    seq += 1
    bet_id = ObjectId()
    market = markets[rng.randrange(len(markets))]
    amount = rng.randrange(1, 50)
    doc = {"_id": bet_id, "market_id": market, "user_id": None, "amount": amount,
           "outcome": "yes" if rng.random() < 0.5 else "no", "status": "open",
           "created_at": time.time(), "app_seq": seq}
    inserted = updated = False
    while not (inserted and updated):
        if os.path.exists(stop_file) and not inserted:
            break
        uri, db = database()
        try:
            wc = WriteConcern(w="majority")
            if not inserted:
                try:
                    db.get_collection("bets", write_concern=wc).insert_one(doc)
                except DuplicateKeyError:
                    pass  # acknowledged on an earlier try whose reply was lost
                inserted = True
                acked_ids.append(str(bet_id))
            if not updated:
                # An $inc is not idempotent: a bet's volume is applied once, keyed by the bet.
                db.get_collection("markets", write_concern=wc).update_one(
                    {"_id": market, "applied_bets": {"$ne": bet_id}},
                    {"$inc": {"volume": amount}, "$push": {"applied_bets": {"$each": [bet_id], "$slice": -50}}})
                updated = True
                acked_updates += 1
            per_host[host(uri)] = per_host.get(host(uri), 0) + 1
        except PyMongoError:
            retries += 1
            time.sleep(0.05)

with open(report, "w") as f:
    json.dump({"acknowledged_inserts": len(acked_ids), "ids": acked_ids,
               "acknowledged_updates": acked_updates, "retries": retries, "writes_per_host": per_host,
               "seconds": round(time.monotonic() - start, 1)}, f)
