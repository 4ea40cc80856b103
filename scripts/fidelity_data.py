"""The adversarial data set of issue 20 ("lossless"), generated into a database of its own,
and the live changes a `migrate --follow` test makes while following it.

    python3 fidelity_data.py load URI DB [--big]     # the data set (--big: + the 16 MB
                                                     #   document and the 100k array)
    python3 fidelity_data.py change URI DB STAGE     # one stage of live changes (below)

Documents are built here as BSON bytes by hand and sent as RawBSONDocument, which pymongo
passes through unchanged: that is the only way to store what drivers refuse to encode but the
server accepts (invalid UTF-8, a subtype-2 binary whose inner length lies, duplicate field
names, NaN payloads, deprecated types). Every document is read back and compared with the
bytes sent; a case the server itself refuses or alters is reported on stdout and left out,
so the set holds only what a real server stored. Prints one JSON line: what was made.
"""
import json
import os
import random
import struct
import sys
from datetime import datetime, timedelta, timezone

# pymongo and python-dotenv come from the scripts' private venv: run this with
# ~/.cache/mongoshift/venv-pymongo-4.10.1-dotenv-1.0.1/bin/python (scripts/install-pymongo).
import gridfs  # noqa: E402
from bson import Timestamp  # noqa: E402
from bson.codec_options import CodecOptions  # noqa: E402
from bson.raw_bson import RawBSONDocument  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.errors import OperationFailure  # noqa: E402

RAW = CodecOptions(document_class=RawBSONDocument)


# --- a BSON encoder that does exactly what it is told ----------------------------------
def _name(n):
    return (n.encode() if isinstance(n, str) else n) + b"\0"


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<i", len(b) + 1) + b + b"\0"


def doc(*elements):
    body = b"".join(elements)
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def arr(*values):
    """values: (type byte, payload) pairs, keyed 0, 1, 2…"""
    return doc(*[bytes([t]) + _name(str(i)) + p for i, (t, p) in enumerate(values)])


def e(t, name, payload):
    return bytes([t]) + _name(name) + payload


def double(name, x):
    return e(0x01, name, struct.pack("<d", x))


def double_bits(name, bits):
    return e(0x01, name, struct.pack("<Q", bits))


def string(name, s):
    return e(0x02, name, _str(s))


def subdoc(name, d):
    return e(0x03, name, d)


def array(name, a):
    return e(0x04, name, a)


def binary(name, subtype, data):
    return e(0x05, name, struct.pack("<i", len(data)) + bytes([subtype]) + data)


def oid(name, b12):
    return e(0x07, name, b12)


def boolean(name, v):
    return e(0x08, name, b"\x01" if v else b"\x00")


def datetime_ms(name, ms):
    return e(0x09, name, struct.pack("<q", ms))


def null(name):
    return e(0x0A, name, b"")


def regex(name, pattern, flags):
    return e(0x0B, name, _name(pattern) + _name(flags))


def code(name, js):
    return e(0x0D, name, _str(js))


def code_w_scope(name, js, scope):
    body = _str(js) + scope
    return e(0x0F, name, struct.pack("<i", len(body) + 4) + body)


def int32(name, v):
    return e(0x10, name, struct.pack("<i", v))


def timestamp(name, t, i):
    return e(0x11, name, struct.pack("<II", i, t))


def int64(name, v):
    return e(0x12, name, struct.pack("<q", v))


def decimal(name, lo, hi):
    return e(0x13, name, struct.pack("<QQ", lo, hi))


def _id(v):
    return string("_id", v)


# Decimal128 bit patterns (low 64, high 64), as IEEE 754-2008 BID.
D_ONE = (1, 0x3040000000000000)  # 1
D_ONE_0 = (10, 0x303E000000000000)  # 1.0 (same value, other cohort member)
D_ONE_00 = (100, 0x303C000000000000)  # 1.00
D_NEG_ZERO = (0, 0xB040000000000000)  # -0
D_ZERO_BIG_EXP = (0, 0x5FFE000000000000)  # 0E+6111
D_ZERO_SMALL_EXP = (0, 0x0000000000000000)  # 0E-6176
D_NAN = (0, 0x7C00000000000000)
D_NEG_NAN = (0, 0xFC00000000000000)
D_SNAN = (0, 0x7E00000000000000)
D_NAN_PAYLOAD = (12345, 0x7C00000000000000)
D_INF = (0, 0x7800000000000000)
D_NEG_INF = (0, 0xF800000000000000)
D_MAX = (0x378D8E63FFFFFFFF, 0x5FFFED09BEAD87C0)  # 9.999…E+6144
D_TINY = (1, 0x0000000000000000)  # 1E-6176
D_NONCANONICAL = (0xFFFFFFFFFFFFFFFF, 0x3041FFFFFFFFFFFF)  # coefficient > 10^34-1: reads as 0


