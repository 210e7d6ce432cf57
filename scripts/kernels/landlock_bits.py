"""Which Landlock access bits the running kernel accepts (fs, net, scope), one line each:
rights newer than the ``landlock`` library show up here (run in the test-kernels guest)."""

import os

from landlock import _bindings as b

for kind, n in (("fs", 24), ("net", 8), ("scope", 8)):
    ok = []
    for bit in range(n):
        args = {"fs": (1 << bit, 0, 0), "net": (0, 1 << bit, 0), "scope": (0, 0, 1 << bit)}[kind]
        try:
            os.close(b.create_ruleset_raw(*args, 24))
            ok.append(bit)
        except OSError:
            pass
    print(kind, ok)
