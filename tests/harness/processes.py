"""A child process with its output in a log file, that never outlives the test run.

Redis, moto and service processes share this: start, SIGKILL, SIGTERM-and-wait, and the log tail
that goes into every "it did not start" error. Each running process registers an atexit hook,
so an interrupted or crashed session still kills what it started.
"""

from __future__ import annotations

import atexit
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

_LOG_TAIL_CHARS = 4000


class ProcessExited(RuntimeError):
    """A child process exited while we expected it to run."""


class ChildProcess:
    """One command, restartable, with stdout and stderr appended to `log_path`."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self._command = list(command)
        self._log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.is_running:
            raise RuntimeError(f"already running: {shlex.join(self._command)}")
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            log.write(f"--- starting: {shlex.join(self._command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
            )
        atexit.register(self.kill)

    def kill(self) -> None:
        """SIGKILL and reap. No-op if not running."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        atexit.unregister(self.kill)

    def terminate(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; return the exit code.

        A negative code is the signal that ended the process (-9 after SIGKILL).
        """
        process = self._process
        if process is None:
            raise RuntimeError(f"never started: {shlex.join(self._command)}")
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        atexit.unregister(self.kill)
        return process.returncode

    def stop(self, timeout_s: float = 10.0) -> None:
        """terminate() if the process was ever started; for cleanup paths."""
        if self._process is not None:
            self.terminate(timeout_s)

    def raise_if_exited(self, what: str) -> None:
        """Raise ProcessExited, with the log tail, if the process is not running."""
        process = self._process
        if process is not None and process.poll() is None:
            return
        code = None if process is None else process.returncode
        raise ProcessExited(
            f"{what} exited with code {code}; {self._log_path} ends with:\n{self.log_tail()}"
        )

    def log_text(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        return self.log_text()[-_LOG_TAIL_CHARS:]
