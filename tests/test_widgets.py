"""The governance panel driven from Python: clicks and values in, the ledger and the views out.

The panel is a view over the core; these tests press its buttons (``Button.click()``), set its
fields and assert on what the ledger recorded and what the tabs show. The browser tests
(test_widgets_browser.py) prove the same panel renders and responds in JupyterLab.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nbgov.governance.policy import load_policy
from nbgov.ledger.facade import Ledger
from support.helpers import as_user, bias_test, governed_ledger, train_version, wait_for, write_policy


@pytest.fixture(autouse=True)
def _close_widgets():  # type: ignore[no-untyped-def]
    """Close every widget a test made (outside a kernel, ipywidgets complains when they are
    collected at interpreter exit instead)."""
    yield
    import ipywidgets

    ipywidgets.Widget.close_all()


@pytest.fixture
def governed(tmp_path: Path):  # type: ignore[no-untyped-def]
    """credit@1 trained by ana (passing bias test), rita an approver; returns (home, policy)."""
    home, policy = governed_ledger(tmp_path)
    return home, load_policy(policy)


def _panel(home: Path, who: str, policy, **kwargs):  # type: ignore[no-untyped-def]
    from nbgov.widgets import GovernancePanel

    return GovernancePanel(ledger=as_user(home, who), policy=policy, **kwargs)


def _decisions(home: Path) -> list[tuple[str, str]]:
    frame = Ledger(home).query("SELECT decision, reviewer FROM approvals ORDER BY seq")
    return list(frame.itertuples(index=False, name=None))


def _svg(html_text: str) -> ET.Element:
    start = html_text.index("<svg")
    end = html_text.index("</svg>") + len("</svg>")
    return ET.fromstring(html_text[start:end])


def test_the_panel_has_its_tabs_and_shows_the_chosen_version(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    panel = _panel(home, "rita", policy)
    assert [panel.tabs.get_title(i) for i in range(6)] == [
        "Session", "Lineage", "Policy", "Approvals", "Reviews", "Provenance"]
    assert panel.model.value == "credit@1" and panel.model.label == "credit@1 (trained)"
    assert 'data-verdict="pass"' in panel.policy_view.value
    assert "nbgov is not recording in this kernel" in panel.session_view.value  # no recorder here
    assert panel.declare_button.disabled
    svg = _svg(panel.lineage_view.value)
    nodes = {g.get("data-node"): str(g.get("class")).split() for g in svg.iter("{http://www.w3.org/2000/svg}g")
             if g.get("data-node")}
    assert nodes["model:credit@1"] == ["node", "model", "focus"]
    kinds = sorted(classes[1] for classes in nodes.values())
    assert kinds == ["dataset", "model"], nodes  # the fixture records loans.csv -> credit@1 directly
    assert "loans.csv" in panel.lineage_view.value


def test_approving_from_the_panel_records_a_signed_approval(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    panel = _panel(home, "rita", policy)
    panel.note.value = "bias review 2026-11"
    panel.approve_button.click()
    assert 'data-outcome="ok"' in panel.approval_result.value
    assert "approval 1 of 1 by rita" in panel.approval_result.value
    assert _decisions(home) == [("granted", "rita")]
    assert 'data-state="approved"' in panel.approval_view.value  # the view was refreshed
    assert panel.model.label.endswith("(approved)")


def test_the_author_sees_why_the_panel_refuses(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    panel = _panel(home, "ana", policy)
    panel.approve_button.click()
    assert 'data-outcome="refused"' in panel.approval_result.value
    assert "cannot approve it (segregation of duties)" in panel.approval_result.value
    assert "ask a reviewer who did not train credit@1" in panel.approval_result.value  # the core's hint
    assert _decisions(home) == [("denied", "ana")]
    assert "denied" in panel.approval_view.value


@pytest.mark.slow
def test_reject_needs_a_reason_and_request_resubmits(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    reviewer = _panel(home, "rita", policy)
    reviewer.reject_button.click()  # no reason given
    assert "a rejection needs a reason" in reviewer.approval_result.value
    assert _decisions(home) == []
    reviewer.note.value = "the drift test is missing"
    reviewer.reject_button.click()
    assert "rejected by rita (the drift test is missing)" in reviewer.approval_result.value
    assert _decisions(home) == [("rejected", "rita")]

    author = _panel(home, "ana", policy)
    author.note.value = "drift test added"
    author.request_button.click()
    assert "requested approval of credit@1" in author.approval_result.value
    requests = Ledger(home).query("SELECT requested_by, note, coalesce(decision, 'open') FROM approval_requests")
    assert list(requests.itertuples(index=False, name=None)) == [("ana", "drift test added", "open")]
    assert "drift test added" in author.approval_view.value and "(trained)" in author.model.label


def test_recording_a_check_from_the_policy_tab(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    before = Ledger(home).query("SELECT count(*) AS n FROM policy_evaluations")["n"].iloc[0]
    panel = _panel(home, "rita", policy)
    after_view = Ledger(home).query("SELECT count(*) AS n FROM policy_evaluations")["n"].iloc[0]
    assert after_view == before  # looking records nothing
    panel.record_check.click()
    assert "recorded the check of credit@1: pass" in panel.policy_result.value
    assert Ledger(home).query("SELECT count(*) AS n FROM policy_evaluations")["n"].iloc[0] == before + 1


def test_a_failing_version_shows_its_findings_and_remedies(governed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    ref = train_version(home, tmp_path / "loans.csv", version=2, roc_auc=0.6)
    bias_test(home, ref, gap=True, policy=policy)
    panel = _panel(home, "rita", policy, model=ref)
    assert panel.model.value == "credit@2"
    view = panel.policy_view.value
    assert 'data-verdict="fail"' in view
    assert view.index("nbgov-fail") < view.index("nbgov-pass")  # failures first
    assert "roc_auc" in view
    panel.quantity.value = "fairness:demographic_parity_ratio"
    chart = _svg(panel.chart.value)
    breaches = [c for c in chart.iter("{http://www.w3.org/2000/svg}circle") if "breach" in (c.get("class") or "")]
    assert len(breaches) == 1  # credit@2's ratio 0.67 is under the policy's 0.8; credit@1's 1.0 is not
    panel.model.value = "credit@1"
    assert 'data-verdict="pass"' in panel.policy_view.value


def test_an_unknown_model_is_said_plainly(governed) -> None:  # type: ignore[no-untyped-def]
    home, policy = governed
    panel = _panel(home, "rita", policy, model="nosuch")
    assert "no model version 'nosuch' in the ledger" in html.unescape(panel.status.value)
    assert panel.model.value == "credit@1"


def test_an_empty_ledger_shows_what_to_do(home: Path, tmp_path: Path) -> None:
    Ledger.init(home)
    panel = _panel(home, "rita", write_policy(tmp_path))
    assert panel.model.value is None
    assert "no model version recorded yet" in panel.lineage_view.value
    assert "no review run yet" in panel.reviews_view.value
    panel.approve_button.click()
    assert "choose a model version first" in panel.approval_result.value


# -- in a recording IPython shell -----------------------------------------------------------------


@pytest.fixture
def shell(make_shell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The shared shell (conftest.py) under the test policy, run from tmp_path; every cell here
    must succeed, so a failing one raises its own error."""
    policy = str(write_policy(tmp_path).source)
    monkeypatch.chdir(tmp_path)
    return make_shell(env={"NBGOV_POLICY": policy}, raise_errors=True)


