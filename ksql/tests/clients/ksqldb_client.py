"""PyPI's ksqldb client (1.0.1) against a Sluice ksql server: DDL, listings, properties and
an error, through its own calls. Usage: ksqldb_client.py http://host:port"""
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
print("ok")
