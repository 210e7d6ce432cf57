from lsandbox.policy import (
    FilesystemPolicy,
    FsAccess,
    FsRule,
    NetworkPolicy,
    Policy,
    SocketAccess,
    UnixSocketRule,
    is_within,
)


def test_is_within_whole_components():
    assert is_within("/tmp/x", "/tmp")
    assert is_within("/tmp", "/tmp")
    assert not is_within("/tmpfoo", "/tmp")
    assert is_within("/anything", "/")


def test_unix_socket_longest_match():
    net = NetworkPolicy(
        unix_sockets=(
            UnixSocketRule("/tmp", SocketAccess.ALLOW),
            UnixSocketRule("/tmp/x.sock", SocketAccess.NONE),
        )
    )
    assert net.unix_socket_access("/tmp/y.sock") is SocketAccess.ALLOW
    assert net.unix_socket_access("/tmp/x.sock") is SocketAccess.NONE
    assert net.unix_socket_access("/tmp/x.sock/z") is SocketAccess.NONE
    assert net.unix_socket_access("/run/docker.sock") is SocketAccess.NONE


def test_fs_views():
    fs = FilesystemPolicy(
        rules=(
            FsRule("/", FsAccess.READ),
            FsRule("/w", FsAccess.WRITE),
            FsRule("/w/.git", FsAccess.READ),
            FsRule("/home/u/.ssh", FsAccess.DENY),
        )
    )
    assert fs.access("/w/a") is FsAccess.WRITE
    assert fs.access("/w/.git/config") is FsAccess.READ
    assert fs.access("/home/u/.ssh/id") is FsAccess.DENY
    assert fs.read_only == ("/w/.git",)
    assert fs.deny_read == ("/home/u/.ssh",)
    assert Policy(filesystem=fs, name="a") == Policy(filesystem=fs, name="b")