def test_session_tab_follows_the_cells_and_the_provenance_form_declares(shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nbgov.widgets import panel as panel_module

    (tmp_path / "loans.csv").write_text("income,zip,default\n1,02139,0\n2,02140,1\n")
    assert shell.run_cell("import pandas as pd\nframe = pd.read_csv('loans.csv')").success
    assert shell.run_cell("panel = %nbgov panel").success
    panel = shell.user_ns["panel"]
    assert isinstance(panel, panel_module.GovernancePanel)
    assert "loans.csv" in panel.session_view.value
    def cells() -> int:
        return int(panel.session_view.value.split('data-cells="')[1].split('"')[0])

    cells_before = cells()
    assert panel.wait_for_refresh(timeout=120)  # the refresh after the panel's own cell
    assert shell.run_cell("x = 1").success
    # Refreshed in the background, with no further cell run: the Session tab comes to count the
    # panel's own cell and x = 1 (waited for: wait_for_refresh returns once the refresh has begun).
    wait_for(lambda: cells() == cells_before + 2, "the Session tab to count the panel's cell and x = 1")
    assert panel.wait_for_refresh(timeout=120)

    assert panel.dataset.options == (str(tmp_path / "loans.csv"),)
    assert panel.pii.options == ("income", "zip", "default")
    panel.source.value = "bank core system"
    panel.license.value = "internal"
    panel.owner.value = "credit-data"
    panel.pii.value = ("zip",)
    panel.declare_button.click()
    assert 'data-outcome="ok"' in panel.declare_result.value
    declared = Ledger(tmp_path / "ledger").query(
        "SELECT path, source, license, owner, contains_pii FROM dataset_declarations")
    assert list(declared.itertuples(index=False, name=None))[0][:4] == (
        str(tmp_path / "loans.csv"), "bank core system", "internal", "credit-data")
    assert list(declared["contains_pii"].iloc[0]) == ["zip"]
    hooks = len(shell.events.callbacks["post_run_cell"])
    panel.close()
    assert len(shell.events.callbacks["post_run_cell"]) == hooks - 1  # closed: no longer follows cells


def test_declaring_nothing_is_refused(shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "loans.csv").write_text("income,default\n1,0\n")
    assert shell.run_cell("import pandas as pd\nframe = pd.read_csv('loans.csv')").success
    assert shell.run_cell("panel = %nbgov panel").success
    panel = shell.user_ns["panel"]
    panel.declare_button.click()
    assert "nothing to declare" in panel.declare_result.value
    assert Ledger(tmp_path / "ledger").query("SELECT count(*) AS n FROM dataset_declarations")["n"].iloc[0] == 0


def test_lineage_reads_dataset_cell_model_evaluation(shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nbgov.governance.overview import lineage_graph

    (tmp_path / "loans.csv").write_text("income,debt,default\n" + "".join(
        f"{i},{(i * 7) % 11},{int(i % 3 == 0)}\n" for i in range(60)))
    cells = ["import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
             "from sklearn.metrics import accuracy_score",
             "frame = pd.read_csv('loans.csv')",
             "X, y = frame[['income', 'debt']], frame['default']",
             "%%nbgov train --model credit\nmodel = LogisticRegression().fit(X, y)",
             "accuracy_score(y, model.predict(X))"]
    for cell in cells:
        assert shell.run_cell(cell).success, cell
    graph = lineage_graph(Ledger(tmp_path / "ledger"), "credit@1")
    kinds = {n["node"]: n["kind"] for n in graph.nodes}
    assert "variable" not in kinds.values()  # variables stand for the cells that bound them
    by_kind = {kind: [n for n, k in kinds.items() if k == kind] for kind in set(kinds.values())}
    [dataset], [model] = by_kind["dataset"], by_kind["model"]
    assert model == graph.focus == "model:credit@1"
    edges = set(graph.edges)
    # loans.csv -> the cell that read it -> ... -> the training cell -> credit@1 -> its evaluation
    assert any(src == dataset and kinds[dst] == "cell" for src, dst in edges)
    assert any(kinds[src] == "cell" and dst == model for src, dst in edges)
    assert any(src == model and kinds[dst] == "evaluation" for src, dst in edges)
    labels = {n["node"]: n["label"] for n in graph.nodes}
    assert labels[dataset].splitlines()[0] == "loans.csv"  # a short first line, the full path after
    assert labels[dataset].splitlines()[1] == str(tmp_path / "loans.csv")
    assert any(label.startswith("accuracy_score ") for label in labels.values())
