#!/usr/bin/env python3
"""nginx's error log without client addresses.

nginx names the client in every error line about a connection ("..., client: 203.0.113.5,
server: ...") and no setting changes that. So youthhub.conf sends the error log as syslog
datagrams to a local Unix socket, and this program masks every IPv4/IPv6 address (the same
rule as youthhub/privacy.py: anything that parses as an address becomes "[address]") before a
line is written anywhere:

    errorlog.py SOCKET [--output FILE]     # default output: standard output (the journal)

Standard library only, so it runs under any python3 (deploy/cluster starts one; in production
deploy/nginx/youthhub-nginx-errorlog.service does). Datagrams are never blocking for nginx: if
this program is not running, nginx drops the lines instead of writing them to disk.
"""

import argparse
import ipaddress
import os
import re
import signal
import socket
import sys
import time

# The pattern of youthhub/privacy.py (kept in step by tests/test_cluster.py).
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])"
_IPV6 = r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"
ADDRESS_RE = re.compile(f"{_IPV4}|{_IPV6}")
# "<PRI>" (facility * 8 + severity), then with `nohostname` "Mmm dd hh:mm:ss TAG: message".
SYSLOG_RE = re.compile(r"^<(\d{1,3})>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?(?:[\w.-]+: )?")
SEVERITIES = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"]
# nginx's own prefix: "2026/11/23 05:59:04 [error] 510#510: ".
NGINX_PREFIX_RE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[")


def _mask(match: re.Match) -> str:
    try:
        ipaddress.ip_address(match.group(0))
    except ValueError:
        return match.group(0)  # a time (12:30:15) or a version, not an address
    return "[address]"


def redact(text: str) -> str:
    return ADDRESS_RE.sub(_mask, text)


def format_line(datagram: bytes) -> str:
    """One syslog datagram from nginx as one log line, addresses masked. nginx's message
    starts with its time and level; anything else gets them put in front."""
    text = datagram.decode("utf-8", errors="replace").rstrip("\n")
    severity = "-"
    match = SYSLOG_RE.match(text)
    if match:
        severity = SEVERITIES[int(match.group(1)) % 8]
        text = text[match.end() :]
    text = " ".join(text.splitlines())  # one datagram, one line
    if not NGINX_PREFIX_RE.match(text):
        text = f"{time.strftime('%Y/%m/%d %H:%M:%S')} [{severity}] {text}"
    return redact(text) + "\n"


def serve(path: str, output) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old_umask = os.umask(0o117)  # nginx's workers (same user or group) may write, nobody else
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            output.write(format_line(sock.recv(65536)))
            output.flush()
    finally:
        sock.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="the Unix datagram socket nginx's error_log points at")
    parser.add_argument("--output", help="append to this file (default: standard output)")
    args = parser.parse_args(argv)
    if args.output:
        with open(args.output, "a", buffering=1) as output:
            serve(args.socket, output)
    else:
        serve(args.socket, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