def every_type():
    scope = doc(int32("x", 1))
    return [
        double("double", 1.5),
        string("string", "héllo 日本"),
        subdoc("document", doc(int32("b", 1), int32("a", 2))),
        array("array", arr((0x10, struct.pack("<i", 1)), (0x02, _str("two")))),
        binary("binary", 0x00, b"\x00\x01\x02"),
        e(0x06, "undefined", b""),
        oid("objectid", bytes(range(12))),
        boolean("bool", True),
        datetime_ms("date", -62135596800000),  # year 1
        null("null"),
        regex("regex", "^a.*b$", "imsx"),
        e(0x0C, "dbpointer", _str("db.coll") + bytes(range(12))),
        code("code", "function () { return 1; }"),
        e(0x0E, "symbol", _str("sym")),
        code_w_scope("code_w_scope", "function () { return x; }", scope),
        int32("int32", -2147483648),
        timestamp("timestamp", 1700000000, 7),
        int64("int64", -9223372036854775808),
        decimal("decimal", *D_ONE_00),
        e(0xFF, "minkey", b""),
        e(0x7F, "maxkey", b""),
    ]


def case_docs():
    """(case, bytes, top-level fields to $set to Timestamp(0, 0) after the insert) — one document
    per case, _id = case."""
    nested = doc(int32("leaf", 1))
    for i in range(99):
        nested = doc(subdoc("n", nested))
    bad_utf8 = [b"\xff\xfe", b"ab\xc3", b"\xc0\x80", b"\xed\xa0\x80", b"ok\x80ok"]
    cases = [
        ("every_type", doc(_id("every_type"), *every_type()), False),
        (
            "deprecated_types",
            doc(
                _id("deprecated_types"),
                e(0x06, "undefined", b""),
                e(0x0C, "dbpointer", _str("other.coll") + b"\xab" * 12),
                e(0x0E, "symbol", _str("a symbol")),
                code_w_scope("cws", "function () { return y; }", doc(string("y", "s"), e(0x06, "u", b""))),
                array("in_array", arr((0x06, b""), (0x0E, _str("s")))),
            ),
            False,
        ),
        (
            "negative_zero",
            doc(
                _id("negative_zero"),
                double("d", -0.0),
                array("a", arr((0x01, struct.pack("<d", -0.0)), (0x01, struct.pack("<d", 0.0)))),
                decimal("dec", *D_NEG_ZERO),
            ),
            False,
        ),
        (
            "nan_payloads",
            doc(
                _id("nan_payloads"),
                double_bits("qnan", 0x7FF8000000000000),
                double_bits("neg_qnan", 0xFFF8000000000000),
                double_bits("snan", 0x7FF0000000000001),
                double_bits("payload", 0x7FF80000DEADBEEF),
                double_bits("neg_payload", 0xFFF4000000000123),
                double_bits("inf", 0x7FF0000000000000),
                double_bits("neg_inf", 0xFFF0000000000000),
                double_bits("subnormal", 0x0000000000000001),
            ),
            False,
        ),
        (
            "decimal128_variants",
            doc(
                _id("decimal128_variants"),
                decimal("one", *D_ONE),
                decimal("one_0", *D_ONE_0),
                decimal("one_00", *D_ONE_00),
                decimal("neg_zero", *D_NEG_ZERO),
                decimal("zero_big_exp", *D_ZERO_BIG_EXP),
                decimal("zero_small_exp", *D_ZERO_SMALL_EXP),
                decimal("nan", *D_NAN),
                decimal("neg_nan", *D_NEG_NAN),
                decimal("snan", *D_SNAN),
                decimal("nan_payload", *D_NAN_PAYLOAD),
                decimal("inf", *D_INF),
                decimal("neg_inf", *D_NEG_INF),
                decimal("max", *D_MAX),
                decimal("tiny", *D_TINY),
                decimal("noncanonical", *D_NONCANONICAL),
            ),
            False,
        ),
        (
            "invalid_utf8_values",
            doc(
                _id("invalid_utf8_values"),
                *[string(f"s{i}", b) for i, b in enumerate(bad_utf8)],
                e(0x0E, "symbol", _str(b"sym\xff")),
                code("code", b"// \xfe"),
                regex("regex", b"a\xffb", "i"),
                subdoc("nested", doc(string("s", b"\xff"))),
            ),
            False,
        ),
        ("invalid_utf8_key", doc(_id("invalid_utf8_key"), int32(b"k\xff\xfe", 1)), False),
        (
            "binary_subtypes",
            doc(
                _id("binary_subtypes"),
                *[binary(f"t{st}", st, bytes(range(16))) for st in (0, 1, 3, 4, 5, 6, 7, 8, 0x80, 0xFF)],
                binary("empty", 0, b""),
            ),
            False,
        ),
        # Subtype 2 ("binary old") wraps an int32 length that should equal the payload's.
        ("binary_subtype2_good", doc(_id("binary_subtype2_good"), binary("b", 2, struct.pack("<i", 3) + b"abc")), False),
        ("binary_subtype2_bad_len", doc(_id("binary_subtype2_bad_len"), binary("b", 2, struct.pack("<i", 99) + b"abc")), False),
        ("binary_uuid_len_5", doc(_id("binary_uuid_len_5"), binary("u", 4, b"12345")), False),
        (
            "duplicate_fields",
            doc(
                _id("duplicate_fields"),
                int32("x", 1),
                int32("x", 2),
                string("x", "three"),
                subdoc("sub", doc(int32("y", 1), int32("y", 2))),
            ),
            False,
        ),
        ("empty_field_name", doc(_id("empty_field_name"), int32("", 1), subdoc("sub", doc(int32("", 2)))), False),
        ("dollar_field_top", doc(_id("dollar_field_top"), int32("$top", 1)), False),
        ("dollar_field_nested", doc(_id("dollar_field_nested"), subdoc("a", doc(int32("$b", 1), string("$ref", "x")))), False),
        ("dotted_fields", doc(_id("dotted_fields"), int32("a.b", 1), subdoc("c", doc(int32("d.e", 2))), int32(".", 3)), False),
        # mongod 6.0 replaces every top-level Timestamp(0, 0) with the current time on insert
        # and replace (it has no bypassEmptyTsReplacement yet), but stores one that an update's
        # $set writes: these are inserted with Timestamp(1, 1) and then $set (listed names).
        ("timestamp_zero_second", doc(_id("timestamp_zero_second"), timestamp("ts", 0, 0)), ["ts"]),
        ("timestamp_zero_third", doc(_id("timestamp_zero_third"), int32("a", 1), timestamp("ts", 0, 0), timestamp("t2", 0, 0)), ["ts", "t2"]),
        ("timestamp_zero_nested", doc(_id("timestamp_zero_nested"), subdoc("s", doc(timestamp("ts", 0, 0)))), False),
        ("regex_flags_unsorted", doc(_id("regex_flags_unsorted"), regex("r", "a+", "xsmi"), regex("r2", "b", "ul")), False),
        ("field_order", doc(_id("field_order"), int32("b", 1), int32("a", 2), subdoc("z", doc(int32("y", 1), int32("x", 2)))), False),
        (
            "same_value_types",
            doc(_id("same_value_types"), int32("a", 1), int64("b", 1), double("c", 1.0), decimal("d", *D_ONE)),
            False,
        ),
        ("nesting_100", doc(_id("nesting_100"), subdoc("n", nested)), False),
    ]
    # Non-string _ids of every sortable kind (an embedded-document _id keeps its field order).
    odd_ids = [
        ("id_int32", int32("_id", 7)),
        ("id_int64", int64("_id", 1 << 40)),
        ("id_double", double("_id", 9.5)),
        ("id_decimal", decimal("_id", *D_ONE_0)),
        ("id_objectid", oid("_id", bytes.fromhex("650000000000000000000001"))),
        ("id_date", datetime_ms("_id", 1700000000000)),
        ("id_binary", binary("_id", 0, b"\x01\x02")),
        ("id_doc_ba", subdoc("_id", doc(int32("b", 1), int32("a", 2)))),
        ("id_doc_ab", subdoc("_id", doc(int32("a", 2), int32("b", 1)))),
        ("id_minkey", e(0xFF, "_id", b"")),
        ("id_maxkey", e(0x7F, "_id", b"")),
        ("id_bool", boolean("_id", False)),
        ("id_null", null("_id")),
    ]
    for name, idel in odd_ids:
        cases.append((name, doc(idel, string("case", name)), False))
    return cases


