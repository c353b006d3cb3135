#!/usr/bin/env bash
# Run a command as on a host where pyflow never ran: in a private mount namespace with an
# empty bpffs at /sys/fs/bpf and an empty tmpfs at /run/pyflow. Nothing mounted here is seen
# outside, and everything goes away with the command.
#   scripts/fresh-host.sh make demo
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "fresh-host: needs root (mount namespaces, bpffs)" >&2; exit 2; }
exec unshare --mount --propagation private sh -c '
  mount -t bpf -o mode=0700 bpf /sys/fs/bpf &&
  mkdir -p /run/pyflow && mount -t tmpfs -o mode=0700 tmpfs /run/pyflow &&
  exec "$@"' fresh-host "$@"
