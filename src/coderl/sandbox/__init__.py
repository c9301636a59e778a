"""Sandboxed execution of untrusted programs against unit tests.

Threat model. The programs are written by a model that reinforcement learning actively pushes toward
whatever earns reward, so we assume a program may, by accident or by search, try to: run forever (also
ignoring signals); exhaust memory, processes, disk or output; fork daemons that outlive the run; write or
delete files outside its run directory; read root-only files or the parent's environment; use the network;
signal or ptrace the executor; crash the interpreter; print gigabytes; write fake results to inherited
descriptors; exit early so that no test fails; or return objects whose ``__eq__`` always says True.

What protects against that (each mechanism is reported by ``Executor.explain()`` / ``coderl exec --explain``,
and a missing one is logged, never silently skipped):

* a pre-forked server per worker; each run is a fresh child in its own session and process group, with
  ``PR_SET_PDEATHSIG``; the server enforces deadlines and SIGKILLs the group (no SIGALRM in the child);
* when the server runs as root, a dedicated unprivileged uid per worker with no supplementary groups, so
  root-only files, other users' ``/proc/<pid>/environ`` and signals to the executor are out of reach;
* rlimits: address space, CPU time (a backstop), file size (caps captured output), open files, processes,
  no core dumps;
* ``no_new_privs`` and a seccomp filter (see :mod:`coderl.sandbox.seccomp`): no new processes or exec, no
  signals to other processes, AF_UNIX sockets only, no ptrace, mounts, namespaces, bpf or io_uring;
* a new network namespace with no interface up; a new mount namespace in which /tmp, /var/tmp, /dev/shm
  and /run/lock are private size-capped tmpfs, wiped after every run, and all other mounts are read-only;
* a scrubbed environment; stdin/stdout/stderr redirected to files in a fresh run directory;
* results on a private pipe, each record tagged with a per-run random token; expected outputs of stdio
  and call tests never enter the sandbox (the executor compares); test code compares only plain builtin
  values, so "always equal" objects fail.

Not covered: kernel exploits and side channels; files that are world-readable on the host (a program can
read them, e.g. a world-readable request file — keep hidden tests private); a program that deliberately
introspects the harness in its own process (walking frames or ``gc`` to find the record token) can forge
the pass/fail of *assert* tests, which necessarily run in the program's process (stdio and call tests are
immune: the child never learns the expected outputs); arithmetic-overloading objects in float-tolerance
asserts; wall-clock time consumed by blocking kernel calls is bounded by the deadline, not CPU accounting.
Without root or user namespaces most of the above degrades to rlimits + seccomp + deadlines.
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