def big_docs():
    # Just under the 16 MiB limit (16,777,216 bytes), the largest document a server stores.
    filler = b"x" * (16 * 1024 * 1024 - 200)
    big = doc(_id("doc_16mb"), string("pad", filler))
    values = [(0x10, struct.pack("<i", i)) for i in range(100_000)]
    return [("doc_16mb", big, False), ("array_100k", doc(_id("array_100k"), array("a", arr(*values))), False)]


# --- loading -------------------------------------------------------------------------
def insert_raw(db, coll, raw, zero_ts=(), bypass_validation=False):
    """Insert `raw` as is; `zero_ts`: top-level fields that hold Timestamp(0, 0), which the
    server would replace on insert: sent as Timestamp(1, 1), then $set to (0, 0) in place."""
    sent = raw
    zero = timestamp("", 0, 0)[2:]
    for f in zero_ts or ():
        marker = b"\x11" + _name(f) + zero
        assert marker in sent, f
        sent = sent.replace(marker, b"\x11" + _name(f) + struct.pack("<II", 1, 1), 1)
    cmd = {"insert": coll, "documents": [RawBSONDocument(sent)], "ordered": True}
    if bypass_validation:
        cmd["bypassDocumentValidation"] = True
    res = db.command(cmd)
    if res.get("writeErrors"):
        raise OperationFailure(res["writeErrors"][0].get("errmsg", str(res)))
    if zero_ts:
        db[coll].update_one(id_filter(raw), {"$set": {f: Timestamp(0, 0) for f in zero_ts}})


