"""``nbgov export``: OpenLineage RunEvents and a W3C PROV-JSON document from real ledgers.

OpenLineage events are validated against the official OpenLineage JSON Schema and each standard
facet against the official schema its ``_schemaURL`` names (both vendored in
tests/data/vectors/openlineage and resolved offline through a ``referencing`` registry), nbgov's
custom facets against the JSON Schemas nbgov publishes for them; they are also rebuilt with the
official OpenLineage Python client's typed model (``openlineage-python``: its classes define every
standard facet's fields, require a UUID run id and an RFC 3339 event time, and know each facet's
schema URL) and must serialise back to exactly what nbgov exported. PROV documents are loaded
with the ``prov`` package and validated against the PROV-JSON member submission's schema that
package ships.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import blake3
import jsonschema
import numpy as np
import pandas as pd
import pytest
import referencing.exceptions
from openlineage.client import event_v2 as ol
from openlineage.client.generated import (
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    schema_dataset,
    source_code_job,
)
from openlineage.client.serde import Serde
from prov.model import (
    ProvAssociation,
    ProvCommunication,
    ProvDerivation,
    ProvDocument,
    ProvGeneration,
    ProvUsage,
)
from referencing import Registry, Resource

from nbgov import events
from nbgov.errors import ExportError
from nbgov.export.openlineage import (
    FACET_SCHEMAS,
    PRODUCER,
    RUN_EVENT_SCHEMA,
    Period,
    dataset_identity,
    openlineage_events,
    to_jsonl,
)
from nbgov.export.prov import prov_document, to_json
from nbgov.ledger.envelope import Session
from nbgov.ledger.facade import Ledger
from support.helpers import (
    VECTORS,
    isolated_module_environment,
    review_notebook,
    run_cli,
    sample_ledger,
    train_version,
    vector_files,
)
from support.ipython import isolated_shells

FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER

# -- conformance ----------------------------------------------------------------------------------

_STANDARD = {
    "parent": lambda f: parent_run.ParentRunFacet(run=parent_run.Run(**f.pop("run")),
                                                  job=parent_run.Job(**f.pop("job")), **f),
    "schema": lambda f: schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(**field) for field in f.pop("fields")], **f),
    "dataSource": lambda f: datasource_dataset.DatasourceDatasetFacet(**f),
    "version": lambda f: dataset_version_dataset.DatasetVersionDatasetFacet(**f),
    "errorMessage": lambda f: error_message_run.ErrorMessageRunFacet(**f),
    "jobType": lambda f: job_type_job.JobTypeJobFacet(**f),
    "sourceCode": lambda f: source_code_job.SourceCodeJobFacet(**f),
}
_CUSTOM = Registry().with_resources(
    (url, Resource.from_contents(schema)) for url, schema in FACET_SCHEMAS.items())


def _official_facets(facets: dict[str, Any]) -> dict[str, Any]:
    """The standard facets rebuilt with the official classes (an unknown or missing field, or an
    unknown facet, raises); custom facets are checked against nbgov's schemas instead."""
    built = {}
    for key, data in facets.items():
        assert data["_producer"] == PRODUCER
        assert FORMATS.conforms(data["_schemaURL"], "uri")
        if key.startswith("nbgov_"):
            schema = next(s for s in FACET_SCHEMAS.values() if key in s["properties"])
            assert data["_schemaURL"].startswith(schema["$id"] + "#/$defs/")
            jsonschema.Draft202012Validator({"$ref": data["_schemaURL"]}, registry=_CUSTOM,
                                            format_checker=FORMATS).validate(data)
            continue
        facet = _STANDARD[key]({k: copy.deepcopy(v) for k, v in data.items() if not k.startswith("_")})
        facet._producer = data["_producer"]
        assert data["_schemaURL"] == facet._schemaURL, key  # the version the official client writes
        built[key] = facet
    return built


def _pruned(value: Any, *, custom: bool = True) -> Any:
    """*value* without empty collections (the client writes ``{}``/``[]`` defaults), and without
    nbgov's custom facets unless *custom*."""
    if isinstance(value, dict):
        items = {k: _pruned(v, custom=custom) for k, v in value.items() if custom or not k.startswith("nbgov_")}
        return {k: v for k, v in items.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(v, custom=custom) for v in value]
    return value


def conforms(exported: list[dict[str, Any]]) -> None:
    """Every event round-trips through the official OpenLineage model, unchanged, and is valid
    against the official schemas (:func:`validate_openlineage`)."""
    for event in exported:
        assert FORMATS.conforms(event["eventTime"], "date-time") and event["eventTime"].endswith("Z")
        run_id = uuid.UUID(event["run"]["runId"])
        assert run_id.version == 7 and run_id.variant == uuid.RFC_4122
        rebuilt = ol.RunEvent(
            eventType=ol.RunState(event["eventType"]), eventTime=event["eventTime"], producer=event["producer"],
            run=ol.Run(runId=event["run"]["runId"], facets=_official_facets(event["run"]["facets"])),
            job=ol.Job(namespace=event["job"]["namespace"], name=event["job"]["name"],
                       facets=_official_facets(event["job"]["facets"])),
            inputs=[ol.InputDataset(namespace=d["namespace"], name=d["name"], facets=_official_facets(d["facets"]))
                    for d in event["inputs"]],
            outputs=[ol.OutputDataset(namespace=d["namespace"], name=d["name"],
                                      facets=_official_facets(d["facets"])) for d in event["outputs"]])
        assert rebuilt.schemaURL == event["schemaURL"]
        assert _pruned(Serde.to_dict(rebuilt)) == _pruned(event, custom=False)
    validate_openlineage(exported)


