"""``nbgov export``: OpenLineage RunEvents and a W3C PROV-JSON document from real ledgers.

OpenLineage events are validated against the official OpenLineage JSON Schema and each standard
facet against the official schema its ``_schemaURL`` names (both vendored in
tests/data/vectors/openlineage and resolved offline through a ``referencing`` registry), nbgov's
custom facets against the JSON Schemas nbgov ships for them (read from the installed package's
files, nbgov/export/schemas/, by the URL that names each); they are also rebuilt with the
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
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import jsonschema
import numpy as np
import pandas as pd
import pytest
import referencing.exceptions
from openlineage.client import event_v2 as ol
from openlineage.client.generated import (
    column_lineage_dataset,
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
    ProvAgent,
    ProvAssociation,
    ProvCommunication,
    ProvDelegation,
    ProvDerivation,
    ProvDocument,
    ProvGeneration,
    ProvUsage,
)
from referencing import Registry, Resource

import nbgov.ledger.spool
from nbgov import canonical, events
from nbgov.errors import ExportError
from nbgov.export.openlineage import (
    FACET_SCHEMA_BASE,
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
    write_policy,
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
    "columnLineage": lambda f: column_lineage_dataset.ColumnLineageDatasetFacet(fields={
        column: column_lineage_dataset.Fields(inputFields=[
            column_lineage_dataset.InputField(**{**i, "transformations": [
                column_lineage_dataset.Transformation(**t) for t in i.get("transformations", [])]})
            for i in field.pop("inputFields")], **field)
        for column, field in f.pop("fields").items()}, **f),
}


def _official_facets(facets: dict[str, Any]) -> dict[str, Any]:
    """The standard facets rebuilt with the official classes (an unknown or missing field, or an
    unknown facet, raises); custom facets are checked against nbgov's schemas instead."""
    built = {}
    for key, data in facets.items():
        assert data["_producer"] == PRODUCER
        assert FORMATS.conforms(data["_schemaURL"], "uri")
        if key.startswith("nbgov_"):
            schema = next(s for s in CUSTOM.values() if key in s["properties"])
            assert data["_schemaURL"].startswith(schema["$id"] + "#/$defs/")
            jsonschema.Draft202012Validator({"$ref": data["_schemaURL"]}, registry=SCHEMAS,
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
# tests/data/vectors/openlineage, and nbgov's own facet schemas as the package ships them (the
# files in nbgov/export/schemas/, each named by FACET_SCHEMA_BASE + its file name), all in one
# registry keyed by ``$id``. Nothing is fetched: a reference to any other schema fails the test
# that makes it.


class NotVendored(LookupError):
    """A schema that is neither vendored nor nbgov's own was asked for."""


def _offline(uri: str) -> Resource[Any]:
    raise NotVendored(f"{uri} is not a vendored OpenLineage schema (tests/data/vectors/openlineage) nor "
                      "one of nbgov's FACET_SCHEMAS, and schemas are never fetched from the network")


OFFICIAL: dict[str, dict[str, Any]] = {
    schema["$id"]: schema for schema in (json.loads(path.read_text()) for path in [
        VECTORS / "openlineage" / "OpenLineage.json", *vector_files("openlineage", "facets")])}
OPENLINEAGE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
#: nbgov's custom facet schemas as shipped: every file in the installed package's
#: nbgov/export/schemas/, by the URL that names it (FACET_SCHEMA_BASE + its file name).
SHIPPED = importlib.resources.files("nbgov.export") / "schemas"
CUSTOM: dict[str, dict[str, Any]] = {
    FACET_SCHEMA_BASE + f.name: json.loads(f.read_text(encoding="utf-8"))
    for f in SHIPPED.iterdir() if f.name.endswith(".json")}
SCHEMAS: Registry[Any] = Registry(retrieve=_offline).with_resources(
    (uri, Resource.from_contents(schema)) for uri, schema in {**OFFICIAL, **CUSTOM}.items())
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
    "columnLineage": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
                     "#/$defs/ColumnLineageDatasetFacet",
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
            if base in CUSTOM:  # a custom facet: nbgov's prefix, and named for its place
                assert key.startswith("nbgov_") and name.endswith(place), (key, url, place)
            # Every facet, standard or custom, extends OpenLineage's base facet of its place.
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
    # The cell is part of its session: the session (also an agent, the kernel) ran it on behalf of
    # its actor; no communication between them is claimed.
    assert (reader, session, None) in relations(doc, ProvAssociation)
    assert (reader, session) not in relations(doc, ProvCommunication)
    actor = "ledger:actor/" + ledger.query("SELECT actor FROM sessions")["actor"][0]
    assert (session, actor, None) in relations(doc, ProvDelegation)
    (kernel,) = [r for r in doc.get_record(session) if isinstance(r, ProvAgent)]  # also an activity
    assert {str(t) for t in kernel.get_attribute("prov:type")} == {"prov:SoftwareAgent"}
    assert (session, "ledger:actor/" + ledger.query("SELECT actor FROM sessions")["actor"][0], None) in \
        relations(doc, ProvAssociation)
    written = ledger.query("SELECT * FROM datasets WHERE direction = 'write'").iloc[0]
    assert (f"ledger:dataset/{written['fingerprint']}", data_id) in {d[:2] for d in relations(doc, ProvDerivation)}


def _run_cells(shell: Any, *cells: str) -> None:
    for code in cells:
        shell.run_cell(code, store_history=True)


def test_an_exported_event_never_changes(make_shell: Any, tmp_path: Path) -> None:
    """Export, record more (another session reads the same data under another path with other
    columns, writes other bytes to a path written before, and writes the very bytes of an earlier
    output from other sources), export again: every event of the first export is in the second,
    byte for byte (as canonical JSON). A model fitted in another session on a file the first
    wrote has the first session's source upstream: it stays described by the read recorded before
    the fit, not by a later session's read of the same bytes."""
    home, data, work = tmp_path / "ledger", tmp_path / "loans.csv", Path.cwd()
    _loans_csv(data)
    # The same rows with other line endings: other bytes, the same frame, so the same CSV written.
    crlf = tmp_path / "loans-crlf.csv"
    crlf.write_bytes(data.read_bytes().replace(b"\n", b"\r\n"))
    first = make_shell(home=home, env={"NBGOV_NOTEBOOK": str(tmp_path / "train.ipynb")}, raise_errors=True)
    _run_cells(first, "import duckdb\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
               f"loans = pd.read_csv({str(data)!r})", f"other = pd.read_csv({str(crlf)!r})",
               "model = LogisticRegression().fit(loans[['income', 'debt']], loans.denied)",
               f"loans.to_csv({str(work / 'clean.csv')!r}, index=False)",
               f"loans[['income']].to_parquet({str(work / 'income.parquet')!r})",
               f"loans.assign(ratio=loans.debt / loans.income).to_csv({str(work / 'features.csv')!r})",
               f"duckdb.sql(\"COPY (SELECT income, debt FROM '{data}') TO '{work / 'pairs.csv'}'\")",
               "%unload_ext nbgov")
    fit = make_shell(home=home, env={"NBGOV_NOTEBOOK": str(tmp_path / "fit.ipynb")}, raise_errors=True)
    _run_cells(fit, "import pandas as pd\nfrom sklearn.tree import DecisionTreeClassifier",
               f"features = pd.read_csv({str(work / 'features.csv')!r})",
               "tree = DecisionTreeClassifier().fit(features[['ratio']], features.denied)",
               "%unload_ext nbgov")
    before = openlineage_events(Ledger(home))
    conforms(before)
    assert {e["eventType"] for e in before} == {"START", "COMPLETE"}  # every run has ended
    prov_before = _prov_statements(prov_document(Ledger(home)))

    second = make_shell(home=home, env={"NBGOV_NOTEBOOK": str(tmp_path / "other.ipynb")}, raise_errors=True)
    _run_cells(second, "import shutil\nimport pandas as pd",
               f"shutil.copyfile({str(data)!r}, {str(tmp_path / 'copy.csv')!r})",  # not captured: the same bytes
               f"few = pd.read_csv({str(tmp_path / 'copy.csv')!r}, usecols=['debt'])",
               f"few.to_parquet({str(work / 'income.parquet')!r})",  # a path written before, other bytes
               f"pd.read_csv({str(crlf)!r}).to_csv({str(work / 'again.csv')!r}, index=False)",
               "%unload_ext nbgov")
    ledger = Ledger(home)
    again = ledger.query("SELECT dataset_node FROM datasets WHERE path IN ($a, $b) AND direction = 'write'",
                         {"a": str(work / "clean.csv"), "b": str(work / "again.csv")})
    assert again["dataset_node"].nunique() == 1  # the later write made the very bytes of the earlier one
    copied = ledger.query("SELECT dataset_node FROM datasets WHERE path IN ($a, $b)",
                          {"a": str(data), "b": str(tmp_path / "copy.csv")})
    assert copied["dataset_node"].nunique() == 1  # the later read is of the very data read before

    after = openlineage_events(ledger)
    conforms(after)
    assert len(after) > len(before)
    assert set(to_jsonl(before).splitlines()) <= set(to_jsonl(after).splitlines())
    # ... and what the first session's runs say is what it did: the files it read, by their paths.
    assert {d["name"] for e in before for d in e["inputs"]} == {str(data), str(crlf), str(work / "features.csv")}
    assert {d["name"] for e in before for d in e["inputs"] if e["outputs"]} == {str(data), str(work / "features.csv")}
    # The tree's training file was written from loans.csv in the first session: that source is
    # named as read there, not as the later session's copy.csv (the same bytes, other columns).
    (tree,) = [e for e in after if e["eventType"] == "COMPLETE" and any(
        d["name"] == "models/tree" for d in e["outputs"])]
    assert {d["name"] for d in tree["inputs"]} == {str(work / "features.csv"), str(data)}
    # The PROV document says everything it said before (relations are renumbered, not changed).
    assert prov_before <= _prov_statements(prov_document(ledger))


def _prov_statements(document: dict[str, Any]) -> set[str]:
    """Every record and relation of a PROV-JSON document as text, without the blank-node ids of
    relations."""
    return {json.dumps([kind, ident if not ident.startswith("_:") else None, value], sort_keys=True)
            for kind, records in document.items() if kind != "prefix" for ident, value in records.items()}


def test_cell_jobs_are_named_by_the_notebooks_cell_ids(make_shell: Any, tmp_path: Path) -> None:
    """A notebook run twice (as papermill runs it: the cell ids found in the notebook by source;
    the second time after another cell, so the execution counts differ) keeps its cell jobs; a cell
    run from a Jupyter frontend is named by the id the frontend sends; a cell that has none, by its
    execution count."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    data = tmp_path / "loans.csv"
    _loans_csv(data)
    notebook = tmp_path / "train.ipynb"
    cells = [new_code_cell("import pandas as pd"), new_code_cell(f"loans = pd.read_csv({str(data)!r})"),
             new_code_cell("loans.describe()")]
    for cell, ident in zip(cells, ("imports", "load-loans", "summary")):
        cell["id"] = ident
    nbformat.write(new_notebook(cells=cells), notebook)
    home = tmp_path / "ledger"
    for extra in ([], ["1 + 1"]):
        shell = make_shell(home=home, env={"NBGOV_NOTEBOOK": str(notebook)}, raise_errors=True)
        _run_cells(shell, *extra, *(c["source"] for c in cells))
        if extra:  # and from a frontend, which sends the cell's id with the cell
            shell.run_cell("x = 2", store_history=True, cell_id="scratch-cell")
        shell.run_cell("%unload_ext nbgov")
    ledger = Ledger(home)
    exported = openlineage_events(ledger)
    conforms(exported)
    jobs: dict[str, list[tuple[str, int, str | None]]] = {}
    for event in exported:
        if event["eventType"] == "COMPLETE" and "nbgov_cell" in event["run"]["facets"]:
            facet = event["run"]["facets"]["nbgov_cell"]
            jobs.setdefault(facet["sessionId"], []).append(
                (event["job"]["name"], facet["executionCount"], facet.get("cellId")))
    first, second = (jobs[sid] for sid in ledger.query("SELECT session_id FROM sessions ORDER BY seq")["session_id"])
    named = [f"{notebook}:cell-{ident}" for ident in ("imports", "load-loans", "summary")]
    assert [job for job, _, _ in first] == named
    assert [job for job, _, _ in second] == [f"{notebook}:cell-{second[0][1]}", *named, f"{notebook}:cell-scratch-cell"]
    assert [count for _, count, _ in first] != [count for _, count, _ in second[1:4]]  # other counts, same jobs
    assert [ident for _, _, ident in second] == [None, "imports", "load-loans", "summary", "scratch-cell"]


def test_a_duckdb_copy_exports_its_column_lineage(make_shell: Any, tmp_path: Path) -> None:
    """Real DuckDB statements in a notebook: COPY (query) TO a file, a join and aggregates, and a
    relation's write_parquet. Their SQL is recorded (redacted) with the write, the COPY target is a
    write (not a read), and the written dataset carries columnLineage: each output column from the
    input columns that make it, valid against the official facet schema."""
    work = Path.cwd()
    _loans_csv(work / "loans.csv")
    (work / "data").mkdir()
    pd.DataFrame({"income": pd.read_csv(work / "loans.csv").income, "rate": 0.05}).to_parquet(
        work / "data" / "rates.parquet")
    shell = make_shell(raise_errors=True)
    _run_cells(shell, "import duckdb",
               "duckdb.sql(\"COPY (SELECT income, debt / income AS ratio, denied FROM 'loans.csv' WHERE debt > 0) \"\n"
               "           \"TO 'ratios.parquet' (FORMAT parquet)\")",
               "duckdb.sql(\"\"\"COPY (SELECT l.denied, avg(r.rate) AS mean_rate, max(l.income) AS top\n"
               "              FROM 'loans.csv' l JOIN read_parquet('data/rates.parquet') r ON l.income = r.income\n"
               "              GROUP BY l.denied) TO 'summary.csv' (HEADER) -- password = 'hunter2'\"\"\")",
               "duckdb.sql(\"SELECT denied, count(*) AS n FROM 'loans.csv' GROUP BY denied\").write_parquet('counts.parquet')",
               "%unload_ext nbgov")
    ledger = Ledger(tmp_path / "ledger")
    rows = ledger.query("SELECT direction, path, via, sql, cell_node FROM datasets ORDER BY seq")
    loans, rates = str(work / "loans.csv"), str(work / "data" / "rates.parquet")
    written = rows[rows.direction == "write"]
    assert list(written.path) == [str(work / "ratios.parquet"), str(work / "summary.csv"), str(work / "counts.parquet")]
    assert set(rows[rows.direction == "read"].path) == {loans, rates}
    assert all(sql and "hunter2" not in sql for sql in rows.sql) and "[REDACTED]" in written.sql.iloc[1]
    assert written.via.iloc[2] == "duckdb.DuckDBPyRelation.write_parquet"
    assert written.sql.iloc[2].startswith("SELECT denied")  # the relation's query

    exported = openlineage_events(ledger)
    conforms(exported)  # columnLineage included: valid, and rebuilt by the official client unchanged
    outputs = {d["name"]: (d, e) for e in exported for d in e["outputs"]}

    def lineage_of(path: Path) -> dict[str, list[tuple[str, str, str]]]:
        dataset, event = outputs[str(path)]
        fields = dataset["facets"]["columnLineage"]["fields"]
        inputs = {(d["namespace"], d["name"]) for d in event["inputs"]}
        assert {(i["namespace"], i["name"]) for f in fields.values() for i in f["inputFields"]} <= inputs
        return {column: [(i["name"], i["field"], i["transformations"][0]["subtype"]) for i in f["inputFields"]]
                for column, f in fields.items()}

    assert lineage_of(work / "ratios.parquet") == {
        "income": [(loans, "income", "IDENTITY")],
        "ratio": [(loans, "debt", "TRANSFORMATION"), (loans, "income", "TRANSFORMATION")],
        "denied": [(loans, "denied", "IDENTITY")]}
    assert lineage_of(work / "summary.csv") == {
        "denied": [(loans, "denied", "IDENTITY")], "mean_rate": [(rates, "rate", "AGGREGATION")],
        "top": [(loans, "income", "AGGREGATION")]}
    assert lineage_of(work / "counts.parquet") == {"denied": [(loans, "denied", "IDENTITY")]}  # count(*): no column


def test_dataset_rows_name_the_cell_they_happened_in(make_shell: Any, tmp_path: Path) -> None:
    """The datasets view's cell_node is the cell a read or write happened in, or NULL outside a cell
    (never a dataset or variable node); dataset events of schema version 1 (no sql) still read."""
    from nbgov.capture.recorder import Recorder

    work = Path.cwd()
    _loans_csv(work / "loans.csv")
    shell = make_shell(raise_errors=True)
    _run_cells(shell, "import pandas as pd", "loans = pd.read_csv('loans.csv')",
               "loans.to_parquet('a.parquet')\nloans.head().to_csv('b.csv')", "%unload_ext nbgov")
    ledger = Ledger(tmp_path / "ledger")
    script = Recorder(ledger, flush_interval=0)  # a script: no cells
    script.start()
    script.dataset_read(str(work / "loans.csv"), "test")
    script.dataset_written(str(work / "c.csv"), "test", pd.DataFrame({"a": [1]}))
    old = canonical.encode({"path": "/data/old.csv", "fingerprint": None, "algorithm": None, "coverage": "none",
                            "node": "cell:v1:1", "inputs": ["dataset:path:/data/old.csv"]})
    ledger._writer.append_encoded("dataset_read", 1, old, Session(session_id="v1").encoded)  # as nbgov 0.x wrote
    script.stop("exit")
    ledger.ingest()
    rows = ledger.query("SELECT d.direction, d.path, d.cell_node, d.sql, e.version, e.session->>'cell_run' AS cell_run "
                        "FROM datasets d JOIN events e USING (seq) ORDER BY seq")
    cells = ledger.query("SELECT node, source FROM cells")
    writer = cells[cells.source.str.contains("to_parquet")].node.iloc[0]
    by_path = {Path(p).name: r for p, r in zip(rows.path, rows.itertuples())}
    assert by_path["a.parquet"].cell_node == by_path["b.csv"].cell_node == writer
    assert rows.cell_node.dropna().str.startswith("cell:").all()
    outside = rows[rows.cell_run.isna()]
    assert list(outside.path) == [str(work / "loans.csv"), str(work / "c.csv"), "/data/old.csv"]
    assert list(outside.cell_node.isna()) == [True, True, False]  # a v1 read's own node is its cell
    assert outside.cell_node.iloc[2] == "cell:v1:1" and list(rows.version) == [2] * (len(rows) - 1) + [1]
    assert rows.sql.isna().all()
    conforms(openlineage_events(ledger))
    load_prov(prov_document(ledger))


# -- every event of a realistic ledger against the official schema -------------------------------


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ledger of ordinary work, recorded as it happens: an interactive notebook in a real IPython
    shell (pandas reads a CSV and an in-memory buffer, scikit-learn fits and scores, a bias test,
    Parquet written, a cell fails), two real ``nbgov review run``s (one reads, fits and scores, one
    raises a policy breach), and through the API what else a ledger holds: a fit in a cell that has
    not finished, data on an object store and the web with spaces in their names, a session that has
    not ended and a review run that timed out. A DuckDB COPY writes a file from a query of the CSV
    (its columnLineage)."""
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
             "import duckdb\nduckdb.sql(\"COPY (SELECT income, debt / income AS ratio FROM '"
             f"{csv}' WHERE denied = 0) TO '{root / 'ratios.parquet'}' (FORMAT parquet)\")",
             "1 / 0",
             "%unload_ext nbgov"]
    assert _run_in_ipython(root, home, "loans.ipynb", cells) == [True] * 10 + [False, True]

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
    review_notebook(reviews / "drift.ipynb", "%load_ext nbgov", "import nbgov\nimport pandas as pd",
                    f"data = pd.read_csv({str(csv)!r})",
                    "result = nbgov.drift(data[['income']], data[['income']].sample(frac=0.5, random_state=1), "
                    "model=f'{model}@1')", "report = nbgov.check(f'{model}@1')", parameters="model = 'none'")
    write_policy(reviews)  # for the check
    with isolated_module_environment(root):
        ran = run_cli("--home", str(home), "review", "run", str(reviews / "monthly.ipynb"), "-p", "x", "3",
                      timeout=300)
        assert ran.returncode == 0, ran.stderr
        ran = run_cli("--home", str(home), "review", "run", str(reviews / "breach.ipynb"), timeout=300)
        assert ran.returncode == 1 and "PolicyBreach" in ran.stderr + ran.stdout, ran.stderr
        ran = run_cli("--home", str(home), "review", "run", str(reviews / "drift.ipynb"), "-p", "model", "model",
                      timeout=300)
        assert ran.returncode == 0, ran.stderr

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
    custom = {f"{uri}#/$defs/{next(iter(schema['$defs']))}" for uri, schema in CUSTOM.items()}
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


