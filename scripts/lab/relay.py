#!/usr/bin/env python3
"""The edge lab's delaying relay: an IPv4 packet switch between network
namespaces that holds every packet for the one-way delay configured between
its source and destination. netem is not available in this kernel, and a
TCP-level proxy cannot delay the kernel's handshake, so the delay is applied
to packets: each namespace gets a TUN device whose other end is this process.
A TCP connect (an agent's RTT probe) and an HTTP request therefore see the
same delay.

Config (JSON file, argv[1]):
  {"prefix": 16, "ifaces": [{"name": "olt-a", "ns": "olab-s-a", "ip": "10.77.1.1"}, ...],
   "delayMs": {"10.77.1.1": {"10.77.2.1": 2.5}}}   # one-way ms, src -> dst
Prints "ready" once every device is up; SIGTERM closes the devices.
(Python because creating a TUN device needs an ioctl, which Node.js lacks.)
"""
import ctypes
import fcntl
import heapq
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
PR_SET_TIMERSLACK = 29


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def open_tun(name, ns, ip, prefix):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    run = ["ip"]
    if ns:
        sh("ip", "link", "set", name, "netns", ns)
        run = ["ip", "netns", "exec", ns, "ip"]
    sh(*run, "addr", "add", f"{ip}/{prefix}", "dev", name)
    # a large MTU: a 20 KB request crosses as one or two packets, so the
    # relay's per-packet cost does not swamp millisecond delays
    sh(*run, "link", "set", name, "mtu", "65000", "up")
    return fd


def main():
    cfg = json.load(open(sys.argv[1]))
    # wake-ups precise to microseconds, not the default 50 us slack of timers
    try:
        ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except OSError:
        pass
    by_ip = {}
    fds = []
    for i in cfg["ifaces"]:
        fd = open_tun(i["name"], i.get("ns"), i["ip"], cfg.get("prefix", 16))
        by_ip[bytes(map(int, i["ip"].split(".")))] = fd
        fds.append(fd)
    delay = {}
    for src, row in cfg.get("delayMs", {}).items():
        for dst, ms in row.items():
            delay[(bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))] = ms / 1000.0

    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("ready", flush=True)

    due = []  # (time, seq, fd, packet): seq keeps packets of one flow in order
    seq = 0
    forwarded = dropped = 0
    while not stop:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, fd, pkt = heapq.heappop(due)
            try:
                os.write(fd, pkt)
                forwarded += 1
            except OSError:
                dropped += 1
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        for fd in ready:
            while True:
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if len(pkt) < 20 or pkt[0] >> 4 != 4:
                    continue  # IPv4 only; IPv6 neighbour chatter is dropped
                src, dst = pkt[12:16], pkt[16:20]
                out = by_ip.get(dst)
                if out is None:
                    dropped += 1
                    continue
                seq += 1
                heapq.heappush(due, (time.monotonic() + delay.get((src, dst), 0.0), seq, out, pkt))
    for fd in fds:
        os.close(fd)
    print(f"stopped: forwarded {forwarded}, dropped {dropped}", flush=True)


if __name__ == "__main__":
    main()
