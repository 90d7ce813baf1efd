"""The notebook session: nbgov's hooks on one IPython shell."""

from __future__ import annotations

import ast
import atexit
import os
from collections.abc import Callable
from typing import Any

from nbgov.capture.environment import kernel_id_from_connection_file
from nbgov.capture.install import Capture
from nbgov.capture.recorder import Recorder, activate, deactivate
from nbgov.ledger.facade import Ledger

__all__ = ["NotebookSession"]


class NotebookSession:
    """Everything ``%load_ext nbgov`` installs on *shell*, and how to take it off again."""

    def __init__(self, shell: Any, *, ledger: Ledger | None = None) -> None:
        self.shell = shell
        self.ledger = ledger or Ledger()
        self.recorder = Recorder(self.ledger, namespace=shell.user_ns,
                                 flush_interval=self.ledger.settings.flush_interval,
                                 transform=shell.transform_cell)
        self.capture = Capture(shell.user_ns)
        self._magics: Any = None
        self._unwatch: Callable[[], object] = lambda: None
        self._unwatch_shutdown: Callable[[], object] = lambda: None

    def start(self, magics: Callable[[Any, NotebookSession], Any]) -> None:
        """Start recording, install the hooks, and register the magics *magics* makes for this
        shell and session."""
        activate(self.recorder)
        try:
            self.recorder.start(kernel_id=_kernel_id())
            self.capture.install()
        except BaseException:
            self.capture.uninstall()
            deactivate(self.recorder)
            raise
        events = self.shell.events
        events.register("pre_run_cell", self._before)
        events.register("post_run_cell", self._after)
        self._watch_parsing()
        self._magics = magics(self.shell, self)
        self.shell.register_magics(self._magics)
        atexit.register(self._exit)
        self._watch_shutdown()

    def stop(self, reason: str) -> None:
        atexit.unregister(self._exit)
        self._unwatch_shutdown()
        events = self.shell.events
        for name, callback in (("pre_run_cell", self._before), ("post_run_cell", self._after)):
            if callback in events.callbacks[name]:
                events.unregister(name, callback)
        self._unwatch()
        self._unregister_magics()
        self.capture.uninstall()
        deactivate(self.recorder)
        self.recorder.stop(reason)

    def _watch_parsing(self) -> None:
        """Get each cell's syntax tree from IPython's own parse, instead of parsing it again.

        (An AST transformer would do too, but IPython then re-fixes the locations of every cell.)
        """
        compiler = getattr(self.shell, "compile", None)
        original = getattr(compiler, "ast_parse", None)
        if original is None:
            return  # no hook: the recorder parses the cell itself when it ends
        recorder = self.recorder

        def ast_parse(source: str, filename: str = "<unknown>", symbol: str = "exec") -> Any:
            tree = original(source, filename, symbol)
            if isinstance(tree, ast.Module):
                recorder.guard("cell analysis", recorder.parsed, tree, filename)
            return tree

        compiler.ast_parse = ast_parse
        self._unwatch = lambda: vars(compiler).pop("ast_parse", None)

    def _watch_shutdown(self) -> None:
        """End the session when the kernel is asked to shut down, before anything else of the
        shutdown runs: papermill (and Jupyter) kill a kernel that takes a few seconds to exit, and
        other exit handlers may take that long, so waiting for ``atexit`` could lose the end."""
        kernel = getattr(self.shell, "kernel", None)
        original = getattr(kernel, "do_shutdown", None)
        if kernel is None or original is None:
            self._unwatch_shutdown = lambda: None
            return

        def do_shutdown(restart: bool, *args: Any, **kwargs: Any) -> Any:
            self._exit("kernel shutdown" if not restart else "kernel restart")
            return original(restart, *args, **kwargs)

        kernel.do_shutdown = do_shutdown

        def unwatch() -> None:
            if kernel.__dict__.get("do_shutdown") is do_shutdown:
                del kernel.do_shutdown  # the class's method again

        self._unwatch_shutdown = unwatch

    def _exit(self, reason: str = "exit") -> None:
        try:
            self.stop(reason)
        except Exception:  # noqa: BLE001 - the interpreter is going away; the spool keeps events
            pass

    def _unregister_magics(self) -> None:
        if self._magics is None:
            return
        table = self.shell.magics_manager.magics
        for kind, names in self._magics.magics.items():
            for name in names:
                table[kind].pop(name, None)
        self._magics = None

    # -- cell hooks (they must stay cheap: they run around every cell) ------------------------

    def _before(self, info: Any) -> None:
        recorder = self.recorder
        try:
            recorder.begin_cell(info.raw_cell or "", cell_id=getattr(info, "cell_id", None))
        except Exception as exc:  # noqa: BLE001 - a hook never breaks the user's cell
            recorder.capture_failed("cell start", exc)

    def _after(self, result: Any) -> None:
        recorder = self.recorder
        error = result.error_before_exec or result.error_in_exec
        try:
            recorder.end_cell(
                execution_count=result.execution_count,
                ok=error is None,
                error_type=type(error).__name__ if error is not None else None,
            )
        except Exception as exc:  # noqa: BLE001
            recorder.capture_failed("cell end", exc)


def _kernel_id() -> str | None:
    try:
        from ipykernel.connect import get_connection_file
    except ImportError:
        return None
    try:
        return kernel_id_from_connection_file(get_connection_file())
    except Exception:  # noqa: BLE001 - no kernel (a terminal IPython): no kernel id
        return os.environ.get("NBGOV_KERNEL_ID")
