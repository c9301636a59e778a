"""Operating-system mechanisms used by the fork server and its children.

Everything here degrades rather than fails: each mechanism reports whether it took effect, and the
executor surfaces that list (``coderl exec --explain`` and a log line) so a weaker sandbox is never silent.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import stat
from dataclasses import dataclass, field

from coderl.sandbox import seccomp

# The whole environment a program sees (plus HOME and TMPDIR at its run directory). It lives here rather than in
# the server so that the executor can read it without importing the server's harness (and with it numpy).
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
             "PYTHONIOENCODING": "utf-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1"}

_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWIPC = 0x08000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1

# Directories any uid may write to on a usual Linux system; each gets a private, size-capped tmpfs
# in the server's mount namespace so nothing a program leaves there reaches the host.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# Top-level entries of those tmpfs that are not a run's leftovers (a Python installation bind-mounted back,
# read-only, when it lives under /tmp): never removed when the directories are wiped.
KEPT_IN_SHARED: set[str] = set()


def _under(top: str, paths: list[str]) -> list[str]:
    """The existing directories among ``paths`` strictly below ``top``, without those inside another one."""
    found = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    inside = [p for p in found if p.startswith(top.rstrip("/") + "/")]
    return [p for p in inside if not any(p != q and p.startswith(q + "/") for q in inside)]

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    _check(_libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PDEATHSIG)")


@dataclass
class Protections:
    """What the server managed to set up; sent to the executor and shown by ``--explain``."""

    active: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def ok(self, name: str, how: str) -> None:
        self.active[name] = how

    def fail(self, name: str, why: str) -> None:
        self.missing[name] = why


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _remount_readonly(skip_prefixes: tuple[str, ...]) -> tuple[int, int]:
    """Make every ordinary mount read-only inside our private mount namespace. Returns (done, failed)."""
    virtual = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "devtmpfs", "debugfs", "tracefs",
               "securityfs", "pstore", "bpf", "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "autofs",
               "efivarfs", "nsfs", "rpc_pipefs"}
    done = failed = 0
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        left, _, right = line.partition(" - ")
        parts = left.split()
        mnt = parts[4].replace("\\040", " ")
        opts = parts[5].split(",")
        fstype = right.split()[0] if right else ""
        if fstype in virtual or mnt.startswith(("/proc", "/sys")) or mnt == "/dev":
            continue
        if any(mnt == p or mnt.startswith(p + "/") for p in skip_prefixes):
            continue
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
        if "nosuid" in opts:
            flags |= _MS_NOSUID
        if "nodev" in opts:
            flags |= _MS_NODEV
        try:
            mount(None, mnt, None, flags, None)
            done += 1
        except OSError:
            failed += 1
    return done, failed


def _blocked_ancestor(path: str) -> str | None:
    """First directory on the way to ``path`` (itself included) that others may not traverse."""
    cur = ""
    for comp in os.path.abspath(path).split("/")[1:]:
        cur = f"{cur}/{comp}"
        try:
            st = os.stat(cur)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o001:
            return cur
    return None


def expose_paths(paths: list[str]) -> list[str]:
    """Make ``paths`` reachable for an unprivileged uid inside our mount namespace.

    A Python installed under ``/root`` (pyenv, conda) is invisible to the dedicated uid because ``/root`` is
    mode 700. Changing the mode would change the host, so instead a tmpfs (mode 755) is mounted over the
    blocking directory and only the entries on the way to ``paths`` are bind-mounted back into it (through
    ``/proc/self/fd`` handles opened before the tmpfs hid them). Everything else there stays hidden.
    Returns the directories that were re-exposed.
    """
    exposed: list[str] = []
    for _ in range(16):
        blocked: dict[str, set[str]] = {}
        for p in paths:
            a = _blocked_ancestor(p)
            if a is not None:
                rel = os.path.relpath(os.path.abspath(p), a)
                names = blocked.setdefault(a, set())
                if rel == ".":
                    names.update(os.listdir(a))
                else:
                    names.add(rel.split("/")[0])
        if not blocked:
            return exposed
        for a, names in blocked.items():
            links = {n: os.readlink(os.path.join(a, n)) for n in names if os.path.islink(os.path.join(a, n))}
            fds = {n: os.open(os.path.join(a, n), os.O_PATH | os.O_NOFOLLOW) for n in sorted(names)
                   if n not in links and os.path.lexists(os.path.join(a, n))}
            mount("coderl", a, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m,mode=755")
            for n, target in links.items():
                os.symlink(target, os.path.join(a, n))
            for n, fd in fds.items():
                target = os.path.join(a, n)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.mkdir(target)
                else:
                    open(target, "w").close()
                mount(f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC, None)
                os.close(fd)
            exposed.append(a)
    return exposed


def setup_server(prot: Protections, base_dir: str, tmpfs_mb: int, expose: list[str] | None = None) -> None:
    """Called once in the fork server before it pre-imports anything: namespaces and filesystem view.

    As root: a new network namespace (no interfaces up, so no network at all) and a new mount namespace
    with private tmpfs over the shared writable directories and everything else read-only.
    Not root: the same through a user namespace when the kernel allows it.
    """
    uid, gid = os.getuid(), os.getgid()
    root = uid == 0
    try:
        if root:
            unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC)
        else:
            unshare(_CLONE_NEWUSER | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
            _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
        prot.ok("network namespace", "new empty network namespace (no interfaces up); private IPC namespace")
        ns_ok = True
    except OSError as e:
        prot.fail("network namespace", f"unshare failed ({e.strerror}); programs can reach the network")
        prot.fail("private filesystem", "no mount namespace; programs may write wherever the uid may")
        ns_ok = False
    if ns_ok:
        try:
            mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
            covered = []
            for d in SHARED_WRITABLE:
                if os.path.isdir(d) and not os.path.islink(d):
                    kept = _under(d, expose or [])
                    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in kept}
                    mount("coderl", d, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={tmpfs_mb}m,mode=1777")
                    for p, fd in fds.items():  # a Python installation under /tmp stays importable, read-only
                        os.makedirs(p, mode=0o755, exist_ok=True)
                        mount(f"/proc/self/fd/{fd}", p, None, _MS_BIND | _MS_REC, None)
                        mount(None, p, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, None)
                        os.close(fd)
                        KEPT_IN_SHARED.add(os.path.relpath(p, d).split("/")[0])
                    covered.append(d)
            if root and expose:
                for a in expose_paths(expose):
                    prot.ok(f"exposed {a}", "tmpfs over it; only the Python installation bind-mounted back")
            done, failed = _remount_readonly(tuple(covered))
            how = f"private tmpfs ({tmpfs_mb} MB) on {', '.join(covered)}; {done} other mounts read-only"
            if failed:
                how += f" ({failed} could not be remounted)"
            prot.ok("private filesystem", how)
        except OSError as e:
            prot.fail("private filesystem", f"mount setup failed ({e.strerror})")
    os.makedirs(base_dir, exist_ok=True)
    os.chmod(base_dir, 0o711)


def new_pid_namespace(prot: Protections) -> bool:
    """Put the server's *next* child (the zygote) into a new PID namespace, as its process 1."""
    try:
        unshare(_CLONE_NEWPID)
    except OSError as e:
        prot.fail("pid namespace", f"unshare failed ({e.strerror}); runs can list the host's processes")
        return False
    return True


