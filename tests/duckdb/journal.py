"""Reads gallring's journal and index snapshot with DuckDB alone (no gallring code).

    python journal.py STATE_DIR DAY

STATE_DIR holds a copy of the state prefix (journal/*.jsonl, index/snapshot/*/*.jsonl). Prints
one JSON object: the versions gallring deleted on DAY (UTC) per purpose, joined from the
deletionsIntended and deletionsConfirmed facts; the versions observed gone per cause; and the
index snapshot's entries per recorded decision. The fault suite compares it with
`gallring evidence` (README: "Reading the journal without gallring").
"""
import glob
import json
import os
import sys

import duckdb

state, day = sys.argv[1], sys.argv[2]
segments = os.path.join(state, "journal", "*.jsonl")
con = duckdb.connect()
# A view cannot take a parameter: the path is quoted as an SQL string literal instead.
quoted = "'" + segments.replace("'", "''") + "'"
con.execute(
    "CREATE VIEW lines AS SELECT json AS j FROM "
    f"read_json_objects({quoted}, format='newline_delimited')"
)
deleted = con.execute(
    """
    WITH intended AS (
        SELECT o->>'key' AS key, coalesce(o->>'versionId', '') AS v,
               from_json(o->'purposes', '["VARCHAR"]') AS purposes
        FROM (SELECT unnest(json_extract(j, '$.objects[*]')) AS o
              FROM lines WHERE j->>'fact' = 'deletionsIntended')
    ),
    confirmed AS (
        SELECT CAST(at AS TIMESTAMP) AS at, o->>'key' AS key, coalesce(o->>'versionId', '') AS v
        FROM (SELECT j->>'at' AS at, unnest(json_extract(j, '$.objects[*]')) AS o
              FROM lines WHERE j->>'fact' = 'deletionsConfirmed')
    )
    SELECT p AS purpose, count(*) AS n
    FROM confirmed c JOIN intended i USING (key, v), unnest(i.purposes) AS t(p)
    WHERE CAST(c.at AS DATE) = CAST(? AS DATE)
    GROUP BY p ORDER BY p
    """,
    [day],
).fetchall()
gone = con.execute(
    """
    SELECT o->>'cause' AS cause, count(*) AS n
    FROM (SELECT unnest(json_extract(j, '$.objects[*]')) AS o
          FROM lines WHERE j->>'fact' = 'objectsGoneObserved')
    GROUP BY cause ORDER BY cause
    """
).fetchall()
parts = glob.glob(os.path.join(state, "index", "snapshot", "*", "*.jsonl"))
index = []
if parts:
    index = con.execute(
        "SELECT decision, count(*) FROM read_json_auto(?, format='newline_delimited') "
        "GROUP BY decision ORDER BY decision",
        [parts],
    ).fetchall()
print(
    json.dumps(
        {
            "deletedByPurpose": {p: n for p, n in deleted},
            "goneByCause": {c: n for c, n in gone},
            "indexByDecision": {d: n for d, n in index},
        },
        sort_keys=True,
    )
)
