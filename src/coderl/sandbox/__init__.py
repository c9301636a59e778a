"""Sandboxed execution of untrusted programs against unit tests.

Threat model. The programs are written by a model that reinforcement learning actively pushes toward
whatever earns reward, so we assume a program may, by accident or by search, try to: read or influence the
tests that judge it (expected values, comparators, builtins, deadlines, the result channel); return objects
whose ``__eq__`` always says True; run forever (also ignoring signals); exhaust memory, processes, disk or
output; fork daemons that outlive the run; write or delete files outside its run directory, directly or by
planting links for a privileged process; read root-only files, other processes or the parent's environment;
read what earlier runs left in memory; use the network; signal or ptrace the executor; crash the interpreter.

What protects against that (each mechanism is reported by ``Executor.explain()`` / ``coderl exec --explain``,
and a missing one is logged, never silently skipped):

* the judge is another process: the fork server runs the tests (asserts included) and keeps the expected
  values, the comparisons and every deadline; the program's process only answers its questions with plain
  values (:mod:`coderl.sandbox.judge`, :mod:`coderl.sandbox.values`), so nothing it does in its own process
  changes how it is judged;
* every run is forked from a zygote that never held a job (:mod:`coderl.sandbox.zygote`), alone in a PID
  namespace with a read-only /proc of its own, a read-only /sys and a minimal read-only /dev;
* stdin/stdout/stderr are memory files created by the server and read by descriptor, capped at the output
  limit; nothing is opened by path in a run directory, which is emptied between tests without following links;
* a dedicated unprivileged uid per worker with no supplementary groups (when the server runs as root);
* rlimits: address space, CPU time (a backstop), file size, open files, processes, no core dumps;
* ``no_new_privs`` and a seccomp filter (see :mod:`coderl.sandbox.seccomp`): no new processes or exec, no
  signals to other processes, no sockets, no ptrace, mounts, namespaces, bpf or io_uring;
* a new network namespace with no interface up; a new mount namespace in which /tmp, /var/tmp, /dev/shm
  and /run/lock are private size-capped tmpfs, wiped after every run, and all other mounts are read-only;
* a scrubbed environment.

Not covered: kernel exploits and hardware side channels. Trusted: the test code (it runs in the judge) and
the files on the host that are world-readable (a program can read them: keep hidden tests private). Without
root or user namespaces the isolation degrades to rlimits + seccomp + deadlines; the judge stays outside the
program's process. See docs/execution.md.
"""

from coderl.utils.lazy import lazy_exports

# Resolved on first use: the fork server (``python -m coderl.sandbox.server``) imports this package too, and
# the executor's imports (logging, threading, subprocess) would otherwise sit in every server and register
# after-fork handlers that each sandboxed child pays for.
_EXPORTS = {"Executor": "executor", "SandboxError": "executor", "OUTCOMES": "schema", "Request": "schema",
            "RequestError": "schema", "Result": "schema", "parse_request": "schema", "read_requests": "schema"}

__all__ = ["Executor", "SandboxError", "Request", "RequestError", "Result", "OUTCOMES", "parse_request",
           "read_requests"]


__getattr__, __dir__ = lazy_exports("coderl.sandbox", _EXPORTS, globals())
