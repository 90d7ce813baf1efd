"""The governance panel in a real JupyterLab, driven in headless Chromium.

Two users share one ledger, each with a JupyterLab server of their own (as JupyterHub gives
them): ana trained credit@1, rita holds the approver role. Each opens the example notebook
``example_notebooks/review_panel.ipynb``, runs all cells and presses Approve in the panel: ana is
refused (segregation of duties) and sees why; rita's approval is granted. The ledger must have
recorded both. Screenshots of every tab at 1280x800 are kept as test artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nbgov.ledger.facade import Ledger
from support.browser import (
    artifacts_dir,
    chromium_page,
    error_outputs,
    fits_sideways,
    jupyter_lab,
    open_notebook,
    require_browser,
    run_all_cells,
    screenshot,
)
from support.helpers import governed_ledger

EXAMPLE = Path(__file__).parents[1] / "example_notebooks" / "review_panel.ipynb"


def _open_panel(page, lab, who: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    open_notebook(page, lab, "review_panel.ipynb", workspace=who)
    run_all_cells(page)
    panel = page.locator(".nbgov-panel")
    try:
        expect(panel).to_be_visible()
    except AssertionError as error:
        raise AssertionError(f"{error}\nnotebook errors: {error_outputs(page)}") from None
    return panel


def _tab(panel, title: str) -> None:  # type: ignore[no-untyped-def]
    panel.locator(".lm-TabBar-tab", has_text=title).first.click()


@pytest.mark.browser
@pytest.mark.timeout(480)
def test_author_is_refused_and_reviewer_approves_in_jupyterlab(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    home, policy = governed_ledger(tmp_path)
    artifacts = artifacts_dir()
    common = {"NBGOV_HOME": str(home), "NBGOV_POLICY": str(policy), "NBGOV_KEY_DIR": str(tmp_path / "keys")}

    for who in ("ana", "rita"):
        root = tmp_path / who
        root.mkdir()
        shutil.copy(EXAMPLE, root / "review_panel.ipynb")
        with jupyter_lab(root, tmp_path / f"lab-{who}", env={**common, "NBGOV_ACTOR": who}) as lab:
            with chromium_page(artifacts, tmp_path / f"browser-{who}") as browser:
                page = browser.page
                panel = _open_panel(page, lab, who)
                expect(panel.locator(".lm-TabBar-tab")).to_have_count(6)
                expect(panel).to_contain_text("cell(s) captured")  # the Session tab, first
                assert fits_sideways(page, ".nbgov-panel")

                _tab(panel, "Approvals")
                expect(panel.locator("[data-state]")).to_contain_text(f"You are {who}")
                panel.locator("textarea").first.fill(f"reviewed in the panel by {who}")
                panel.get_by_role("button", name="Approve", exact=True).click()
                outcome = panel.locator("[data-outcome]")
                if who == "ana":
                    expect(outcome).to_have_attribute("data-outcome", "refused")
                    expect(outcome).to_contain_text("cannot approve it (segregation of duties)")
                else:
                    expect(outcome).to_have_attribute("data-outcome", "ok")
                    expect(outcome).to_contain_text("approval 1 of 1 by rita")
                    expect(panel.locator("[data-state]")).to_have_attribute("data-state", "approved")
                screenshot(page, artifacts, f"panel-approvals-{who}")

                if who == "rita":  # the other tabs render, and fit the window
                    for title, shown in (("Lineage", "svg[role='img']"), ("Policy", "[data-verdict]"),
                                         ("Reviews", ".nbgov-chart svg"), ("Provenance", "select")):
                        _tab(panel, title)
                        expect(panel.locator(shown).first).to_be_visible()
                        assert fits_sideways(page, ".nbgov-panel"), title
                        screenshot(page, artifacts, f"panel-{title.lower()}")
                    expect(panel.locator(".nbgov-lineage g.node.model.focus")).to_have_count(1)
                assert error_outputs(page) == []
            assert browser.unexpected_errors() == []

    decisions = Ledger(home).query("SELECT decision, reviewer, reasons FROM approvals ORDER BY seq")
    assert [(d, r) for d, r, _ in decisions.itertuples(index=False, name=None)] == [
        ("denied", "ana"), ("granted", "rita")]
    assert list(decisions["reasons"].iloc[0]) == ["self_approval", "missing_role"]
    state = Ledger(home).query("SELECT state FROM model_versions WHERE model = 'credit'")
    assert list(state["state"]) == ["approved"]
