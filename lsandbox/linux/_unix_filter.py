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

The launcher path uses ``_socket`` (the C module) rather than ``socket``, whose Python
wrapper imports ``selectors``, ``array`` and enum classes at every ``lsandbox run``, for two
calls written out here (:func:`send_fd`, :func:`recv_fds`).
"""

from __future__ import annotations

import _socket
import functools
import os
import struct

import seccomp_bpf as sb

BROKERED = ("connect", "bind", "sendto", "sendmsg", "sendmmsg")  # with datagrams=True


@functools.cache  # pure; Programs are immutable
def build_notify_filter(arch: str, *, datagrams: bool = False,
                        extra: tuple[sb.Rule, ...] = ()) -> sb.Program:
    """Filter B. ``datagrams=True`` also brokers ``sendmsg``/``sendmmsg``; it needs the
    listener handed over with :func:`install_and_hand_over` (filter B then holds the
    launcher's own ``sendmsg``). Without it, AF_UNIX datagram destinations in ``sendmsg``
    are unchecked, so the launcher must refuse AF_UNIX datagram sockets in filter A
    (``SOCK_DGRAM`` *and* ``SOCK_RAW``, which AF_UNIX turns into a datagram socket).
    ``extra``: rules for other calls (``_refusals``: refused socket calls, reported)."""
    rules = [
        sb.Rule("connect", sb.USER_NOTIF),
        sb.Rule("bind", sb.USER_NOTIF),
        sb.Rule("sendto", sb.ALLOW, (sb.Arg(4).eq(0),)),
        sb.Rule("sendto", sb.USER_NOTIF),
    ]
    if datagrams:
        rules += [sb.Rule("sendmsg", sb.USER_NOTIF), sb.Rule("sendmmsg", sb.USER_NOTIF)]
    rules += extra
    return sb.compile_filter(sb.Filter(arch, tuple(rules), sb.ALLOW))


def send_fd(sock: _socket.socket, fd: int) -> None:
    """Send ``fd`` (SCM_RIGHTS) with a one-byte message (``socket.send_fds``)."""
    sock.sendmsg([b"L"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("=i", fd))])


def recv_fds(sock: _socket.socket, maxfds: int) -> tuple[bytes, list[int]]:
    """Receive a message and the fds it carries (``socket.recv_fds``); a truncated control
    message loses nothing silently: the fds that did arrive are returned (and must be closed
    by the caller). They arrive close-on-exec (not inheritable, as every descriptor Python
    makes): the seccomp listener held by a program the caller runs (``os.system``,
    ``close_fds=False``) would let it answer the sandbox's notified calls with CONTINUE."""
    msg, ancdata, _flags, _addr = sock.recvmsg(16, _socket.CMSG_SPACE(maxfds * 4), _socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(struct.unpack(f"={usable // 4}i", data[:usable]))
    return msg, fds


def install_and_hand_over(program: sb.Program | bytes, sock: _socket.socket, *, flags: int = 0,
                          brokers_sendmsg: bool = True) -> None:
    """Install filter B on the calling thread and send its listener over ``sock``
    (SCM_RIGHTS), keeping no copy.

    With ``brokers_sendmsg`` (filter B built with ``datagrams=True``) filter B holds
    ``sendmsg`` until a broker serves it, and the broker is not running yet, so the send
    happens in a thread created *before* the install (seccomp filters are per-thread; a
    thread inherits its creator's filters at creation). The thread is joined before
    returning; at ``execve`` only the calling thread's filters survive, which is the thread
    that installed B. Without it ``sendmsg`` passes filter B and the calling thread sends
    the listener itself (no thread on the launch path when none is needed).
    """
    if not brokers_sendmsg:
        fd = sb.install_filter(program, flags=sb.FLAG_NEW_LISTENER | flags)
        assert fd is not None
        try:
            send_fd(sock, fd)
        finally:
            os.close(fd)
        return
    import threading  # only here: the launch path has no thread of its own otherwise

    ready = threading.Event()
    box: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        ready.wait()
        try:
            if box:
                send_fd(sock, box[0])
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