_FIXED = {0x01: 8, 0x06: 0, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def id_filter(raw):
    """{_id: <the document's first element, as its bytes>}: a filter that never decodes the
    rest of the document (which may not decode at all)."""
    t = raw[4]
    assert raw[5:9] == b"_id\0", "every case document starts with its _id"
    at = 9
    if t in _FIXED:
        n = _FIXED[t]
    elif t in (0x02, 0x0D, 0x0E):
        n = 4 + struct.unpack_from("<i", raw, at)[0]
    elif t in (0x03, 0x04):
        n = struct.unpack_from("<i", raw, at)[0]
    elif t == 0x05:
        n = 5 + struct.unpack_from("<i", raw, at)[0]
    else:
        raise ValueError(f"no _id of type {t:#x} here")
    return RawBSONDocument(doc(raw[4 : at + n]))


def stored_as_sent(db, coll, raw):
    got = db.get_collection(coll, codec_options=RAW).find_one(id_filter(raw))
    return got is not None and got.raw == raw


# The documents a decoder refuses each get a collection of their own, so that a path that
# loses a whole collection for one of them shows which one, and does not hide the rest.
OWN_COLLECTION = {
    "invalid_utf8_values": "bad_utf8_value",
    "invalid_utf8_key": "bad_utf8_key",
    "binary_subtype2_bad_len": "bad_binary_subtype2",
    "binary_uuid_len_5": "bad_uuid_length",
}


def load_cases(db, default_coll, cases, report):
    for name, raw, bypass in cases:
        coll = OWN_COLLECTION.get(name, default_coll)
        try:
            insert_raw(db, coll, raw, zero_ts=bypass)
        except OperationFailure as err:
            report["refused_by_server"][name] = str(err)[:200]
            continue
        if stored_as_sent(db, coll, raw):
            report["documents"].append(f"{coll}:{name}")
        else:
            report["altered_by_server"].append(f"{coll}:{name}")


def long_name():
    # A ~204-byte Unicode collection name (3-byte characters).
    return "long_" + "名" * 65 + "_end"


ODD_NAMES = [
    "with space",
    "plus+amp&eq=colon:at@",
    "pct%41literal",
    "dot.ted.name",
    "ünïcødé 名前",
    "x.bson",
]


def load(uri, dbname, with_big):
    client = MongoClient(uri)
    db = client[dbname]
    report = {"db": dbname, "documents": [], "refused_by_server": {}, "altered_by_server": [], "collections": []}
    rng = random.Random(20)

    load_cases(db, "docs", case_docs(), report)
    if with_big:
        load_cases(db, "big", big_docs(), report)

    # Capped: inserted past its size so it wraps; _ids random, so _id order is not $natural order.
    db.create_collection("capped_wrap", capped=True, size=16384)
    db.capped_wrap.insert_many([{"_id": rng.randrange(1 << 40), "i": i, "pad": "p" * 40} for i in range(1000)])
    # Big enough (6 MB, 50k documents kept) to span several insert batches of a copy.
    db.create_collection("capped_big", capped=True, size=6 << 20)
    db.capped_big.insert_many([{"_id": 1_000_000 - i, "i": i, "pad": "b" * 80} for i in range(60_000)])
    db.create_collection("capped_max", capped=True, size=1 << 20, max=50)
    db.capped_max.insert_many([{"_id": 1000 - i, "i": i} for i in range(120)])

    # Clustered, with a named clustered index and a TTL.
    db.command(
        {
            "create": "clustered",
            "clusteredIndex": {"key": {"_id": 1}, "unique": True, "name": "clustered_by_id"},
            "expireAfterSeconds": 315_360_000,  # ten years
        }
    )
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    db.clustered.insert_many([{"_id": t0 + timedelta(minutes=i), "v": i} for i in range(50)])
    db.clustered.create_index("v", name="v_1")

    # Collated, with simple-collation indexes (a text index must be simple; a unique one
    # holds "A" and "a", which en_US/2 calls equal).
    # (One collection per kind of simple-collation index, so that one failing build does not
    # hide what happens to the others.)
    collated_indexes = {
        "collated": [
            {"key": {"name": 1}, "name": "name_default_collation"},
            {"key": {"name": -1}, "name": "name_simple", "collation": {"locale": "simple"}},
            {"key": {"code": 1, "name": 1}, "name": "code_fr", "collation": {"locale": "fr", "strength": 1}},
        ],
        "collated_unique": [
            {"key": {"code": 1}, "name": "code_unique_simple", "unique": True, "collation": {"locale": "simple"}},
        ],
        "collated_text": [
            {"key": {"body": "text"}, "name": "body_text", "collation": {"locale": "simple"}},
        ],
    }
    for coll, specs in collated_indexes.items():
        db.command({"create": coll, "collation": {"locale": "en_US", "strength": 2}})
        db[coll].insert_many(
            [{"_id": i, "name": n, "code": n, "body": f"text {n}"} for i, n in enumerate(["A", "a", "b", "B", "é", "e"])]
        )
        db.command({"createIndexes": coll, "indexes": specs})

    # Validated: documents that break the rule are stored (bypass, or "warn").
    db.command(
        {
            "create": "validated_strict",
            "validator": {"$jsonSchema": {"bsonType": "object", "required": ["level", "name"]}},
            "validationLevel": "strict",
            "validationAction": "error",
        }
    )
    db.validated_strict.insert_one({"_id": 1, "level": 1, "name": "ok"})
    insert_raw(db, "validated_strict", doc(int32("_id", 2), string("note", "no level")), bypass_validation=True)
    db.command(
        {
            "create": "validated_warn",
            "validator": {"level": {"$gte": 1}, "name": {"$type": "string"}},
            "validationLevel": "moderate",
            "validationAction": "warn",
        }
    )
    db.validated_warn.insert_many([{"_id": 1, "level": 5, "name": "ok"}, {"_id": 2, "level": 0}])

    # Time-series, with a secondary index.
    db.command(
        {"create": "ticks", "timeseries": {"timeField": "at", "metaField": "m", "granularity": "minutes"}}
    )
    db.ticks.insert_many([{"at": t0 + timedelta(seconds=37 * i), "m": {"s": i % 3, "k": "x"}, "v": i} for i in range(300)])
    db.ticks.create_index([("m.s", 1), ("at", -1)], name="meta_at")

    # Views whose pipelines' field order matters ($sort keys, $project order), one with a
    # collation, one on a view.
    db.command(
        {
            "create": "view_order",
            "viewOn": "docs",
            "pipeline": [
                {"$match": {"case": {"$exists": True}}},
                {"$sort": {"case": -1, "_id": 1}},
                {"$project": {"z": "$case", "a": "$_id", "_id": 0}},
                {"$addFields": {"y": 2, "b": {"$literal": "$notafield"}}},
            ],
        }
    )
    db.command(
        {"create": "view_collated", "viewOn": "collated", "pipeline": [{"$sort": {"name": 1}}], "collation": {"locale": "fr"}}
    )
    db.command({"create": "view_on_view", "viewOn": "view_order", "pipeline": [{"$limit": 3}]})

    # GridFS: the default bucket and a named one (multi-chunk files, the driver's indexes).
    fs = gridfs.GridFS(db)
    fs.put(rng.randbytes(600_000), filename="blob.bin", metadata={"b": 1, "a": 2})
    photos = gridfs.GridFSBucket(db, bucket_name="photos", chunk_size_bytes=1024)
    photos.upload_from_stream("tiny.jpg", b"\xff\xd8" + bytes(range(256)) * 20)

    # system.js: stored functions.
    db.command(
        {
            "insert": "system.js",
            "documents": [
                RawBSONDocument(doc(_id("add"), code("value", "function (a, b) { return a + b; }"))),
                RawBSONDocument(doc(_id("scoped"), code_w_scope("value", "function () { return k; }", doc(int32("k", 3))))),
            ],
        }
    )

    # An index of each kind on a plain collection.
    db.indexed.insert_many([{"_id": i, "a": i, "b": {"c": i}, "loc": {"type": "Point", "coordinates": [i, i]}, "t": t0} for i in range(20)])
    db.command(
        {
            "createIndexes": "indexed",
            "indexes": [
                {"key": {"b.c": -1, "a": 1}, "name": "compound_desc"},
                {"key": {"a": 1}, "name": "partial", "partialFilterExpression": {"a": {"$gt": 5}}},
                {"key": {"t": 1}, "name": "ttl", "expireAfterSeconds": 86400},
                {"key": {"loc": "2dsphere"}, "name": "geo"},
                {"key": {"a": "hashed"}, "name": "hashed"},
                {"key": {"$**": 1}, "name": "wildcard", "wildcardProjection": {"b": 1}},
                {"key": {"z": 1}, "name": "sparse_hidden", "sparse": True, "hidden": True},
            ],
        }
    )
    db.create_collection("empty")
    # Where the follow tests' live changes land (it exists before the tail starts).
    db.live.insert_one({"_id": "seed"})

    # Odd and long names.
    for name in ODD_NAMES + [long_name()]:
        db[name].insert_many([{"_id": i, "name": name} for i in range(3)])

    report["collections"] = sorted(db.list_collection_names())
    report["long_name_bytes"] = len(long_name().encode())
    print(json.dumps(report, ensure_ascii=False))


# --- live changes, for `migrate --follow` -------------------------------------------------
def change(uri, dbname, stage):
    """Stages: `crud` (every odd document inserted, updated, replaced, deleted live; a capped
    insert stream; GridFS, system.js, clustered, collated, odd names), `invalid_utf8`,
    `binary_subtype2`, `event_over_16mb` (the events that killed the tail)."""
    client = MongoClient(uri)
    db = client[dbname]
    done = []
    killers = {"invalid_utf8_values", "invalid_utf8_key", "binary_subtype2_bad_len"}
    if stage == "crud":
        for name, raw, bypass in case_docs():
            if name in killers:
                continue
            try:
                insert_raw(db, "live", raw, zero_ts=bypass)
                done.append(f"insert {name}")
            except OperationFailure:
                pass
        live = db.get_collection("live", codec_options=RAW)
        # Updates of odd documents (the event's full document is what the source holds).
        db.live.update_one({"_id": "every_type"}, {"$set": {"added": 1}, "$unset": {"double": ""}})
        db.live.update_one({"_id": "duplicate_fields"}, {"$set": {"other": 2}})
        db.live.update_one({"_id": "nan_payloads"}, {"$inc": {"counter": 1}})
        db.live.update_one({"_id": "field_order"}, {"$set": {"z.w": 3, "a": "changed"}})
        done.append("update x4")
        # Replacements with raw bytes (duplicate fields, unsorted regex flags, deprecated types),
        # and a Timestamp(0, 0) written live by $set (the way the server stores one).
        db.command(
            {
                "update": "live",
                "updates": [
                    {"q": {"_id": "regex_flags_unsorted"}, "u": RawBSONDocument(doc(_id("regex_flags_unsorted"), regex("r", "c", "xsmi")))},
                    {"q": {"_id": "empty_field_name"}, "u": RawBSONDocument(doc(_id("empty_field_name"), int32("x", 1), int32("x", 2)))},
                    {"q": {"_id": "negative_zero"}, "u": RawBSONDocument(doc(_id("negative_zero"), e(0x0E, "sym", _str("s")), double("d", -0.0), double_bits("n", 0x7FF80000DEADBEEF)))},
                ],
            }
        )
        db.live.update_one({"_id": "same_value_types"}, {"$set": {"a": Timestamp(0, 0), "new_ts": Timestamp(0, 0)}})
        done.append("replace x3, $set Timestamp(0,0)")
        db.live.delete_one({"_id": "dotted_fields"})
        db.live.delete_one({"_id": "id_doc_ab"})
        done.append("delete x2")
        assert live.count_documents({}) > 10
        # A capped insert stream, past the collection's size (it wraps while followed).
        for i in range(600):
            db.capped_wrap.insert_one({"_id": (1 << 41) + 999 - i, "live": i, "pad": "q" * 40})
        done.append("capped stream x600")
        db.clustered.insert_one({"_id": datetime(2030, 1, 1), "v": 1000})
        db.collated.insert_one({"_id": 100, "name": "Ä", "code": "Ä", "body": "live"})
        db.command({"insert": "system.js", "documents": [RawBSONDocument(doc(_id("live_fn"), code("value", "function () { return 2; }")))]})
        gridfs.GridFS(db).put(b"live file" * 1000, filename="live.txt")
        for name in ODD_NAMES + [long_name()]:
            db[name].insert_one({"_id": 100, "live": True})
            db[name].update_one({"_id": 0}, {"$set": {"changed": True}})
        done.append("clustered, collated, system.js, gridfs, odd names")
    elif stage == "invalid_utf8":
        for name, raw, _ in case_docs():
            if name.startswith("invalid_utf8"):
                insert_raw(db, "live", raw)
                done.append(f"insert {name}")
        db.live.update_one({"_id": "invalid_utf8_values"}, {"$set": {"touched": 1}})
        done.append("update invalid_utf8_values")
    elif stage == "binary_subtype2":
        for name, raw, _ in case_docs():
            if name == "binary_subtype2_bad_len":
                insert_raw(db, "live", raw)
                done.append(f"insert {name}")
        db.live.update_one({"_id": "binary_subtype2_bad_len"}, {"$set": {"touched": 1}})
        done.append("update binary_subtype2_bad_len")
    elif stage == "event_over_16mb":
        # The update event carries the 9 MB field twice (updateDescription and the looked-up
        # full document): over 16 MB, although every document stays under it.
        db.live.insert_one({"_id": "big_event", "a": "a" * (6 * 1024 * 1024)})
        db.live.update_one({"_id": "big_event"}, {"$set": {"b": "b" * (9 * 1024 * 1024)}})
        db.live.insert_one({"_id": "after_big_event", "ok": True})
        done.append("insert 6 MB, $set 9 MB, insert after")
    else:
        sys.exit(f"unknown stage {stage}")
    print(json.dumps({"stage": stage, "done": done}))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], "--big" in sys.argv[4:])
    elif len(sys.argv) == 5 and sys.argv[1] == "change":
        change(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
