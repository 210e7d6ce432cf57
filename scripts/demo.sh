#!/usr/bin/env bash
# The README's first command ends here: a real sandboxed run in a throwaway git workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
L="$PWD/.venv/bin/lsandbox"
ws=$(mktemp -d /var/tmp/lsandbox-demo-XXXXXX)
outside=$(mktemp -d /var/tmp/lsandbox-demo-outside-XXXXXX)
trap 'rm -rf "$ws" "$outside"' EXIT
git -C "$ws" init -q
git -C "$ws" -c user.email=demo@example.com -c user.name=demo commit -q --allow-empty -m "demo repo"
cd "$ws"

echo "== the effective policy (profile :workspace, rooted at $ws)"
"$L" explain | sed 's/^/   /'
echo
echo "== a sandboxed shell tries a few things"
"$L" run --log-denials -- sh -c "
  try() { if sh -c \"\$2\" >/dev/null 2>&1; then echo \"   allowed: \$1\"; else echo \"   DENIED:  \$1\"; fi; }
  try 'write a file in the workspace'        'echo hi > notes.txt'
  try 'write outside the workspace'          'echo hi > $outside/x'
  try 'plant a git hook (.git is read-only)' 'echo evil > .git/hooks/pre-commit'
  try 'git log'                              'git log --oneline'
  try 'open a TCP socket (network is off)'   'python3 -c \"import socket; socket.socket()\"'
  try 'connect to an unlisted unix socket'   'python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect(\\\"/run/docker.sock\\\")\"'
  try 'use the sandbox-local socket dir'     'test -w \"\$LSANDBOX_SOCKET_DIR\"'
"
echo
echo "demo done: lsandbox run -- CMD runs any command like this."