# -- the official OpenLineage JSON Schema ---------------------------------------------------------
# OpenLineage.json (2-0-2) and the standard facet schemas, vendored with their licence in
# tests/data/vectors/openlineage, and nbgov's own facet schemas, all in one registry keyed by
# ``$id``. Nothing is fetched: a reference to any other schema fails the test that makes it.


class NotVendored(LookupError):
    """A schema that is neither vendored nor nbgov's own was asked for."""


def _offline(uri: str) -> Resource[Any]:
    raise NotVendored(f"{uri} is not a vendored OpenLineage schema (tests/data/vectors/openlineage) nor "
                      "one of nbgov's FACET_SCHEMAS, and schemas are never fetched from the network")


OFFICIAL: dict[str, dict[str, Any]] = {
    schema["$id"]: schema for schema in (json.loads(path.read_text()) for path in [
        VECTORS / "openlineage" / "OpenLineage.json", *vector_files("openlineage", "facets")])}
OPENLINEAGE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
SCHEMAS: Registry[Any] = Registry(retrieve=_offline).with_resources(
    (uri, Resource.from_contents(schema)) for uri, schema in {**OFFICIAL, **FACET_SCHEMAS}.items())
#: The standard facets nbgov writes, at the versions it writes (all among the vendored schemas).
STANDARD_FACETS = {
    "parent": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "schema": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "dataSource": "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json"
                  "#/$defs/DatasourceDatasetFacet",
    "version": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json"
               "#/$defs/DatasetVersionDatasetFacet",
    "errorMessage": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "jobType": "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sourceCode": "https://openlineage.io/spec/facets/1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet",
}
_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def _validator(url: str) -> jsonschema.protocols.Validator:
    """A Draft 2020-12 validator, with format checking, of the schema at *url* (``$id`` + pointer)."""
    if url not in _VALIDATORS:
        _VALIDATORS[url] = jsonschema.Draft202012Validator({"$ref": url}, registry=SCHEMAS,
                                                           format_checker=FORMATS)
    return _VALIDATORS[url]


def _facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every facet of *event* as (the base facet it must be, its key, the facet)."""
    yield from (("RunFacet", key, facet) for key, facet in event["run"].get("facets", {}).items())
    yield from (("JobFacet", key, facet) for key, facet in event["job"].get("facets", {}).items())
    for side, own, kind in (("inputs", "inputFacets", "InputDatasetFacet"),
                            ("outputs", "outputFacets", "OutputDatasetFacet")):
        for dataset in event.get(side, []):
            yield from (("DatasetFacet", key, facet) for key, facet in dataset.get("facets", {}).items())
            yield from ((kind, key, facet) for key, facet in dataset.get(own, {}).items())


def validate_openlineage(exported: list[dict[str, Any]]) -> Counter[str]:
    """Validate every event against OpenLineage.json (the whole document: exactly one of RunEvent,
    DatasetEvent and JobEvent) and the definition its ``schemaURL`` names, and every facet against
    the schema its ``_schemaURL`` names, which must define that facet under that key and for that
    place (a run facet on the run, ...). How many objects were validated against each schema URL."""
    checked: Counter[str] = Counter()
    for event in exported:
        _validator(OPENLINEAGE_ID).validate(event)
        _validator(event["schemaURL"]).validate(event)
        checked[event["schemaURL"]] += 1
        for place, key, facet in _facets(event):
            url = facet["_schemaURL"]
            base, _, pointer = url.partition("#")
            whole = SCHEMAS.resolver().lookup(base).contents  # Unresolvable (NotVendored) for any other
            name = pointer.rsplit("/", 1)[-1]
            assert pointer == f"/$defs/{name}", url
            assert whole.get("properties", {}).get(key) == {"$ref": f"#/$defs/{name}"}, (key, url)
            if base in FACET_SCHEMAS:  # a custom facet: nbgov's prefix, and named for its place
                assert key.startswith("nbgov_") and name.endswith(place), (key, url, place)
            else:
                assert {"$ref": f"{OPENLINEAGE_ID}#/$defs/{place}"} in whole["$defs"][name]["allOf"], (key, place)
            _validator(url).validate(facet)
            checked[url] += 1
    return checked


def _prov_schema() -> jsonschema.protocols.Validator:
    text = (importlib.resources.files("prov") / "tests" / "schemas" / "prov-json.schema.json").read_text()
    schema = json.loads(text)
    return jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def load_prov(document: dict[str, Any]) -> ProvDocument:
    """The document, valid against the PROV-JSON schema, as loaded by the ``prov`` package."""
    text = to_json(document)
    _prov_schema().validate(json.loads(text))
    return ProvDocument.deserialize(content=text, format="json")


def relations(doc: ProvDocument, kind: type) -> list[tuple[str | None, ...]]:
    return [tuple(None if a is None else str(a) for a in record.args) for record in doc.get_records(kind)]


def attribute(doc: ProvDocument, ident: str, name: str) -> Any:
    (record,) = doc.get_record(ident)
    (value,) = record.get_attribute(name)
    return value


def by_run(exported: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for event in exported:
        runs.setdefault(event["run"]["runId"], []).append(event)
    return runs


# -- a real notebook session ----------------------------------------------------------------------


def _run_in_ipython(root: Path, home: Path, notebook: str, cells: list[str]) -> list[bool]:
    """Run *cells* in a real IPython shell (the shared one, support.ipython; the cells load nbgov)
    recording into *home* as the notebook *notebook*; whether each cell succeeded."""
    with isolated_shells(root) as make_shell:
        shell = make_shell(home=home, env={"NBGOV_NOTEBOOK": str(root / notebook)}, load=False)
        return [shell.run_cell(code, store_history=True).success for code in cells]


def _loans_csv(path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 120).round(2), "debt": rng.normal(20, 5, 120).round(2)})
    frame["denied"] = (frame.debt / frame.income > 0.4).astype(int)
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A real IPython shell with ``%load_ext nbgov``: pandas reads a CSV, scikit-learn fits and
    scores a model, a cell writes Parquet, a cell fails, then the extension is unloaded."""
    root = tmp_path_factory.mktemp("notebook")
    paths = {"home": root / "ledger", "csv": root / "loans.csv", "parquet": root / "clean.parquet"}
    _loans_csv(paths["csv"])  # before nbgov is loaded: not part of the record
    cells = ["%load_ext nbgov",
             "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
             "from sklearn.metrics import accuracy_score",
             f"loans = pd.read_csv({str(paths['csv'])!r})",
             "X, y = loans[['income', 'debt']], loans.denied",
             "model = LogisticRegression(C=0.5)\nmodel.fit(X, y)",
             "accuracy = accuracy_score(y, model.predict(X))",
             f"loans.to_parquet({str(paths['parquet'])!r})",
             "1 / 0",
             "%unload_ext nbgov"]
    assert _run_in_ipython(root, paths["home"], "loans.ipynb", cells) == [True] * 7 + [False, True]
    yield paths


