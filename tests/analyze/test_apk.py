"""The apk analyzer: the planted and clean sample APKs, a synthetic APK exercising the rest of the catalogue,
and hostile archives, manifests and DEX files.

The synthetic APK is built like the samples (``samples/gen/android.py``):
aapt compiles its manifest against the stand-in framework package of
``samples/src/android/framework-res`` and smali assembles its code; those
tests are skipped when aapt or java is missing.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.analyze import apk
from pipeline.analyze.apk import CAPABILITIES, ApkAnalyzer, Capability, Catalogue, parse_manifest, scan_dex
from pipeline.analyze.base import Target
from pipeline.model import CHANNELS, DATA_KINDS, Category, ExtractionTree, Finding, Severity
from pipeline.store import LocalBlobStore

ANALYZER = ApkAnalyzer()
OTA = "android-ota-update.zip"
PLANTED = "/system/priv-app/SystemService/SystemService.apk"
CLEAN = "/system/app/Calculator/Calculator.apk"
FRAMEWORK_RES = Path(__file__).resolve().parents[2] / "samples" / "src" / "android" / "framework-res"


# --- helpers ---------------------------------------------------------------------------------------


def _target(path: Path, name: str = "/system/app/Test/Test.apk", label: str = "apk") -> Target:
    return Target(path=path, sha256="0" * 64, size=path.stat().st_size, label=label, names=(name,))


def _summary(findings: list[Finding]) -> list[tuple]:
    """What a behaviour rule sees of each finding: rule, category, severity, data, channels, tags."""
    return [(f.rule, f.category, f.severity, f.data, f.channels, f.tags) for f in findings]


def _permission_tags(*names: str) -> tuple[str, ...]:
    return tuple(f"permission:android.permission.{name}" for name in names)


def _by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule: f for f in findings}


def _zip(path: Path, members: list[tuple[str, bytes]], stored: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, (2008, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def _with_checksum(dex: bytearray) -> bytes:
    """Recompute the Adler-32 of a mutated DEX so androguard parses past the header."""
    struct.pack_into("<I", dex, 8, zlib.adler32(bytes(dex[12:])))
    return bytes(dex)


@pytest.fixture(scope="module")
def sample_apk(sample_trees: Callable[[str], ExtractionTree], samples_store: LocalBlobStore
               ) -> Callable[[str], Target]:
    """The Target of an APK of the OTA sample, by in-image path."""

    def target(path: str) -> Target:
        artifact = next(a for a in sample_trees(OTA).artifacts if a.lineage_path.endswith(" › " + path))
        return Target(path=samples_store.path(artifact.sha256), sha256=artifact.sha256, size=artifact.size,
                      label=artifact.format, names=(path,), container=True)

    return target


@pytest.fixture(scope="module")
def members(sample_apk: Callable[[str], Target]) -> dict[str, bytes]:
    """The sample APKs' manifests and DEX files, as building blocks for hand-made APKs."""
    found = {}
    for label, path in (("planted", PLANTED), ("clean", CLEAN)):
        with zipfile.ZipFile(sample_apk(path).path) as archive:
            found[f"{label}.xml"] = archive.read("AndroidManifest.xml")
            found[f"{label}.dex"] = archive.read("classes.dex")
    return found


# --- the samples -----------------------------------------------------------------------------------


def test_accepts_apk_labels_only(sample_apk: Callable[[str], Target]) -> None:
    target = sample_apk(PLANTED)
    assert target.label == "apk"
    assert ANALYZER.accepts(target)
    for label in ("jar", "dex", "zip", "data"):
        assert not ANALYZER.accepts(Target(target.path, target.sha256, target.size, label, names=target.names))
    assert not ANALYZER.accepts(Target(target.path, target.sha256, 0, "apk"))
    assert (ApkAnalyzer.name, ApkAnalyzer.version, ApkAnalyzer.path_sensitive) == ("apk", "1", True)


