"""The demo's proof that the application lost nothing: every insert the app was told
succeeded is on both clusters, every collection has the same count on both, and the
server's own dbHash agrees collection by collection.

    python3 app_proof.py REPORT_JSON URI_A NAME_A URI_B NAME_B DB

Exit 0 when all holds, 1 otherwise.
"""
import json
import os
import sys

# pymongo and python-dotenv come from the scripts' private venv: run this with
# ~/.cache/mongoshift/venv-pymongo-4.10.1-dotenv-1.0.1/bin/python (scripts/install-pymongo).
from bson import ObjectId  # noqa: E402
from pymongo import MongoClient  # noqa: E402

report, uri_a, name_a, uri_b, name_b, db_name = sys.argv[1:7]
app = json.load(open(report))
sides = [(name_a, MongoClient(uri_a)[db_name]), (name_b, MongoClient(uri_b)[db_name])]
ids = [ObjectId(i) for i in app["ids"]]
ok = True
print(f"application: {app['acknowledged_inserts']} bets and {app['acknowledged_updates']} market "
      f"updates acknowledged in {app['seconds']} s, {app['retries']} retries while writes were frozen; "
      f"writes per host: {app['writes_per_host']}")
for name, db in sides:
    found = 0
    for k in range(0, len(ids), 5000):
        found += db["bets"].count_documents({"_id": {"$in": ids[k:k + 5000]}})
    lost = len(ids) - found
    ok &= lost == 0
    print(f"{name}: {found} of {len(ids)} acknowledged bets present, {lost} lost")
hashes = [db.command("dbHash")["collections"] for _, db in sides]
print(f"{'collection':<14} {name_a + ' count':>14} {name_b + ' count':>14}  dbHash")
for coll in sorted(set(hashes[0]) | set(hashes[1])):
    if coll.startswith("system."):
        continue
    counts = [db[coll].count_documents({}) for _, db in sides]
    same = hashes[0].get(coll) == hashes[1].get(coll)
    ok &= same and counts[0] == counts[1]
    print(f"{coll:<14} {counts[0]:>14} {counts[1]:>14}  {'equal' if same else 'DIFFERENT'}")
print("zero lost writes: every acknowledged write is on both clusters, and they hold the same data"
      if ok else "LOST OR DIFFERING DATA: see above")
sys.exit(0 if ok else 1)
