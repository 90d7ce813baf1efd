"""Facts the ledger derives from events as it ingests them, in the same transaction.

A model version's number is not known when its fit is captured: several kernels, processes and
hosts may fit models of the same name at once, and capture never waits for the ledger. So a
``model_fitted`` event names its model and the ledger numbers it at ingest, where ingesters
already take turns (the ingest lock): versions per model name are unique and gapless across
every session, process and host writing one ledger. Events that refer to a fit (predictions,
metrics, parameters, bias and drift tests) carry its event id (``fit``) and the views look the
number up in ``model_version_numbers``.

Events written by nbgov before this (``model_fitted`` schema version 1) carry their number; it is
kept as recorded, and new numbers continue after the highest.
"""

from __future__ import annotations

import duckdb

__all__ = ["NUMBER_MODEL_VERSIONS", "number_model_versions"]

#: Number the fits of one batch (``$first``..``$last``), in ``seq`` order, after the highest
#: version each model already has (in the ledger or recorded in this batch).
NUMBER_MODEL_VERSIONS = """
INSERT INTO model_version_numbers
WITH fits AS (
  SELECT seq, event_id, json_extract_string(b, '$.payload.model') AS model,
         TRY_CAST(json_extract(b, '$.payload.version') AS INTEGER) AS recorded
  FROM (SELECT seq, event_id, decode(body) AS b FROM event_log
        WHERE seq BETWEEN $first AND $last AND type = 'model_fitted')),
tops AS (SELECT model, max(version) AS top FROM model_version_numbers
         WHERE model IN (SELECT model FROM fits) GROUP BY model),
recorded AS (SELECT model, max(recorded) AS top FROM fits GROUP BY model)
SELECT f.model,
       coalesce(f.recorded, greatest(coalesce(t.top, 0), coalesce(r.top, 0))
                + row_number() OVER (PARTITION BY f.model, f.recorded IS NULL ORDER BY f.seq))::INTEGER,
       f.event_id, f.seq
FROM fits f LEFT JOIN tops t USING (model) LEFT JOIN recorded r USING (model)
"""


def number_model_versions(con: duckdb.DuckDBPyConnection, first_seq: int, last_seq: int) -> None:
    """Number the model fits among events *first_seq*..*last_seq* (inside the ingest transaction)."""
    con.execute(NUMBER_MODEL_VERSIONS, {"first": first_seq, "last": last_seq})