def test_planted_system_service(sample_apk: Callable[[str], Target]) -> None:
    """What the smali of samples/src/android/SystemService does, finding by finding."""
    findings = ANALYZER.analyze(sample_apk(PLANTED))
    http = ("Ljava/net/HttpURLConnection;->" + m for m in (
        "disconnect", "getOutputStream", "getResponseCode", "setDoOutput", "setRequestMethod", "setRequestProperty"))
    assert _summary(findings) == [
        ("apk:boot-receiver", Category.PERSISTENCE, Severity.LOW, (), (), ("android:boot-receiver",)),
        ("apk:channel.http", Category.CHANNEL, Severity.LOW, (), ("http",),
         (*(f"api:{a}" for a in http), "api:Ljava/net/URL;->openConnection")),
        ("apk:data.contacts", Category.DATA_SOURCE, Severity.MEDIUM, ("contacts",), (),
         ("api:Landroid/provider/ContactsContract$CommonDataKinds$Phone;->CONTENT_URI",)),
        ("apk:data.imei", Category.DATA_SOURCE, Severity.MEDIUM, ("imei",), (),
         ("api:Landroid/telephony/TelephonyManager;->getDeviceId",)),
        ("apk:data.imsi", Category.DATA_SOURCE, Severity.MEDIUM, ("imsi",), (),
         ("api:Landroid/telephony/TelephonyManager;->getSubscriberId",)),
        ("apk:data.location", Category.DATA_SOURCE, Severity.MEDIUM, ("location",), (),
         ("api:Landroid/location/LocationManager;->getLastKnownLocation",)),
        ("apk:data.sms", Category.DATA_SOURCE, Severity.MEDIUM, ("sms",), (), ()),
        ("apk:manifest", Category.PROPERTY, Severity.INFO, (), (), ()),
        ("apk:permissions", Category.PROPERTY, Severity.INFO, (), (), _permission_tags(
            "ACCESS_FINE_LOCATION", "INTERNET", "READ_CONTACTS", "READ_PHONE_STATE", "READ_SMS",
            "RECEIVE_BOOT_COMPLETED")),
        ("apk:persistent", Category.PERSISTENCE, Severity.LOW, (), (), ("android:persistent",)),
        ("apk:platform-uid", Category.PRIVILEGE, Severity.LOW, (), (), ("android:platform-uid", "android:system-uid")),
        ("apk:priv-app", Category.PRIVILEGE, Severity.INFO, (), (), ("android:priv-app",)),
    ]
    found = _by_rule(findings)
    collector = "Lcom/android/sysupdate/service/Collector;"
    imei = found["apk:data.imei"].evidence
    assert [(e.kind, e.value) for e in imei] == [
        ("api", f"{collector}->appendDeviceIds(Ljava/lang/StringBuilder;)V calls "
                "Landroid/telephony/TelephonyManager;->getDeviceId()Ljava/lang/String;"),
        ("permission", "android.permission.READ_PHONE_STATE")]
    assert imei[0].excerpt.startswith("classes.dex+0x") and imei[0].offset is None  # classes.dex is deflated
    assert [e.value for e in found["apk:data.sms"].evidence] == [
        f'{collector}->run()V loads "content://sms/inbox"', "android.permission.READ_SMS"]
    assert [(e.value, e.excerpt) for e in found["apk:channel.http"].evidence if e.kind == "string"] == [
        ("http://203.0.113.99/collect", f"const-string in {collector}->run()V"),
        ("http://api.mobile-stat.ru/collect", f"const-string in {collector}->run()V")]
    assert found["apk:boot-receiver"].evidence[0].value == (
        "receiver com.android.sysupdate.service.BootReceiver: android.intent.action.BOOT_COMPLETED")
    assert found["apk:manifest"].title == (
        "Android package com.android.sysupdate.service 8.1.0-27 (versionCode 27) min SDK 19 target SDK 27")
    assert found["apk:manifest"].description == "Components: 1 service, 1 receiver."
    assert all(f.analyzer == "apk" and f.evidence for f in findings)


def test_clean_calculator_has_no_capability(sample_apk: Callable[[str], Target]) -> None:
    findings = ANALYZER.analyze(sample_apk(CLEAN))
    assert _summary(findings) == [("apk:manifest", Category.PROPERTY, Severity.INFO, (), (), ())]
    assert findings[0].description == "Components: 1 activity."


def test_privilege_follows_the_install_path(sample_apk: Callable[[str], Target]) -> None:
    """The same bytes under priv-app gain exactly one finding: the analyzer is path-sensitive."""
    clean = sample_apk(CLEAN)
    moved = Target(clean.path, clean.sha256, clean.size, clean.label, names=("/product/priv-app/Calc/Calc.apk",))
    assert [f.rule for f in ANALYZER.analyze(moved)] == ["apk:manifest", "apk:priv-app"]