def test_custom_facets_name_https_schemas_shipped_with_nbgov(realistic: Path) -> None:
    """Every custom facet's _schemaURL is an https URL under FACET_SCHEMA_BASE that names a schema
    file shipped in the package (nbgov/export/schemas/<FacetName>.json, package data) whose $id is
    that URL; the README says so."""
    exported = openlineage_events(Ledger(realistic))
    urls = {f["_schemaURL"] for e in exported for _, key, f in _facets(e) if key.startswith("nbgov_")}
    assert len(urls) == len(CUSTOM) == 5
    for url in urls:
        base, _, pointer = url.partition("#")
        assert urlsplit(url).scheme == "https" and base.startswith(FACET_SCHEMA_BASE), url
        name = base.removeprefix(FACET_SCHEMA_BASE)
        shipped = SHIPPED / name
        assert shipped.is_file(), name
        assert json.loads(shipped.read_text(encoding="utf-8"))["$id"] == base
        assert pointer == f"/$defs/{name.removesuffix('.json')}"
    assert FACET_SCHEMAS == CUSTOM and set(CUSTOM) == {url.partition("#")[0] for url in urls}
    root = Path(__file__).parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["nbgov.export"] == ["schemas/*.json"]
    readme = (root / "README.md").read_text()
    assert FACET_SCHEMA_BASE in readme and "nbgov/export/schemas/" in readme


