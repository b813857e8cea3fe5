#!/usr/bin/env python3
"""Writes the sample transfers in this folder and the JSON Lines `wwan-dp decode ntb` must print.

The expected records are computed here from where this script placed each datagram, not by
running the decoder, so the test that replays them (tests/tools/decode_samples.py) compares two
independent descriptions of the same bytes. Re-run after editing: python3 make_samples.py
"""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
NTH16, NTH32 = b"NCMH", b"ncmh"
cases = []  # (expected file, args...)


def frame(n, tag, src=b"\x00\x1e\x10\x1f\x00\x00", dst=b"\x02\x00\x00\x00\x00\x01"):
    """An Ethernet frame of n bytes carrying an IPv4-looking payload; tag varies the bytes."""
    body = bytes((tag + i) & 0xFF for i in range(n - 14))
    return dst + src + b"\x08\x00" + body


def rec_dg(ntb, fmt, kind, session, offset, length):
    return {"type": "datagram", "ntb": ntb, "format": fmt, "kind": kind, "session": session,
            "offset": offset, "length": length}


def rec_err(ntb, reason):
    return {"type": "error", "ntb": ntb, "reason": reason}


def emit(name, data, records, ntbs, args=(), variant=""):
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(data)
    summary = {"type": "summary", "ntbs": ntbs,
               "datagrams": sum(r["type"] == "datagram" for r in records),
               "errors": sum(r["type"] == "error" for r in records)}
    expected = name + (("." + variant) if variant else "") + ".jsonl"
    with open(os.path.join(HERE, expected), "w") as f:
        for r in records + [summary]:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    cases.append((expected, list(args) + [name + ".bin"]))


def pad_to(buf, off):
    assert len(buf) <= off
    return buf + b"\x00" * (off - len(buf))


# 1. Real: Vodafone K5160 (Huawei OEM) in MBIM mode; NTB32, ips0, an ARP request with no Ethernet
#    header in an IP session (vectors/ncm_ntb.md N1, libmbim-devel 2016-March/000684).
k5160 = bytes.fromhex(
    "6e636d6810000000620000001000000069707300200000000000000000000000320000002e000000000000000000"
    "0000000000010800060400014c549945e5d54f666e960000000000004f666e950000000000000000000000000000"
    "000000000000")
assert len(k5160) == 98
emit("k5160-mbim-ips0", k5160, [rec_dg(0, 32, "ips", 0, 50, 46)], 1, ["--mbim"])
emit("k5160-mbim-ips0", k5160, [rec_err(0, "ndp_mbim_in_ncm")], 1, [], "as-ncm")

# 2. Huawei E3372 NTB16 as in modemmanager-devel 2014-October/001576 (header fields real; the
#    60-byte ARP frame and the 4 trailing bytes are filled in here).
e3372 = NTH16 + struct.pack("<HHHH", 12, 0, 94, 12)
e3372 += b"NCM0" + struct.pack("<HH", 16, 0) + struct.pack("<HHHH", 30, 60, 0, 0)
e3372 = pad_to(e3372, 30) + b"\xff" * 6 + b"\x4c\x54\x99\x45\xe5\xd5\x08\x06" + bytes(46) + bytes(4)
assert len(e3372) == 94
emit("e3372-ncm16-arp", e3372, [rec_dg(0, 16, "ncm", 0, 30, 60)], 1)

# 3. What wwan-dp's main use sees: a Huawei stick in NCM mode after PREFER_NTB32, NDP at the end
#    (the layout Huawei firmware and Windows use), three frames aligned to 4 with remainder 2
#    (IP headers on 4-byte boundaries), zero padding up to the transfer end.
sizes = [98, 1514, 74]
buf = bytearray(NTH32 + struct.pack("<HHII", 16, 0x1234, 0, 0))
entries = []
for i, n in enumerate(sizes):
    while len(buf) % 4 != 2:  # frame at 4n+2 puts its IP header (after 14 bytes) at 4n
        buf += b"\x00"
    entries.append((len(buf), n))
    buf += frame(n, i * 16)
while len(buf) % 4:
    buf += b"\x00"
