"""The browser harness works: a notebook's ipywidgets panel renders in JupyterLab and a click
in Chromium reaches the kernel and changes the panel (see tests/support/browser.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from support.browser import (
    artifacts_dir,
    chromium_page,
    error_outputs,
    jupyter_lab,
    open_notebook,
    require_browser,
    run_all_cells,
    screenshot,
)

SMOKE_CELL = """\
import os
import ipywidgets as widgets

label = widgets.Label(value=os.environ["NBGOV_SMOKE_GREETING"])
label.add_class("smoke-label")
button = widgets.Button(description="Click me")
button.add_class("smoke-button")
clicks = 0

def on_click(_button):
    global clicks
    clicks += 1
    label.value = f"clicked {clicks}"

button.on_click(on_click)
box = widgets.VBox([button, label])
box.add_class("smoke-panel")
box
"""


def _write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    # Lab starts this kernel by itself; without a kernelspec it would ask in a dialog.
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# Browser smoke test"),
                      nbformat.v4.new_code_cell(SMOKE_CELL)]
    nbformat.write(notebook, path)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_a_widget_click_round_trips_through_the_kernel(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect

    root = tmp_path / "notebooks"
    root.mkdir()
    _write_notebook(root / "smoke.ipynb")
    artifacts = artifacts_dir()

    # The environment given to the server reaches the kernel: the label starts with it.
    with jupyter_lab(root, tmp_path / "lab", env={"NBGOV_SMOKE_GREETING": "hello from the server env"}) as lab:
        with chromium_page(artifacts, tmp_path / "browser") as browser:
            page = browser.page
            open_notebook(page, lab, "smoke.ipynb", workspace="smoke")
            assert any("ipykernel_launcher" in command for _, command in lab.processes())
            run_all_cells(page)

            panel = page.locator(".smoke-panel")
            label = panel.locator(".smoke-label")
            try:
                expect(label).to_have_text("hello from the server env")
            except AssertionError as error:
                raise AssertionError(f"{error}\nnotebook errors: {error_outputs(page)}") from None
            panel.locator(".smoke-button").click()
            expect(label).to_have_text("clicked 1")
            panel.locator(".smoke-button").click()
            expect(label).to_have_text("clicked 2")
            assert screenshot(page, artifacts, "browser-smoke").stat().st_size > 0
            assert error_outputs(page) == []
        assert browser.unexpected_errors() == []
    assert lab.processes() == []
