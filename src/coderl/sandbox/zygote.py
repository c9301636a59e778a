"""The zygote: a clean process image from which every sandboxed run is forked.

The fork server (the judge) holds test code, expected outputs and earlier programs in its memory, so a child
forked from it could read them. The zygote is forked from the server once, after the server has set up and
pre-imported everything but *before it receives any job*, and it never receives job data itself: only "fork
a child on these descriptors". Each child then reads its program from its request pipe, after confinement.
So a run starts warm (numpy already imported) and inherits nothing of another run.

Where the kernel allows it, the zygote is process 1 of a new PID namespace with its own /proc (read-only,
showing only the zygote and the run), a minimal read-only /dev and a read-only /sys: a run sees no host
process and has no device or kernel tunable to write to.

Protocol on a SOCK_SEQPACKET socket with the server: the server sends ``b"<cpu seconds>"`` with five
descriptors (stdin, stdout, stderr, requests, replies); the zygote forks and answers ``b"pid <n>"`` with a
pidfd of the child (so the server can kill it across the namespace boundary), then ``b"status <wait
status>"`` once the child is reaped.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import types

from coderl.sandbox import harness, isolation, seccomp

SANDBOX_FAULT = 70  # exit status of a child whose confinement failed before the program started


class Config:
    """What the zygote needs to confine a child; fixed when the server starts."""

    def __init__(self, run_dir: str, uid: int | None, memory_mb: int, output_mb: int,
                 prepared_seccomp: seccomp.Prepared | None, pid_namespace: bool):
        self.run_dir, self.uid = run_dir, uid
        self.memory_mb, self.output_mb = memory_mb, output_mb
        self.seccomp = prepared_seccomp
        self.pid_namespace = pid_namespace


def serve(sock: socket.socket, cfg: Config) -> None:
    """The zygote's loop (never returns)."""
    me = os.getpid()
    try:
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(sock, 64, 5)
            except OSError:
                break
            if not msg:
                break  # the server is gone
            if len(fds) != 5:
                for fd in fds:
                    os.close(fd)
                continue
            pid = os.fork()
            if pid == 0:
                sock.close()
                _child(fds, int(msg), cfg, me)
            for fd in fds:
                os.close(fd)
            pidfd: list[int] = []
            try:
                pidfd = [os.pidfd_open(pid)]
            except (AttributeError, OSError):
                if cfg.pid_namespace:  # the server could not address the child: never run it
                    os.kill(pid, signal.SIGKILL)
            socket.send_fds(sock, [b"pid %d" % pid], pidfd)
            for fd in pidfd:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            if cfg.pid_namespace:
                _kill_rest()
            sock.send(b"status %d" % status)
    finally:
        os._exit(0)


def _kill_rest() -> None:
    """As process 1 of the namespace: end whatever else is in it (only possible without seccomp)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break


def _child(fds: list[int], cpu_seconds: int, cfg: Config, zygote_pid: int) -> None:
    code = SANDBOX_FAULT
    try:
        os.setsid()
        isolation.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != zygote_pid:
            os._exit(1)
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
        os.closerange(len(fds), 1 << 16)
        isolation.setup_child_limits(cfg.memory_mb, cpu_seconds, cfg.output_mb, 256,
                                     64 if cfg.uid is not None else None)
        if cfg.uid is not None:
            isolation.drop_privileges(cfg.uid)
        os.chdir(cfg.run_dir)  # after dropping privileges: the directory is the run's own
        if cfg.seccomp is not None:
            cfg.seccomp.install(os.getpid())
        harness.fresh_std_streams()
        code = 0
    except BaseException as e:
        try:
            os.write(2, f"coderl sandbox set-up failed: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    if code:
        os._exit(code)
    harness.main()


def start(cfg: Config, private_fs: bool, close_fds: tuple[int, ...] = ()) -> tuple[int, socket.socket]:
    """Fork the zygote from the (still clean) server. With ``private_fs`` it first sets up its own /proc,
    /dev and /sys; its first message is ``b"ready <json>"``, the protections that took effect there (a
    name with a leading "!" is one that did not, with why). ``close_fds``: the server's descriptors the
    zygote must not hold. Returns (pid, the server's end of the socket)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        parent.close()
        try:
            isolation.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != server_pid and not cfg.pid_namespace:
                os._exit(1)
            for fd in close_fds:
                os.close(fd)
            report = isolation.private_proc_dev_sys(cfg.pid_namespace) if private_fs else {}
            # The coderl modules stay loaded (the harness needs them) but are not importable by name.
            for name in [m for m in sys.modules if m == "coderl" or m.startswith("coderl.")]:
                del sys.modules[name]
            sys.modules["__main__"] = types.ModuleType("__main__")
            harness.prepare_std_streams()
            # Objects that exist now are never collected: a child's garbage collector then does not touch
            # (and copy) every page it inherited, which would make each run pay for the whole heap.
            gc.collect()
            gc.freeze()
            child.send(b"ready " + json.dumps(report).encode())
        except BaseException as e:
            try:
                os.write(2, f"coderl zygote set-up failed: {type(e).__name__}: {e}\n".encode())
            finally:
                os._exit(1)
        serve(child, cfg)
    child.close()
    return pid, parent
