#!/usr/bin/env python3
"""A tickfeed client in Python (the `websockets` library): subscribes,
checks the conflation invariant on every tick, and reconnects, resuming
where it stopped with `from` and `epoch` (docs/protocol.md).

    /usr/bin/python3 examples/python/subscribe.py ws://127.0.0.1:8080/ws --symbols AAPL,MSFT --count 5000

Needs websockets 10 or later: Debian's `python3-websockets` for
/usr/bin/python3, or `pip install websockets` in a virtual environment.
With tokens, set TICKFEED_TOKEN. Prints one JSON summary line and exits 0
after --count ticks or --seconds, 1 when the invariant breaks, 2 when the
server refuses the subscription, 3 when it stays unreachable.

Python's int is unbounded, so `ts` (nanoseconds, above 2**53) and `seq`
arrive exact.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse

import websockets

RECONNECT_GIVE_UP_S = 30.0
"""How long to keep retrying a server that does not answer."""


class Violation(Exception):
    """The invariant broke: the server lost or invented updates."""


class Stream:
    """What the client holds across connections: the epoch of its seqs and
    the last seq of each symbol, which make the next subscribe a resume."""

    def __init__(self):
        self.epoch = None
        self.last_seq = {}
        self.ticks = 0
        self.snapshots = 0
        self.reconnects = 0
        self.resumed = 0
        self.lost = 0
        self.connections = 0

    def hello(self, event):
        self.connections += 1
        self.reconnects = self.connections - 1
        if event["epoch"] != self.epoch:
            # A new seq space (the server restarted): old seqs mean nothing.
            self.epoch = event["epoch"]
            self.last_seq.clear()

    def subscribe_request(self, symbols):
        request = {"op": "subscribe", "id": 1, "symbols": symbols}
        if self.last_seq:
            request["epoch"] = self.epoch
            request["from"] = dict(self.last_seq)
        return request

    def ack(self, event):
        for sym, lost in (event.get("resumed") or {}).items():
            if lost is None:
                self.last_seq.pop(sym, None)  # a snapshot follows instead
            else:
                self.resumed += 1
                self.lost += lost

    def tick(self, event):
        sym, seq, n = event["sym"], event["seq"], event["n"]
        snap = event.get("snap", False)
        prev = self.last_seq.get(sym)
        if prev is not None:
            if seq < prev:
                raise Violation(f"{sym}: seq went back from {prev} to {seq}")
            if not snap and seq - prev - 1 != n:
                raise Violation(f"{sym}: seq {prev} then {seq} with n={n}")
        self.last_seq[sym] = seq
        if snap:
            self.snapshots += 1
        else:
            self.ticks += 1

    def summary(self):
        return {
            "client": "python",
            "ticks": self.ticks,
            "snapshots": self.snapshots,
            "reconnects": self.reconnects,
            "resumed": self.resumed,
            "lost": self.lost,
        }


async def stream_once(url, symbols, stream, done):
    """One connection: hello, subscribe (or resume), then ticks until
    `done()` or the connection drops."""
    # A small receive queue: the server's flow control sees what the
    # application has read (docs/protocol.md, "Flow control").
    async with websockets.connect(url, max_queue=4, open_timeout=10) as ws:
        for event in json.loads(await ws.recv()):
            if event["ev"] == "hello":
                stream.hello(event)
        await ws.send(json.dumps(stream.subscribe_request(symbols)))
        while not done():
            for event in json.loads(await ws.recv()):
                kind = event["ev"]
                if kind == "tick":
                    stream.tick(event)
                elif kind == "ack" and event.get("id") == 1:
                    stream.ack(event)
                elif kind == "error":
                    print(f"server refused: {event}", file=sys.stderr)
                    if event["code"] != "unknown_symbol":
                        raise SystemExit(2)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="e.g. ws://127.0.0.1:8080/ws")
    parser.add_argument("--symbols", default="*", help="comma-separated, or * (default)")
    parser.add_argument("--count", type=int, default=10_000, help="stop after this many ticks")
    parser.add_argument("--seconds", type=float, default=60.0, help="or after this long")
    args = parser.parse_args()
    url = args.url
    if os.environ.get("TICKFEED_TOKEN"):
        separator = "&" if "?" in url else "?"
        url += separator + urllib.parse.urlencode({"token": os.environ["TICKFEED_TOKEN"]})
    symbols = args.symbols.split(",")

    stream = Stream()
    deadline = time.monotonic() + args.seconds
    done = lambda: stream.ticks >= args.count or time.monotonic() >= deadline
    delay, unreachable_since = 0.1, None
    while not done():
        connections = stream.connections
        try:
            await asyncio.wait_for(stream_once(url, symbols, stream, done), deadline - time.monotonic())
        except Violation as violation:
            print(f"invariant broken: {violation}", file=sys.stderr)
            print(json.dumps(stream.summary()))
            return 1
        except asyncio.TimeoutError:
            break
        except (OSError, websockets.WebSocketException) as error:
            now = time.monotonic()
            if stream.connections > connections:  # it was up: start afresh
                delay, unreachable_since = 0.1, now
            unreachable_since = unreachable_since or now
            if now - unreachable_since > RECONNECT_GIVE_UP_S:
                print(f"giving up: {error}", file=sys.stderr)
                return 3
            print(f"connection lost ({error!r}); reconnecting", file=sys.stderr)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    print(json.dumps(stream.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
