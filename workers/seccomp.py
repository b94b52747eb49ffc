"""A small seccomp filter for jobs: no new user namespaces.

Creating a user namespace gives a process every capability inside it, and with them the kernel
code paths (mounts, netfilter, ...) behind most local privilege escalations; a training script
never needs one. So ``clone`` and ``unshare`` with ``CLONE_NEWUSER`` fail with EPERM, and
``clone3``, whose flags a filter cannot read, fails with ENOSYS, which makes the C library fall
back to ``clone`` (as Docker's default profile does). System calls of another ABI (32-bit or x32
calls from a 64-bit job) are refused so that they cannot sidestep the filter.

``job_filter()`` returns the compiled classic-BPF program (``struct sock_filter[]``), which
bubblewrap loads with ``--seccomp FD`` and the fallback launcher with ``prctl``.
"""

from __future__ import annotations

import errno
import platform
import struct

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000

# machine: (AUDIT_ARCH_*, {syscall: number})
ARCHITECTURES = {
    "x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "clone3": 435}),
}
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # in struct seccomp_data (little endian)


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def job_filter(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where we have none."""
    known = ARCHITECTURES.get(machine or platform.machine())
    if known is None:
        return None
    arch, numbers = known
    return b"".join(
        [
            _op(BPF_LD_W_ABS, OFFSET_ARCH),  # 0
            _op(BPF_JEQ_K, arch, jt=1),  # 1: our ABI: go to 3
            _op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS),  # 2
            _op(BPF_LD_W_ABS, OFFSET_NR),  # 3
            _op(BPF_JGE_K, X32_SYSCALL_BIT, jf=1),  # 4: x32 call: refuse, else go to 6
            _op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS),  # 5
            _op(BPF_JEQ_K, numbers["clone3"], jf=1),  # 6: clone3: ENOSYS, else go to 8
            _op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS),  # 7
            _op(BPF_JEQ_K, numbers["unshare"], jt=1),  # 8: unshare: check its flags at 10
            _op(BPF_JEQ_K, numbers["clone"], jf=3),  # 9: clone: check flags, else allow (13)
            _op(BPF_LD_W_ABS, OFFSET_ARG0),  # 10: the flags (low 32 bits)
            _op(BPF_JSET_K, CLONE_NEWUSER, jf=1),  # 11: a new user namespace: refuse
            _op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM),  # 12
            _op(BPF_RET_K, SECCOMP_RET_ALLOW),  # 13
        ]
    )
