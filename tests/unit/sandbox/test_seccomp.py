"""The hand-built seccomp filter: its shape, its decisions (run through a small classic-BPF interpreter
with syscall numbers written down here independently of the module), and its effect in a real process."""

from __future__ import annotations

import errno
import json
import os
import platform
import struct

import pytest

from coderl.sandbox import seccomp

ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
EPERM = 0x00050000 | errno.EPERM
EACCES = 0x00050000 | errno.EACCES
ENOSYS = 0x00050000 | errno.ENOSYS
BPF_MAXINSNS = 4096
CLONE_THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes (CLONE_VM|FS|FILES|SIGHAND|THREAD|...)
SIGCHLD = 17
OWN_PID = 4242

ARCHES = {
    "x86_64": {
        "audit": 0xC000003E,
        "allowed": {"read": 0, "write": 1, "openat": 257, "mmap": 9, "close": 3, "exit_group": 231, "futex": 202,
                    "getpid": 39, "rt_sigaction": 13, "mkdir": 83, "unlink": 87},
        "denied": {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "tkill": 200, "ptrace": 101,
                   "setsid": 112, "setpgid": 109, "mount": 165, "unshare": 272, "setns": 308, "bpf": 321,
                   "io_uring_setup": 425, "io_uring_enter": 426, "keyctl": 250, "perf_event_open": 298,
                   "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_open": 434,
                   "pidfd_send_signal": 424, "rt_sigqueueinfo": 129, "chroot": 161, "reboot": 169,
                   "sched_setaffinity": 203},
        "clone": 56, "clone3": 435, "kill": 62, "tgkill": 234, "socket": 41,
    },
    "aarch64": {
        "audit": 0xC00000B7,
        "allowed": {"read": 63, "write": 64, "openat": 56, "mmap": 222, "close": 57, "exit_group": 94,
                    "futex": 98, "getpid": 172},
        "denied": {"execve": 221, "execveat": 281, "tkill": 130, "ptrace": 117, "setsid": 157, "setpgid": 154,
                   "mount": 40, "unshare": 97, "bpf": 280, "io_uring_setup": 425, "keyctl": 219,
                   "process_vm_readv": 270, "pidfd_send_signal": 424, "sched_setaffinity": 122},
        "clone": 220, "clone3": 435, "kill": 129, "tgkill": 131, "socket": 198,
    },
}


def instructions(prog: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("HBBI", prog[i:i + 8]) for i in range(0, len(prog), 8)]


def run_bpf(prog: bytes, nr: int, arch: int, *args: int) -> int:
    """Evaluate the filter on one struct seccomp_data (little-endian) like the kernel would."""
    a = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0x400000, *[x & 0xFFFFFFFFFFFFFFFF for x in a])
    insns = instructions(prog)
    pc, acc = 0, 0
    for _ in range(len(insns) + 1):
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x15:  # BPF_JMP | BPF_JEQ | BPF_K
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x45:  # BPF_JMP | BPF_JSET | BPF_K
            pc += 1 + (jt if acc & k else jf)
        elif code == 0x35:  # BPF_JMP | BPF_JGE | BPF_K
            pc += 1 + (jt if acc >= k else jf)
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        else:
            raise AssertionError(f"opcode {code:#x} at {pc} not expected in this filter")
    raise AssertionError("the filter did not return")


@pytest.fixture(params=sorted(ARCHES))
def arch(request):
    name = request.param
    return name, ARCHES[name], seccomp.build_filter(OWN_PID, name)


def test_filter_shape(arch):
    _, _, prog = arch
    assert len(prog) % 8 == 0
    insns = instructions(prog)
    assert 0 < len(insns) < BPF_MAXINSNS
    assert insns[0] == (0x20, 0, 0, 4), "the first instruction must load the architecture"
    assert insns[-1] == (0x06, 0, 0, ALLOW), "the default must be allow (a deny-list)"
    for pc, (code, jt, jf, _k) in enumerate(insns):
        if code in (0x15, 0x45, 0x35):
            assert pc + 1 + max(jt, jf) < len(insns), f"jump out of the program at {pc}"
        else:
            assert jt == jf == 0


def test_filter_depends_on_the_pid():
    assert seccomp.build_filter(1, "x86_64") != seccomp.build_filter(2, "x86_64")
    assert seccomp.build_filter(7, "x86_64") == seccomp.build_filter(7, "x86_64")


def test_ordinary_calls_are_allowed(arch):
    _, a, prog = arch
    for name, nr in a["allowed"].items():
        assert run_bpf(prog, nr, a["audit"]) == ALLOW, name


