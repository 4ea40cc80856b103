#!/usr/bin/env python3
"""Write a mongod JSON (logv2) log of about SIZE_MB megabytes for `scripts/bench analyze`.

    gen_slow_log.py SIZE_MB OUT

Lines as a busy 6.0 server writes them: four in five are "Slow query" entries (id 51803)
of a dozen shapes — finds with sorts, getMores of their cursors, updates and deletes (the
statement and the command around it), aggregations, counts, distincts, inserts — with
literals that change on every line, the session, cluster time, locks and storage objects
real entries carry (about 1.2 KB each); the rest are connection and other lines.
"""
import random
import sys

size = int(float(sys.argv[1]) * 1e6)
out = open(sys.argv[2], "w")
rnd = random.Random(42)
H = "0123456789abcdef"


def oid():
    return "".join(rnd.choice(H) for _ in range(24))


def ts(i):
    s = i // 100
    return f"2026-11-{1 + (s // 86400) % 28:02d}T{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}.{(i * 7) % 1000:03d}+00:00"


TAIL = ('"locks":{"FeatureCompatibilityVersion":{"acquireCount":{"r":%d}},"Global":{"acquireCount":{"r":%d}},'
        '"Mutex":{"acquireCount":{"r":1}}},"readConcern":{"level":"local","provenance":"implicitDefault"},'
        '"storage":{"data":{"bytesRead":%d,"timeReadingMicros":%d}},"remote":"10.0.%d.%d:%d","protocol":"op_msg",'
        '"durationMillis":%d}}')
SESSION = ('"lsid":{"id":{"$uuid":"%s-1c2d-4e5f-8a9b-%s"}},"$clusterTime":{"clusterTime":{"$timestamp":{"t":%d,"i":1}},'
           '"signature":{"hash":{"$binary":{"base64":"AAAAAAAAAAAAAAAAAAAAAAAAAAA=","subType":"0"}},"keyId":0}},'
           '"$db":"predixi"')


def head(i, comp="COMMAND"):
    return '{"t":{"$date":"%s"},"s":"I","c":"%s","id":51803,"ctx":"conn%d","msg":"Slow query","attr":{' % (ts(i), comp, i % 900)


def tail(ms):
    return TAIL % (rnd.randint(1, 9), rnd.randint(1, 9), rnd.randint(0, 10**7), rnd.randint(0, 10**5),
                   rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(1024, 65535), ms)


def session():
    return SESSION % ("".join(rnd.choice(H) for _ in range(8)), "".join(rnd.choice(H) for _ in range(12)), 1790000000 + rnd.randint(0, 10**6))


