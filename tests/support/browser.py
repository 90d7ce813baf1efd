"""Harness for end-to-end tests of nbgov's widgets in a real JupyterLab driven by headless Chromium.

Not a test module: browser tests import it as ``support.browser`` (tests/ is on sys.path through
pytest's pythonpath).
It runs offline: Debian's ``chromium`` (never ``playwright install``), Playwright for Python,
JupyterLab with every internet feature switched off. The measured facts and pitfalls behind each
choice are in shared/BROWSER_TESTS.md; the pitfall numbers below refer to it.

A test looks like::

    @pytest.mark.browser
    @pytest.mark.timeout(300)
    def test_panel(tmp_path):
        require_browser()
        ...write tmp_path / "nb" / "panel.ipynb" (kernelspec python3 in its metadata)...
        artifacts = artifacts_dir()
        with jupyter_lab(tmp_path / "nb", tmp_path / "lab", env={"NBGOV_HOME": ...}) as lab, \\
                chromium_page(artifacts, tmp_path / "browser") as browser:
            open_notebook(browser.page, lab, "panel.ipynb", workspace="panel")
            run_all_cells(browser.page)
            ...expect(browser.page.locator(...)).to_have_text(...)...
            screenshot(browser.page, artifacts, "panel")
        assert browser.unexpected_errors() == []

Notebook 7 the same way: ``jupyter_notebook7(...)`` instead of ``jupyter_lab(...)``,
``open_notebook7(page, server, "panel.ipynb")`` instead of ``open_notebook``, then ``run_all_cells``
as in Lab; allow ``NOTEBOOK7_KNOWN_ERRORS`` in ``unexpected_errors``.

Linux only (process clean-up walks /proc).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Error, Page

REPO = Path(__file__).resolve().parents[2]

# Read once at import (collection) time: the autouse fixture in conftest.py deletes every NBGOV_*
# variable before each test body runs, so reading os.environ inside a test would never see these.
_REQUIRED_AT_IMPORT = os.environ.get("NBGOV_BROWSER_TESTS", "")
_ARTIFACTS_AT_IMPORT = os.environ.get("NBGOV_TEST_ARTIFACTS", "")

#: Every process of one server (the server, its kernels, whatever they start) carries this
#: variable, set to the server's id: how the clean-up finds kernels, which run in their own
#: session (pitfall 12). Not NBGOV_* so that support.helpers.clean_env() in a kernel does not drop it.
MARKER_VAR = "_NBGOV_TEST_SERVER_ID"

#: Hides the "get notified about Jupyter news?" toast, which can cover a widget (pitfall 4).
NOTIFICATION_SETTINGS = {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}

#: The one page error Notebook 7.6.5 + JupyterLab 4.6.6 throws on every load (an upstream bug in the
#: shortcuts settings plugin; widgets work): pass to BrowserPage.unexpected_errors (pitfall 8).
NOTEBOOK7_KNOWN_ERRORS = (re.compile(r"^pageerror: Cannot read properties of undefined \(reading 'schema'\)$"),)

TIMEOUT_MS = 60_000
#: Deadlines for things that take seconds (a server starting, a killed process going away): met at
#: once when things work, generous so that a busy machine never reaches them.
SERVER_START_TIMEOUT = 120.0
KILLED_GONE_TIMEOUT = 60.0
#: How long the server gets to shut its kernels down after SIGTERM before it is killed (pitfall 12).
SERVER_STOP_TIMEOUT = 20.0


# --- availability -------------------------------------------------------------------------------

def find_chromium() -> str | None:
    """Debian's Chromium: ``chromium`` on PATH, else /usr/bin/chromium; None when absent."""
    found = shutil.which("chromium")
    if found:
        return found
    fallback = Path("/usr/bin/chromium")
    return str(fallback) if fallback.is_file() and os.access(fallback, os.X_OK) else None


