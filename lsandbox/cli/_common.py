"""Policy options shared by ``run``, ``explain`` and ``doctor``.

Every flag maps onto a :func:`lsandbox.load_policy` argument, which is also what the config keys
feed: a flag and the equivalent config key cannot drift apart.
"""

from __future__ import annotations

TYPE_CHECKING = False  # the launch path does not import typing; type checkers see True
if TYPE_CHECKING:
    import argparse

    from ..policy import Policy


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("policy")
    g.add_argument("-c", "--config", metavar="CONFIG",
                   help="TOML config (default: ./lsandbox.toml, ~/.config/lsandbox/config.toml, "
                        "~/.codex/config.toml)")
    g.add_argument("-p", "--profile", metavar="PROFILE",
                   help="profile name (default: default_permissions, else :workspace)")
    g.add_argument("-C", "--chdir", metavar="DIR",
                   help="run in DIR and make it the workspace root and $CWD (default: the "
                        "current directory)")
    g.add_argument("-w", "--writable", metavar="DIR", action="append", default=[],
                   help="add a workspace root, an existing directory (= workspace_roots); "
                        "repeatable")
    g.add_argument("--read", metavar="PATH", action="append", default=[],
                   help='make PATH and below readable (= filesystem PATH = "read"); repeatable')
    g.add_argument("--deny", metavar="PATH", action="append", default=[],
                   help='deny PATH and below, even reading (= filesystem PATH = "deny"); repeatable')
    g.add_argument("--allow-unix-socket", metavar="PATH", action="append", default=[],
                   help='allow AF_UNIX sockets at PATH and below (= unix_sockets PATH = "allow")')
    g.add_argument("--allow-domain", metavar="NAME", action="append", default=[],
                   help='reach host NAME (or a pattern: *.example.org) through the filtering '
                        'proxy (= network.domains NAME = "allow")')
    net = g.add_mutually_exclusive_group()
    net.add_argument("--network", dest="network", action="store_true", default=None,
                     help="allow TCP/UDP networking (= network.enabled = true)")
    net.add_argument("--no-network", dest="network", action="store_false",
                     help="deny TCP/UDP networking (= network.enabled = false)")
    env = parser.add_argument_group("environment (= [shell_environment_policy])")
    env.add_argument("--setenv", metavar="NAME=VALUE", action="append", default=[],
                     help="set NAME in the command's environment (= set.NAME); repeatable")
    env.add_argument("--unsetenv", metavar="NAME", action="append", default=[],
                     help="remove NAME, a glob matched without case (= exclude); repeatable")
    env.add_argument("--clearenv", action="store_true",
                     help='start from an empty environment (= inherit = "none")')
    g.add_argument("--requirements", metavar="FILE",
                   help="administrator requirements file (default: $LSANDBOX_REQUIREMENTS, "
                        "/etc/lsandbox/requirements.toml)")


def policy_from_args(args: argparse.Namespace) -> Policy:
    from .._load import load_policy  # here, not at import: `lsandbox --help` stays instant

    return load_policy(
        args.config,
        args.profile,
        cwd=args.chdir,
        writable=args.writable,
        read=args.read,
        deny=args.deny,
        allow_unix_sockets=args.allow_unix_socket,
        allow_domains=args.allow_domain,
        network=args.network,
        requirements=args.requirements,
        setenv=args.setenv,
        unsetenv=args.unsetenv,
        clearenv=args.clearenv,
    )