def slow(i):
    k = rnd.randrange(12)
    ms = int(rnd.lognormvariate(5, 1)) + 100
    if k in (0, 1):
        return head(i) + ('"type":"command","ns":"predixi.bets","appName":"api","command":{"find":"bets","filter":{"user_id":{"$oid":"%s"},"status":"%s"},'
                          '"sort":{"created_at":-1},"limit":%d,%s},"planSummary":"IXSCAN { user_id: 1 }","cursorid":%d,"keysExamined":%d,'
                          '"docsExamined":%d,"hasSortStage":true,"nreturned":%d,"queryHash":"9A1B2C3D","planCacheKey":"1F2E3D4C","reslen":%d,'
                          % (oid(), rnd.choice(["open", "won", "lost"]), rnd.choice([20, 50]), session(), rnd.getrandbits(62),
                             rnd.randint(100, 5000), rnd.randint(100, 5000), rnd.randint(0, 50), rnd.randint(100, 90000))) + tail(ms)
    if k == 2:
        return head(i) + ('"type":"command","ns":"predixi.bets","appName":"api","command":{"getMore":%d,"collection":"bets","batchSize":100,%s},'
                          '"originatingCommand":{"find":"bets","filter":{"user_id":{"$oid":"%s"},"status":"open"},"sort":{"created_at":-1},"limit":50,"$db":"predixi"},'
                          '"planSummary":"IXSCAN { user_id: 1 }","cursorid":%d,"keysExamined":%d,"docsExamined":%d,"nreturned":%d,"reslen":%d,'
                          % (rnd.getrandbits(62), session(), oid(), rnd.getrandbits(62), rnd.randint(0, 900), rnd.randint(0, 900), rnd.randint(0, 100), rnd.randint(100, 90000))) + tail(ms)
    if k == 3:
        return head(i) + ('"type":"command","ns":"predixi.markets","appName":"web","command":{"find":"markets","filter":{"status":"open","category":"%s"},'
                          '"sort":{"volume":-1},"projection":{"title":1,"volume":1},"limit":20,%s},"planSummary":"COLLSCAN","keysExamined":0,'
                          '"docsExamined":%d,"hasSortStage":true,"cursorExhausted":true,"nreturned":20,"queryHash":"5E6F7A8B","reslen":%d,'
                          % (rnd.choice(["sports", "politics", "crypto"]), session(), rnd.randint(5000, 90000), rnd.randint(100, 9000))) + tail(ms)
    if k == 4:
        return head(i, "WRITE") + ('"type":"update","ns":"predixi.users","appName":"api","command":{"q":{"_id":{"$oid":"%s"}},"u":{"$set":{"last_seen":{"$date":"%s"}},'
                                   '"$inc":{"visits":1}},"multi":false,"upsert":false},"planSummary":"IDHACK","keysExamined":1,"docsExamined":1,"nMatched":1,"nModified":1,'
                                   '"nUpserted":0,"numYields":0,' % (oid(), ts(i).replace("+00:00", "Z"))) + tail(ms)
    if k == 5:
        return head(i) + ('"type":"command","ns":"predixi.$cmd","appName":"api","command":{"update":"users","ordered":true,%s},"numYields":0,"reslen":%d,'
                          % (session(), rnd.randint(60, 300))) + tail(ms)
    if k == 6:
        return head(i, "WRITE") + ('"type":"remove","ns":"predixi.sessions","appName":"api","command":{"q":{"user_id":{"$oid":"%s"},"expires":{"$lt":{"$date":"%s"}}},"limit":0},'
                                   '"planSummary":"IXSCAN { user_id: 1, expires: 1 }","keysExamined":%d,"docsExamined":%d,"ndeleted":%d,"numYields":0,'
                                   % (oid(), ts(i).replace("+00:00", "Z"), rnd.randint(1, 3000), rnd.randint(1, 3000), rnd.randint(1, 3000))) + tail(ms)
    if k == 7:
        return head(i) + ('"type":"command","ns":"predixi.bets","appName":"reports","command":{"aggregate":"bets","pipeline":[{"$match":{"market_id":{"$oid":"%s"},'
                          '"status":"won"}},{"$group":{"_id":"$user_id","total":{"$sum":"$amount"},"n":{"$sum":1}}},{"$sort":{"total":-1}},{"$limit":%d}],"cursor":{},%s},'
                          '"planSummary":"COLLSCAN","keysExamined":0,"docsExamined":%d,"hasSortStage":true,"cursorExhausted":true,"nreturned":%d,"queryHash":"0C1D2E3F","reslen":%d,'
                          % (oid(), rnd.choice([10, 100]), session(), rnd.randint(10000, 300000), rnd.randint(0, 100), rnd.randint(100, 9000))) + tail(ms)
    if k == 8:
        return head(i) + ('"type":"command","ns":"predixi.comments","appName":"web","command":{"count":"comments","query":{"market_id":{"$oid":"%s"},"hidden":false},%s},'
                          '"planSummary":"COUNT_SCAN { market_id: 1, hidden: 1 }","keysExamined":%d,"docsExamined":0,"numYields":0,"queryHash":"4A5B6C7D","reslen":45,'
                          % (oid(), session(), rnd.randint(0, 20000))) + tail(ms)
    if k == 9:
        return head(i) + ('"type":"command","ns":"predixi.bets","appName":"reports","command":{"distinct":"bets","key":"%s","query":{"created_at":{"$gte":{"$date":"%s"}}},%s},'
                          '"planSummary":"COLLSCAN","keysExamined":0,"docsExamined":%d,"numYields":%d,"queryHash":"7E8F9A0B","reslen":%d,'
                          % (rnd.choice(["user_id", "market_id"]), ts(i).replace("+00:00", "Z"), session(), rnd.randint(10000, 300000), rnd.randint(0, 300), rnd.randint(100, 9000))) + tail(ms)
    if k == 10:
        return head(i) + ('"type":"command","ns":"predixi.transactions","appName":"api","command":{"insert":"transactions","ordered":true,%s},"ninserted":%d,'
                          '"keysInserted":%d,"numYields":0,"reslen":45,' % (session(), rnd.randint(1, 500), rnd.randint(1, 2000))) + tail(ms)
    return head(i) + ('"type":"command","ns":"predixi.users","appName":"auth","command":{"find":"users","filter":{"email":"user%d@example.com"},"limit":1,"singleBatch":true,%s},'
                      '"planSummary":"COLLSCAN","keysExamined":0,"docsExamined":%d,"cursorExhausted":true,"nreturned":1,"queryHash":"2B3C4D5E","reslen":%d,'
                      % (rnd.randint(0, 10**6), session(), rnd.randint(10000, 200000), rnd.randint(200, 900))) + tail(ms)


def other(i):
    if i % 2:
        return ('{"t":{"$date":"%s"},"s":"I","c":"NETWORK","id":22943,"ctx":"listener","msg":"Connection accepted",'
                '"attr":{"remote":"10.0.1.%d:%d","uuid":"%s","connectionId":%d,"connectionCount":%d}}') % (ts(i), i % 255, 1024 + i % 60000, oid(), i, i % 900)
    return ('{"t":{"$date":"%s"},"s":"I","c":"NETWORK","id":22944,"ctx":"conn%d","msg":"Connection ended",'
            '"attr":{"remote":"10.0.1.%d:%d","uuid":"%s","connectionId":%d,"connectionCount":%d}}') % (ts(i), i % 900, i % 255, 1024 + i % 60000, oid(), i, i % 900)


written = 0
i = 0
buf = []
while written < size:
    line = slow(i) if rnd.random() < 0.8 else other(i)
    buf.append(line)
    written += len(line) + 1
    i += 1
    if len(buf) >= 10000:
        out.write("\n".join(buf) + "\n")
        buf = []
if buf:
    out.write("\n".join(buf) + "\n")
out.close()
print(i)
