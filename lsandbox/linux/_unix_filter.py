"""Seccomp filter B: every address-bearing socket call goes to the broker.

``connect`` and ``bind`` always notify, whatever the family: the broker performs the call
itself on the target's socket object (``pidfd_getfd``), so nothing it checked is re-run by
the kernel with memory or fds the target changed meanwhile (no CONTINUE; a ``dup2`` of an
AF_UNIX socket onto the fd number of an AF_INET one gains nothing).

Datagrams: ``sendto`` notifies only with a non-NULL address (arg 4), so ``send``/``sendto``
on connected sockets cost nothing. ``sendmsg``/``sendmmsg`` keep their address inside
``msghdr`` in user memory, which BPF cannot read, so with ``datagrams=True`` they always
notify and the broker performs them (payload copied). Note that filter A refusing AF_UNIX
``SOCK_DGRAM`` is not enough on its own: ``socket(AF_UNIX, SOCK_RAW)`` is a datagram socket
too.
"""

from __future__ import annotations

import functools
import os
import socket
import threading

import seccomp_bpf as sb

BROKERED = ("connect", "bind", "sendto", "sendmsg", "sendmmsg")  # with datagrams=True


@functools.cache  # pure; Programs are immutable
def build_notify_filter(arch: str, *, datagrams: bool = False) -> sb.Program:
    """Filter B. ``datagrams=True`` also brokers ``sendmsg``/``sendmmsg``; it needs the
    listener handed over with :func:`install_and_hand_over` (filter B then holds the
    launcher's own ``sendmsg``). Without it, AF_UNIX datagram destinations in ``sendmsg``
    are unchecked, so the launcher must refuse AF_UNIX datagram sockets in filter A
    (``SOCK_DGRAM`` *and* ``SOCK_RAW``, which AF_UNIX turns into a datagram socket)."""
    rules = [
        sb.Rule("connect", sb.USER_NOTIF),
        sb.Rule("bind", sb.USER_NOTIF),
        sb.Rule("sendto", sb.ALLOW, (sb.Arg(4).eq(0),)),
        sb.Rule("sendto", sb.USER_NOTIF),
    ]
    if datagrams:
        rules += [sb.Rule("sendmsg", sb.USER_NOTIF), sb.Rule("sendmmsg", sb.USER_NOTIF)]
    return sb.compile_filter(sb.Filter(arch, rules, sb.ALLOW))


def install_and_hand_over(program: sb.Program, sock: socket.socket, *, flags: int = 0,
                          sendmsg_brokered: bool = True) -> None:
    """Install filter B on the calling thread and send its listener over ``sock``
    (SCM_RIGHTS), keeping no copy.

    Filter B holds ``sendmsg`` until a broker serves it, and the broker is not running yet,
    so the send happens in a thread created *before* the install (seccomp filters are
    per-thread; a thread inherits its creator's filters at creation). The thread is joined
    before returning; at ``execve`` only the calling thread's filters survive, which is the
    thread that installed B. When filter B leaves ``sendmsg`` alone (``datagrams=False``,
    ``sendmsg_brokered=False``), the installing thread sends it itself: no thread, ~0.5 ms
    less per launch.
    """
    if not sendmsg_brokered:
        fd = sb.install_filter(program, flags=sb.FLAG_NEW_LISTENER | flags)
        assert fd is not None
        try:
            socket.send_fds(sock, [b"L"], [fd])
        finally:
            os.close(fd)
        return
    ready = threading.Event()
    box: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        ready.wait()
        try:
            if box:
                socket.send_fds(sock, [b"L"], box)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)

    t = threading.Thread(target=sender, name="lsandbox-listener-handover")
    t.start()
    try:
        fd = sb.install_filter(program, flags=sb.FLAG_NEW_LISTENER | flags)
        assert fd is not None
        box.append(fd)
    finally:
        ready.set()
        t.join()
    os.close(box[0])
    if errors:
        raise errors[0]