def test_a_real_notebook_exports_as_openlineage_matching_the_ledger(recorded: dict[str, Path]) -> None:
    ledger = Ledger(recorded["home"])
    exported = openlineage_events(ledger)
    conforms(exported)
    runs = by_run(exported)
    notebook = str(recorded["home"].parent / "loans.ipynb")
    (session_run,) = [r for r, evs in runs.items() if evs[0]["job"]["name"] == notebook]
    assert [e["eventType"] for e in runs[session_run]] == ["START", "COMPLETE"]
    assert runs[session_run][-1]["run"]["facets"]["nbgov_session"]["endReason"] == "unload"
    cells = ledger.query("SELECT * FROM cells ORDER BY seq")
    cell_runs = {evs[-1]["run"]["facets"]["nbgov_cell"]["node"]: evs for r, evs in runs.items() if r != session_run}
    assert sorted(cell_runs) == sorted(cells["node"])  # one run per cell execution, nothing else
    for cell in cells.itertuples():
        run = cell_runs[cell.node]
        assert [e["eventType"] for e in run] == ["START", "COMPLETE" if cell.ok else "FAIL"]
        assert run[0]["job"]["name"] == f"{notebook}:cell-{cell.execution_count}"
        assert run[0]["eventTime"] == cell.started_at  # the ledger's own times
        for event in run:
            assert event["run"]["facets"]["parent"]["run"]["runId"] == session_run
            assert event["run"]["facets"]["parent"]["job"]["name"] == notebook
    failed = cell_runs[cells[~cells.ok].iloc[0]["node"]][-1]
    assert "ZeroDivisionError" in failed["run"]["facets"]["errorMessage"]["message"]

    # Every read and write in the ledger is an input or output of its cell's run, with the
    # ledger's fingerprint (which is the file's BLAKE3).
    datasets = ledger.query("SELECT d.*, e.session->>'cell_run' AS cell_run FROM datasets d "
                            "JOIN events e ON e.seq = d.seq")
    assert set(datasets["path"]) == {str(recorded["csv"]), str(recorded["parquet"])}
    for row in datasets.itertuples():
        side = "inputs" if row.direction == "read" else "outputs"
        (found,) = [d for d in cell_runs[row.cell_run][-1][side] if d["name"] == row.path]
        assert found["namespace"] == "file"
        assert found["facets"]["dataSource"]["uri"] == Path(row.path).as_uri()
        assert found["facets"]["nbgov_fingerprint"]["value"] == row.fingerprint
        assert row.fingerprint == blake3.blake3(Path(row.path).read_bytes()).hexdigest()
        assert found["facets"]["nbgov_fingerprint"]["rows"] == 120
        assert [f["name"] for f in found["facets"]["schema"]["fields"]] == ["income", "debt", "denied"]

    # The model is an output of the cell that fitted it, whose inputs are the model's upstream
    # datasets in the ledger's lineage.
    model = ledger.query("SELECT * FROM models").iloc[0]
    upstream = ledger.query("SELECT node FROM lineage_upstream($n) WHERE kind = 'dataset'", {"n": model["node"]})
    training = cell_runs[model["cell_node"]][-1]
    (fitted,) = [d for d in training["outputs"] if d["name"] == "models/model"]
    assert fitted["facets"]["version"]["datasetVersion"] == "1"
    assert fitted["facets"]["nbgov_model"]["params"]["C"] == 0.5
    assert fitted["facets"]["nbgov_model"]["estimator"] == model["estimator"]
    assert {d["facets"]["nbgov_fingerprint"]["node"] for d in training["inputs"]} == set(upstream["node"])
    metric = ledger.query("SELECT * FROM metrics").iloc[0]
    scored = [e for evs in cell_runs.values() for e in evs if "nbgov_metrics" in e["run"]["facets"]]
    (evaluation,) = scored[0]["run"]["facets"]["nbgov_metrics"]["evaluations"]
    assert evaluation["metrics"] == {"accuracy_score": metric["value"]} and evaluation["model"] == "model"


