"""Admission: the check every event body passes, inside DuckDB, before it enters the ledger.

Ingest hands DuckDB a batch as an Arrow table named ``nbgov_batch`` (seq, segment, line, body,
leaf_hash, chain_hash). :data:`INSERT_EVENTS` checks each body's envelope (:data:`BODY_CHECK`:
exactly the envelope's keys in order, a known type and schema version, an actor with a non-empty
id, a valid UTC timestamp, the event id its line number implies) and inserts the batch, taking the
queryable columns out of the hashed body so the two cannot disagree. One bad body fails the whole
statement (``error()``); ingest then runs :data:`SCREEN_EVENTS`, which names the failing rows
without failing.
"""

from __future__ import annotations

from nbgov.events import EVENT_TYPES

__all__ = ["BODY_CHECK", "INSERT_EVENTS", "REFUSED", "SCREEN_EVENTS", "TIME_FORMAT"]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ENVELOPE = "['actor', 'id', 'payload', 'session', 'time', 'type', 'v']"
_VERSIONS = " ".join(f"WHEN '{name}' THEN {cls.VERSION}" for name, cls in EVENT_TYPES.items())



def _parsed(guarded: bool) -> str:
    """Each batch row with its envelope taken apart, parsing the body twice in all.

    json_keys and json_transform parse the whole body once each; every other function works on
    the small values json_transform cut out. The OFFSET 0 subqueries keep DuckDB from inlining
    an expression into every place that uses it, which would parse the body once per use.
    ``guarded`` skips bodies that are not JSON instead of failing the statement.
    """
    valid = "json_valid(b)" if guarded else "true"
    return f"""
SELECT seq, body, leaf_hash, chain_hash, expected_id, k,
       json_type(s.actor) AS actor_type, json_keys(s.actor) AS actor_keys,
       json_type(s.actor, ['$.id', '$.source']) AS actor_field_types,
       json_extract_string(s.actor, ['$.id', '$.source']) AS actor_fields,
       json_type(s.id) AS id_type, json_extract_string(s.id, '$') AS event_id,
       json_type(s.payload) AS payload_type, coalesce(json_type(s.session), 'NULL') AS session_type,
       json_type(s.time) AS time_type, json_extract_string(s.time, '$') AS event_time,
       json_type(s.type) AS type_type, json_extract_string(s.type, '$') AS type,
       json_type(s.v) AS v_type, json_extract_string(s.v, '$') AS v
FROM (
  SELECT *, CASE WHEN k = {_ENVELOPE} THEN json_transform(b, '{_ENVELOPE_JSON}') END AS s
  FROM (
    SELECT seq, body, leaf_hash, chain_hash, segment || ':' || line AS expected_id, b,
           CASE WHEN {valid} THEN json_keys(b) END AS k
    FROM (SELECT *, decode(body) AS b FROM nbgov_batch) OFFSET 0)
  OFFSET 0)
OFFSET 0"""


_TIME_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z"
_ENVELOPE_JSON = (
    '{"actor":"JSON","id":"JSON","payload":"JSON","session":"JSON","time":"JSON","type":"JSON",'
    '"v":"JSON"}'
)

#: The envelope check every event body passes before it enters the ledger: the authority on what
#: is admitted (:func:`nbgov.events.catalogue.check_body` only words the reason when a body is refused).
BODY_CHECK = f"""(
    k = {_ENVELOPE}
    AND actor_type = 'OBJECT' AND actor_keys = ['id', 'source']
    AND actor_field_types = ['VARCHAR', 'VARCHAR'] AND actor_fields[1] <> ''
    AND id_type = 'VARCHAR' AND event_id = expected_id
    AND payload_type = 'OBJECT' AND session_type IN ('OBJECT', 'NULL')
    AND time_type = 'VARCHAR'
    AND regexp_full_match(event_time, '{_TIME_PATTERN}')
    AND try_strptime(event_time, '{TIME_FORMAT}') IS NOT NULL
    AND type_type = 'VARCHAR' AND v_type = 'UBIGINT'
    AND TRY_CAST(v AS BIGINT) BETWEEN 1 AND (CASE type {_VERSIONS} ELSE 0 END)
)"""

REFUSED = "nbgov: event body refused at"

# Columns are extracted from the hashed body, so they cannot disagree with it.
INSERT_EVENTS = f"""
INSERT INTO event_log
SELECT seq, strptime($ingested_at, '{TIME_FORMAT}')::TIMESTAMPTZ, event_id, type, v::INTEGER,
       strptime(event_time, '{TIME_FORMAT}')::TIMESTAMPTZ, actor_fields[1], actor_fields[2],
       body::BLOB, leaf_hash, chain_hash
FROM ({_parsed(guarded=False)})
WHERE CASE WHEN {BODY_CHECK} THEN true ELSE error('{REFUSED} ' || expected_id) END
"""

# The careful path: which rows fail, without failing the statement.
SCREEN_EVENTS = f"""
SELECT seq FROM ({_parsed(guarded=True)})
WHERE NOT coalesce({BODY_CHECK}, false)
ORDER BY seq
"""