def browser_available() -> str | None:
    """None when browser tests can run here, else the reason they cannot."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed (pip install -e '.[test]')"
    if find_chromium() is None:
        return "Debian's chromium is not installed (apt-get install chromium; never `playwright install`)"
    return None


def browser_tests_required() -> bool:
    """True when NBGOV_BROWSER_TESTS=required (CI): a missing browser is then a failure."""
    return (os.environ.get("NBGOV_BROWSER_TESTS") or _REQUIRED_AT_IMPORT) == "required"


def require_browser() -> None:
    """Skip the calling test when no browser stack is here; fail instead when it is required."""
    reason = browser_available()
    if reason is None:
        return
    if browser_tests_required():
        pytest.fail(f"browser tests are required (NBGOV_BROWSER_TESTS=required) but {reason}", pytrace=False)
    pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where screenshots go: $NBGOV_TEST_ARTIFACTS, else <repo>/test-artifacts/ (created)."""
    path = Path(os.environ.get("NBGOV_TEST_ARTIFACTS") or _ARTIFACTS_AT_IMPORT or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "unnamed"


# --- JupyterLab server ----------------------------------------------------------------------------

@dataclass
class LabServer:
    """A running JupyterLab: ``url`` ends with '/', ``token`` authenticates, ``root`` is served."""

    url: str
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    server_id: str

    def processes(self) -> list[tuple[int, str]]:
        """(pid, command line) of the live processes of this server: itself, kernels, their children."""
        return _marked_processes(self.server_id)

    def api(self, path: str) -> object:
        """GET /api/<path> with the token; the decoded JSON."""
        request = urllib.request.Request(self.url + "api/" + path.lstrip("/"),
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _marked_processes(server_id: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes whose environment has MARKER_VAR=server_id."""
    needle = f"{MARKER_VAR}={server_id}".encode()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append((int(entry.name), cmdline))
    return found


def _kill_marked(server_id: str, grace: float = 5.0) -> list[tuple[int, str]]:
    """SIGTERM, then SIGKILL, every process of the server still alive; what survived (normally [])."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, KILLED_GONE_TIMEOUT)):
        left = _marked_processes(server_id)
        if not left:
            return []
        for pid, _ in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _marked_processes(server_id):
            time.sleep(0.1)
    return _marked_processes(server_id)


def _stop_server(process: subprocess.Popen[bytes], server_id: str) -> list[tuple[int, str]]:
    """SIGTERM (the server shuts its kernels down), SIGKILL after 20 s, then sweep leftovers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(KILLED_GONE_TIMEOUT)
    # Kernels run in their own session, so a killed server orphans them (pitfall 12).
    return _kill_marked(server_id)


def _lab_dirs(base: Path) -> dict[str, str]:
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "IPYTHONDIR": base / "ipython",
        "JUPYTERLAB_SETTINGS_DIR": base / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "workspaces",
        "TMPDIR": base / "tmp",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(json.dumps(NOTIFICATION_SETTINGS))
    labconfig = dirs["JUPYTER_CONFIG_DIR"] / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    disabled = {name: True for name in _installed_lab_extensions() if name not in LAB_EXTENSIONS_USED}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
    return {name: str(path) for name, path in dirs.items()}


#: The prebuilt front-end extensions the panel needs. Every other one installed in the environment
#: (jupysql's plugin, pulled in by the test extras, for one) is disabled in the test's servers: its
#: console errors are not the panel's, and a test of the panel must not pass or fail on them.
LAB_EXTENSIONS_USED = frozenset({"@jupyter-widgets/jupyterlab-manager", "@jupyter-notebook/lab-extension",
                                 "jupyterlab_pygments"})


def _installed_lab_extensions() -> list[str]:
    """Names of the prebuilt (federated) lab extensions under every Jupyter data path."""
    from jupyter_core.paths import jupyter_path

    names = []
    for root in map(Path, jupyter_path("labextensions")):
        for package in root.glob("*/package.json"):
            names.append(package.parent.name)
        for package in root.glob("@*/*/package.json"):
            names.append(f"{package.parent.parent.name}/{package.parent.name}")
    return sorted(set(names))


def _lab_command(root: Path, port: int, token: str) -> list[str]:
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # never silently on another port (pitfall 13)
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp (pitfall 3)
        # No internet: news, update check, PyPI extension manager.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # pitfall 1
    return command


def _notebook7_command(root: Path, port: int, token: str) -> list[str]:
    """Notebook 7 (``python -m notebook``): the same server flags as Lab, its own expose trait.

    JupyterNotebookApp has ``expose_app_in_browser`` of its own (window.jupyterapp). The LabApp
    flags still apply: Notebook 7 loads the jupyterlab server extension beside it (the log says
    "Extension Manager is 'readonly'", and /lab/api/news answers {"news": []}).
    """
    command = _lab_command(root, port, token)
    command[command.index("jupyterlab")] = "notebook"
    command[command.index("--LabApp.expose_app_in_browser=True")] = "--JupyterNotebookApp.expose_app_in_browser=True"
    return command


def _wait_ready(process: subprocess.Popen[bytes], url: str, token: str, deadline: float) -> str | None:
    """None once /api/status answers 200; 'port' if the port was taken; 'exited' / 'timeout'."""
    request = urllib.request.Request(url + "api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return "timeout"


@contextlib.contextmanager
def jupyter_lab(root: Path, tmp: Path, env: dict[str, str] | None = None) -> Iterator[LabServer]:
    """Run JupyterLab on 127.0.0.1 serving ``root``, with all its state under ``tmp``.

    ``env`` is merged into the server's environment, which its kernels inherit (that is how tests
    hand NBGOV_HOME, NBGOV_KEY_DIR, NBGOV_ACTOR... to the notebook). On exit the server gets
    SIGTERM (it shuts its kernels down), SIGKILL after 20 s, and any process of it still alive is
    killed; if one survives even that, the exit raises.
    """
    with _jupyter_server(root, tmp, env, _lab_command, name="JupyterLab", prefix="lab-",
                         log_name="jupyterlab.log") as server:
        yield server


@contextlib.contextmanager
def jupyter_notebook7(root: Path, tmp: Path, env: dict[str, str] | None = None) -> Iterator[LabServer]:
    """Run Notebook 7 (``python -m notebook``) like :func:`jupyter_lab`: same isolation, flags,
    token, port handling and clean-up; ``window.jupyterapp`` is exposed. Open notebooks in it
    with :func:`open_notebook7`, run them with :func:`run_all_cells`.
    """
    with _jupyter_server(root, tmp, env, _notebook7_command, name="Notebook 7", prefix="nb7-",
                         log_name="notebook7.log") as server:
        yield server


@contextlib.contextmanager
def _jupyter_server(root: Path, tmp: Path, env: dict[str, str] | None,
                    make_command: Callable[[Path, int, str], list[str]], *, name: str, prefix: str,
                    log_name: str) -> Iterator[LabServer]:
    """The body of jupyter_lab / jupyter_notebook7: ``make_command(root, port, token)`` is the argv."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"the notebook root {root} is not a directory")
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))
    server_id = secrets.token_hex(8)
    token = secrets.token_hex(24)
    full_env = dict(os.environ)
    full_env.update(_lab_dirs(base))
    full_env["JUPYTER_PLATFORM_DIRS"] = "1"  # silences jupyter_core's deprecation warning
    full_env.update(env or {})
    full_env[MARKER_VAR] = server_id
    log_path = base / log_name

    process: subprocess.Popen[bytes] | None = None
    server: LabServer | None = None
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        for _attempt in range(5):
            port = _free_port()
            url = f"http://127.0.0.1:{port}/"
            with log_path.open("ab") as log:
                log.write(f"--- attempt {_attempt + 1}: port {port}\n".encode())
                log.flush()
                process = subprocess.Popen(
                    make_command(root, port, token), cwd=root, env=full_env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            state = _wait_ready(process, url, token, deadline)
            if state is None:
                server = LabServer(url=url, token=token, root=root, log_path=log_path, process=process,
                                   server_id=server_id)
                break
            if state == "exited" and "is not available" in _tail(log_path, 20):
                process = None  # someone took the port between _free_port() and the bind: retry
                continue
            raise RuntimeError(f"{name} did not start ({state}); log {log_path}:\n{_tail(log_path, 60)}")
        else:
            raise RuntimeError(f"{name} found no free port; log {log_path}:\n{_tail(log_path, 60)}")
    except BaseException:
        if process is not None:
            _stop_server(process, server_id)
        raise

    failed = False
    try:
        yield server
    except BaseException:
        failed = True
        raise
    finally:
        survivors = _stop_server(process, server_id)
        if survivors and not failed:
            raise RuntimeError(f"processes of the {name} server survived SIGKILL: {survivors}")


# --- Chromium ------------------------------------------------------------------------------------

#: Chromium switches: --no-sandbox is required as root; the resolver rule stops the Google-service
#: DNS lookups that the --disable-* switches miss (pitfall 9).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


@dataclass
class BrowserPage:
    """The Playwright page plus what went wrong on it: uncaught exceptions and console errors."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def unexpected_errors(self, allowed: Iterable[str | re.Pattern[str]] = ()) -> list[str]:
        """The errors that match none of ``allowed`` (substrings or regular expressions)."""
        patterns = [p if isinstance(p, re.Pattern) else re.compile(re.escape(p)) for p in allowed]
        return [e for e in self.errors if not any(p.search(e) for p in patterns)]


def _test_name() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "browser")
    return _safe_name(current.split(" ")[0].split("::")[-1])


@contextlib.contextmanager
def chromium_page(artifacts: Path, tmp: Path) -> Iterator[BrowserPage]:
    """Headless Debian Chromium with a 1280x800 page; 60 s timeouts for actions and ``expect``.

    Uncaught page exceptions and console errors are collected in ``.errors``. If the block raises,
    a screenshot ``<test>-failure.png`` is saved in ``artifacts`` first.
    """
    from playwright.sync_api import expect, sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError(browser_available() or "chromium not found")
    home = Path(tmp) / "chromium-home"  # Chromium writes under $HOME anyway (pitfall 10)
    home.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own 5 s default (pitfall 5)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home)}, timeout=TIMEOUT_MS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.set_default_navigation_timeout(TIMEOUT_MS)
            result = BrowserPage(page)

            def on_page_error(error: Error) -> None:
                result.errors.append(f"pageerror: {error.message}")

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    result.errors.append(f"console.error: {message.text}")

            page.on("pageerror", on_page_error)
            page.on("console", on_console)
            try:
                yield result
            except BaseException:
                with contextlib.suppress(Exception):
                    screenshot(page, artifacts, f"{_test_name()}-failure")
                raise
        finally:
            browser.close()


# --- JupyterLab in the page ----------------------------------------------------------------------

# The notebook panel open on `path`, or the current widget when path is null.
_FIND_PANEL = """
(path) => {
    const app = window.jupyterapp;
    if (!app || !app.shell) return null;
    if (path === null) return app.shell.currentWidget;
    for (const w of app.shell.widgets('main')) {
        if (w.context && w.context.path === path && w.sessionContext) return w;
    }
    return null;
}
"""


def open_notebook(page: Page, server: LabServer, relpath: str, workspace: str,
                  wait_kernel: bool = True) -> None:
    """Open ``relpath`` (relative to the server root) in its own Lab workspace and make it current.

    One workspace per test: Lab restores a workspace's open tabs, which would put another test's
    notebook in front (pitfall 6). With ``wait_kernel`` (default) also waits for its kernel to be
    connected and idle. The notebook's metadata must name the kernelspec (``python3``), or Lab asks
    for one in a dialog.
    """
    url = (f"{server.url}lab/workspaces/{quote(_safe_name(workspace))}/tree/{quote(relpath)}"
           f"?token={quote(server.token)}")
    page.goto(url)
    page.wait_for_function(
        f"(path) => {{ const w = ({_FIND_PANEL})(path); return !!(w && w.context.isReady); }}",
        arg=relpath)
    page.evaluate(
        f"(path) => {{ const w = ({_FIND_PANEL})(path); window.jupyterapp.shell.activateById(w.id); }}",
        relpath)
    if wait_kernel:
        wait_kernel_idle(page, relpath)


def open_notebook7(page: Page, server: LabServer, relpath: str, wait_kernel: bool = True) -> None:
    """Open ``relpath`` in Notebook 7 (a :func:`jupyter_notebook7` server) at ``/notebooks/<relpath>``.

    Waits until its panel's context is ready and (``wait_kernel``, default) its kernel connected
    and idle, through ``window.jupyterapp`` as in Lab: Notebook 7's app has the same shell and
    sessionContext API, and the same trap of an execution indicator that says "idle" before any
    kernel is attached (pitfall 3). Notebook 7 has no workspaces: each page shows one notebook,
    which is the current widget, so :func:`run_all_cells` then runs it.
    """
    page.goto(f"{server.url}notebooks/{quote(relpath)}?token={quote(server.token)}")
    page.wait_for_function(
        f"(path) => {{ const w = ({_FIND_PANEL})(path); return !!(w && w.context.isReady); }}",
        arg=relpath)
    if wait_kernel:
        wait_kernel_idle(page, relpath)


def wait_kernel_idle(page: Page, relpath: str | None = None, timeout: float = TIMEOUT_MS) -> None:
    """Wait until the notebook's session is ready and its kernel connected and idle.

    Not the execution indicator, which says "idle" before any kernel is attached (pitfall 3).
    ``relpath`` None means the current widget.
    """
    page.wait_for_function(
        f"""(path) => {{
            const w = ({_FIND_PANEL})(path);
            const sc = w && w.sessionContext;
            const kernel = sc && sc.session && sc.session.kernel;
            return !!(sc && sc.isReady && kernel && kernel.connectionStatus === 'connected'
                      && kernel.status === 'idle');
        }}""",
        arg=relpath, timeout=timeout)


def run_all_cells(page: Page) -> None:
    """Start "Run All Cells" on the current notebook and return at once (Lab or Notebook 7).

    Fire and forget: the command's promise is never returned to Playwright, because
    page.evaluate has no timeout (pitfall 2). Wait for the cells' effects with expect(...).
    """
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def error_outputs(page: Page) -> list[str]:
    """Text of the stderr/traceback outputs shown in the page (for assertion messages)."""
    locator = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [text.strip() for text in locator.all_inner_texts()]


def screenshot(page: Page, artifacts: Path, name: str) -> Path:
    """Save a PNG of the page as ``artifacts/<name>.png``; its path."""
    path = Path(artifacts) / f"{_safe_name(name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def fits_sideways(page: Page, selector: str) -> bool:
    """The first element matching *selector* is not wider than its box (nothing overflows sideways)."""
    return bool(page.evaluate(
        "(sel) => { const e = document.querySelector(sel); return e.scrollWidth <= e.clientWidth + 1; }",
        selector))