def test_a_review_run_used_the_model_version_it_reviewed(realistic: Path) -> None:
    """The drift review of model@1 (its drift test and its check name the version) used that
    version, once; reviews whose events name no version used none; the review's cells are jobs
    named by the review notebook's cell ids (papermill sends none: found in the notebook)."""
    import nbformat

    ledger = Ledger(realistic)
    doc = load_prov(prov_document(ledger))
    runs = ledger.query("SELECT run_id, notebook FROM review_runs")
    review = {Path(nb).stem: f"ledger:review/{run}" for run, nb in zip(runs.run_id, runs.notebook)}
    used = [u for u in doc.get_records(ProvUsage) if str(u.args[0]) in review.values()]
    assert [(str(u.args[0]), str(u.args[1])) for u in used] == [(review["drift"], "ledger:model/model/1")]
    (role,) = used[0].get_attribute("prov:role")
    assert str(role) == "nbgov:ReviewedModel" and used[0].get_attribute("nbgov:via") == {"drift_evaluated"}
    reviewed = ledger.query("SELECT model, version FROM drift_results UNION SELECT model, version FROM policy_evaluations")
    assert set(zip(reviewed.model, reviewed.version)) == {("model", 1)}

    notebook = realistic.parent / "reviews" / "drift.ipynb"
    ids = [c["id"] for c in nbformat.read(notebook, as_version=4).cells if c["cell_type"] == "code"]
    jobs = {e["job"]["name"] for e in openlineage_events(ledger) if e["job"]["name"].startswith(f"{notebook}:")}
    assert jobs and jobs <= {f"{notebook}:cell-{ident}" for ident in ids}