ndp_at = len(buf)
buf += b"ncm0" + struct.pack("<HHII", 16 + 8 * (len(entries) + 1), 0, 0, 0)
for off, n in entries:
    buf += struct.pack("<II", off, n)
buf += struct.pack("<II", 0, 0)
struct.pack_into("<II", buf, 8, len(buf), ndp_at)
buf += bytes(64)  # device pads its transfer
emit("huawei-ntb32-ndp-at-end", bytes(buf), [rec_dg(0, 32, "ncm", 0, o, n) for o, n in entries], 1)

# 4. Two NTBs in one transfer (Windows-style hosts, and anchors.md §5 #2): an NTB16 then an NTB32.
a = NTH16 + struct.pack("<HHHH", 12, 1, 0, 12) + b"NCM0" + struct.pack("<HH", 16, 0)
a += struct.pack("<HHHH", 28, 60, 0, 0) + frame(60, 1)
a = a[:8] + struct.pack("<H", len(a)) + a[10:]
b = NTH32 + struct.pack("<HHII", 16, 2, 0, 16) + b"ncm0" + struct.pack("<HHII", 40, 0, 0, 0)
b += struct.pack("<IIIIII", 56, 42, 100, 60, 0, 0) + frame(42, 2) + bytes(2) + frame(60, 3)
emit("two-ntbs-one-transfer", a + b, [rec_dg(0, 16, "ncm", 0, 28, 60), rec_dg(1, 32, "ncm", 0, len(a) + 56, 42),
                                      rec_dg(1, 32, "ncm", 0, len(a) + 100, 60)], 2)

# 5. NCM1: CRC-32 after each frame; the second CRC is corrupted.
f1, f2 = frame(60, 7), frame(64, 8)
c = NTH16 + struct.pack("<HHHH", 12, 3, 0, 12) + b"NCM1" + struct.pack("<HH", 20, 0)
c += struct.pack("<HHHHHH", 32, 64, 96, 68, 0, 0)
c = pad_to(c, 32) + f1 + struct.pack("<I", zlib.crc32(f1)) + f2 + struct.pack("<I", zlib.crc32(f2) ^ 0xFF)
emit("ncm1-crc", c, [rec_dg(0, 16, "ncm-crc", 0, 32, 60), rec_dg(0, 16, "ncm-crc", 0, 96, 64)], 1)
emit("ncm1-crc", c, [rec_dg(0, 16, "ncm-crc", 0, 32, 60), rec_err(0, "dpe_crc_mismatch")], 1,
     ["--verify-crc"], "verify-crc")

# 6. Malformed, the CVE-2026-23447/23448 shape: NDP wLength runs past wBlockLength while the
#    transfer goes on. Nothing may be delivered.
m = NTH16 + struct.pack("<HHHH", 12, 4, 48, 12) + b"NCM0" + struct.pack("<HH", 0x40, 0)
m += struct.pack("<HHHH", 28, 20, 0, 0) + frame(20, 4) + bytes(100)
emit("malformed-ndp-exceeds-block", m, [rec_err(0, "ndp_exceeds_block")], 1)

# 7. Malformed entries among good ones: an index+length that wraps in 32 bits, one that overlaps
#    the NTH, then a good datagram; and no null terminator.
w = NTH32 + struct.pack("<HHII", 16, 5, 0, 16) + b"ncm0" + struct.pack("<HHII", 40, 0, 0, 0)
w += struct.pack("<IIIIII", 0xFFFFFFF0, 0x20, 4, 40, 56, 60) + frame(60, 5)
emit("malformed-entries", w, [rec_err(0, "dpe_out_of_block"), rec_err(0, "dpe_overlaps_header"),
                              rec_dg(0, 32, "ncm", 0, 56, 60), rec_err(0, "ndp_missing_terminator")], 1)

# 8. Not an NTB at all (what a modem in the wrong mode sends: here an AT response).
emit("not-an-ntb", b"\r\n^NDISSTAT: 1,,,\"IPV4\"\r\n", [rec_err(0, "nth_bad_signature")], 0)

with open(os.path.join(HERE, "cases.txt"), "w") as f:
    f.write("# expected-output  decoder-arguments...   (written by make_samples.py)\n")
    for expected, args in cases:
        f.write(" ".join([expected] + args) + "\n")
