"""collection-store-server against pymongo, a client nobody here wrote.

Run by server/tests/pymongo.rs (which creates the virtual environment), or by
hand:  CS_SERVER_BIN=target/release/collection-store-server python3 test_pymongo.py

Each test class starts the real server binary on port 0 in a temporary
directory and reads the bound address from its first stdout line.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import json

import bson
import pymongo
from pymongo import InsertOne, UpdateOne, DeleteOne, ReplaceOne, ReturnDocument
from pymongo.errors import (BulkWriteError, DuplicateKeyError, OperationFailure, ConnectionFailure,
                            ServerSelectionTimeoutError)

SERVER_BIN = os.environ["CS_SERVER_BIN"]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


class Server:
    """The server binary as a child process."""

    def __init__(self, data=None, args=()):
        self.tmp = None
        if data is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="cs-pymongo-")
            data = os.path.join(self.tmp.name, "db")
        self.data = data
        self.args = list(args)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--data", self.data, "--listen", "127.0.0.1:0", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            err = self.proc.stderr.read()
            raise RuntimeError(f"server did not start: {line!r} {err}")
        self.addr = line.split()[-1]
        self.host, self.port = self.addr.rsplit(":", 1)
        self.port = int(self.port)
        self.metrics = None
        if "--metrics-port" in self.args:
            self.metrics = self.proc.stdout.readline().split()[-1]
        # Drain stderr so the child never blocks on a full pipe.
        self.log = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def client(self, **kw):
        kw.setdefault("serverSelectionTimeoutMS", 5000)
        kw.setdefault("directConnection", True)
        return pymongo.MongoClient(self.host, self.port, **kw)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        if not self.proc.stdout.closed:
            self.proc.stdout.close()
        return self.proc.returncode

    def close(self):
        try:
            self.stop()
        finally:
            if self.tmp:
                self.tmp.cleanup()


class ServerTest(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(args=cls.server_args)
        cls.client = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()

    def setUp(self):
        self.db = self.client[f"t_{self._testMethodName}"]


class Crud(ServerTest):
    def test_insert_find_update_replace_delete(self):
        c = self.db.users
        r = c.insert_one({"name": "ann", "age": 30, "tags": ["a"]})
        self.assertIsInstance(r.inserted_id, bson.ObjectId)
        c.insert_many([{"_id": i, "name": f"u{i}", "age": 18 + i % 60} for i in range(100)])
        self.assertEqual(c.find_one({"name": "ann"})["age"], 30)
        self.assertEqual(c.find_one({"_id": 5}), {"_id": 5, "name": "u5", "age": 23})
        self.assertEqual(len(list(c.find({"age": {"$gte": 70}}))), 8)
        self.assertEqual([d["_id"] for d in c.find({"age": {"$lt": 20}}, {"_id": 1})], [0, 1, 60, 61])
        r = c.update_one({"_id": 5}, {"$set": {"x": 1}, "$inc": {"age": 1}})
        self.assertEqual((r.matched_count, r.modified_count), (1, 1))
        r = c.update_many({"age": {"$lt": 20}}, {"$set": {"young": True}})
        self.assertEqual((r.matched_count, r.modified_count), (4, 4))
        r = c.update_one({"_id": 5}, {"$set": {"x": 1}})
        self.assertEqual((r.matched_count, r.modified_count), (1, 0))
        r = c.replace_one({"_id": 6}, {"name": "six"})
        self.assertEqual(c.find_one({"_id": 6}), {"_id": 6, "name": "six"})
        r = c.update_one({"name": "nobody"}, {"$set": {"age": 1}}, upsert=True)
        self.assertIsInstance(r.upserted_id, bson.ObjectId)
        self.assertEqual(c.find_one({"_id": r.upserted_id})["name"], "nobody")
        r = c.update_one({"_id": "given"}, {"$set": {"age": 2}}, upsert=True)
        self.assertEqual(r.upserted_id, "given")
        self.assertEqual(c.delete_one({"_id": 7}).deleted_count, 1)
        self.assertEqual(c.delete_many({"young": True}).deleted_count, 4)
        self.assertEqual(c.delete_many({"nothing": 1}).deleted_count, 0)
        self.assertEqual(c.count_documents({}), 1 + 100 + 2 - 1 - 4)

    def test_types_round_trip(self):
        c = self.db.types
        when = bson.datetime.datetime(2024, 1, 31, 12, 0, 0, 123000)
        doc = {"_id": bson.ObjectId(), "i": 5, "big": bson.Int64(1 << 40), "f": 1.5, "s": "x", "b": True,
               "n": None, "d": when, "bin": b"\x00\x01", "arr": [1, "two", {"three": 3}],
               "sub": {"a": {"b": 1}}, "ts": bson.Timestamp(5, 6)}
        c.insert_one(doc)
        back = c.find_one({"_id": doc["_id"]})
        self.assertEqual(back, doc)
        self.assertEqual(list(back.keys()), list(doc.keys()))
        self.assertEqual(c.find_one({"d": {"$gt": bson.datetime.datetime(2024, 1, 1)}})["_id"], doc["_id"])

    def test_sort_skip_limit_projection(self):
        c = self.db.people
        c.insert_many([{"_id": i, "age": i % 10, "name": f"p{i:03}"} for i in range(200)])
        got = list(c.find({"age": 3}, {"name": 1, "_id": 0}).sort("name", -1).skip(2).limit(3))
        self.assertEqual(got, [{"name": "p173"}, {"name": "p163"}, {"name": "p153"}])
        got = list(c.find({}, {"age": 0}).sort([("age", 1), ("_id", -1)]).limit(2))
        self.assertEqual(got, [{"_id": 190, "name": "p190"}, {"_id": 180, "name": "p180"}])

    def test_missing_collection_reads_do_not_create_it(self):
        self.assertIsNone(self.db.nothing.find_one())
        self.assertEqual(self.db.nothing.count_documents({}), 0)
        self.assertEqual(self.db.nothing.distinct("a"), [])
        self.assertNotIn("nothing", self.db.list_collection_names())


class Cursors(ServerTest):
    def test_small_batches_return_every_document_once(self):
        c = self.db.c
        c.insert_many([{"_id": i, "v": i % 7} for i in range(1000)])
        for bs in (1, 2, 7, 101, 5000):
            ids = [d["_id"] for d in c.find({}, batch_size=bs)]
            self.assertEqual(ids, list(range(1000)), f"batch {bs}")
        ids = [d["_id"] for d in c.find({"v": 3}, batch_size=4)]
        self.assertEqual(ids, [i for i in range(1000) if i % 7 == 3])
        # Sorted (buffered) cursors.
        got = [d["_id"] for d in c.find({"v": {"$lt": 2}}).sort("_id", -1).batch_size(3)]
        self.assertEqual(got, [i for i in range(999, -1, -1) if i % 7 < 2])
        # Limit and skip across batches; a projection that drops the key.
        got = list(c.find({}, {"_id": 0, "v": 1}, batch_size=3).skip(10).limit(8))
        self.assertEqual(got, [{"v": i % 7} for i in range(10, 18)])

    def test_mixed_key_types_page_in_type_order(self):
        c = self.db.mixed
        keys = [3, 1, 2, "b", "a", bson.ObjectId(), 2.5, True, bson.datetime.datetime(2020, 1, 1)]
        c.insert_many([{"_id": k} for k in keys])
        got = [d["_id"] for d in c.find({}, batch_size=2)]
        self.assertEqual(len(got), len(keys))
        self.assertEqual(got[:6], [1, 2, 2.5, 3, "a", "b"])
        self.assertEqual(got[-2:], [True, bson.datetime.datetime(2020, 1, 1)])

    def test_writes_between_batches(self):
        c = self.db.live
        c.insert_many([{"_id": i} for i in range(100)])
        cur = c.find({}, batch_size=10)
        first = [next(cur)["_id"] for _ in range(10)]
        c.delete_many({"_id": {"$lt": 10}})  # already returned
        c.insert_one({"_id": 1000})           # after the position
        rest = [d["_id"] for d in cur]
        self.assertEqual(first + rest, list(range(100)) + [1000])

    def test_kill_and_unknown_cursors(self):
        c = self.db.k
        c.insert_many([{"_id": i} for i in range(50)])
        cur = c.find({}, batch_size=5)
        next(cur)
        cid = cur.cursor_id
        self.assertNotEqual(cid, 0)
        cur.close()
        with self.assertRaises(OperationFailure) as e:
            self.db.command("getMore", bson.Int64(cid), collection="k")
        self.assertEqual(e.exception.code, 43)
        with self.assertRaises(OperationFailure) as e:
            self.db.command("getMore", bson.Int64(123456789), collection="k")
        self.assertEqual(e.exception.code, 43)


class Indexes(ServerTest):
    def test_unique_index_and_duplicate_key_error(self):
        c = self.db.u
        c.insert_many([{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"}])
        self.assertEqual(c.create_index("email", unique=True), "email_1")
        self.assertEqual(c.create_index("email", unique=True), "email_1")  # already exists
        c.create_index([("age", -1), ("city", 1)], name="age_city")
        info = c.index_information()
        self.assertEqual(set(info), {"_id_", "email_1", "age_city"})
        self.assertTrue(info["email_1"]["unique"])
        self.assertEqual(info["age_city"]["key"], [("age", -1), ("city", 1)])
        with self.assertRaises(DuplicateKeyError) as e:
            c.insert_one({"_id": 3, "email": "a@x"})
        self.assertEqual(e.exception.details["keyPattern"], {"email": 1})
        self.assertEqual(e.exception.details["keyValue"], {"email": "a@x"})
        with self.assertRaises(DuplicateKeyError) as e:
            c.insert_one({"_id": 1, "email": "c@x"})
        self.assertEqual(e.exception.details["keyValue"], {"_id": 1})
        with self.assertRaises(DuplicateKeyError):
            c.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
        self.assertEqual(c.find_one({"_id": 2})["email"], "b@x")
        with self.assertRaises(OperationFailure) as e:
            c.create_index("email", unique=False)  # same name, other options
        self.assertEqual(e.exception.code, 85)
        with self.assertRaises(OperationFailure) as e:
            c.create_index([("t", "text")])
        self.assertEqual(e.exception.code, 67)
        c.drop_index("age_city")
        self.assertEqual(set(c.index_information()), {"_id_", "email_1"})
        with self.assertRaises(OperationFailure) as e:
            c.drop_index("nope")
        self.assertEqual(e.exception.code, 27)
        c.drop_indexes()
        self.assertEqual(set(c.index_information()), {"_id_"})

    def test_unique_build_over_duplicates_fails_and_changes_nothing(self):
        c = self.db.d
        c.insert_many([{"_id": 1, "k": 1}, {"_id": 2, "k": 1}])
        with self.assertRaises(OperationFailure) as e:
            c.create_index("k", unique=True)
        self.assertEqual(e.exception.code, 11000)
        self.assertEqual(set(c.index_information()), {"_id_"})


class Bulk(ServerTest):
    def test_ordered_stops_at_first_error(self):
        c = self.db.b
        c.insert_one({"_id": 2})
        with self.assertRaises(BulkWriteError) as e:
            c.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}])
        d = e.exception.details
        self.assertEqual(d["nInserted"], 1)
        self.assertEqual([(w["index"], w["code"]) for w in d["writeErrors"]], [(1, 11000)])
        self.assertEqual(sorted(x["_id"] for x in c.find()), [1, 2])

    def test_unordered_tries_everything(self):
        c = self.db.b2
        c.insert_one({"_id": 2})
        with self.assertRaises(BulkWriteError) as e:
            c.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}, {"_id": 1}], ordered=False)
        d = e.exception.details
        self.assertEqual(d["nInserted"], 2)
        self.assertEqual(sorted(w["index"] for w in d["writeErrors"]), [1, 3])
        self.assertEqual(sorted(x["_id"] for x in c.find()), [1, 2, 3])

    def test_mixed_bulk_write(self):
        c = self.db.b3
        r = c.bulk_write([
            InsertOne({"_id": 1, "v": 1}), InsertOne({"_id": 2, "v": 2}),
            UpdateOne({"_id": 1}, {"$inc": {"v": 10}}), UpdateOne({"_id": 9}, {"$set": {"v": 9}}, upsert=True),
            ReplaceOne({"_id": 2}, {"v": 20}), DeleteOne({"_id": 1}),
        ])
        self.assertEqual((r.inserted_count, r.matched_count, r.modified_count, r.upserted_count, r.deleted_count),
                         (2, 2, 2, 1, 1))
        self.assertEqual(list(c.find().sort("_id")), [{"_id": 2, "v": 20}, {"_id": 9, "v": 9}])


class FindAndModify(ServerTest):
    def test_variants(self):
        c = self.db.fm
        c.insert_many([{"_id": i, "q": i % 2, "n": i} for i in range(6)])
        before = c.find_one_and_update({"q": 1}, {"$inc": {"n": 100}}, sort=[("n", -1)])
        self.assertEqual(before, {"_id": 5, "q": 1, "n": 5})
        after = c.find_one_and_update({"_id": 3}, {"$inc": {"n": 100}}, return_document=ReturnDocument.AFTER,
                                      projection={"n": 1, "_id": 0})
        self.assertEqual(after, {"n": 103})
        up = c.find_one_and_update({"_id": 50}, {"$set": {"n": 50}}, upsert=True, return_document=ReturnDocument.AFTER)
        self.assertEqual(up, {"_id": 50, "n": 50})
        self.assertIsNone(c.find_one_and_update({"_id": 51}, {"$set": {"n": 1}}))
        rep = c.find_one_and_replace({"_id": 0}, {"r": True}, return_document=ReturnDocument.AFTER)
        self.assertEqual(rep, {"_id": 0, "r": True})
        gone = c.find_one_and_delete({"q": 0}, sort=[("n", -1)])
        self.assertEqual(gone["_id"], 4)
        self.assertIsNone(c.find_one({"_id": 4}))
        self.assertIsNone(c.find_one_and_delete({"_id": 999}))


class Counting(ServerTest):
    def test_count_documents_distinct_estimated(self):
        c = self.db.cnt
        c.insert_many([{"_id": i, "city": f"c{i % 5}", "tags": [i % 3, "x"]} for i in range(100)])
        self.assertEqual(c.count_documents({}), 100)
        self.assertEqual(c.count_documents({"city": "c1"}), 20)
        self.assertEqual(c.count_documents({"city": "c1"}, skip=5, limit=10), 10)
        self.assertEqual(c.count_documents({"city": "c1"}, skip=15), 5)
        self.assertEqual(c.count_documents({"city": "none"}), 0)
        self.assertEqual(c.estimated_document_count(), 100)
        self.assertEqual(sorted(c.distinct("city")), [f"c{i}" for i in range(5)])
        self.assertEqual(c.distinct("tags", {"city": "c0"}), [0, 1, 2, "x"])
        self.assertEqual(self.db.absent.count_documents({}), 0)

    def test_other_pipelines_are_refused_clearly(self):
        c = self.db.cnt2
        c.insert_one({"a": 1})
        with self.assertRaises(OperationFailure) as e:
            list(c.aggregate([{"$lookup": {"from": "x", "as": "y", "localField": "a", "foreignField": "b"}}]))
        self.assertEqual(e.exception.code, 115)
        self.assertIn("$lookup", str(e.exception))
        with self.assertRaises(OperationFailure) as e:
            list(c.aggregate([{"$bogus": {}}]))
        self.assertEqual(e.exception.code, 40324)


class Transactions(ServerTest):
    def test_commit_abort_and_isolation(self):
        c = self.db.acct
        c.insert_many([{"_id": "a", "bal": 100}, {"_id": "b", "bal": 0}])
        with self.client.start_session() as s:
            with s.start_transaction():
                c.update_one({"_id": "a"}, {"$inc": {"bal": -30}}, session=s)
                c.update_one({"_id": "b"}, {"$inc": {"bal": 30}}, session=s)
                self.assertEqual(c.find_one({"_id": "a"}, session=s)["bal"], 70)  # read your writes
                self.assertEqual(c.find_one({"_id": "a"})["bal"], 100)  # not visible outside
        self.assertEqual({d["_id"]: d["bal"] for d in c.find()}, {"a": 70, "b": 30})
        with self.client.start_session() as s:
            s.start_transaction()
            c.insert_one({"_id": "c", "bal": 1}, session=s)
            s.abort_transaction()
        self.assertIsNone(c.find_one({"_id": "c"}))

    def test_with_transaction_and_error_aborts(self):
        c = self.db.wt
        c.insert_one({"_id": 1})

        def body(s):
            c.insert_one({"_id": 2}, session=s)
            c.insert_one({"_id": 3}, session=s)
        with self.client.start_session() as s:
            s.with_transaction(body)
        self.assertEqual(c.count_documents({}), 3)
        with self.client.start_session() as s:
            s.start_transaction()
            c.insert_one({"_id": 4}, session=s)
            with self.assertRaises(DuplicateKeyError):
                c.insert_one({"_id": 1}, session=s)
            with self.assertRaises(OperationFailure):
                s.commit_transaction()
        self.assertIsNone(c.find_one({"_id": 4}))


class AbandonedTransaction(unittest.TestCase):
    def test_idle_transaction_is_aborted_and_frees_the_writer(self):
        server = Server(args=["--transaction-idle-timeout-ms", "500"])
        try:
            with server.client() as a, server.client() as b:
                a.db.t.insert_one({"_id": 0})
                s = a.start_session()
                s.start_transaction()
                a.db.t.insert_one({"_id": 1}, session=s)  # holds the database's writer
                t0 = time.monotonic()
                b.db.t.insert_one({"_id": 2})  # waits until the abandoned transaction is aborted
                waited = time.monotonic() - t0
                self.assertLess(waited, 5.0)
                with self.assertRaises(OperationFailure) as e:
                    s.commit_transaction()
                self.assertEqual(e.exception.code, 251)
                self.assertEqual(sorted(d["_id"] for d in b.db.t.find()), [0, 2])
                s.end_session()
        finally:
            server.close()


class Authentication(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(args=["--user", "ann:s3cret", "--user", "bob:p,w=d"])

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_right_credentials(self):
        for user, pw in (("ann", "s3cret"), ("bob", "p,w=d")):
            with self.server.client(username=user, password=pw) as c:
                c.db.x.insert_one({"ok": 1})
                self.assertEqual(c.db.x.count_documents({}) >= 1, True)
            with self.server.client(username=user, password=pw, authMechanism="SCRAM-SHA-256") as c:
                self.assertEqual(c.db.command("ping")["ok"], 1.0)

    def test_wrong_credentials(self):
        for user, pw in (("ann", "wrong"), ("nobody", "s3cret")):
            with self.server.client(username=user, password=pw) as c:
                with self.assertRaises(OperationFailure) as e:
                    c.db.command("ping")
                self.assertEqual(e.exception.code, 18)

    def test_missing_credentials(self):
        with self.server.client() as c:
            self.assertEqual(c.admin.command("ping")["ok"], 1.0)
            with self.assertRaises(OperationFailure) as e:
                c.db.x.find_one()
            self.assertEqual(e.exception.code, 13)
            with self.assertRaises(OperationFailure) as e:
                c.db.x.insert_one({"a": 1})
            self.assertEqual(e.exception.code, 13)

    def test_sha1_is_refused(self):
        with self.server.client(username="ann", password="s3cret", authMechanism="SCRAM-SHA-1") as c:
            with self.assertRaises(OperationFailure):
                c.db.command("ping")


class BadInput(ServerTest):
    def test_errors_have_codes_and_change_nothing(self):
        c = self.db.bad
        c.insert_one({"_id": 1, "a": 1, "s": "text"})
        cases = [
            (lambda: c.find_one({"a": {"$frob": 1}}), 2),
            (lambda: c.update_one({"_id": 1}, {"$frob": {"a": 1}}), 9),
            (lambda: c.update_one({"_id": 1}, {"$inc": {"a": "x"}}), 9),
            (lambda: c.update_one({"_id": 1}, {"$inc": {"s": 1}}), 14),
            (lambda: c.update_one({"_id": 1}, {"$set": {"_id": 2}}), 66),
            (lambda: c.find_one({"a": {"$regex": "("}}), 2),
            (lambda: self.db.command("frobnicate"), 59),
            (lambda: list(c.find({}).sort("a", 5)), 2),
            (lambda: c.insert_one({"$bad": 1}), 2),
            (lambda: self.db.command({"find": 5}), 73),
        ]
        for fn, code in cases:
            with self.assertRaises(OperationFailure, msg=f"expected {code}") as e:
                fn()
            self.assertEqual(e.exception.code, code, str(e.exception))
            self.assertTrue(e.exception.details.get("errmsg"))
        self.assertEqual(list(c.find()), [{"_id": 1, "a": 1, "s": "text"}])
        c2 = self.db.bad2
        c2.insert_one({"a": 1})
        with self.assertRaises(OperationFailure) as e:
            c2.update_one({}, [{"$set": {"a": 2}}])
        self.assertEqual(e.exception.code, 115)
        with self.assertRaises(OperationFailure) as e:
            c2.find_one({}, collation={"locale": "fr"})
        self.assertEqual(e.exception.code, 115)

    def _raw(self, payload, expect_close=True):
        s = socket.create_connection((self.server.host, self.server.port), timeout=5)
        s.sendall(payload)
        try:
            data = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        s.close()
        if expect_close:
            self.assertEqual(data, b"", f"connection should be closed for {payload[:24]!r}")
        return data

    def test_garbage_on_the_socket_closes_only_that_connection(self):
        rnd = random.Random(7)
        def header(length, op=2013):
            return struct.pack("<iiii", length, 1, 0, op)
        payloads = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 64,
            header(-1), header(4), header(2_000_000_000),
            header(16 + 10, 9999) + b"\0" * 10,
            header(16 + 9) + b"\0\0\0\0\0" + b"\xff\xff\xff\x7f",   # BSON length lies
            header(16 + 14) + b"\0\0\0\0\0" + struct.pack("<i", 9) + b"\x10a\0\0\0",  # truncated BSON
            header(16 + 5) + b"\0\0\0\0\x07",  # unknown section kind
        ] + [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(16, 200))) for _ in range(20)]
        for p in payloads:
            self._raw(p)
        # A valid OP_MSG missing $db gets an error reply, not a closed socket.
        body = bson.encode({"ping": 1})
        reply = self._raw(header(16 + 5 + len(body)) + b"\0\0\0\0\0" + body, expect_close=False)
        self.assertGreater(len(reply), 16)
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.assertEqual(self.db.still.insert_one({"a": 1}).acknowledged, True)


class Concurrency(ServerTest):
    def test_16_concurrent_clients(self):
        errors = []

        def worker(n):
            try:
                with self.server.client(maxPoolSize=2) as c:
                    col = c[self.db.name].conc
                    for i in range(100):
                        col.insert_one({"_id": f"{n}-{i}", "n": n, "i": i})
                        if i % 10 == 0:
                            self.assertEqual(col.find_one({"_id": f"{n}-{i}"})["i"], i)
                    self.assertEqual(col.count_documents({"n": n}), 100)
                    col.update_many({"n": n}, {"$inc": {"i": 1000}})
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        ts = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.db.conc.count_documents({}), 1600)
        self.assertEqual(self.db.conc.count_documents({"i": {"$gte": 1000}}), 1600)


class CrashRestart(unittest.TestCase):
    def test_sigkill_loses_no_acknowledged_write(self):
        server = Server()
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n):
            c = server.client(serverSelectionTimeoutMS=2000, retryWrites=False)
            i = 0
            while not stop.is_set():
                try:
                    c.db.crash.insert_one({"_id": f"{n}-{i}", "pad": "x" * 100})
                    with lock:
                        acked.append(f"{n}-{i}")
                except (ConnectionFailure, OperationFailure):
                    break
                i += 1
            c.close()
        ts = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        time.sleep(1.5)
        server.kill()
        stop.set()
        for t in ts:
            t.join()
        self.assertGreater(len(acked), 100)
        server.start()
        try:
            with server.client() as c:
                stored = {d["_id"] for d in c.db.crash.find({}, {"_id": 1})}
            missing = [a for a in acked if a not in stored]
            self.assertEqual(missing, [], f"{len(missing)} acknowledged writes lost")
        finally:
            server.close()


class Transport(unittest.TestCase):
    def test_tls(self):
        cert = os.path.join(FIXTURES, "server.crt")
        key = os.path.join(FIXTURES, "server.key")
        server = Server(args=["--tls-cert", cert, "--tls-key", key])
        try:
            with server.client(tls=True, tlsCAFile=cert) as c:
                c.db.t.insert_one({"a": 1})
                self.assertEqual(c.db.t.count_documents({}), 1)
            with server.client(serverSelectionTimeoutMS=1000) as c:
                with self.assertRaises(ServerSelectionTimeoutError):
                    c.admin.command("ping")
        finally:
            server.close()

    def test_zlib_compression(self):
        server = Server()
        try:
            with server.client(compressors="zlib") as c:
                c.db.z.insert_many([{"_id": i, "s": "abc" * 100} for i in range(200)])
                self.assertEqual(len(list(c.db.z.find(batch_size=50))), 200)
        finally:
            server.close()

    def test_metrics_status_and_clean_shutdown(self):
        server = Server(args=["--metrics-port", "0"])
        try:
            with server.client() as c:
                c.db.m.insert_one({"a": 1})
                with self.assertRaises(OperationFailure):
                    c.db.m.find_one({"a": {"$frob": 1}})
            text = urllib.request.urlopen(server.metrics, timeout=5).read().decode()
            self.assertIn('collection_store_server_commands_total{command="insert"}', text)
            self.assertIn('collection_store_server_errors_total{code="2",code_name="BadValue"}', text)
            self.assertIn("collection_store_server_command_duration_seconds_bucket", text)
            time.sleep(1.2)
            text = urllib.request.urlopen(server.metrics, timeout=5).read().decode()
            self.assertIn("collection_store_last_lsn", text)
            status = json.loads(urllib.request.urlopen(server.metrics.replace("/metrics", "/status"), timeout=5).read())
            self.assertGreaterEqual(status["last_lsn"], 1)
            self.assertIn("alerts", status)
            self.assertEqual(server.stop(), 0)
        finally:
            server.close()


if __name__ == "__main__":
    print(f"pymongo {pymongo.version}, python {sys.version.split()[0]}", flush=True)
    unittest.main(verbosity=2)
