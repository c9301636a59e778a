"""Adversarial programs against the sandbox, one property per test.

Every test checks three things:

(a) containment: the verdict is not "passed" and the specific harm did not happen, checked on the host
    (marker files, victim files, a listener's accept queue, the servers' pids, a signal handler);
(b) survival: the same fork servers are alive afterwards and the next (correct) programs still pass;
(c) no leftovers: no process and no SysV IPC object owned by the sandbox uids, no new entry owned by them
    in the host's /tmp, /var/tmp or /dev/shm.

(b) and (c) are in :meth:`Aftermath.check`, which every test calls last. A program reports what it saw
from inside through its verdict: it raises an exception whose class name is ``R_<summary>`` and the
verdict's ``detail`` carries that name back.

Where a property rests on a protection that ``Executor.protections()`` reports missing, the test is
skipped with the reason. Tests marked ``xfail(strict=True)`` expose sandbox bugs that are not fixed yet.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sandbox_helpers import (
    ASSERT_ADD,
    CALL_ADD,
    GOOD_PROGRAM,
    STDIO_ADD,
    Aftermath,
    alive,
    probe,
    remove_sysv_ipc,
    require,
    require_any,
    rootfs_dir,
    run,
    summary,
    sysv_ipc_objects,
)

from coderl.sandbox import Result
from coderl.sandbox.isolation import CHILD_ENV

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the sandbox needs Linux")

# -- 1. time ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "while True:\n    pass\n",
    "import time\ntime.sleep(1000)\n",
    "def add(a, b):\n    while True:\n        pass\n",
], ids=["busy-load", "sleep-load", "busy-in-test"])
def test_infinite_loop_is_killed_at_the_deadline(executor, after, program):
    require(executor, "session + deadlines")
    t0 = time.monotonic()
    res = run(executor, program, ASSERT_ADD, timeout=1.0)
    took = time.monotonic() - t0
    assert (res.outcome, res.detail) == ("runtime_error", "timeout")
    assert took < 1.0 * (2 + 2) + 5, f"deadline not enforced: {took:.1f}s"
    t0 = time.monotonic()
    res = run(executor, "while True:\n    pass\n", {"type": "stdio", "inputs": ["1\n"] * 3, "outputs": ["1"] * 3},
              timeout=1.0)
    assert (res.outcome, res.detail) == ("runtime_error", "timeout")
    assert res.tests[0] == "runtime_error" and res.tests[1:] == ["not_run", "not_run"]
    assert time.monotonic() - t0 < 8
    after.check()


def test_loop_ignoring_sigterm_sigint_sigxcpu_is_killed(executor, after):
    require(executor, "session + deadlines")
    program = (
        "import signal\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGXCPU, signal.SIGHUP, signal.SIGALRM,\n"
        "          signal.SIGUSR1, signal.SIGQUIT):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "def add(a, b):\n"
        "    while True:\n"
        "        try:\n"
        "            while True:\n"
        "                pass\n"
        "        except BaseException:\n"
        "            pass\n"
    )
    t0 = time.monotonic()
    res = run(executor, program, ASSERT_ADD, timeout=1.0)
    assert (res.outcome, res.detail) == ("runtime_error", "timeout")
    assert res.tests == ["runtime_error", "not_run"]
    assert time.monotonic() - t0 < 9
    after.check()


# -- 2. memory, processes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("program", [
    "x = ' ' * (64 * 1024 ** 3)\n",
    "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 8))\n",
    "import numpy as np\na = np.ones((1 << 20, 1 << 14))\n",
    "def add(a, b):\n    return len([0] * (1 << 40))\n",
], ids=["one-huge-string", "incremental", "numpy", "in-test"])
def test_memory_bomb_is_stopped_by_the_address_space_limit(executor, after, program):
    require(executor, "rlimits")
    servers_rss = sum(psutil.Process(p).memory_info().rss for p in after.pids)
    # Touching 2 GB page by page took over 5 s on a slow VM once; the verdict, not the time, is the property.
    res = run(executor, program, ASSERT_ADD, timeout=20.0)
    assert res.outcome == "runtime_error" and res.detail == "memory", res
    # the bomb went off in the child: the servers (and this process) did not grow
    assert sum(psutil.Process(p).memory_info().rss for p in after.pids) < servers_rss + 64 * 2 ** 20
    after.check()


@pytest.mark.parametrize("program, detail", [
    ("import os\nwhile True:\n    os.fork()\n", "PermissionError"),
    ("import subprocess\nsubprocess.Popen(['sleep', '100'])\n", "PermissionError"),
    ("import os\nos.posix_spawn('/bin/sleep', ['sleep', '100'], {})\n", "PermissionError"),
    ("import multiprocessing\nmultiprocessing.Process(target=print).start()\n", "PermissionError"),
    ("import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(100,)).start()\n",
     "RuntimeError"),
], ids=["os.fork", "subprocess", "posix_spawn", "multiprocessing", "thread-bomb"])
def test_fork_bomb(executor, after, program, detail):
    require(executor, "seccomp")
    if detail == "RuntimeError":
        require(executor, "dedicated uid")  # RLIMIT_NPROC counts per uid; meaningless for root
    res = run(executor, program, ASSERT_ADD)
    assert (res.outcome, res.detail) == ("runtime_error", detail)
    after.check()


@pytest.mark.parametrize("program", [
    # classic double fork + setsid daemon
    "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(100)\n",
    "import os\nos.setsid()\n",
    "import os\nos.setpgid(0, 0)\n",
    # a non-daemon thread that would keep working after the tests, then fail the tests
    "import threading, time\n"
    "def work():\n"
    "    while True:\n"
    "        time.sleep(0.01)\n"
    "threading.Thread(target=work).start()\n"
    "def add(a, b):\n    return 0\n",
], ids=["double-fork", "setsid", "setpgid", "thread"])
def test_detached_daemon_does_not_outlive_the_run(executor, after, program):
    require(executor, "seccomp")
    res = run(executor, program, ASSERT_ADD)
    assert res.outcome in ("runtime_error", "failed_test")
    if "thread" not in program:
        assert (res.outcome, res.detail) == ("runtime_error", "PermissionError")
    after.check()  # includes: no process of the sandbox uids is left


# -- 3. the host's files -----------------------------------------------------------------------------------

def test_writing_files_outside_the_run_dir(executor, after, victims):
    require(executor, "private filesystem", "dedicated uid")
    token = secrets.token_hex(6)
    project = Path(__file__).resolve().parents[3]
    targets = {
        "tmp": f"/tmp/coderl-adv-marker-{token}",
        "vartmp": f"/var/tmp/coderl-adv-marker-{token}",
        "shm": f"/dev/shm/coderl-adv-marker-{token}",
        "root": f"/root/coderl-adv-marker-{token}",
        "project": str(project / f"coderl-adv-marker-{token}"),
        "rootfs": str(victims["rootfs"].parent / f"marker-{token}"),
        "tmpdir": str(victims["tmp"].parent / f"marker-{token}"),
        "append": str(victims["rootfs"]),
    }
    body = "res = []\n"
    for name, path in targets.items():
        mode = "a" if name == "append" else "w"
        body += f"res.append({name!r} + '.' + _try(lambda: open({path!r}, {mode!r}).write('pwned')))\n"
    body += "_r(':'.join(res))\n"
    seen = dict(x.split(".") for x in summary(run(executor, probe(body), ASSERT_ADD)).split(":"))
    for name, path in targets.items():
        if name != "append":
            assert not os.path.lexists(path), f"sandboxed program created {path} on the host"
    for v in victims.values():
        assert v.read_text() == "precious\n"
    # on the root file system the write fails inside the sandbox too (read-only remount / permissions)
    assert seen["rootfs"] != "ok" and seen["append"] != "ok" and seen["project"] != "ok" and seen["root"] != "ok"
    after.check()


def test_deleting_files_outside_the_run_dir(executor, after, victims):
    require(executor, "private filesystem", "dedicated uid")
    body = "res = []\nimport os, shutil\n"
    for name, v in victims.items():
        body += f"res.append({name!r} + '.' + _try(lambda: os.remove({str(v)!r})))\n"
        body += f"res.append({name!r} + 'mv.' + _try(lambda: os.rename({str(v)!r}, {str(v)!r} + '.x')))\n"
        if name != "project":  # never aim rmtree at the source tree, even in a broken sandbox
            body += f"res.append({name!r} + 'dir.' + _try(lambda: shutil.rmtree({str(v.parent)!r})))\n"
    body += "_r(':'.join(res))\n"
    seen = summary(run(executor, probe(body), ASSERT_ADD))
    for name, v in victims.items():
        assert v.exists() and v.read_text() == "precious\n", f"victim {name} ({v}) was deleted: {seen}"
    after.check()


def test_files_do_not_persist_between_runs(executor, after):
    require(executor, "private filesystem")
    token = secrets.token_hex(6)
    writer = probe(
        "import os\n"
        "for d in ('/tmp', '/var/tmp', '/dev/shm', '.'):\n"
        f"    with open(os.path.join(d, 'persist-{token}'), 'w') as f:\n"
        "        f.write('x')\n"
        f"    os.mkdir(os.path.join(d, 'persistdir-{token}'))\n"
        "_r('written')\n"
    )
    reader = probe(
        "import os\n"
        "seen = []\n"
        "for d in ('/tmp', '/var/tmp', '/dev/shm'):\n"
        "    for e in os.listdir(d):\n"
        f"        if {token!r} in e:\n"
        "            seen.append(d.strip('/').replace('/', '_') + '.' + e.split('-')[0])\n"
        "here = sorted(set(os.listdir('.')) - {'stdout.txt', 'stderr.txt'})\n"
        "seen += ['cwd.' + e.split('-')[0] for e in here]\n"
        "_r(':'.join(seen) or 'clean')\n"
    )
    # a batch per round so that both workers (most likely) take part
    reqs = [{"id": f"w{i}", "program": writer, "tests": ASSERT_ADD} for i in range(2)]
    assert [summary(r) for r in executor.run(reqs)] == ["written"] * 2
    reqs = [{"id": f"r{i}", "program": reader, "tests": ASSERT_ADD} for i in range(2)]
    assert [summary(r) for r in executor.run(reqs)] == ["clean"] * 2
    after.check()


def test_filling_the_shared_tmp_dirs_is_capped_and_wiped(executor, after):
    require(executor, "private filesystem", "rlimits")
    body = (
        "import os, errno\n"
        "chunk = b'd' * (1 << 20)\n"
        "total, err = 0, 'none'\n"
        "try:\n"
        "    for i in range(100):\n"
        "        with open(f'/dev/shm/fill{i}', 'wb') as f:\n"
        "            for _ in range(16):\n"
        "                f.write(chunk)\n"
        "                total += 1\n"
        "except OSError as e:\n"
        "    err = errno.errorcode.get(e.errno, str(e.errno))\n"
        "_r(err + '.' + str(total))\n"
    )
    err, total = summary(run(executor, probe(body), ASSERT_ADD, timeout=10.0)).split(".")
    assert err in ("ENOSPC", "EFBIG") and int(total) <= 1024, (err, total)
    res = run(executor, probe("import os\n_r(str(len(os.listdir('/dev/shm'))))\n"), ASSERT_ADD)
    assert summary(res) == "0"
    after.check()


# -- 4. secrets ----------------------------------------------------------------------------------------------

@pytest.fixture
def root_only_file() -> Iterator[tuple[Path, str]]:
    secret = "rootonly" + secrets.token_hex(8)
    d = Path(tempfile.mkdtemp(prefix="coderl-adv-", dir=rootfs_dir()))
    os.chmod(d, 0o755)
    f = d / "secret.txt"
    f.write_text(secret)
    os.chmod(f, 0o600)
    yield f, secret
    f.unlink()
    d.rmdir()


def test_reading_root_only_files(executor, after, root_only_file):
    require(executor, "dedicated uid")
    path, secret = root_only_file
    body = (
        "res = []\n"
        "def rd(p):\n"
        "    with open(p, 'rb') as f:\n"
        "        data = f.read()\n"
        f"    if {secret!r}.encode() in data or p == '/etc/shadow':\n"
        "        raise SystemError('read it')\n"
        f"res.append('file.' + _try(lambda: rd({str(path)!r})))\n"
    )
    if os.path.exists("/etc/shadow"):
        body += "res.append('shadow.' + _try(lambda: rd('/etc/shadow')))\n"
    body += "_r(':'.join(res))\n"
    seen = dict(x.split(".") for x in summary(run(executor, probe(body), ASSERT_ADD)).split(":"))
    assert seen["file"] == "PermissionError"
    if "shadow" in seen:
        assert seen["shadow"] == "PermissionError"
    after.check()


def test_parent_environment_is_invisible(executor, after, secret_env):
    require(executor, "scrubbed environment")
    name, value = secret_env
    assert os.environ[name] == value  # it is in this process's environment
    allowed = sorted(set(CHILD_ENV) | {"HOME", "TMPDIR"})
    body = (
        "import os\n"
        "res = []\n"
        f"secret = {value!r}\n"
        f"if {name!r} in os.environ or any(secret in v for v in os.environ.values()):\n"
        "    res.append('LEAK.environ')\n"
        f"extra = sorted(set(os.environ) - set({allowed!r}))\n"
        "if extra:\n"
        "    res.append('extra.' + '_'.join(extra))\n"
        "opened = 0\n"
        f"pids = ['self', str(os.getppid()), {str(os.getpid())!r}]\n"
        "for pid in pids + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        with open('/proc/' + pid + '/environ', 'rb') as f:\n"
        "            data = f.read()\n"
        "    except OSError:\n"
        "        continue\n"
        "    opened += 1\n"
        "    if secret.encode() in data:\n"
        "        res.append('LEAK.proc' + pid)\n"
        "try:\n"
        "    open('/proc/%d/environ' % os.getppid(), 'rb').read()\n"
        "    res.append('ppid.readable')\n"
        "except PermissionError:\n"
        "    res.append('ppid.PermissionError')\n"
        "_r(':'.join(res))\n"
    )
    seen = summary(run(executor, probe(body), ASSERT_ADD))
    assert "LEAK" not in seen, seen
    assert "extra" not in seen, f"unexpected variables in the sandbox environment: {seen}"
    if "dedicated uid" in executor.protections()[0]:
        assert "ppid.PermissionError" in seen
    after.check()


# -- 5. network --------------------------------------------------------------------------------------------

def _no_pending_connection(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def test_loopback_tcp_listener_gets_no_connection(executor, after):
    require_any(executor, "network namespace", "seccomp")
    listeners = [socket.create_server(("127.0.0.1", 0))]
    try:
        listeners.append(socket.create_server(("::1", 0), family=socket.AF_INET6))
    except OSError:
        pass
    try:
        body = "import socket\nres = []\n"
        for ls in listeners:
            host, port = ls.getsockname()[:2]
            body += (f"res.append('p{port}.' + _try(lambda: socket.create_connection(({host!r}, {port}), "
                     "timeout=1)))\n")
        body += "_r(':'.join(res))\n"
        seen = summary(run(executor, probe(body), ASSERT_ADD))
        assert ".ok" not in seen, seen
        time.sleep(0.1)
        for ls in listeners:
            assert _no_pending_connection(ls), "the loopback listener received a connection from the sandbox"
    finally:
        for ls in listeners:
            ls.close()
    after.check()


def test_abstract_unix_socket_of_the_host_is_unreachable(executor, after):
    require(executor, "network namespace")  # abstract unix addresses are scoped by network namespace
    name = b"\0coderl-adv-" + secrets.token_hex(6).encode()
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(name)
    ls.listen()
    try:
        body = ("import socket\n"
                "mk = lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                f"_r('abstract.' + _try(lambda: mk().connect({name!r})))\n")
        assert summary(run(executor, probe(body), ASSERT_ADD)) != "abstract.ok"
        assert _no_pending_connection(ls)
    finally:
        ls.close()
    after.check()


def test_host_unix_socket_on_the_root_filesystem_is_unreachable(executor, after, victims):
    path = str(victims["rootfs"].parent / "svc.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    os.chmod(path, 0o777)
    ls.listen()
    try:
        body = ("import socket\n"
                f"_r('unix.' + _try(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect({path!r})))\n")
        seen = summary(run(executor, probe(body), ASSERT_ADD))
        assert _no_pending_connection(ls), f"a host unix socket accepted a connection from the sandbox ({seen})"
    finally:
        ls.close()
        os.unlink(path)
    after.check()


# -- 6. the executor itself ----------------------------------------------------------------------------------

def test_killing_the_parent(executor, after):
    require_any(executor, "seccomp", "dedicated uid")
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *_: got.append("SIGUSR1"))
    try:
        body = (
            "import os, signal, ctypes\n"
            "res = []\n"
            "ppid = os.getppid()\n"
            "res.append('kill.' + _try(lambda: os.kill(ppid, signal.SIGKILL)))\n"
            "res.append('killpg.' + _try(lambda: os.killpg(os.getpgid(ppid), signal.SIGKILL)))\n"
            "res.append('killall.' + _try(lambda: os.kill(-1, signal.SIGKILL)))\n"
            f"res.append('host.' + _try(lambda: os.kill({os.getpid()}, signal.SIGUSR1)))\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def attach():\n"
            "    if libc.ptrace(16, ppid, None, None) != 0:\n"
            "        raise PermissionError(ctypes.get_errno())\n"
            "res.append('ptrace.' + _try(attach))\n"
            "_r(':'.join(res))\n"
        )
        seen = dict(x.split(".") for x in summary(run(executor, probe(body), ASSERT_ADD)).split(":"))
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == [], "the sandboxed program signalled the test process"
    assert all(v != "ok" for v in seen.values()), seen
    after.check()  # the servers are the same, alive processes


@pytest.mark.parametrize("tests", [ASSERT_ADD, STDIO_ADD, CALL_ADD], ids=["assert", "stdio", "call"])
def test_segfault_is_reported_as_sigsegv(executor, after, tests):
    program = "import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n"
    if tests["type"] == "stdio":
        program = "import ctypes\nctypes.string_at(0)\n"
    res = run(executor, program, tests)
    assert (res.outcome, res.detail) == ("runtime_error", "signal:SIGSEGV")
    assert res.tests[0] == "runtime_error"
    # stdio goes on with the next input in a new child; in-process tests end with the process
    assert res.tests[1] == ("runtime_error" if tests["type"] == "stdio" else "not_run")
    after.check()


@pytest.mark.parametrize("program, capped", [
    ("import sys\nchunk = 'x' * (1 << 20) + '\\n'\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n", True),
    ("for _ in range(1 << 20):\n    print('y' * 1023)\n", True),
    ("import os\nchunk = b'z' * (1 << 20)\nfor _ in range(1024):\n    try:\n        os.write(1, chunk)\n"
     "    except OSError:\n        pass\n", False),
    ("import sys\nchunk = 'e' * (1 << 20)\nfor _ in range(1024):\n    sys.stderr.write(chunk)\nprint(5)\n", True),
], ids=["stdout.write", "print", "os.write-ignoring-errors", "stderr"])
def test_printing_a_gigabyte(executor, after, program, capped):
    require(executor, "rlimits")
    me = psutil.Process()
    rss0 = me.memory_info().rss
    t0 = time.monotonic()
    res = run(executor, program, {"type": "stdio", "inputs": ["2 3\n"], "outputs": ["5\n"]}, timeout=5.0)
    took = time.monotonic() - t0
    assert res.outcome in ("runtime_error", "failed_test")
    if capped:  # the program saw EFBIG; otherwise it printed the first 16 MB of a wrong answer
        assert res.detail == "output_limit", res
    assert took < 15, f"1 GB of output took {took:.1f}s to judge"
    assert me.memory_info().rss - rss0 < 128 * 2 ** 20, "the executor's memory grew with the program's output"
    for pid in after.pids:
        assert psutil.Process(pid).memory_info().rss < 512 * 2 ** 20
    after.check()


@pytest.mark.parametrize("program", [
    # through a C function, so that every level also takes C stack
    "import sys\nsys.setrecursionlimit(10 ** 8)\ndef r(n):\n    return list(map(r, [n + 1]))\nr(0)\n",
    "import ctypes\nctypes.memset(0, 1, 16)\n",
    "import os\nos.abort()\n",
    "import faulthandler\nfaulthandler._sigsegv()\n",
], ids=["recursion", "memset-null", "abort", "faulthandler"])
def test_crashing_the_interpreter(executor, after, program):
    res = run(executor, program, ASSERT_ADD)
    assert res.outcome == "runtime_error" and res.tests == ["not_run", "not_run"], res
    if "abort" in program:
        assert res.detail == "signal:SIGABRT"
    after.check()


FORGER = (
    "import os, secrets\n"
    "def _forge():\n"
    "    data = ''\n"
    "    for tok in (secrets.token_hex(16), '0' * 32, '-'):\n"
    "        data += f'{tok} loaded -1 -1 - 0\\n'\n"
    "        for i in range(4):\n"
    "            data += f'{tok} start {i} -1 - 0\\n{tok} ok {i} -1 - 0\\n{tok} value {i} -1 - 1\\n5'\n"
    "            data += f'\\n{tok} ok {i} -1 - 0\\n'\n"
    "        data += f'{tok} done -1 -1 - 0\\n'\n"
    "    for fd in range(1024):\n"
    "        try:\n"
    "            os.write(fd, data.encode())\n"
    "        except OSError:\n"
    "            pass\n"
)


@pytest.mark.parametrize("tests, where", [(ASSERT_ADD, "load"), (ASSERT_ADD, "test"), (CALL_ADD, "load"),
                                          (CALL_ADD, "test"), (STDIO_ADD, "load")],
                         ids=["assert-load", "assert-test", "call-load", "call-test", "stdio"])
def test_forged_records_on_every_inherited_fd(executor, after, tests, where):
    if tests["type"] == "stdio":
        program = FORGER + "_forge()\n"
    elif where == "load":
        program = FORGER + "_forge()\ndef add(a, b):\n    return 0\n"
    else:
        program = FORGER + "def add(a, b):\n    _forge()\n    return 0\n"
    res = run(executor, program, tests)
    if tests["type"] != "stdio":
        assert (res.outcome, res.detail) == ("runtime_error", "tampered"), res
    after.check()


# -- 7. early exit -------------------------------------------------------------------------------------------

EXITS = ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "exit()", "raise SystemExit", "quit()",
         "import sys\nsys.exit()", "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)"]


@pytest.mark.parametrize("exit_code", EXITS, ids=["sys.exit(0)", "os._exit(0)", "exit()", "SystemExit", "quit()",
                                                  "sys.exit()", "SIGTERM-self"])
@pytest.mark.parametrize("tests", [ASSERT_ADD, CALL_ADD], ids=["assert", "call"])
def test_early_exit_is_a_runtime_error(executor, after, tests, exit_code):
    at_load = exit_code + "\ndef add(a, b):\n    return a + b\n"
    res = run(executor, at_load, tests)
    assert res.outcome == "runtime_error" and res.tests == ["not_run", "not_run"], res
    if "SIGTERM" not in exit_code:
        assert res.detail == "exit"
    in_test = "def add(a, b):\n" + "".join(f"    {ln}\n" for ln in exit_code.splitlines())
    res = run(executor, in_test, tests)
    assert res.outcome == "runtime_error" and res.tests[0] == "runtime_error", res
    after.check()


@pytest.mark.parametrize("exit_code", EXITS[:4])
def test_early_exit_in_stdio_is_judged_on_the_output(executor, after, exit_code):
    res = run(executor, exit_code + "\nprint(5)\n", {"type": "stdio", "inputs": ["2 3\n"], "outputs": ["5\n"]})
    assert res.outcome in ("failed_test", "runtime_error")
    after.check()


# -- 8. comparison tricks ------------------------------------------------------------------------------------

FAKES = {
    "always-eq": "class Fake:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                 "    def __hash__(self): return 0\n    def __bool__(self): return True\nV = Fake()\n",
    "int-subclass": "class Fake(int):\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                    "    __hash__ = int.__hash__\nV = Fake(7)\n",
    "str-subclass": "class Fake(str):\n    def __eq__(self, o): return True\n    __hash__ = str.__hash__\n"
                    "V = Fake('x')\n",
    "list-of-fakes": "# list-of-fakes\nclass Fake:\n    def __eq__(self, o): return True\nV = [Fake(), Fake()]\n",
    "dict-subclass": "class Fake(dict):\n    def __eq__(self, o): return True\nV = Fake()\n",
}


@pytest.mark.parametrize("fake", FAKES.values(), ids=FAKES.keys())
def test_always_equal_object_in_assert_test(executor, after, fake):
    program = fake + "def f(x):\n    return V\n"
    tests = {"type": "assert", "asserts": ["assert f(1) == 5", "assert f(2) == [1, 2]", "assert not (f(3) != 7)",
                                           "assert f(4) in [9]"]}
    res = run(executor, program, tests)
    assert res.outcome == "failed_test" and res.tests == ["failed_test"] * 4, res
    # A list of fakes is a plain list whose items are the program's objects: `[Fake(), Fake()] == 5` is simply
    # False; comparing the items themselves (the second assert) is what is untrusted.
    assert res.detail == ("AssertionError" if "list-of-fakes" in fake else "untrusted_object")
    after.check()


@pytest.mark.parametrize("fake", FAKES.values(), ids=FAKES.keys())
def test_always_equal_object_in_call_test(executor, after, fake):
    program = fake + "def f(x):\n    return V\n"
    tests = {"type": "call", "fn_name": "f", "inputs": [[1], [2]], "outputs": [5, [1, 2]]}
    res = run(executor, program, tests)
    assert res.outcome == "failed_test" and res.tests == ["failed_test"] * 2, res
    after.check()


def test_always_equal_object_in_chained_comparison(executor, after):
    program = ("class Fake:\n    def __eq__(self, o): return True\n    def __le__(self, o): return True\n"
               "    def __ge__(self, o): return True\nV = Fake()\ndef f(x):\n    return V\n")
    run(executor, program, {"type": "assert", "asserts": ["assert 5 == f(1) == 5", "assert 0 <= f(2) <= 1"]})
    after.check()


def test_rebinding_builtins_does_not_change_the_tests(executor, after):
    program = (
        "import builtins\n"
        "builtins.abs = lambda x: 0\n"
        "builtins.round = lambda x, n=0: 0.3\n"
        "builtins.sorted = lambda x, **k: [1, 2, 3]\n"
        "builtins.len = lambda x: 3\n"
        "builtins.isinstance = lambda a, b: True\n"
        "def f(x):\n    return 0.0\n"
        "def g():\n    return [3, 3, 3, 3]\n"
    )
    tests = {"type": "assert", "asserts": ["assert abs(f(1) - 0.3) < 1e-6", "assert round(f(1), 1) == 0.3",
                                           "assert sorted(g()) == [1, 2, 3]", "assert len(g()) == 3",
                                           "assert isinstance(f(1), str)"]}
    res = run(executor, program, tests)
    assert res.outcome == "failed_test" and res.tests == ["failed_test"] * 5, res
    after.check()


def test_shadowing_builtins_with_globals_does_not_change_the_tests(executor, after):
    program = "abs = lambda x: 0\ndef f(x):\n    return 0.0\n"
    run(executor, program, {"type": "assert", "asserts": ["assert abs(f(1) - 0.3) < 1e-6"]})
    after.check()


def test_the_fork_server_is_not_reachable_as___main__(executor, after):
    # The server runs as `python -m coderl.sandbox.server`, so its module was sys.modules['__main__'] and held
    # live references to the harness; a program importing __main__ gets an empty module instead.
    program = ("import __main__\nh = __main__.harness\nh._OPS['Eq'] = lambda a, b: True\n" + FAKES["always-eq"]
               + "def f(x):\n    return 0\n")
    res = run(executor, program, {"type": "assert", "asserts": ["assert f(1) == 5"]})
    assert res.outcome == "runtime_error" and res.detail == "AttributeError", res
    after.check()


# -- 9. stalling or exhausting the trusted side ----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["stderr.txt", "out0.txt"])
def test_fifo_in_the_run_dir_does_not_stall_the_server(own_executor, name):
    ex = own_executor
    uid = ex._pool[0].cfg["uid"]
    after = Aftermath(ex, range(uid, uid + 1))
    program = f"import os\ntry:\n    os.unlink({name!r})\nexcept OSError:\n    pass\nos.mkfifo({name!r})\n"
    results: list[Result] = []
    th = threading.Thread(target=lambda: results.append(ex.run_one(program, STDIO_ADD)), daemon=True)
    t0 = time.monotonic()
    th.start()
    th.join(1.0 * (2 + 2) + 4)  # the job's own hard stop plus slack
    took = time.monotonic() - t0
    if th.is_alive():  # unblock the server (its /tmp is private: reach it through /proc/<pid>/root)
        rundir = f"/proc/{after.pids[0]}/root{ex._pool[0].cfg['base_dir']}/run"
        for _ in range(40):
            try:
                for e in os.scandir(rundir):
                    if stat.S_ISFIFO(e.stat(follow_symlinks=False).st_mode):
                        os.close(os.open(e.path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            th.join(0.25)
            if not th.is_alive():
                break
        th.join(120)
    assert results and results[0].outcome != "passed"
    assert took < 1.0 * (2 + 2) + 4, f"a FIFO in the run dir stalled the server for {took:.0f}s"
    after.check()


@pytest.mark.slow
def test_a_huge_return_value_does_not_exhaust_the_executor(executor, after):
    me = psutil.Process()
    base = me.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        res = run(executor, "def f():\n    return [0] * 1_000_000\n",
                  {"type": "call", "fn_name": "f", "inputs": [[]], "outputs": [[1]]}, timeout=5.0)
    finally:
        stop.set()
        th.join()
    overhead = time.monotonic() - t0 - res.seconds
    assert overhead < 2.0, f"the executor spent {overhead:.1f}s judging one return value"
    assert peak[0] - base < 200 * 2 ** 20, f"the executor's memory grew by {(peak[0] - base) >> 20} MB"
    after.check()


def test_a_restarted_server_survives_the_batch(own_executor, caplog):
    ex = own_executor
    os.kill(ex._pool[0].proc.pid, signal.SIGKILL)  # a server crash, whatever its cause
    ex._pool[0].proc.wait()
    reqs = [{"id": str(i), "program": GOOD_PROGRAM, "tests": ASSERT_ADD} for i in range(3)]
    assert [r.outcome for r in ex.run(reqs)] == ["passed"] * 3
    pid = ex._pool[0].proc.pid
    time.sleep(0.3)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coderl.sandbox"):
        assert ex.run(reqs)[0].outcome == "passed"
    assert alive(pid) and ex._pool[0].proc.pid == pid, "the restarted server died after the batch"
    assert not [r for r in caplog.records if "lost" in r.getMessage()]


# -- 10. resources that outlive the process -------------------------------------------------------------------

def test_sysv_ipc_objects_do_not_outlive_the_run(executor, after, sandbox_uids):
    key = 0xC0DE0000 + os.getpid() % 0xFFFF  # a fixed key, so that a later run can look the objects up
    create = probe(
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "IPC_CREAT = 0o1000\n"
        f"ids = [libc.shmget({key}, 1 << 20, IPC_CREAT | 0o666), libc.semget({key}, 1, IPC_CREAT | 0o666),\n"
        f"       libc.msgget({key}, IPC_CREAT | 0o666)]\n"
        "_r('created' if min(ids) >= 0 else 'refused')\n"
    )
    lookup = probe(
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"ids = [libc.shmget({key}, 0, 0), libc.semget({key}, 0, 0), libc.msgget({key}, 0)]\n"
        "_r('found' if max(ids) >= 0 else 'gone')\n"
    )
    try:
        for prog in (create, lookup):  # a batch per round so that both workers (most likely) take part
            res = executor.run([{"id": f"i{i}", "program": prog, "tests": ASSERT_ADD} for i in range(2)])
            assert all(r.outcome != "passed" for r in res)
        assert sysv_ipc_objects(sandbox_uids) == [], "SysV IPC objects of the sandbox uid outlived the run"
        assert {summary(r) for r in res} == {"gone"}, "a later run found the IPC objects of an earlier one"
        after.check()
    finally:
        remove_sysv_ipc([o for o in sysv_ipc_objects(sandbox_uids) if o not in after.ipc])
