"""The child's typed report records (``lsandbox.linux._reports``): what the supervisor decodes
is what the child sent, each record fits one atomic pipe write, and garbage is not a report."""

from __future__ import annotations

import os

from lsandbox.linux._reports import (
    KINDS,
    MAX_TEXT,
    Kind,
    Report,
    Step,
    decode,
    encode,
    read_all,
    send,
)


def test_round_trip_of_every_kind():
    sent = [Report(k, Step.RESTRICT, 13, -5, f"text {k} ü") for k in sorted(KINDS)]
    assert decode(b"".join(encode(r) for r in sent)) == sent


def test_a_record_is_one_line_and_fits_pipe_buf():
    data = encode(Report(Kind.SETUP, Step.NAMESPACES, 1, 0, "a\nb" + "x" * 10000))
    assert len(data) <= 4096 and len(data) - MAX_TEXT <= 96
    (r,) = decode(data)
    assert r.text.startswith("a b") and "\n" not in r.text


def test_truncated_tail_and_unknown_kinds_are_dropped():
    good = encode(Report(Kind.STATUS, value=256))
    unknown = bytes([200]) + encode(Report(Kind.NOTE))[1:]
    assert decode(good + unknown + good[:5]) == [Report(Kind.STATUS, value=256)]


def test_send_and_read_all_over_a_pipe():
    r, w = os.pipe()
    send(w, Kind.EXEC, step=Step.EXEC, errno=2, text="nope: No such file or directory")
    send(w, Kind.RESTRICTED, value=1234)
    os.close(w)
    assert read_all(r) == [Report(Kind.EXEC, Step.EXEC, 2, 0, "nope: No such file or directory"),
                           Report(Kind.RESTRICTED, value=1234)]