DEV_NODES = ("null", "zero", "full", "random", "urandom")


def private_proc_dev_sys(pid_namespace: bool) -> dict[str, str]:
    """In the zygote, before it forks any run: its own mount namespace in which /proc belongs to its PID
    namespace and is read-only, /sys is read-only, and /dev is a read-only tmpfs holding only null, zero,
    full, random, urandom, the private /dev/shm and the fd links. Returns {protection: how} for what took
    effect, and {"!" + protection: why} for what did not."""
    done: dict[str, str] = {}
    try:
        unshare(_CLONE_NEWNS)
        mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    except OSError as e:
        return {"!private /proc, /dev, /sys": f"no mount namespace for the zygote ({e.strerror})"}
    ro = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC | _MS_RDONLY
    if pid_namespace:
        try:
            mount("proc", "/proc", "proc", ro, None)
            done["pid namespace"] = "runs are alone in a PID namespace (the zygote is its process 1) with a " \
                                    "read-only /proc of their own: no host process is visible"
        except OSError as e:
            done["!pid namespace"] = f"a /proc for the namespace could not be mounted ({e.strerror})"
    if "pid namespace" not in done:
        try:
            mount(None, "/proc", None, _MS_REMOUNT | _MS_BIND | ro, None)
        except OSError as e:
            done["!private /proc, /dev, /sys"] = f"/proc stays writable ({e.strerror})"
            return done
    try:
        for mnt in _mounts_under("/sys"):
            mount(None, mnt, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
        _minimal_dev()
    except OSError as e:
        done["!private /proc, /dev, /sys"] = f"could not set up ({e.strerror})"
        return done
    done["private /proc, /dev, /sys"] = "/proc and /sys read-only; /dev a read-only tmpfs with only " \
                                        + ", ".join(DEV_NODES) + ", shm and the fd links"
    return done


def _mounts_under(top: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return sorted({p for p in points if p == top or p.startswith(top + "/")}, key=len)


def _minimal_dev() -> None:
    nodes = {n: os.open(f"/dev/{n}", os.O_PATH | os.O_NOFOLLOW) for n in DEV_NODES if os.path.exists(f"/dev/{n}")}
    shm = os.open("/dev/shm", os.O_PATH | os.O_DIRECTORY) if os.path.isdir("/dev/shm") else None
    mount("coderl", "/dev", "tmpfs", _MS_NOSUID | _MS_NOEXEC, "size=64k,mode=755")
    for n, fd in nodes.items():
        open(f"/dev/{n}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"/dev/{n}", None, _MS_BIND, None)
        os.close(fd)
    if shm is not None:
        os.mkdir("/dev/shm")
        mount(f"/proc/self/fd/{shm}", "/dev/shm", None, _MS_BIND | _MS_REC, None)
        os.close(shm)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")
    mount(None, "/dev", None, _MS_REMOUNT | _MS_NOSUID | _MS_NOEXEC | _MS_RDONLY, "size=64k,mode=755")


def setup_child_limits(memory_mb: int, cpu_seconds: int, file_mb: int, nofile: int, nproc: int | None) -> None:
    """rlimits for the child; called after fork and before dropping privileges."""
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mb, memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * mb, file_mb * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:  # counts every process of the uid, so only meaningful for a dedicated one
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def install_seccomp(prot_ok: bool) -> None:
    if prot_ok:
        seccomp.install(os.getpid())


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (a backstop for escaped children when seccomp is off)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def clean_dir(path: str, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove the contents of ``path`` (not the directory itself), except the entries named in ``keep``, without
    following links: shutil.rmtree walks through directory descriptors and checks that each directory it
    enters is the one it listed, so entries swapped for symlinks meanwhile lead nowhere."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for e in entries:
        if e.name in keep:
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
        except OSError:
            pass
