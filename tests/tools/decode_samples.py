#!/usr/bin/env python3
"""Replays samples/ntb/cases.txt through the real `wwan-dp decode ntb` binary and compares its
JSON Lines with the expected files (written by samples/ntb/make_samples.py from its own layout,
not from the decoder). Also checks the documented exit statuses."""
import json
import os
import subprocess
import sys

exe, samples = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = 0


def run(args, stdin=None):
    return subprocess.run([exe, "decode", "ntb"] + args, cwd=samples, input=stdin,
                          capture_output=True, timeout=30)


with open(os.path.join(samples, "cases.txt")) as f:
    cases = [line.split() for line in f if line.strip() and not line.startswith("#")]
assert cases, "no cases"
for expected_file, *args in cases:
    p = run(args)
    with open(os.path.join(samples, expected_file)) as f:
        expected = [json.loads(line) for line in f]
    got = [json.loads(line) for line in p.stdout.decode().splitlines()]
    if p.returncode != 0 or got != expected:
        failures += 1
        print(f"FAIL {' '.join(args)} (exit {p.returncode})\n  expected {expected}\n  got      {got}\n  stderr {p.stderr!r}")
    else:
        print(f"ok   {' '.join(args)}")

# stdin and --hex give the same answer as the file
raw = open(os.path.join(samples, "k5160-mbim-ips0.bin"), "rb").read()
by_file = run(["--mbim", "k5160-mbim-ips0.bin"]).stdout
for args, data in ((["--mbim", "-"], raw), (["--mbim", "--hex", "-"], " ".join(f"{b:02x}" for b in raw).encode())):
    p = run(args, data)
    if p.returncode != 0 or p.stdout != by_file:
        failures += 1
        print(f"FAIL stdin {args}: {p.returncode} {p.stdout!r} {p.stderr!r}")

# exit 2 with one line on stderr when the input cannot be read or the usage is wrong
for args in (["does-not-exist.bin"], [], ["--bogus", "x.bin"], ["--hex", "not-an-ntb.bin"]):
    p = run(args)
    lines = p.stderr.decode().strip().splitlines()
    if p.returncode != 2 or len(lines) != 1 or p.stdout:
        failures += 1
        print(f"FAIL usage {args}: exit {p.returncode}, stderr {lines}")
p = run(["--help"])
if p.returncode != 0 or b"JSON Lines" not in p.stdout:
    failures += 1
    print("FAIL --help")

sys.exit(1 if failures else 0)