def test_the_schema_check_resolves_nothing_it_was_not_given(realistic: Path) -> None:
    for uri, schema in {**OFFICIAL, **CUSTOM}.items():
        assert jsonschema.validators.validator_for(schema, default=None) is jsonschema.Draft202012Validator, uri
        jsonschema.Draft202012Validator.check_schema(schema)
    assert len(OFFICIAL) == 39 and set(STANDARD_FACETS.values()) <= {
        f"{uri}#/$defs/{name}" for uri, schema in OFFICIAL.items() for name in schema["$defs"]}
    event = next(e for e in openlineage_events(Ledger(realistic))
                 if {"parent", "nbgov_cell"} <= e["run"]["facets"].keys())
    unknown = [("facet", "https://openlineage.io/spec/facets/9-9-9/ParentRunFacet.json#/$defs/ParentRunFacet"),
               ("facet", "https://nbgov.dev/openlineage/facets/9-9-9/NbgovCellRunFacet.json#/$defs/NbgovCellRunFacet"),
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


class _Clock:
    """The spool's clock (``nbgov.ledger.spool.time``), set by the test: events are recorded at
    the times it says."""

    def __init__(self, when: str) -> None:
        self.set(when)

    def set(self, when: str) -> None:
        moment = datetime.fromisoformat(when)
        self.ns = (int(moment.timestamp()) * 1_000_000 + moment.microsecond) * 1000

    def time_ns(self) -> int:
        return self.ns

    def __getattr__(self, name: str) -> Any:  # the rest of the time module, as it is
        return getattr(time, name)


def test_a_period_takes_whole_runs(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session and a cell run across midnight: a period ending or starting at midnight takes
    each of them whole (START and COMPLETE), never half; a run with no end overlaps every later
    period."""
    clock = _Clock("2026-03-01T23:30:00+00:00")
    monkeypatch.setattr(nbgov.ledger.spool, "time", clock)
    ledger = Ledger.init(home)
    nb = "/nb/night.ipynb"
    ledger.append(events.SessionStarted(host="h", python="3.11"), session=Session(session_id="night", notebook=nb))
    for n, cell_id, started, read, ended in ((1, "load", "2026-03-01T23:50:00", "2026-03-01T23:55:00",
                                              "2026-03-02T00:10:00"),
                                             (2, "fit", "2026-03-02T00:20:00", "2026-03-02T00:25:00",
                                              "2026-03-02T00:30:00")):
        cell = Session(session_id="night", notebook=nb, cell_id=cell_id, cell_run=f"cell:night:{n}")
        clock.set(read + "+00:00")
        digest = str(n) * 64
        ledger.append(events.DatasetRead(path=f"/data/part{n}.csv", fingerprint=digest, algorithm="blake3",
                                         coverage="file", rows=3, node=cell.cell_run, inputs=["dataset:" + digest]),
                      session=cell)
        clock.set(ended + "+00:00")
        ledger.append(events.CellExecuted(node=f"cell:night:{n}", cell_id=cell_id, execution_count=n,
                                          source_sha256="cd" * 32, source=f"step {n}", started_at=started + ".000000Z",
                                          duration_us=600_000_000, ok=True), session=cell)
    clock.set("2026-03-02T01:00:00+00:00")
    ledger.append(events.SessionEnded(reason="unload", cells=2), session=Session(session_id="night", notebook=nb))
    clock.set("2026-03-02T02:00:00+00:00")  # a session that has not ended
    ledger.append(events.SessionStarted(host="h", python="3.11"),
                  session=Session(session_id="open", notebook="/nb/open.ipynb"))
    ledger.ingest()

    everything = openlineage_events(ledger)
    conforms(everything)
    runs = by_run(everything)

    def exported(period: Period) -> set[tuple[str, str]]:
        found = openlineage_events(ledger, period)
        conforms(found)
        for run_id, run in by_run(found).items():  # whole runs: every event of the run, nothing else
            assert run == runs[run_id]
        return {(e["job"]["name"], e["eventType"]) for e in found}

    # The session and the first cell began on 1 March and ended on 2 March; the second cell ran on
    # 2 March only.
    assert exported(Period(end=date(2026, 3, 1))) == {
        (nb, "START"), (nb, "COMPLETE"), (f"{nb}:cell-load", "START"), (f"{nb}:cell-load", "COMPLETE")}
    assert exported(Period(date(2026, 3, 2), date(2026, 3, 2))) == {
        (e["job"]["name"], e["eventType"]) for e in everything}
    assert exported(Period(start=date(2026, 3, 3))) == {("/nb/open.ipynb", "START")}
    assert not openlineage_events(ledger, Period(end=date(2026, 2, 28)))

    # PROV takes the same activities whole, with what happened in them.
    doc = load_prov(prov_document(ledger, Period(end=date(2026, 3, 1))))
    assert ("ledger:cell/night/1", "ledger:dataset/" + "1" * 64) in {u[:2] for u in relations(doc, ProvUsage)}
    assert not doc.get_record("ledger:cell/night/2") and not doc.get_record("ledger:dataset/" + "2" * 64)
    assert doc.get_record("ledger:session/night") and not doc.get_record("ledger:session/open")
    empty = prov_document(ledger, Period(end=date(2026, 2, 28)))
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
