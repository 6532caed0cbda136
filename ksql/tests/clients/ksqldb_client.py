"""PyPI's ksqldb client (1.0.1) against a Sluice ksql server: DDL, listings, properties, an
error, INSERT VALUES and a push query (HTTP/2 to /query-stream), through its own calls.
Usage: ksqldb_client.py http://host:port"""
import asyncio
import sys

import requests
from ksqldb import KSQLdbClient

client = KSQLdbClient(sys.argv[1])
created = client.ksql(
    "CREATE STREAM py_stream (id INT KEY, v STRING) "
    "WITH (kafka_topic='py_stream', value_format='json', partitions=1);"
)
assert created[0]["commandStatus"]["status"] == "SUCCESS", created
streams = client.ksql("SHOW STREAMS;")[0]["streams"]
assert [s["name"] for s in streams] == ["PY_STREAM"], streams
properties = client.get_properties()
assert any(p["name"] == "ksql.service.id" for p in properties), properties
try:
    client.ksql("CREATE STREAM py_stream (v STRING) WITH (kafka_topic='py_stream', value_format='json');")
    raise SystemExit("a second stream of the same name was accepted")
except requests.HTTPError as err:
    body = err.response.json()
    assert err.response.status_code == 400, err.response.status_code
    assert body["@type"] == "statement_error", body
    assert "already exists" in body["message"], body
client.ksql("INSERT INTO py_stream (id, v) VALUES (1, 'one');")
client.ksql("INSERT INTO py_stream (id, v) VALUES (2, 'two');")


async def push_rows():
    rows = []
    async for item in client.query_async(
        "SELECT id, UCASE(v) AS v FROM py_stream EMIT CHANGES LIMIT 2;",
        stream_properties={"auto.offset.reset": "earliest"},
        timeout=30,
    ):
        rows.append(item)
    return rows


rows = asyncio.run(push_rows())
assert rows[0]["columnNames"] == ["ID", "V"], rows
assert rows[1:] == [[1, "ONE"], [2, "TWO"]], rows
print("ok")
