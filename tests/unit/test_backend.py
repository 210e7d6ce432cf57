"""The backend interface (lsandbox._backend): both backends offer the same methods with the
same parameters, the platform is chosen in one place, and the typed records read back as
the event dicts ``--events`` writes."""

from __future__ import annotations

import inspect
import sys

import pytest

import lsandbox
from lsandbox import _backend
from lsandbox._backend import Denial, Note, backend, event
from lsandbox.linux import LinuxBackend
from macos import MacBackend
from tests._sandbox import policy

METHODS = ("spawn", "ended", "wait", "explain", "compiled", "doctor")


@pytest.mark.parametrize("impl", [LinuxBackend, MacBackend])
def test_backends_offer_the_protocol(impl):
    for name in METHODS:
        want = inspect.signature(getattr(_backend.Backend, name))
        got = inspect.signature(getattr(impl, name))
        assert list(got.parameters) == list(want.parameters), (impl, name)
        for p in want.parameters.values():
            assert got.parameters[p.name].kind == p.kind, (impl, name, p.name)
            assert got.parameters[p.name].default == p.default, (impl, name, p.name)


def test_chosen_by_platform_in_one_place(monkeypatch):
    assert backend().name == ("macos" if sys.platform == "darwin" else "linux")
    assert backend() is backend()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert backend().name == "macos"
    assert backend("linux").name == "linux"
    with pytest.raises(lsandbox.PolicyError, match="backend 'windows'"):
        backend("windows")


def test_denial_reads_back_as_the_event_dict():
    raw = {"kind": "network", "op": "socket", "address": "AF_INET stream", "verdict": "deny",
           "rule": "network.enabled = false", "layer": "seccomp", "pid": 7, "process": "curl"}
    d = event(raw)
    assert isinstance(d, Denial) and d.kind == "network" and d.address == "AF_INET stream"
    assert d.to_dict() == raw
    assert d["op"] == "socket" and d.get("layer") == "seccomp" and d.get("path") is None
    assert "layer" in d and d.verdict == "deny"
    assert Denial.from_dict(d.to_dict()) == d
    assert hash(d) == hash(Denial.from_dict(raw))
    assert event({"kind": "note", "text": "t"}) == Note("t")
    assert event({"kind": "other"}) is None


@pytest.mark.parametrize("name", ["linux", "macos"])
def test_explain_is_data(name, tmp_path):
    how = backend(name).explain(policy(cwd=str(tmp_path)))
    assert how.backend == name
    assert set(how.filesystem) == {"read", "write", "deny"}
    assert how.network and how.unix_sockets and how.filesystem_always


def test_macos_doctor_is_data_on_any_platform(tmp_path):
    report = MacBackend().doctor(policy(cwd=str(tmp_path)))
    assert report.backend == "macos" and report.fields
    assert report.fully_enforced == all(f.state != "not enforced" for f in report.fields)