def test_denied_calls_fail_with_eperm(arch):
    _, a, prog = arch
    for name, nr in a["denied"].items():
        assert run_bpf(prog, nr, a["audit"]) == EPERM, name


def test_clone_only_for_threads(arch):
    _, a, prog = arch
    assert run_bpf(prog, a["clone"], a["audit"], CLONE_THREAD_FLAGS) == ALLOW
    assert run_bpf(prog, a["clone"], a["audit"], SIGCHLD) == EPERM  # fork() via clone
    assert run_bpf(prog, a["clone"], a["audit"], 0x4111) == EPERM  # CLONE_VM | CLONE_VFORK | SIGCHLD (posix_spawn)
    assert run_bpf(prog, a["clone3"], a["audit"]) == ENOSYS


def test_signals_only_to_itself(arch):
    _, a, prog = arch
    for call in ("kill", "tgkill"):
        assert run_bpf(prog, a[call], a["audit"], OWN_PID, 9) == ALLOW
        for pid in (1, OWN_PID + 1, 0, -1, -OWN_PID):
            assert run_bpf(prog, a[call], a["audit"], pid, 9) == EPERM, (call, pid)


def test_no_sockets_of_any_family(arch):
    _, a, prog = arch
    for family in (1, 2, 10, 16, 17):  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET
        assert run_bpf(prog, a["socket"], a["audit"], family, 1) == EACCES, family


def test_foreign_architecture_is_killed(arch):
    name, a, prog = arch
    for audit in (0x40000003, 0x40000028, ARCHES["aarch64" if name == "x86_64" else "x86_64"]["audit"]):
        assert run_bpf(prog, a["allowed"]["read"], audit) == KILL_PROCESS


def test_x32_syscalls_are_denied():
    prog = seccomp.build_filter(OWN_PID, "x86_64")
    audit = ARCHES["x86_64"]["audit"]
    assert run_bpf(prog, 0x40000000 | 0, audit) == EPERM  # x32 read
    assert run_bpf(prog, 0x40000000 | 57, audit) == EPERM


# -- in a real process ----------------------------------------------------------------------------------------

CHILD_PROBES = r"""
import os, socket, subprocess, threading

def attempt(fn):
    try:
        fn()
        return "ok"
    except BaseException as e:
        return type(e).__name__

def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)

ran = []
def thread():
    t = threading.Thread(target=lambda: ran.append(1))
    t.start()
    t.join()
    assert ran == [1]

def socketpair():
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall(b"x")
    assert b.recv(1) == b"x"

out = {
    "fork": attempt(fork),
    "inet": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
    "inet6": attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)),
    "thread": attempt(thread),
    "socketpair": attempt(socketpair),
    "unix": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)),
    "subprocess": attempt(lambda: subprocess.run(["true"])),
    "kill_parent": attempt(lambda: os.kill(os.getppid(), 0)),
    "kill_self": attempt(lambda: os.kill(os.getpid(), 0)),
    "setsid": attempt(os.setsid),
    "affinity": attempt(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))),
}
"""


@pytest.mark.parametrize("machine", sorted(ARCHES))
def test_prepared_filter_equals_the_built_filter_for_every_pid(machine):
    prepared = seccomp.Prepared(machine)
    for pid in (1, 2, 7, 65535, 4_194_304):  # 2**22 is the largest pid Linux hands out
        assert prepared.filter_for(pid) == seccomp.build_filter(pid, machine)


@pytest.mark.skipif(not seccomp.supported(), reason=f"no seccomp syscall table for {platform.machine()}")
@pytest.mark.parametrize("installer", ["install", "prepared"])
def test_installed_filter_in_a_forked_child(installer):
    prepared = seccomp.Prepared() if installer == "prepared" else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: install, probe, report, never return into pytest
        code = 1
        try:
            os.close(r)
            if prepared is not None:
                prepared.install(os.getpid())
            else:
                seccomp.install(os.getpid())
            ns: dict = {}
            exec(CHILD_PROBES, ns)
            os.write(w, json.dumps(ns["out"]).encode())
            code = 0
        except BaseException as e:
            os.write(w, json.dumps({"error": repr(e)}).encode())
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    out = json.loads(data)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out == {
        "fork": "PermissionError",
        "inet": "PermissionError",
        "inet6": "PermissionError",
        "thread": "ok",
        "socketpair": "ok",
        "unix": "PermissionError",
        "subprocess": "PermissionError",
        "kill_parent": "PermissionError",
        "kill_self": "ok",
        "setsid": "PermissionError",
        "affinity": "PermissionError",
    }
