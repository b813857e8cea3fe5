#!/usr/bin/env python3
"""The VM rig's host side (docs/vm.md): one meson test per scenario.

    vm_test.py gadget|usbip|quirks

Fetches Debian's kernel and busybox (tests/vm/fetch.sh, cached), builds the initramfs
(tests/vm/mkinitrd.sh, cached), starts the wwan-sim USB/IP servers the scenario needs, boots
QEMU (TCG) with the host's / shared read-only over 9p and runs tests/vm/guest-SCENARIO.sh in the
guest. The guest prints "VM_RESULT <subject> <check> key=value ..." lines; this script parses
them and asserts. Exit 77 (skipped, with the reason) without QEMU or the kernel package.

Environment (set by tests/vm/meson.build): WWAN_VM_SOURCE, WWAN_VM_BUILD, WWAN_VM_WWAN_SIM;
WWAN_VM_CACHE overrides where the kernel is cached (default SOURCE/build-vm-cache, git-ignored).
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("WWAN_VM_SOURCE", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.environ.get("WWAN_VM_BUILD", os.path.join(SOURCE, "build"))
WWAN_SIM = os.environ.get("WWAN_VM_WWAN_SIM", os.path.join(BUILD, "tools", "wwan-sim"))
CACHE = os.environ.get("WWAN_VM_CACHE", os.path.join(SOURCE, "build-vm-cache"))
QEMU = "qemu-system-x86_64"
# The guest reaches the host's loopback at 10.0.2.2 through QEMU's user-mode network (slirp).
HOST_FROM_GUEST = "10.0.2.2"


def skip(why):
    print(f"vm: SKIP: {why}")
    sys.exit(SKIP)


def prepare():
    """Kernel + busybox + initramfs; returns (kernel image, initrd)."""
    if shutil.which(QEMU) is None:
        skip(f"{QEMU} is not installed (Debian: qemu-system-x86, see tools/bootstrap.sh)")
    os.makedirs(CACHE, exist_ok=True)
    rc = subprocess.run([os.path.join(HERE, "fetch.sh"), CACHE]).returncode
    if rc == SKIP:
        skip("Debian's kernel package is not available (see the line above)")
    if rc != 0:
        sys.exit(f"vm: fetch.sh failed with {rc}")
    env = dict(line.split("=", 1) for line in open(os.path.join(CACHE, "kernel.env")).read().split())
    key = hashlib.sha256()
    for f in ("init", "mkinitrd.sh"):
        key.update(open(os.path.join(HERE, f), "rb").read())
    key.update(env["KVER"].encode())
    initrd = os.path.join(CACHE, f"initrd-{key.hexdigest()[:12]}.gz")
    if not os.path.exists(initrd):
        subprocess.run([os.path.join(HERE, "mkinitrd.sh"), CACHE, initrd], check=True)
    return os.path.join(env["KDIR"], "boot", "vmlinuz-" + env["KVER"]), initrd


class Sim:
    """One wwan-sim --usbip server on 127.0.0.1 (a free port), its JSON events collected."""

    def __init__(self, name, profile, extra, outdir):
        self.name = name
        self.log = open(os.path.join(outdir, f"wwan-sim-{name}.json"), "w+")
        self.proc = subprocess.Popen([WWAN_SIM, "--usbip", "127.0.0.1:0", "--profile", profile] + extra,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") != "listening":
            raise SystemExit(f"vm: wwan-sim {name} did not start: {line!r}")
        self.port = event["port"]
        self.events = [event]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        for line in out.splitlines():
            self.log.write(line + "\n")
            if line.startswith("{"):
                self.events.append(json.loads(line))
        self.log.close()

    def detached(self):
        return [e for e in self.events if e.get("event") == "detached"]


def boot(kernel, initrd, scenario, args, outdir, timeout_s):
    """Boots the guest with SCENARIO; returns (the console text, wall seconds)."""
    serial = os.path.join(outdir, "serial.log")
    append = " ".join([
        "console=ttyS0", "panic=-1", "quiet", "loglevel=4",
        f"WWAN_SCENARIO={SOURCE}/tests/vm/guest-{scenario}.sh",
        f"WWAN_SOURCE={SOURCE}", f"WWAN_BUILD={BUILD}", f"WWAN_ARGS={args}",
    ])
    cmd = [QEMU, "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "1024", "-smp", "2",
           "-nographic", "-no-reboot", "-monitor", "none", "-display", "none",
           "-serial", f"file:{serial}", "-kernel", kernel, "-initrd", initrd, "-append", append,
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={outdir},mount_tag=out,security_model=none,multidevs=remap",
           # No option ROM: iPXE would add a second to every boot for nothing.
           "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]
    start = time.monotonic()
    try:
        subprocess.run(cmd, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        print(f"vm: QEMU still running after {timeout_s} s: killed")
    wall = time.monotonic() - start
    text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
    return text, wall


def snapshot_binaries(outdir):
    """Copies the binaries the guest and the host side run into OUTDIR/bin (the guest sees it as
    /tmp/out/bin; tests/vm/lib.sh prefers it). The guest maps executables from the host's build tree
    over 9p: a rebuild during the run (another meson compile on the same tree) would change the
    pages under a running process, which is how a SIGSEGV right after `connected` once looked."""
    global WWAN_SIM
    bindir = os.path.join(outdir, "bin")
    os.makedirs(bindir)
    for name, path in (("wwan-dp", os.environ.get("WWAN_VM_WWAN_DP", os.path.join(BUILD, "tools", "wwan-dp"))),
                       ("wwan-vm-helper", os.environ.get("WWAN_VM_HELPER", os.path.join(BUILD, "tests", "vm", "wwan-vm-helper"))),
                       ("wwan-sim", WWAN_SIM)):
        shutil.copy2(path, os.path.join(bindir, name))
    WWAN_SIM = os.path.join(bindir, "wwan-sim")


def results(console):
    """{(subject, check): {key: value}} from the VM_RESULT lines (a later line wins)."""
    out = {}
    for m in re.finditer(r"^VM_RESULT (\S+) (\S+)(.*)$", console, re.M):
        out[(m.group(1), m.group(2))] = dict(re.findall(r"(\w+)=(\S*)", m.group(3)))
    return out


class Checks:
    def __init__(self):
        self.failures = []

    def that(self, ok, what):
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            self.failures.append(what)
        return ok


def num(r, key, check, default=0.0):
    try:
        return float(r.get(check, {}).get(key, default))
    except ValueError:
        return default


# ---------------------------------------------------------------- scenarios

def gadget(kernel, initrd, outdir, c):
    seconds = 4
    console, wall = boot(kernel, initrd, "gadget", str(seconds), outdir, 240)
    r = results(console)
    c.that(r.get(("gadget", "enumerated"), {}).get("ok") == "1", "Linux's NCM gadget enumerates on dummy_hcd")
    lst = r.get(("wwan_dp", "list"), {})
    c.that(lst.get("mode") == "ncm" and lst.get("supported") == "true" and lst.get("ncm_driver") == "cdc_ncm",
           f"wwan-dp list: a supported plain CDC NCM function (generic-ncm), cdc_ncm bound ({lst})")
    c.that(r.get(("wwan_dp", "connected"), {}).get("ok") == "1", "wwan-dp drives the gadget through usbfs (--static-ipv4)")
    for who in ("wwan_dp", "cdc_ncm"):
        p = r.get((who, "ping"), {})
        c.that(p.get("sent") == "5" and p.get("received") == "5", f"{who}: ping through the gadget 5/5 ({p})")
        u = r.get((who, "udp_echo"), {})
        c.that(u.get("sent") == "20" and u.get("received") == "20", f"{who}: UDP echo 20/20 ({u})")
        for d in ("tx", "rx"):
            c.that(num(r, "bytes", (who, f"tcp_{d}")) > 0, f"{who}: TCP stream {d} moved data ({r.get((who, f'tcp_{d}'))})")
    # The receiving TCP's view of order, per direction. PAWS drops (a segment carrying an older
    # timestamp than one already seen) come only from reordering, never from loss alone: before
    # the TUN was opened O_NONBLOCK, io_uring on Linux 6.1 punted TUN writes to concurrent io-wq
    # workers and the receiver PAWS-dropped hundreds of segments per stream. Out-of-order arrivals
    # also follow plain loss, which this rig has under load for the kernel driver too (dummy_hcd
    # and the gadget run in the same starved VM), so wwan-dp is held to the kernel's count in the
    # same run plus a small margin rather than to zero.
    for d in ("tx", "rx"):
        w, k = r.get(("wwan_dp", f"tcp_{d}"), {}), r.get(("cdc_ncm", f"tcp_{d}"), {})
        print(f"  info  TCP stream {d}: receiver saw out of order wwan-dp {w.get('rx_out_of_order')} / cdc_ncm "
              f"{k.get('rx_out_of_order')}, PAWS-dropped {w.get('rx_paws_dropped')} / {k.get('rx_paws_dropped')}, "
              f"sender retransmitted {w.get('retrans_segs')} / {k.get('retrans_segs')}")
        c.that(w.get("rx_paws_dropped") == "0", f"wwan_dp: TCP stream {d} not reordered (receiver's PAWS drops "
                                                 f"{w.get('rx_paws_dropped')})")
        ofo, ofo_kernel = num(r, "rx_out_of_order", ("wwan_dp", f"tcp_{d}")), num(r, "rx_out_of_order", ("cdc_ncm", f"tcp_{d}"))
        c.that("rx_out_of_order" in w and ofo <= max(ofo_kernel, 0) + 10,
               f"wwan_dp: TCP stream {d} out-of-order arrivals within cdc_ncm's + 10 ({ofo:.0f} vs {ofo_kernel:.0f})")
    c.that(r.get(("wwan_dp", "exit"), {}).get("rc") == "0",
           f"wwan-dp exits 0 on SIGTERM (rc {r.get(('wwan_dp', 'exit'), {}).get('rc')}; 139 = it crashed)")
    c.that(r.get(("cdc_ncm", "bound"), {}).get("ok") == "1", "cdc_ncm rebinds the gadget after wwan-dp gave it back")
    print("\nthroughput through Linux's NCM gadget (same VM, same run; TCG software emulation: the absolute")
    print("figures say nothing about real hardware, only the ratio between the two drivers does):")
    def per_cpu(who, d):  # Mbit moved per second of guest CPU (all vCPUs busy time)
        t = num(r, "cpu_ticks", (who, f"tcp_{d}")) / max(num(r, "hz", (who, f"tcp_{d}"), 100), 1)
        return num(r, "bytes", (who, f"tcp_{d}")) * 8 / 1e6 / t if t > 0 else 0.0
    for d, what in (("tx", "host -> gadget"), ("rx", "gadget -> host")):
        a = num(r, "mbit_s", ("wwan_dp", f"tcp_{d}"))
        b = num(r, "mbit_s", ("cdc_ncm", f"tcp_{d}"))
        ratio = a / b if b else 0.0
        ca, cb = per_cpu("wwan_dp", d), per_cpu("cdc_ncm", d)
        cratio = ca / cb if cb else 0.0
        print(f"  TCP {what:15s} wwan-dp {a:7.1f} Mbit/s   cdc_ncm {b:7.1f} Mbit/s   wwan-dp/cdc_ncm {ratio:5.2f}")
        print(f"  {'':19s} wwan-dp {ca:7.1f} Mbit/CPU-s cdc_ncm {cb:7.1f} Mbit/CPU-s wwan-dp/cdc_ncm {cratio:5.2f}")
        print(f"VM_FIGURE tcp_{d} wwan_dp_mbit_s={a:.1f} cdc_ncm_mbit_s={b:.1f} ratio={ratio:.2f} "
              f"wwan_dp_mbit_per_cpu_s={ca:.1f} cdc_ncm_mbit_per_cpu_s={cb:.1f} cpu_ratio={cratio:.2f}")
    print(f"VM_FIGURE wall_s={wall:.1f}")


def usbip(kernel, initrd, outdir, c):
    sims = {"huawei": Sim("huawei", "huawei-e3372", [], outdir), "mbim": Sim("mbim", "mbim", [], outdir)}
    try:
        console, wall = boot(kernel, initrd, "usbip", f"{sims['huawei'].port},{sims['mbim'].port}", outdir, 240)
    finally:
        for s in sims.values():
            s.stop()
    r = results(console)
    d = r.get(("usbip", "devlist"), {})
    c.that(d.get("id") == "12d1:1506", f"OP_REQ_DEVLIST from the guest lists the emulated E3372 ({d})")
    for who, driver in (("huawei", "huawei_cdc_ncm"), ("mbim", "cdc_mbim")):
        k = f"{who}_kernel"
        c.that(r.get((k, "attach"), {}).get("ok") == "1", f"{who}: vhci-hcd attaches the USB/IP device ({r.get((k, 'attach'))})")
        c.that(r.get((k, "bound"), {}).get("ok") == "1", f"{who}: the kernel's {driver} binds it ({r.get((k, 'bound'))})")
        c.that(r.get((k, "session"), {}).get("ok") == "1",
               f"{who}: the session comes up over the kernel's cdc-wdm ({r.get((k, 'session'))})")
        for check, n in (("ping", "5"), ("udp_echo", "20")):
            x = r.get((k, check), {})
            c.that(x.get("sent") == n and x.get("received") == n, f"{who}: {check} through {driver} {n}/{n} ({x})")
        w = f"{who}_wwan_dp"
        c.that(r.get((w, "connected"), {}).get("ok") == "1", f"{who}: wwan-dp connects through usbfs + vhci")
        for check, n in (("ping", "5"), ("udp_echo", "20")):
            x = r.get((w, check), {})
            c.that(x.get("sent") == n and x.get("received") == n, f"{who}: {check} through wwan-dp {n}/{n} ({x})")
        c.that(r.get((w, "exit"), {}).get("rc") == "0",
               f"{who}: wwan-dp exits 0 on SIGTERM (rc {r.get((w, 'exit'), {}).get('rc')})")
        det = sims[who].detached()
        c.that(len(det) == 1 and det[0].get("usbip", {}).get("control_urbs", 0) > 0,
               f"{who}: wwan-sim served one import ({len(det)} detached event(s))")
        if det:
            print(f"    wwan-sim {who}: {json.dumps(det[0])}")
    print(f"VM_FIGURE wall_s={wall:.1f}")


# The quirk rows: name, what is switched on, wwan-sim arguments, guest extra. "well-behaved" is the
# E3372's descriptors and AT engine with every firmware quirk of the profile switched off; each
# later row switches one on (the huawei-e3372 profile has ndp-in-front dropped, reset NTB32 and
# ARP-before-forwarding all on: the last row is that profile plus the two faults).
WELL_BEHAVED = ["--quirk", "ndp-in-front=accepted", "--quirk", "reset-ntb-format=ntb16",
                "--quirk", "arps-host-before-forwarding=0"]
QUIRK_ROWS = [
    ("well_behaved", "none (control row)", WELL_BEHAVED, "-"),
    ("ndp_in_front_dropped", "OUT NTBs with the NDP in front dropped",
     WELL_BEHAVED + ["--quirk", "ndp-in-front=dropped"], "ndp0"),
    ("format_reverts_to_ntb32", "NTB format reverts to NTB32 after the alt switch (E3372h fw 21.318)",
     WELL_BEHAVED + ["--quirk", "reset-ntb-format=ntb32", "--fault", "ntb-format-reverts-after-alt"], "-"),
    ("format_reverts_to_ntb16", "NTB format reverts to NTB16 after the alt switch (hypothetical mirror)",
     WELL_BEHAVED + ["--fault", "ntb-format-reverts-after-alt"], "-"),
    ("arps_host_first", "ARPs for the host, forwards nothing until answered",
     WELL_BEHAVED + ["--quirk", "arps-host-before-forwarding=1"], "-"),
    ("lost_response_available", "RESPONSE_AVAILABLE never sent (responses only by polling)",
     WELL_BEHAVED + ["--fault", "lose-response-available"], "-"),
    ("field_failure", "the huawei-e3372 profile + lost RESPONSE_AVAILABLE + format revert",
     ["--fault", "lose-response-available", "--fault", "ntb-format-reverts-after-alt"], "-"),
]


def row_outcome(r, subject, control_plane):
    """'ok', or what broke, for one driver on one row."""
    if control_plane:
        s = r.get((subject, "session"), {})
        if s.get("ok") != "1":
            return "session fails: " + s.get("why", "?").replace("_", " ")[:60]
    elif r.get((subject, "connected"), {}).get("ok") != "1":
        return "no connection"
    p = r.get((subject, "ping"), {})
    u = r.get((subject, "udp_echo"), {})
    if p.get("received") != "5" or u.get("received") != "20":
        return f"traffic fails (ping {p.get('received', 0)}/5, UDP {u.get('received', 0)}/20)"
    return "ok"


def quirks(kernel, initrd, outdir, c):
    rows = QUIRK_ROWS
    if os.environ.get("WWAN_VM_QUIRK_ROWS"):  # a subset while working on one row: NAME,NAME
        wanted = os.environ["WWAN_VM_QUIRK_ROWS"].split(",")
        rows = [row for row in QUIRK_ROWS if row[0] in wanted or row[0] == "well_behaved"]
    sims = [Sim(name, "huawei-e3372", args, outdir) for name, _, args, _ in rows]
    spec = ",".join(f"{name}:{sim.port}:{extra}" for (name, _, _, extra), sim in zip(rows, sims))
    try:
        console, wall = boot(kernel, initrd, "quirks", spec, outdir, 540)
    finally:
        for s in sims:
            s.stop()
    r = results(console)
    print("\nthe emulated E3372's firmware quirks, one at a time (kernel: huawei_cdc_ncm + a session over its cdc-wdm;")
    print("wwan-dp: the daemon over usbfs + vhci):")
    print(f"  {'row':26s} {'kernel huawei_cdc_ncm':44s} wwan-dp")
    table = []
    for (name, what, _, extra), sim in zip(rows, sims):
        k = row_outcome(r, f"{name}.kernel", True)
        w = row_outcome(r, f"{name}.wwan_dp", False)
        table.append((name, k, w))
        print(f"  {name:26s} {k:44s} {w}")
        print(f"VM_QUIRK row={name} kernel={k.replace(' ', '_')} wwan_dp={w.replace(' ', '_')}")
        det = sim.detached()
        if det:
            m, n = det[0].get("modem", {}), det[0].get("ncm", {})
            print(f"    wwan-sim: ntbs_from_host_dropped={m.get('ntbs_from_host_dropped')} "
                  f"ntbs_ndp_in_front={n.get('ntbs_ndp_in_front')} ntbs_wrong_format={n.get('ntbs_wrong_format')} "
                  f"arp_requests_to_host={m.get('arp_requests_to_host')} faults_injected={m.get('faults_injected')}")
        ns = r.get((f"{name}.kernel", "netdev_stats"))
        if ns:
            print(f"    kernel netdev: rx_packets={ns.get('rx_packets')} rx_errors={ns.get('rx_errors')} "
                  f"rx_length_errors={ns.get('rx_length_errors')} tx_packets={ns.get('tx_packets')}")
        if extra == "ndp0":
            p = r.get((f"{name}.kernel.ndp_in_front", "ping"), {})
            print(f"    kernel with ndp_to_end=0 (plain cdc_ncm's NTB layout): ping {p.get('received', '?')}/5")
            c.that(r.get((f"{name}.kernel", "ndp_to_end"), {}).get("value") in ("0", "N", "n"),
                   f"{name}: the kernel's ndp_to_end switched off for the control experiment")
            c.that(p.get("sent") == "5" and p.get("received") == "0",
                   f"{name}: with the NDP in front the emulated stick drops the kernel's frames ({p})")
    for name, k, w in table:
        c.that(w == "ok", f"{name}: wwan-dp copes ({w})")
        rc = r.get((f"{name}.wwan_dp", "exit"), {}).get("rc")
        c.that(rc == "0", f"{name}: wwan-dp exits 0 on SIGTERM (rc {rc})")
    # The control row must work for the kernel too, or the rows above prove nothing.
    c.that(table[0][1] == "ok", f"well_behaved: the kernel driver works on the control row ({table[0][1]})")
    print(f"VM_FIGURE wall_s={wall:.1f}")


SCENARIOS = {"gadget": gadget, "usbip": usbip, "quirks": quirks}


def main():
    sys.stdout.reconfigure(line_buffering=True)  # in order with the children's output in meson's log
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: vm_test.py {'|'.join(SCENARIOS)}")
    scenario = sys.argv[1]
    kernel, initrd = prepare()
    outdir = os.path.join(BUILD, "tests", "vm", f"out-{scenario}")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    snapshot_binaries(outdir)
    c = Checks()
    SCENARIOS[scenario](kernel, initrd, outdir, c)
    # tests/vm/lib.sh points core_pattern at the output directory: a crash in the guest is a failure
    # even when the scenario's checks happened to pass around it.
    cores = sorted(f for f in os.listdir(outdir) if f.startswith("core."))
    for core in cores:
        comm = core.split(".")[1]  # %e: the thread's name ("wwan-dp rx" for a worker)
        binary = ("wwan-dp" if comm.startswith("wwan-dp") else
                  "wwan-vm-helper" if comm.startswith("wwan-vm") else comm)
        print(f"  look: gdb {os.path.join(outdir, 'bin', binary)} {os.path.join(outdir, core)}")
    c.that(not cores, f"nothing crashed in the guest ({', '.join(cores) or 'no core files'})")
    print(f"\nvm: console log and the guest's logs in {outdir}")
    if c.failures:
        print(f"vm: {len(c.failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
