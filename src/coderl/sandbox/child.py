"""The server's handle on one sandboxed child: its descriptors, its channel, its deadline, its end.

Every file the child writes is a memory file the server created before the fork and reads by descriptor,
so nothing the program does to its run directory (symlinks, FIFOs, replaced files) changes what the server
opens: the server never opens a path inside a run directory. Reads are capped at the output limit and
linear in what they read. The run directory is created fresh for each child and removed (without following
links) after it.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import time
from collections.abc import Callable

from coderl.sandbox import isolation
from coderl.sandbox.frames import FrameError, FrameReader, frame

STDERR_TAIL = 2000


class Deadline(BaseException):
    """The time of the current phase is up."""


class ChildGone(BaseException):
    """The child cannot answer any more; ``cause`` says why (``ended``, ``tampered``, ``output_limit``)."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class ZygoteLost(RuntimeError):
    """The zygote died: the server must not fork a new one from its own (no longer clean) memory."""


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return "signal:" + signal.Signals(sig).name
        except ValueError:
            return f"signal:{sig}"
    return f"exit:{os.waitstatus_to_exitcode(status)}"


class Child:
    """Spawned by :meth:`coderl.sandbox.server.Server.spawn`; always :meth:`finish` it."""

    def __init__(self, zsock: socket.socket, run_dir: str, uid: int | None, cpu_seconds: int, output_cap: int,
                 clean: Callable[[], None], after: Callable[[Child], None] | None = None,
                 pid_namespace: bool = False):
        self._zsock, self.run_dir, self._clean, self._after = zsock, run_dir, clean, after
        self._own_group = not pid_namespace  # its pid (and process group) are numbers of this namespace
        self._tests = 0
        self.output_cap = output_cap
        self.deadline = 0.0
        self.status: str | None = None
        self.received = 0
        self.fault = ""  # what a child whose confinement failed wrote to stderr
        self._killed = False
        if os.path.lexists(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        os.mkdir(run_dir, 0o700)
        if uid is not None:
            os.chown(run_dir, uid, uid)
        self._in = os.memfd_create("stdin", os.MFD_CLOEXEC)
        self._out = os.memfd_create("stdout", os.MFD_CLOEXEC)
        self._err = os.memfd_create("stderr", os.MFD_CLOEXEC)
        req_r, self._req = os.pipe2(os.O_CLOEXEC)
        self._reply, reply_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._req, False)
        self._reader = FrameReader(output_cap)
        self.t0 = time.monotonic()
        try:
            socket.send_fds(zsock, [b"%d" % cpu_seconds], [self._in, self._out, self._err, req_r, reply_w])
            msg, fds, _, _ = socket.recv_fds(zsock, 64, 1)
        except OSError as e:
            raise ZygoteLost(str(e)) from None
        finally:
            os.close(req_r)
            os.close(reply_w)
        if not msg.startswith(b"pid "):
            raise ZygoteLost("no pid from the zygote")
        self.pid = int(msg[4:])
        self._pidfd = fds[0] if fds else None

    # -- channel ----------------------------------------------------------------------------------------------
    def send(self, payload: bytes, deadline: float) -> None:
        view = memoryview(frame(payload))
        while view:
            try:
                view = view[os.write(self._req, view):]
                continue
            except BlockingIOError:
                pass
            except BrokenPipeError:
                raise ChildGone("ended") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            select.select([], [self._req], [], left)

    def recv(self, deadline: float) -> bytes:
        while True:
            try:
                payload = self._reader.next()
            except FrameError as e:
                raise ChildGone(e.reason) from None
            if payload is not None:
                return payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            ready, _, _ = select.select([self._reply], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._reply, self._reader.want())
            if not chunk:
                raise ChildGone("ended")
            self.received += len(chunk)
            self._reader.feed(chunk)

    # -- the end ----------------------------------------------------------------------------------------------
    def kill(self) -> None:
        if self.status is not None or self._killed:
            return
        self._killed = True
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._kill_group()

    def _kill_group(self) -> None:
        """Without seccomp a run can fork; its children share its process group (it called setsid). In a PID
        namespace the zygote, its process 1, ends them instead."""
        if self._own_group:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait(self, until: float | None = None) -> str:
        """The child's exit status (``exit:N`` / ``signal:NAME``); kills it once ``until`` has passed (at once
        when None)."""
        if self.status is not None:
            return self.status
        if until is not None:
            left = until - time.monotonic()
            while left > 0 and not select.select([self._zsock], [], [], left)[0]:
                left = until - time.monotonic()
        if not select.select([self._zsock], [], [], 0)[0]:
            self.kill()
        try:
            msg = self._zsock.recv(64)
        except OSError as e:
            raise ZygoteLost(str(e)) from None
        if not msg.startswith(b"status "):
            raise ZygoteLost("no status from the zygote")
        self.status = _status_text(int(msg[7:]))
        return self.status

    def cause(self, reason: str) -> str:
        """The verdict detail for a child that stopped answering for ``reason``."""
        if reason != "ended":
            self.kill()
            return reason
        status = self.wait(self.deadline)
        if self._killed:
            return "timeout"
        if status == "signal:SIGXCPU":
            return "timeout"
        if status.startswith("signal:"):
            return status
        if status == "exit:70" and self.received == 0:
            return "sandbox_error"
        return "exit"

    def finish(self) -> None:
        """Kill (if still running), reap, close every descriptor, remove the run directory."""
        try:
            if self.wait(None) == "exit:70" and self.received == 0:
                self.fault = self.stderr_tail().strip() or "no message"
            self._kill_group()
        finally:
            for fd in (self._req, self._reply, self._pidfd, self._in, self._out, self._err):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._out = self._err = -1
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if self._after is not None:
                self._after(self)
            self._clean()

    def next_test(self, stdin: bytes) -> None:
        """Before each stdio test: the input in place of the last one, empty stdout and stderr, and (after the
        first test) an empty run directory and shared temporary directories."""
        for fd in (self._in, self._out, self._err):
            os.ftruncate(fd, 0)
        os.pwrite(self._in, stdin, 0)
        if self._tests:
            isolation.clean_dir(self.run_dir)
            self._clean()
        self._tests += 1

    # -- what it wrote ------------------------------------------------------------------------------------------
    def read_stdout(self) -> tuple[bytes, bool]:
        """(what the program printed, whether it exceeded the cap); call before :meth:`finish` closes it."""
        data = os.pread(self._out, self.output_cap + 1, 0)
        return data[:self.output_cap], len(data) > self.output_cap

    def stderr_tail(self) -> str:
        size = os.fstat(self._err).st_size
        data = os.pread(self._err, STDERR_TAIL, max(0, size - STDERR_TAIL))
        return data.decode("utf-8", "replace")