def test_analysis_leaves_the_process_quiet(tmp_path: Path, members: dict[str, bytes]) -> None:
    """androguard logs through loguru and wraps stdout/stderr with colorama at import; neither may leak out."""
    path = _zip(tmp_path / "planted.apk", [("AndroidManifest.xml", members["planted.xml"]),
                                           ("classes.dex", members["planted.dex"])])
    code = ("import sys; import pipeline.analyze.apk as a; from pathlib import Path; "
            "from pipeline.analyze.base import Target; p = Path(sys.argv[1]); "
            "assert a.ApkAnalyzer().analyze(Target(p, '0', p.stat().st_size, 'apk')); "
            "print(type(sys.stdout).__name__, type(sys.stderr).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    assert (done.stdout, done.stderr) == ("TextIOWrapper TextIOWrapper\n", "")


def test_findings_are_deterministic(sample_apk: Callable[[str], Target]) -> None:
    first = [f.to_dict() for f in ANALYZER.analyze(sample_apk(PLANTED))]
    assert first == [f.to_dict() for f in ApkAnalyzer().analyze(sample_apk(PLANTED))]


def test_embedded_dex_is_scanned(tmp_path: Path, members: dict[str, bytes]) -> None:
    """A DEX hidden in assets is code too: flagged, and its API use reported with its member name."""
    path = _zip(tmp_path / "dropper.apk", [("AndroidManifest.xml", members["clean.xml"]),
                                           ("classes.dex", members["clean.dex"]),
                                           ("assets/update.dex", members["planted.dex"]),
                                           ("assets/notes.dex", b"not a dex at all")])
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:embedded-dex"].title == "DEX code outside classesN.dex: assets/update.dex"
    assert found["apk:embedded-dex"].tags == ("android:embedded-dex",)
    assert found["apk:data.imei"].evidence[0].excerpt.startswith("assets/update.dex+0x")
    assert found["apk:data.imei"].evidence[1:] == ()  # the clean manifest requests no permission


def test_apk_without_dex_says_so(tmp_path: Path, members: dict[str, bytes]) -> None:
    path = _zip(tmp_path / "preopt.apk", [("AndroidManifest.xml", members["planted.xml"])])
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:no-dex"].category == Category.PROPERTY
    assert not [f for f in found.values() if f.category in (Category.DATA_SOURCE, Category.CHANNEL)]


# --- a synthetic APK for the rest of the catalogue ------------------------------------------------

SPY_MANIFEST = """<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="com.test.spy" android:sharedUserId="android.uid.phone"
    android:versionCode="3" android:versionName="1.2">
    <uses-sdk android:minSdkVersion="21" android:targetSdkVersion="28"/>
    <uses-permission android:name="android.permission.SEND_SMS"/>
    <uses-permission android:name="android.permission.INSTALL_PACKAGES"/>
    <uses-permission android:name="android.permission.READ_PRIVILEGED_PHONE_STATE"/>
    <uses-permission android:name="android.permission.INTERNET"/>
    <application android:label="Spy">
        <receiver android:name="Boot" android:enabled="false">
            <intent-filter>
                <action android:name="android.intent.action.LOCKED_BOOT_COMPLETED"/>
            </intent-filter>
        </receiver>
        <service android:name="com.test.spy.Svc"/>
    </application>
</manifest>
"""

SPY_SMALI = {
    "Spy.smali": """
.class public Lcom/test/spy/Spy;
.super Ljava/lang/Object;

.field static final SIM_CONTACTS:Ljava/lang/String; = "content://icc/adn"

.method public static sms()V
    .locals 6
    invoke-static {}, Landroid/telephony/SmsManager;->getDefault()Landroid/telephony/SmsManager;
    move-result-object v0
    const-string v1, "+8613800138000"
    const/4 v2, 0x0
    const-string v3, "reg"
    const/4 v4, 0x0
    const/4 v5, 0x0
    invoke-virtual/range {v0 .. v5}, Landroid/telephony/SmsManager;->sendTextMessage(Ljava/lang/String;\
Ljava/lang/String;Ljava/lang/String;Landroid/app/PendingIntent;Landroid/app/PendingIntent;)V
    return-void
.end method

.method public static shell()V
    .locals 2
    invoke-static {}, Ljava/lang/Runtime;->getRuntime()Ljava/lang/Runtime;
    move-result-object v0
    const-string v1, "pm install -r /data/local/tmp/u.apk"
    invoke-virtual {v0, v1}, Ljava/lang/Runtime;->exec(Ljava/lang/String;)Ljava/lang/Process;
    return-void
.end method

.method public static load(Ljava/lang/ClassLoader;)V
    .locals 4
    new-instance v0, Ldalvik/system/DexClassLoader;
    const-string v1, "/data/local/tmp/p.dex"
    const/4 v2, 0x0
    invoke-direct {v0, v1, v2, v2, p0}, Ldalvik/system/DexClassLoader;-><init>(Ljava/lang/String;\
Ljava/lang/String;Ljava/lang/String;Ljava/lang/ClassLoader;)V
    return-void
.end method

.method public static ids(Landroid/telephony/TelephonyManager;Landroid/content/ContentResolver;)V
    .locals 2
    invoke-virtual {p0}, Landroid/telephony/TelephonyManager;->getLine1Number()Ljava/lang/String;
    invoke-virtual {p0}, Landroid/telephony/TelephonyManager;->getSimSerialNumber()Ljava/lang/String;
    sget-object v0, Landroid/os/Build;->SERIAL:Ljava/lang/String;
    const-string v1, "android_id"
    invoke-static {p1, v1}, Landroid/provider/Settings$Secure;->getString(Landroid/content/ContentResolver;\
Ljava/lang/String;)Ljava/lang/String;
    sget-object v0, Landroid/provider/CallLog$Calls;->CONTENT_URI:Landroid/net/Uri;
    return-void
.end method

.method public static net()V
    .locals 4
    new-instance v0, Ljava/net/Socket;
    const-string v1, "198.51.100.7"
    const/16 v2, 0x2328
    invoke-direct {v0, v1, v2}, Ljava/net/Socket;-><init>(Ljava/lang/String;I)V
    new-instance v0, Ljava/net/URL;
    const-string v1, "https://t.example.org/up"
    invoke-direct {v0, v1}, Ljava/net/URL;-><init>(Ljava/lang/String;)V
    invoke-virtual {v0}, Ljava/net/URL;->openConnection()Ljava/net/URLConnection;
    move-result-object v0
    check-cast v0, Ljavax/net/ssl/HttpsURLConnection;
    invoke-virtual {v0}, Ljavax/net/ssl/HttpsURLConnection;->connect()V
    return-void
.end method
""",
    # A class of the app's own that happens to share the framework's name: its method is declared (a method
    # id exists) but never invoked, which must not count as reading the IMEI.
    "TelephonyManager.smali": """
.class public Landroid/telephony/TelephonyManager;
.super Ljava/lang/Object;

.method public getDeviceId()Ljava/lang/String;
    .locals 1
    const-string v0, "000000000000000"
    return-object v0
.end method
""",
}


def _run(*command: str | Path) -> None:
    subprocess.run([str(c) for c in command], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def spy_apk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("aapt") or not shutil.which("java") or not Path("/usr/share/java/smali.jar").exists():
        pytest.skip("aapt, java and smali are needed to build the synthetic APK")
    work = tmp_path_factory.mktemp("spy")
    (work / "AndroidManifest.xml").write_text(SPY_MANIFEST)
    (work / "smali").mkdir()
    for name, text in SPY_SMALI.items():
        (work / "smali" / name).write_text(text.replace("\\\n", ""))
    _run("aapt", "package", "-f", "-x", "-M", FRAMEWORK_RES / "AndroidManifest.xml", "-S", FRAMEWORK_RES / "res",
         "-F", work / "framework-res.apk")
    _run("aapt", "package", "-f", "-M", work / "AndroidManifest.xml", "-I", work / "framework-res.apk",
         "-F", work / "manifest.apk")
    _run("java", "-jar", "/usr/share/java/smali.jar", "assemble", "-o", work / "classes.dex", work / "smali")
    with zipfile.ZipFile(work / "manifest.apk") as packaged:
        manifest = packaged.read("AndroidManifest.xml")
    code = (work / "classes.dex").read_bytes()
    return _zip(work / "Spy.apk", [("AndroidManifest.xml", manifest), ("classes.dex", code)], stored=("classes.dex",))


def test_synthetic_apk(spy_apk: Path) -> None:
    findings = ANALYZER.analyze(_target(spy_apk, "/system/app/Spy/Spy.apk"))
    assert _summary(findings) == [
        ("apk:boot-receiver", Category.PERSISTENCE, Severity.INFO, (), (), ("android:boot-receiver",)),
        ("apk:channel.http", Category.CHANNEL, Severity.LOW, (), ("http", "https"),
         ("api:Ljava/net/URL;->openConnection",)),
        ("apk:channel.https", Category.CHANNEL, Severity.LOW, (), ("https",),
         ("api:Ljavax/net/ssl/HttpsURLConnection;->connect",)),
        ("apk:channel.sms", Category.CHANNEL, Severity.MEDIUM, (), ("sms",),
         ("api:Landroid/telephony/SmsManager;->sendTextMessage",)),
        ("apk:channel.tcp", Category.CHANNEL, Severity.LOW, (), ("tcp",), ("api:Ljava/net/Socket;-><init>",)),
        ("apk:data.call_log", Category.DATA_SOURCE, Severity.MEDIUM, ("call_log",), (),
         ("api:Landroid/provider/CallLog$Calls;->CONTENT_URI",)),
        ("apk:data.contacts", Category.DATA_SOURCE, Severity.MEDIUM, ("contacts",), (), ()),
        ("apk:data.device_info", Category.DATA_SOURCE, Severity.LOW, ("device_info",), (),
         ("api:Landroid/os/Build;->SERIAL",)),
        ("apk:data.iccid", Category.DATA_SOURCE, Severity.MEDIUM, ("iccid",), (),
         ("api:Landroid/telephony/TelephonyManager;->getSimSerialNumber",)),
        ("apk:data.msisdn", Category.DATA_SOURCE, Severity.MEDIUM, ("msisdn",), (),
         ("api:Landroid/telephony/TelephonyManager;->getLine1Number",)),
        # MEDIUM: the platform uid makes it a system component
        ("apk:dynamic-code", Category.EXECUTION, Severity.MEDIUM, (), (),
         ("android:dynamic-code", "api:Ldalvik/system/DexClassLoader;-><init>")),
        ("apk:exec", Category.EXECUTION, Severity.LOW, (), (), ("android:exec", "api:Ljava/lang/Runtime;->exec")),
        ("apk:installs-packages", Category.EXECUTION, Severity.MEDIUM, (), (), ("android:installs-packages",)),
        ("apk:manifest", Category.PROPERTY, Severity.INFO, (), (), ()),
        ("apk:permissions", Category.PROPERTY, Severity.INFO, (), (), _permission_tags(
            "INSTALL_PACKAGES", "INTERNET", "READ_PRIVILEGED_PHONE_STATE", "SEND_SMS")),
        ("apk:platform-uid", Category.PRIVILEGE, Severity.LOW, (), (), ("android:platform-uid", "android:phone-uid")),
        ("apk:privileged-permissions", Category.PRIVILEGE, Severity.LOW, (), (),
         ("android:privileged-permission", "permission:android.permission.INSTALL_PACKAGES",
          "permission:android.permission.READ_PRIVILEGED_PHONE_STATE")),
    ]
    found = _by_rule(findings)
    assert [(e.kind, e.value) for e in found["apk:channel.sms"].evidence][1:] == [
        ("string", "+8613800138000"), ("permission", "android.permission.SEND_SMS")]
    assert found["apk:exec"].evidence[1].value == "pm install -r /data/local/tmp/u.apk"
    assert found["apk:data.contacts"].evidence[0].excerpt == "classes.dex string pool; no const-string loads it"
    assert found["apk:boot-receiver"].evidence[0].value == (
        "receiver com.test.spy.Boot: android.intent.action.LOCKED_BOOT_COMPLETED (disabled)")
    assert found["apk:privileged-permissions"].title == (
        "Requests 2 privileged permission(s): INSTALL_PACKAGES, READ_PRIVILEGED_PHONE_STATE")


def test_stored_dex_gives_file_offsets(spy_apk: Path) -> None:
    """classes.dex is stored uncompressed: evidence offsets point at the invoke instruction in the APK itself."""
    sms = _by_rule(ANALYZER.analyze(_target(spy_apk)))["apk:channel.sms"].evidence[0]
    data = spy_apk.read_bytes()
    assert sms.offset is not None
    assert data[sms.offset] == 0x74  # invoke-virtual/range
    dex_offset = int(sms.excerpt.removeprefix("classes.dex+"), 16)
    assert data[sms.offset - dex_offset:][:4] == b"dex\n"


# --- the catalogue ---------------------------------------------------------------------------------


def test_catalogue_speaks_the_shared_vocabulary() -> None:
    rules = [c.rule for c in CAPABILITIES]
    assert len(rules) == len(set(rules)) and all(r.startswith("apk:") for r in rules)
    for capability in CAPABILITIES:
        assert set(capability.data) <= set(DATA_KINDS) and set(capability.channels) <= set(CHANNELS)
        assert (capability.category == Category.DATA_SOURCE) == bool(capability.data)
        assert (capability.category == Category.CHANNEL) == bool(capability.channels)
    assert {c.data[0] for c in CAPABILITIES if c.data} == set(DATA_KINDS) - {"files"}


def test_catalogue_lookups() -> None:
    catalogue = Catalogue.build(CAPABILITIES)

    def rule(owner: str, name: str) -> str | None:
        found = catalogue.match_member(owner, name)
        return found.rule if found else None

    assert rule("Landroid/provider/ContactsContract$CommonDataKinds$Phone;", "CONTENT_URI") == "apk:data.contacts"
    assert rule("Landroid/provider/Telephony$Sms$Inbox;", "CONTENT_URI") == "apk:data.sms"
    assert rule("Landroid/provider/Telephony$Sms$Intents;", "getMessagesFromIntent") == "apk:data.sms"
    assert rule("Landroid/provider/CallLog$Calls;", "CONTENT_FILTER_URI") == "apk:data.call_log"
    assert rule("Landroid/provider/Telephony$Carriers;", "CONTENT_URI") is None  # APN settings, not messages
    assert rule("Landroid/provider/Telephony$Sms;", "getDefaultSmsPackage") is None  # reads no message
    assert rule("Landroid/provider/ContactsContract$QuickContact;", "showQuickContact") is None
    assert rule("Ljava/net/HttpURLConnection;", "connect") == "apk:channel.http"
    assert rule("Landroid/telephony/TelephonyManager;", "getNetworkOperator") is None
    assert catalogue.match_string("content://sms/sent").rule == "apk:data.sms"
    assert catalogue.match_string("android_id").rule == "apk:data.device_info"
    assert catalogue.match_string("android_id_x") is None
    with pytest.raises(ValueError, match="getDeviceId"):
        Catalogue.build((*CAPABILITIES, Capability("apk:x", Category.DATA_SOURCE, Severity.LOW, "x", data=("imei",),
                                                   refs=("Landroid/telephony/TelephonyManager;->getDeviceId",))))


# --- hostile input ---------------------------------------------------------------------------------


def test_corrupt_zip_named_apk(tmp_path: Path) -> None:
    path = tmp_path / "junk.apk"
    path.write_bytes(random.Random(5).randbytes(4096))
    findings = ANALYZER.analyze(_target(path))
    assert _summary(findings) == [("apk:unparseable", Category.PROPERTY, Severity.INFO, (), (), ())]
    assert findings[0].title.startswith("APK is not a readable zip archive")


def test_apk_without_manifest_still_has_its_code_read(tmp_path: Path, members: dict[str, bytes]) -> None:
    path = _zip(tmp_path / "bare.apk", [("classes.dex", members["planted.dex"])])
    findings = ANALYZER.analyze(_target(path))
    assert [f.rule for f in findings] == ["apk:channel.http", "apk:data.contacts", "apk:data.imei", "apk:data.imsi",
                                          "apk:data.location", "apk:data.sms", "apk:unparseable"]
    assert findings[-1].title == "APK has no AndroidManifest.xml"


def test_garbage_manifest_and_dex(tmp_path: Path) -> None:
    noise = random.Random(9).randbytes(3000)
    path = _zip(tmp_path / "garbage.apk", [("AndroidManifest.xml", noise[:1000]), ("classes.dex", noise),
                                           ("classes2.dex", b"dex\n035\x00" + noise)])
    findings = ANALYZER.analyze(_target(path))
    assert [f.rule for f in findings] == ["apk:unparseable"] * 3
    assert [f.title.split(":")[0] for f in findings] == [
        "AndroidManifest.xml could not be parsed", "classes.dex could not be parsed as DEX",
        "classes2.dex could not be parsed as DEX"]


def test_truncated_dex(tmp_path: Path, members: dict[str, bytes]) -> None:
    dex = members["planted.dex"]
    path = _zip(tmp_path / "cut.apk", [("AndroidManifest.xml", members["planted.xml"]),
                                       ("classes.dex", dex[: len(dex) // 2])])
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:unparseable"].title.startswith("classes.dex could not be parsed as DEX")
    assert "apk:manifest" in found and "apk:data.imei" not in found


def test_unreadable_member(tmp_path: Path, members: dict[str, bytes]) -> None:
    """A member with an unknown compression method (patched in both headers) is reported, not raised."""
    path = _zip(tmp_path / "method.apk", [("AndroidManifest.xml", members["clean.xml"]),
                                          ("classes.dex", members["planted.dex"])])
    data = bytearray(path.read_bytes())
    for magic, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(magic, data.find(b"classes.dex") - 60 if magic == b"PK\x03\x04" else 0)
        while data[start + (30 if magic == b"PK\x03\x04" else 46):][:11] != b"classes.dex":
            start = data.find(magic, start + 4)
        struct.pack_into("<H", data, start + at, 99)
    path.write_bytes(bytes(data))
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:unparseable"].title.startswith("classes.dex could not be read from the APK")
    assert "apk:manifest" in found


def test_size_caps(tmp_path: Path, members: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    path = _zip(tmp_path / "big.apk", [("AndroidManifest.xml", members["clean.xml"]),
                                       ("classes.dex", members["planted.dex"]), ("classes2.dex", members["clean.dex"])])
    monkeypatch.setattr(apk, "MAX_DEX_BYTES", 2000)
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:dex-skipped"].title.startswith("classes.dex not analysed: too large")
    assert "apk:data.imei" not in found
    monkeypatch.setattr(apk, "MAX_DEX_BYTES", 1 << 20)
    monkeypatch.setattr(apk, "MAX_APK_DEX_BYTES", 100)
    found = _by_rule(ANALYZER.analyze(_target(path)))
    assert found["apk:dex-skipped"].title == f"classes2.dex not analysed: the APK's DEX files already total " \
                                             f"{len(members['planted.dex'])} bytes"
    assert "apk:data.imei" in found


def test_string_running_past_the_end_raises_instead_of_hanging() -> None:
    """androguard 4.1.4 loops forever on it; the analyzer replaces the reader at import."""
    import androguard.core.dex as androguard_dex

    assert androguard_dex.read_null_terminated_string is apk._read_null_terminated_string
    assert apk._read_null_terminated_string(io.BytesIO(b"ab\x00cd")) == b"ab"
    with pytest.raises(ValueError, match="past the end"):
        apk._read_null_terminated_string(io.BytesIO(b"abc"))


def test_mutated_dex_never_crashes_or_hangs(members: dict[str, bytes]) -> None:
    """Random byte edits (checksum fixed so androguard parses on): a scan or a ValueError, nothing else."""
    catalogue = Catalogue.build(CAPABILITIES)
    rng = random.Random(1942)
    outcomes = set()
    for _ in range(300):
        dex = bytearray(members["planted.dex"])
        for _ in range(rng.choice((1, 4, 16))):
            dex[rng.randrange(0x20, len(dex))] = rng.randrange(256)
        if rng.random() < 0.3:
            dex = dex[: rng.randrange(0x70, len(dex))]
        try:
            scan_dex(_with_checksum(dex), "classes.dex", catalogue)
            outcomes.add("scanned")
        except ValueError:
            outcomes.add("rejected")
    assert outcomes == {"scanned", "rejected"}


def test_mutated_manifest_never_crashes(members: dict[str, bytes]) -> None:
    rng = random.Random(77)
    outcomes = set()
    for _ in range(300):
        data = bytearray(members["planted.xml"])
        for _ in range(rng.choice((1, 4, 16))):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            parse_manifest(bytes(data))
            outcomes.add("parsed")
        except ValueError:
            outcomes.add("rejected")
    assert outcomes == {"parsed", "rejected"}