def test_a_real_notebook_exports_as_a_prov_document(recorded: dict[str, Path]) -> None:
    ledger = Ledger(recorded["home"])
    doc = load_prov(prov_document(ledger))
    model = ledger.query("SELECT * FROM models").iloc[0]
    read = ledger.query("SELECT * FROM datasets WHERE direction = 'read'").iloc[0]
    model_id, data_id = "ledger:model/model/1", f"ledger:dataset/{read['fingerprint']}"
    assert attribute(doc, data_id, "nbgov:fingerprint") == read["fingerprint"]
    assert attribute(doc, model_id, "nbgov:estimator") == model["estimator"]
    ((_, trainer, _),) = [g for g in relations(doc, ProvGeneration) if g[0] == model_id]
    assert attribute(doc, trainer, "nbgov:node") == model["cell_node"]
    assert (trainer, data_id) in {(u[0], u[1]) for u in relations(doc, ProvUsage)}
    assert (model_id, data_id, trainer) in {d[:3] for d in relations(doc, ProvDerivation)}
    reader = f"ledger:cell/{read['session_id']}/{read['cell_node'].rsplit(':', 1)[1]}"
    usage = [r for r in doc.get_records(ProvUsage) if (str(r.args[0]), str(r.args[1])) == (reader, data_id)]
    assert usage and usage[0].get_attribute("nbgov:seq") == {int(read["seq"])}
    session = f"ledger:session/{read['session_id']}"
    assert (reader, session) in relations(doc, ProvCommunication)  # the cell ran within the session
    assert (session, "ledger:actor/" + ledger.query("SELECT actor FROM sessions")["actor"][0], None) in \
        relations(doc, ProvAssociation)
    written = ledger.query("SELECT * FROM datasets WHERE direction = 'write'").iloc[0]
    assert (f"ledger:dataset/{written['fingerprint']}", data_id) in {d[:2] for d in relations(doc, ProvDerivation)}


