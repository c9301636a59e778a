"""A small seccomp-BPF filter, built by hand so the sandbox needs no compiled dependency.

The filter is installed in each sandboxed child after ``no_new_privs``. It is a deny-list: the programs we run
are ordinary Python, so almost every system call must work, and a deny-list keeps numpy, threads and the
interpreter's own start-up paths intact. What it denies is what a program would need to escape the
per-run clean-up or to touch anything but itself:

* new processes (fork, vfork, clone without ``CLONE_THREAD``, clone3, execve): no daemons, no fork bombs;
* signals to other processes (kill/tgkill other than to itself, tkill, pidfd_send_signal, sigqueue);
* sockets (``socket()`` of any family; ``socketpair()`` stays allowed);
* SysV IPC and POSIX message queues (objects that would outlive the run);
* ptrace and cross-process memory access, namespace and mount changes, setsid/setpgid (leaving the process
  group the parent kills), bpf, io_uring (whose requests bypass seccomp), keyrings, perf, module and
  reboot calls;
* sched_setaffinity: a run stays on its worker's CPU instead of taking time from the runs on another.

Denied calls fail with ``EPERM`` (``ENOSYS`` for clone3, so glibc falls back to clone for threads) rather than
killing the process, so that Python raises a normal exception and the verdict names it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# seccomp_data layout: int nr; u32 arch; u64 ip; u64 args[6]
_OFF_NR = 0
_OFF_ARCH = 4


def _off_arg(i: int) -> int:
    return 16 + 8 * i  # low 32 bits on little-endian machines


_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JSET_K = 0x45
_JGE_K = 0x35
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000

_CLONE_THREAD = 0x00010000

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# Syscall tables for the two architectures we support. Names absent on an arch are simply skipped.
_ARCH = {
    "x86_64": {
        "audit": 0xC000003E,
        "nr": {
            "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
            "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
            "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
            "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
            "setsid": 112, "setpgid": 109,
            "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "pivot_root": 155, "chroot": 161,
            "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "fspick": 433, "mount_setattr": 442,
            "bpf": 321, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "keyctl": 250, "add_key": 248, "request_key": 249, "perf_event_open": 298, "userfaultfd": 323,
            "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "init_module": 175,
            "finit_module": 313, "delete_module": 176, "swapon": 167, "swapoff": 168, "acct": 163,
            "open_by_handle_at": 304, "syslog": 103, "iopl": 172, "ioperm": 173,
            "socket": 41, "sched_setaffinity": 203,
            "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66, "shmdt": 67,
            "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semtimedop": 220, "mq_open": 240,
            "mq_unlink": 241,
        },
        "x32_bit": 0x40000000,
    },
    "aarch64": {
        "audit": 0xC00000B7,
        "nr": {
            "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
            "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
            "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
            "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
            "setsid": 157, "setpgid": 154,
            "mount": 40, "umount2": 39, "unshare": 97, "setns": 268, "pivot_root": 41, "chroot": 51,
            "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
            "fspick": 433, "mount_setattr": 442,
            "bpf": 280, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "keyctl": 219, "add_key": 217, "request_key": 218, "perf_event_open": 241, "userfaultfd": 282,
            "kexec_load": 104, "kexec_file_load": 294, "reboot": 142, "init_module": 105,
            "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225, "acct": 89,
            "open_by_handle_at": 265, "syslog": 116,
            "socket": 198, "sched_setaffinity": 122,
            "mq_open": 180, "mq_unlink": 181, "msgget": 186, "msgctl": 187, "msgrcv": 188, "msgsnd": 189,
            "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193, "shmget": 194, "shmctl": 195,
            "shmat": 196, "shmdt": 197,
        },
        "x32_bit": None,
    },
}

# Denied outright (EPERM). kill/tgkill/clone/clone3/socket get argument-aware rules below.
DENIED = (
    "fork", "vfork", "execve", "execveat", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev",
    "setsid", "setpgid", "mount", "umount2", "unshare", "setns", "pivot_root", "chroot", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "bpf", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key", "perf_event_open",
    "userfaultfd", "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module",
    "delete_module", "swapon", "swapoff", "acct", "open_by_handle_at", "syslog", "iopl", "ioperm",
    # Each worker's runs are pinned to the worker's CPU: moving to another would slow the runs judged there.
    "sched_setaffinity",
    # SysV IPC and POSIX message queues outlive a process; nothing a test program needs.
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd",
    "msgrcv", "msgctl", "mq_open", "mq_unlink",
)


def supported() -> bool:
    """True when this machine's architecture has a syscall table here and the kernel offers seccomp."""
    return platform.machine() in _ARCH and os.path.exists("/proc/self/status")


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build_filter(own_pid: int, machine: str | None = None) -> bytes:
    """Return the BPF program (raw ``sock_filter`` array) for a child whose pid is ``own_pid``.

    The program is a straight list of ``if nr == X`` blocks; every block ends in a return, so jump offsets
    are local and easy to check by eye.
    """
    arch = _ARCH[machine or platform.machine()]
    nr = arch["nr"]
    deny = _RET_ERRNO | errno.EPERM
    prog: list[bytes] = []
    # Wrong architecture (e.g. a 32-bit syscall entry) would make every number below meaningless.
    prog += [_ins(_LD_W_ABS, 0, 0, _OFF_ARCH), _ins(_JEQ_K, 1, 0, arch["audit"]),
             _ins(_RET_K, 0, 0, _RET_KILL_PROCESS)]
    prog.append(_ins(_LD_W_ABS, 0, 0, _OFF_NR))
    if arch["x32_bit"] is not None:
        prog += [_ins(_JGE_K, 0, 1, arch["x32_bit"]), _ins(_RET_K, 0, 0, deny)]
    for name in DENIED:
        if name in nr:
            prog += [_ins(_JEQ_K, 0, 1, nr[name]), _ins(_RET_K, 0, 0, deny)]
    # clone3: ENOSYS so that glibc's pthread_create falls back to clone, which we can inspect.
    prog += [_ins(_JEQ_K, 0, 1, nr["clone3"]), _ins(_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    # clone: threads only.
    prog += [
        _ins(_JEQ_K, 0, 4, nr["clone"]),
        _ins(_LD_W_ABS, 0, 0, _off_arg(0)),
        _ins(_JSET_K, 0, 1, _CLONE_THREAD),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
        _ins(_RET_K, 0, 0, deny),
    ]
    # kill / tgkill: only to itself (Python's os.abort, faulthandler and raise() use these).
    for name in ("kill", "tgkill"):
        prog += [
            _ins(_JEQ_K, 0, 4, nr[name]),
            _ins(_LD_W_ABS, 0, 0, _off_arg(0)),
            _ins(_JEQ_K, 0, 1, own_pid),
            _ins(_RET_K, 0, 0, _RET_ALLOW),
            _ins(_RET_K, 0, 0, deny),
        ]
    # socket: none at all. Network families are pointless in an empty network namespace, and AF_UNIX
    # sockets could connect to host services through world-writable socket files; socketpair() (asyncio's
    # self-pipe) is still allowed.
    prog += [_ins(_JEQ_K, 0, 1, nr["socket"]), _ins(_RET_K, 0, 0, _RET_ERRNO | errno.EACCES)]
    prog.append(_ins(_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc: ctypes.CDLL | None = None


_PID_SENTINEL = 0x7E5A_11ED  # stands for the child's pid in a prepared filter; above any real pid (<= 2**22)


class Prepared:
    """A filter built once in the fork server, so that a child only writes its own pid into it and calls
    prctl (building the program in Python costs a child a millisecond and a few hundred copied pages)."""

    def __init__(self, machine: str | None = None):
        raw = build_filter(_PID_SENTINEL, machine)
        word = struct.pack("<I", _PID_SENTINEL)
        # Each instruction is 8 bytes; the constant k is its last 4. Only k fields may hold the pid.
        self._pid_offsets = [i + 4 for i in range(0, len(raw), 8) if raw[i + 4:i + 8] == word]
        if not self._pid_offsets:
            raise ValueError("the filter has no pid to patch")
        self._buf = ctypes.create_string_buffer(raw, len(raw))
        self._prog = _SockFprog(len(raw) // 8, ctypes.cast(self._buf, ctypes.c_void_p))

    def filter_for(self, own_pid: int) -> bytes:
        """The program as :meth:`install` would load it for ``own_pid`` (for tests)."""
        raw = bytearray(self._buf.raw)
        for off in self._pid_offsets:
            struct.pack_into("<I", raw, off, own_pid)
        return bytes(raw)

    def install(self, own_pid: int) -> None:
        """Set no_new_privs, write ``own_pid`` into the filter and install it (see :func:`install`)."""
        for off in self._pid_offsets:
            struct.pack_into("<I", self._buf, off, own_pid)
        _load(self._prog)


def _libc_handle() -> ctypes.CDLL:
    global _libc
    if _libc is None:  # loaded once in the fork server, inherited by every child
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _load(prog: _SockFprog) -> None:
    libc = _libc_handle()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(NO_NEW_PRIVS): {os.strerror(e)}")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(SECCOMP): {os.strerror(e)}")


def install(own_pid: int) -> None:
    """Set no_new_privs and install the filter on the calling thread (the child is single-threaded here).

    Raises OSError when the kernel refuses; the caller decides whether that is fatal.
    """
    Prepared().install(own_pid)
