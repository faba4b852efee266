#!/usr/bin/env bash
# Make sure the real Prometheus, promtool, Alertmanager and amtool are installed.
# They come from Debian's packages `prometheus` and `prometheus-alertmanager`.
# On Debian or Ubuntu as root we install them (and say so); elsewhere we name
# what to install and fail, because tests and native mode need the real tools.
#
# With --unless-docker (what `make up` passes) nothing is needed when a Docker
# engine answers: the stack then runs in containers.
set -euo pipefail

if [ "${1:-}" = "--unless-docker" ] && command -v docker >/dev/null 2>&1 \
  && timeout 5 docker info >/dev/null 2>&1; then
  exit 0
fi

need=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ ${#need[@]} -eq 0 ] && exit 0

if [ -r /etc/debian_version ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "meshwatch: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian's postinst may try to start the services; we run our own instances.
  echo "meshwatch: installed ${need[*]}"
  exit 0
fi
echo "meshwatch: missing ${need[*]}." >&2
echo "  On Debian/Ubuntu: sudo apt-get install --no-install-recommends ${need[*]}" >&2
echo "  Elsewhere: install Prometheus (with promtool) and Alertmanager (with amtool) >= 2.42 / 0.25" >&2
echo "  and put them on PATH (the Alertmanager binary may be named alertmanager)." >&2
exit 1