# -- every event of a realistic ledger against the official schema -------------------------------


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ledger of ordinary work, recorded as it happens: an interactive notebook in a real IPython
    shell (pandas reads a CSV and an in-memory buffer, scikit-learn fits and scores, a bias test,
    Parquet written, a cell fails), two real ``nbgov review run``s (one reads, fits and scores, one
    raises a policy breach), and through the API what else a ledger holds: a fit in a cell that has
    not finished, data on an object store and the web with spaces in their names, a session that has
    not ended and a review run that timed out."""
    root = tmp_path_factory.mktemp("realistic")
    home, csv, parquet = root / "ledger", root / "loans.csv", root / "clean.parquet"
    _loans_csv(csv)
    cells = ["%load_ext nbgov",
             "import io\nimport pandas as pd\nimport nbgov\nfrom sklearn.linear_model import LogisticRegression\n"
             "from sklearn.metrics import accuracy_score, roc_auc_score",
             f"loans = pd.read_csv({str(csv)!r})",
             "extra = pd.read_csv(io.StringIO('income,debt,denied\\n61.5,30.2,1\\n'))",
             "loans = pd.concat([loans, extra], ignore_index=True)\nX, y = loans[['income', 'debt']], loans.denied",
             "model = LogisticRegression(C=0.5)\nmodel.fit(X, y)",
             "accuracy = accuracy_score(y, model.predict(X))\nauc = roc_auc_score(y, model.predict_proba(X)[:, 1])",
             "race = pd.Series(['a', 'b'] * 60 + ['a'], name='race')\n"
             "bias = nbgov.fairness(y, model.predict(X), race, model=model)",
             f"loans.to_parquet({str(parquet)!r})",
             "1 / 0",
             "%unload_ext nbgov"]
    assert _run_in_ipython(root, home, "loans.ipynb", cells) == [True] * 9 + [False, True]

    reviews = root / "reviews"
    reviews.mkdir()
    review_notebook(reviews / "monthly.ipynb", "%load_ext nbgov",
                    "import pandas as pd\nfrom sklearn.tree import DecisionTreeClassifier\n"
                    "from sklearn.metrics import accuracy_score",
                    f"data = pd.read_csv({str(csv)!r})\nX, y = data[['income', 'debt']], data.denied",
                    "tree = DecisionTreeClassifier(max_depth=x, random_state=0).fit(X, y)",
                    "score = accuracy_score(y, tree.predict(X))", parameters="x = 2\nlabel = 'monthly'")
    review_notebook(reviews / "breach.ipynb", "%load_ext nbgov", "import nbgov",
                    "raise nbgov.PolicyBreach('bias review: DP ratio 0.61 below 0.8')")
    with isolated_module_environment(root):
        ran = run_cli("--home", str(home), "review", "run", str(reviews / "monthly.ipynb"), "-p", "x", "3",
                      timeout=300)
        assert ran.returncode == 0, ran.stderr
        ran = run_cli("--home", str(home), "review", "run", str(reviews / "breach.ipynb"), timeout=300)
        assert ran.returncode == 1 and "PolicyBreach" in ran.stderr + ran.stdout, ran.stderr

        train_version(home, csv, model="credit", session="unfinished-cell")  # no cell_executed yet
        ledger = Ledger(home)
        remote = Session(session_id="remote", notebook="/nb/remote data.ipynb")
        ledger.append(events.SessionStarted(host="h", python="3.11"), session=remote)
        cell = Session(session_id="remote", notebook="/nb/remote data.ipynb", cell_run="cell:remote:1")
        for digit, path in (("1", "s3://bank/raw/loans 2026.parquet"),
                            ("2", "https://data.example.org/open data/ü.csv?v=1 2")):
            ledger.append(events.DatasetRead(path=path, fingerprint=digit * 64, algorithm="blake3", coverage="file",
                                             rows=10, columns=[["income", "double"], ["denied", "int64"]],
                                             node="cell:remote:1", inputs=["dataset:" + digit * 64]), session=cell)
        ledger.append(events.CellExecuted(node="cell:remote:1", cell_id="c-1", execution_count=1,
                                          source_sha256="cd" * 32, source="pd.read_parquet(...)",
                                          started_at="2026-02-01T09:00:00.000000Z", duration_us=1200, ok=True),
                      session=cell)
        ledger.append(events.SessionEnded(reason="shutdown", cells=1), session=remote)
        ledger.append(events.SessionStarted(host="h", python="3.11"),
                      session=Session(session_id="open", notebook="/nb/open.ipynb"))
        opened = Session(session_id="open", notebook="/nb/open.ipynb", cell_run="cell:open:1")
        ledger.append(events.DatasetRead(path=str(csv), fingerprint="e" * 64, algorithm="blake3", coverage="file",
                                         rows=120, node="cell:open:1", inputs=["dataset:" + "e" * 64]), session=opened)
        ledger.append(events.ReviewRunStarted(run_id="slow", notebook="/reviews/slow.ipynb", notebook_sha256="0" * 64,
                                              parameters={}, output="/runs/slow.ipynb"))
        inside = Session(session_id="k-slow", notebook="/reviews/slow.ipynb", run_id="slow")
        ledger.append(events.SessionStarted(host="h", python="3.11"), session=inside)
        ledger.append(events.ReviewRunFinished(run_id="slow", status="timed_out", cells_total=3, cells_executed=1,
                                               duration_us=30_000_000, output="/runs/slow.ipynb",
                                               output_fingerprint="e" * 64))
        ledger.ingest()
        ledger.close()
    yield home


def test_every_exported_event_is_valid_against_the_official_openlineage_schema(realistic: Path,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "lineage.jsonl"
    done = run_cli("--home", str(realistic), "export", "--format", "openlineage", "--out", str(out))
    assert done.returncode == 0, done.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    checked = validate_openlineage(exported)
    conforms(exported)  # and each rebuilds through the official client's model, unchanged

    # Everything nbgov writes was there to be checked: every kind of event, every facet.
    assert checked[RUN_EVENT_SCHEMA] == len(exported) > 40
    assert {e["eventType"] for e in exported} == {"START", "RUNNING", "COMPLETE", "FAIL", "ABORT"}
    custom = {f"{uri}#/$defs/{next(iter(schema['$defs']))}" for uri, schema in FACET_SCHEMAS.items()}
    assert set(checked) == {RUN_EVENT_SCHEMA, *STANDARD_FACETS.values(), *custom}
    jobs = {e["job"]["name"] for e in exported}
    assert {str(realistic.parent / "reviews" / "monthly.ipynb"), str(realistic.parent / "reviews" / "breach.ipynb"),
            str(realistic.parent / "loans.ipynb"), "/reviews/slow.ipynb", "/nb/open.ipynb"} <= jobs
    (breach,) = [e for e in exported if e["job"]["name"].endswith("breach.ipynb") and e["eventType"] == "FAIL"]
    assert breach["run"]["facets"]["errorMessage"]["message"].startswith("PolicyBreach: bias review")
    remote = {d["namespace"]: d["facets"]["dataSource"]["uri"] for e in exported for d in e["inputs"]
              if d["namespace"].startswith(("s3", "https"))}
    assert remote == {"s3://bank": "s3://bank/raw/loans%202026.parquet",
                      "https://data.example.org": "https://data.example.org/open%20data/%C3%BC.csv?v=1%202"}


def test_the_schema_check_resolves_nothing_it_was_not_given(realistic: Path) -> None:
    for uri, schema in {**OFFICIAL, **FACET_SCHEMAS}.items():
        assert jsonschema.validators.validator_for(schema, default=None) is jsonschema.Draft202012Validator, uri
        jsonschema.Draft202012Validator.check_schema(schema)
    assert len(OFFICIAL) == 39 and set(STANDARD_FACETS.values()) <= {
        f"{uri}#/$defs/{name}" for uri, schema in OFFICIAL.items() for name in schema["$defs"]}
    event = next(e for e in openlineage_events(Ledger(realistic))
                 if {"parent", "nbgov_cell"} <= e["run"]["facets"].keys())
    unknown = [("facet", "https://openlineage.io/spec/facets/9-9-9/ParentRunFacet.json#/$defs/ParentRunFacet"),
               ("facet", "urn:nbgov:openlineage:facets:9-9-9:NbgovCellRunFacet.json#/$defs/NbgovCellRunFacet"),
               ("event", "https://openlineage.io/spec/9-9-9/OpenLineage.json#/$defs/RunEvent")]
    for where, url in unknown:
        changed = copy.deepcopy(event)
        if where == "facet":
            key = "parent" if "ParentRun" in url else "nbgov_cell"
            changed["run"]["facets"][key]["_schemaURL"] = url
        else:
            changed["schemaURL"] = url
        with pytest.raises(referencing.exceptions.Unresolvable) as failed:
            validate_openlineage([changed])
        causes, error = [], failed.value
        while error is not None:
            causes.append(error)
            error = error.__cause__ or error.__context__
        assert any(isinstance(c, NotVendored) for c in causes), url


def test_the_schema_check_catches_broken_events(realistic: Path) -> None:
    exported = openlineage_events(Ledger(realistic))
    (fit,) = [e for e in exported if e["eventType"] == "COMPLETE" and "sourceCode" in e["job"]["facets"]
              and any(d["name"] == "models/model" for d in e["outputs"])]
    failed = next(e for e in exported if "errorMessage" in e["run"]["facets"])
    validate_openlineage([fit, failed])

    def facet(e: dict[str, Any], key: str) -> dict[str, Any]:
        """The facet *key* of the first of *e*'s datasets that has one."""
        return next(d["facets"][key] for d in e["inputs"] + e["outputs"] if key in d["facets"])

    schema_breakages = [
        lambda e: e.update(eventType="DONE"),
        lambda e: e.update(eventTime="yesterday"),
        lambda e: e.update(producer="nbgov 1.0"),
        lambda e: e["run"].update(runId="run-1"),
        lambda e: e["job"].pop("namespace"),
        lambda e: e["inputs"].append({"name": "no namespace"}),
        lambda e: e["run"]["facets"]["parent"]["run"].update(runId="run-1"),
        lambda e: e["run"]["facets"]["parent"].pop("job"),
        lambda e: e["run"]["facets"]["nbgov_cell"].pop("_producer"),
        lambda e: e["run"]["facets"]["nbgov_cell"].update(cell="c3"),
        lambda e: e["job"]["facets"]["sourceCode"].pop("language"),
        lambda e: e["job"]["facets"]["jobType"].pop("integration"),
        lambda e: facet(e, "dataSource").update(uri="s3://bank/raw/a b.csv"),
        lambda e: facet(e, "schema")["fields"].append({"type": "int64"}),
        lambda e: facet(e, "nbgov_fingerprint").update(rows="120"),
        lambda e: facet(e, "version").update(datasetVersion=1),
        lambda e: facet(e, "nbgov_model").pop("estimator"),
    ]
    for breakage in schema_breakages:
        broken = copy.deepcopy(fit)
        breakage(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate_openlineage([broken])
    broken = copy.deepcopy(failed)
    broken["run"]["facets"]["errorMessage"].pop("programmingLanguage")
    with pytest.raises(jsonschema.ValidationError):
        validate_openlineage([broken])
    misplaced = [  # valid facets, but under another key or in the wrong place
        lambda e: e["run"]["facets"].update(ancestor=e["run"]["facets"].pop("parent")),
        lambda e: e["job"]["facets"].update(code=e["job"]["facets"].pop("sourceCode")),
        lambda e: e["inputs"][0]["facets"].update(parent=e["run"]["facets"]["parent"]),
        lambda e: e["run"]["facets"].update(nbgov_model=facet(e, "nbgov_model")),
        lambda e: e["run"]["facets"].update(cell=e["run"]["facets"].pop("nbgov_cell")),
    ]
    for breakage in misplaced:
        broken = copy.deepcopy(fit)
        breakage(broken)
        with pytest.raises(AssertionError):
            validate_openlineage([broken])


# -- built ledgers --------------------------------------------------------------------------------


def test_the_conformance_check_catches_broken_events(home: Path) -> None:
    (fit,) = [e for e in openlineage_events(Ledger(sample_ledger(home))) if e["outputs"]]
    conforms([fit])
    breakages = [
        lambda e: e["run"].update(runId="run-1"),
        lambda e: e.update(eventType="DONE"),
        lambda e: e.update(eventTime="2026-01-01"),
        lambda e: e.update(status="done"),
        lambda e: e["inputs"][0]["facets"]["dataSource"].update(host="x"),
        lambda e: e["run"]["facets"]["parent"]["run"].pop("runId"),
        lambda e: e["run"]["facets"]["parent"].update(_schemaURL=e["run"]["facets"]["parent"]["_schemaURL"]
                                                      .replace("1-2-0", "1-0-0")),
        lambda e: e["job"]["facets"]["sourceCode"].pop("language"),
        lambda e: e["run"]["facets"].update(errorMessage={"_producer": PRODUCER, "_schemaURL": "urn:x",
                                                          "message": "boom"}),
        lambda e: e["outputs"][0]["facets"]["nbgov_model"].update(version="1"),
        lambda e: e["outputs"][0]["facets"]["nbgov_model"].pop("estimator"),
        lambda e: e["run"]["facets"]["nbgov_cell"].update(cell="c3"),
        lambda e: e["run"]["facets"].update(custom={"_producer": PRODUCER, "_schemaURL": "urn:x"}),
    ]
    for breakage in breakages:
        broken = copy.deepcopy(fit)
        breakage(broken)
        with pytest.raises((AssertionError, TypeError, ValueError, KeyError, jsonschema.ValidationError)):
            conforms([broken])



def test_sample_ledger_runs_models_and_metrics(home: Path) -> None:
    ledger = Ledger(sample_ledger(home))
    exported = openlineage_events(ledger)
    conforms(exported)
    assert [(e["eventType"], e["job"]["name"]) for e in exported if "cell" not in e["job"]["name"]] == [
        ("START", "loans.ipynb"), ("COMPLETE", "loans.ipynb")]
    runs = by_run(exported)
    assert len(runs) == 5 and all(len(evs) == 2 for evs in runs.values())
    cells = {evs[0]["job"]["name"]: evs for evs in runs.values() if "cell" in evs[0]["job"]["name"]}
    assert sorted(cells) == [f"loans.ipynb:cell-c{n}" for n in range(1, 5)]  # named by cell id
    (read,) = cells["loans.ipynb:cell-c1"][1]["inputs"]
    assert (read["namespace"], read["name"]) == ("file", "loans.csv")
    assert read["facets"]["nbgov_fingerprint"] | {"_producer": "", "_schemaURL": ""} == {
        "_producer": "", "_schemaURL": "", "algorithm": "blake3", "value": "ab" * 32, "coverage": "file",
        "rows": 40, "node": "dataset:" + "ab" * 32, "seq": 3,
        "eventId": ledger.query("SELECT event_id FROM events WHERE seq = 3")["event_id"][0]}
    fit = cells["loans.ipynb:cell-c3"][1]
    assert [d["name"] for d in fit["outputs"]] == ["models/loans"]
    assert fit["outputs"][0]["facets"]["nbgov_model"]["params"] == {"C": 1.0}
    assert [d["facets"]["nbgov_fingerprint"]["value"] for d in fit["inputs"]] == ["ab" * 32]  # training data
    scored = cells["loans.ipynb:cell-c4"][1]["run"]["facets"]["nbgov_metrics"]["evaluations"]
    assert [(e["model"], e["version"], e["metrics"]) for e in scored] == [("loans", 1, {"accuracy": 0.825})]
    start = ledger.query("SELECT started_at FROM sessions")["started_at"][0]
    for run_id in runs:  # UUIDv7 layout: the session's recorded start in the time field
        assert uuid.UUID(run_id).int >> 80 == int(start.timestamp() * 1000)


def test_exports_are_deterministic(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    data = tmp_path / "loans.csv"
    data.write_text("income,default\n1,0\n2,1\n")
    train_version(home, data, session="s9")
    first = to_jsonl(openlineage_events(Ledger(home)))
    assert first == to_jsonl(openlineage_events(Ledger(home))) and first.count("\n") > 10
    assert to_json(prov_document(Ledger(home))) == to_json(prov_document(Ledger(home)))
    cli = [run_cli("--home", str(home), "export", "--format", "openlineage") for _ in range(2)]
    assert cli[0].returncode == 0 and cli[0].stdout == cli[1].stdout == first


def test_the_period_keeps_events_recorded_within_it(home: Path) -> None:
    ledger = Ledger(sample_ledger(home))
    everything = openlineage_events(ledger)
    # The sample's cells record a start on 2026-01-01; everything else is recorded today.
    old = openlineage_events(ledger, Period(end=date(2026, 1, 1)))
    assert [(e["eventType"], e["job"]["name"]) for e in old] == [
        ("START", f"loans.ipynb:cell-c{n}") for n in range(1, 5)]
    assert not openlineage_events(ledger, Period(date(2025, 1, 1), date(2025, 12, 31)))
    days = ledger.query("SELECT min(event_time)::DATE AS first, max(event_time)::DATE AS last FROM events")
    first, last = days["first"][0], days["last"][0]
    recent = openlineage_events(ledger, Period(date(2026, 1, 2), last))
    assert len(old) + len(recent) == len(everything) and all(e not in old for e in recent)
    assert not openlineage_events(ledger, Period(start=last + timedelta(days=1)))
    assert load_prov(prov_document(ledger, Period(first, last))).get_records()
    empty = prov_document(ledger, Period(start=last + timedelta(days=1)))
    assert set(empty) == {"prefix"}
    load_prov(empty)
    with pytest.raises(ExportError, match="after it ends"):
        Period(date(2026, 3, 1), date(2026, 2, 1))
    with pytest.raises(ExportError, match="not a date"):
        Period.parse("2026-02-30", None)


def test_unfinished_work_has_no_end_event(home: Path, tmp_path: Path) -> None:
    Ledger.init(home)
    data = tmp_path / "loans.csv"
    data.write_text("income,default\n1,0\n2,1\n")
    train_version(home, data, session="s1")  # a read and a fit in a cell that has not finished
    ledger = Ledger(home)
    ledger.append(events.SessionStarted(host="h", python="3.11"),
                  session=Session(session_id="open", notebook="/nb/open.ipynb"))
    ledger.ingest()
    exported = openlineage_events(ledger)
    conforms(exported)
    assert [(e["eventType"], e["job"]["name"]) for e in exported] == [
        ("RUNNING", "session-s1:cell-1"), ("START", "/nb/open.ipynb")]
    running = exported[0]
    assert [d["name"] for d in running["outputs"]] == ["models/credit"]
    assert [d["name"] for d in running["inputs"]] == [str(data)]
    assert running["inputs"][0]["facets"]["nbgov_fingerprint"]["value"] == blake3.blake3(data.read_bytes()).hexdigest()
    doc = load_prov(prov_document(ledger))
    assert ("ledger:model/credit/1", "ledger:cell/s1/1") == relations(doc, ProvGeneration)[0][:2]
    # The evaluation recorded outside any session is in the PROV document, derived from its model.
    assert any(d[1] == "ledger:model/credit/1" for d in relations(doc, ProvDerivation))


def test_a_failed_review_run_fails_its_notebook_run(home: Path) -> None:
    ledger = Ledger.init(home)
    ledger.append(events.ReviewRunStarted(run_id="r1", notebook="/reviews/bias.ipynb", notebook_sha256="0" * 64,
                                          parameters={"model": "credit"}, output="/runs/r1.ipynb"))
    inside = Session(session_id="k1", notebook="/reviews/bias.ipynb", run_id="r1")
    ledger.append(events.SessionStarted(host="h", python="3.11"), session=inside)
    ledger.append(events.SessionEnded(reason="exit", cells=0), session=inside)
    ledger.append(events.ReviewRunFinished(run_id="r1", status="failed", cells_total=3, cells_executed=2,
                                           duration_us=10, output="/runs/r1.ipynb", output_fingerprint="e" * 64,
                                           error_type="PolicyBreach", error_message="bias over the limit"))
    ledger.ingest()
    exported = openlineage_events(ledger)
    conforms(exported)
    assert [e["eventType"] for e in exported] == ["START", "FAIL"]
    facets = exported[1]["run"]["facets"]
    assert facets["errorMessage"]["message"] == "PolicyBreach: bias over the limit"
    assert facets["nbgov_session"]["reviewRunId"] == "r1" and facets["nbgov_session"]["reviewStatus"] == "failed"
    doc = load_prov(prov_document(ledger))
    assert attribute(doc, "ledger:review/r1", "nbgov:status") == "failed"
    assert ("ledger:session/k1", "ledger:review/r1") in relations(doc, ProvCommunication)
    assert ("ledger:review-output/r1", "ledger:review/r1") in {g[:2] for g in relations(doc, ProvGeneration)}
    assert ("ledger:review/r1", f"ledger:actor/{ledger.actor.id}", None) in relations(doc, ProvAssociation)


def test_dataset_names() -> None:
    assert dataset_identity("/data/loans 2026.csv") == ("file", "/data/loans 2026.csv",
                                                        "file:///data/loans%202026.csv")
    assert dataset_identity("s3://bank/raw/loans.parquet") == ("s3://bank", "raw/loans.parquet",
                                                               "s3://bank/raw/loans.parquet")
    assert dataset_identity("hdfs://nn:8020/raw/loans") == ("hdfs://nn:8020", "/raw/loans", "hdfs://nn:8020/raw/loans")
    assert dataset_identity("<BytesIO>", "nbgov", "cell:s:2") == ("nbgov", "data/cell:s:2/<BytesIO>", None)
    # A URL's location is a URI (the dataSource facet's "uri" has format "uri"): what a URI cannot
    # hold is percent-encoded, escapes already there are kept; the name stays as recorded.
    assert dataset_identity("s3://bank/raw/loans 2026.parquet") == (
        "s3://bank", "raw/loans 2026.parquet", "s3://bank/raw/loans%202026.parquet")
    assert dataset_identity("https://data.example.org/öffentlich/50%off.csv?v=1 2#a%20b") == (
        "https://data.example.org", "/öffentlich/50%off.csv",
        "https://data.example.org/%C3%B6ffentlich/50%25off.csv?v=1%202#a%20b")
    for path in ("s3://bank/raw/a b.csv", "gs://b/ü<>{}|^`\\.csv", "https://h.example/x?q=%zz"):
        uri = dataset_identity(path)[2]
        assert uri is not None and FORMATS.conforms(uri, "uri"), path


def test_data_without_a_path_is_named_after_its_cell(home: Path) -> None:
    ledger = Ledger.init(home)
    cell = Session(session_id="s", notebook="/nb/a.ipynb", cell_run="cell:s:1")
    ledger.append(events.DatasetRead(path="<BytesIO>", fingerprint=None, algorithm=None, coverage="none",
                                     rows=3, columns=[["a", "int64"]], node="cell:s:1",
                                     inputs=["dataset:path:<BytesIO>"]), session=cell)
    ledger.ingest()
    exported = openlineage_events(ledger)
    conforms(exported)
    ((read,),) = [e["inputs"] for e in exported]
    assert (read["namespace"], read["name"]) == ("nbgov", "data/cell:s:1/<BytesIO>")
    assert "nbgov_fingerprint" not in read["facets"] and read["facets"]["schema"]["fields"] == [
        {"name": "a", "type": "int64"}]
    assert load_prov(prov_document(ledger)).get_record("ledger:dataset/path/%3CBytesIO%3E")


# -- the command ----------------------------------------------------------------------------------


def test_export_writes_the_file_it_is_given(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    out = tmp_path / "lineage.jsonl"
    done = run_cli("--home", str(home), "export", "--format", "openlineage", "--out", str(out))
    assert done.returncode == 0 and done.stdout == "" and "wrote 10 OpenLineage event(s)" in done.stderr
    assert out.read_text() == to_jsonl(openlineage_events(Ledger(home)))
    assert [json.loads(line)["eventType"] for line in out.read_text().splitlines()].count("START") == 5
    prov = tmp_path / "prov.json"
    assert run_cli("--home", str(home), "export", "--format", "prov-json", "--to", "2099-12-31",
                   "--out", str(prov)).returncode == 0
    load_prov(json.loads(prov.read_text()))


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--format", "openlineage", "--from", "2026-02-30"], 1, "nbgov: error: --from '2026-02-30' is not a date"),
    (["--format", "openlineage", "--to", "31/01/2026"], 1, "nbgov: error: --to '31/01/2026' is not a date"),
    (["--format", "prov-json", "--from", "2026-03-01", "--to", "2026-02-01"], 1,
     "nbgov: error: the period starts (2026-03-01) after it ends (2026-02-01)"),
    (["--format", "csv"], 2, "Invalid value for '--format'"),
    (["--format", "openlineage", "--out", "{missing}/x.jsonl"], 1, "nbgov: error: cannot write"),
    (["--format", "prov-json", "--out", "{file}/x.json"], 1, "nbgov: error: cannot write"),
    (["--format", "openlineage", "--out", "{dir}"], 2, "is a directory"),
])
def test_export_refuses_bad_input_and_writes_nothing(home: Path, tmp_path: Path, args: list[str], code: int,
                                                      message: str, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from nbgov.cli.main import main

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() sets its own
    sample_ledger(home)
    target = tmp_path / "target"
    target.mkdir()
    (target / "a-file").write_text("x")
    places = {"missing": target / "missing", "file": target / "a-file", "dir": target}
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(home), "export", *[a.format(**places) for a in args]])
    out, err = capsys.readouterr()
    assert exited.value.code == code and out == ""
    assert message in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in target.rglob("*")) == ["a-file"]


def test_export_errors_reach_the_user_as_one_line(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    done = run_cli("--home", str(home), "export", "--format", "openlineage", "--from", "2026-1-5",
                   "--out", str(tmp_path / "x.jsonl"))
    assert done.returncode == 1 and done.stdout == "" and not (tmp_path / "x.jsonl").exists()
    assert done.stderr == "nbgov: error: --from '2026-1-5' is not a date (write dates as YYYY-MM-DD, in UTC)\n"
