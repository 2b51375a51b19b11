"""The yara analyzer on the planted samples, the clean controls, third-party rules and failures."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yara

from pipeline.analyze.base import AnalyzerFailed, Target
from pipeline.analyze.ruleset import compile_ruleset
from pipeline.analyze.runner import targets_of
from pipeline.analyze.yara_scan import YaraScanner, render
from pipeline.config import Detection, Limits, Settings
from pipeline.model import Category, Evidence, Finding, Severity
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "out"
PERSONAL = {"imei", "imsi", "iccid", "msisdn", "sms", "contacts", "call_log", "location", "microphone", "camera",
            "accounts"}
BACKDOORED = ("linux-rootfs-backdoor.squashfs", "linux-rootfs.jffs2", "android-block-ota.zip",
              "featurephone-sc6531e.pac")
CLEAN = ("linux-rootfs-clean.squashfs", "router-netupdate.squashfs", "featurephone-sc6531e-clean.pac",
         "android-erofs.img")

Scan = dict[str, dict[str, list[Finding]]]  # sample → in-image name → findings


@pytest.fixture(scope="module")
def scanner() -> YaraScanner:
    return YaraScanner(compile_ruleset(Detection()))


@pytest.fixture(scope="module")
def scans(manifest: dict, tmp_path_factory: pytest.TempPathFactory, scanner: YaraScanner) -> Scan:
    """Every file of the planted and clean samples, scanned (manifest makes sure the samples are built)."""
    settings = Settings(home=tmp_path_factory.mktemp("yara-home"), limits=Limits())
    store = LocalBlobStore(settings.store_dir)
    result: Scan = {}
    for sample in BACKDOORED + CLEAN:
        tree = unpack(SAMPLES / sample, store=store, settings=settings)
        result[sample] = {name: scanner.analyze(target) for target in targets_of(tree, store)
                          if scanner.accepts(target) for name in target.names}
    return result


def _rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def _hit(scans: Scan) -> Callable[[str, str], set[str]]:
    return lambda sample, name: _rules(scans[sample][name])


# --- the planted backdoors ---------------------------------------------------------------------


def test_syncd_reads_identifiers_and_sms_and_posts_them_over_http(scans: Scan) -> None:
    findings = scans["linux-rootfs-backdoor.squashfs"]["/usr/sbin/syncd"]
    assert _rules(findings) == {
        "yara:telephony.at_imei_query", "yara:telephony.at_imsi_query", "yara:telephony.at_sms_read",
        "yara:telephony.sms_database", "yara:telephony.cpu_serial_read", "yara:telephony.imei_in_message",
        "yara:telephony.imsi_in_message", "yara:telephony.modem_tty_access", "yara:network.http_post_template",
        "yara:encoded.base64_url",
    }
    assert set().union(*(f.data for f in findings)) == {"imei", "imsi", "sms", "device_info"}
    assert set().union(*(f.channels for f in findings)) == {"http"}


def test_a_finding_carries_its_metadata_tags_and_evidence(scans: Scan) -> None:
    [imei] = [f for f in scans["linux-rootfs-backdoor.squashfs"]["/usr/sbin/syncd"]
              if f.rule == "yara:telephony.at_imei_query"]
    assert (imei.analyzer, imei.category, imei.severity, imei.title, imei.data, imei.channels, imei.tags) == (
        "yara", Category.DATA_SOURCE, Severity.MEDIUM, "Asks the modem for the IMEI", ("imei",), (),
        ("attack:T1426", "yara:telephony.at_imei_query"))
    assert imei.reference.startswith("https://www.etsi.org/") and "AT+CGSN" in imei.description
    [evidence] = imei.evidence
    assert evidence.kind == "yara-string" and evidence.value == "$cgsn: AT+CGSN"
    [post] = [f for f in scans["linux-rootfs-backdoor.squashfs"]["/usr/sbin/syncd"]
              if f.rule == "yara:network.http_post_template"]
    assert post.evidence[0].value == "$template: POST %s HTTP/1."


def test_evidence_offsets_are_file_offsets(scanner: YaraScanner, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x00" * 100 + b"AT+CIMI\r\n" + b"\x00" * 10 + b"AT+CIMI")
    [finding] = scanner.analyze(Target(path=blob, sha256="0" * 64, size=blob.stat().st_size, label="data"))
    assert finding.evidence == (Evidence("yara-string", "$cimi: AT+CIMI", 100),
                                Evidence("yara-string", "$cimi: AT+CIMI", 119))


def test_beacon_and_logsvc_ask_the_modem_for_the_imei(scans: Scan) -> None:
    hit = _hit(scans)
    assert hit("linux-rootfs.jffs2", "/usr/bin/beacon") == {
        "yara:telephony.at_imei_query", "yara:telephony.modem_tty_access"}
    assert hit("android-block-ota.zip", "/system/bin/logsvc") == {
        "yara:telephony.at_imei_query", "yara:telephony.imei_in_message", "yara:telephony.modem_tty_access"}
    [tty] = [f for f in scans["android-block-ota.zip"]["/system/bin/logsvc"]
             if f.rule == "yara:telephony.modem_tty_access"]
    assert [e.value for e in tty.evidence] == ["$atci: /dev/radio/atci"]
    assert hit("android-block-ota.zip", "/system/etc/init/logsvc.rc") == {
        "yara:persistence.init_root_service", "yara:persistence.init_su_domain"}


def test_the_android_collector_reads_personal_data_and_uploads_it(scans: Scan) -> None:
    hit = _hit(scans)
    assert hit("android-block-ota.zip", "classes.dex") >= {
        "yara:android.device_id_api", "yara:android.subscriber_id_api", "yara:android.sms_provider",
        "yara:android.contacts_provider", "yara:android.location_api", "yara:network.android_http_upload",
        "yara:infrastructure.url_with_ip_host", "yara:persistence.android_boot_receiver"}
    dex = [f for f in scans["android-block-ota.zip"]["classes.dex"]]
    assert set().union(*(f.data for f in dex)) == {"imei", "imsi", "sms", "contacts", "location"}
    assert hit("android-block-ota.zip", "AndroidManifest.xml") == {
        "yara:android.system_uid_app", "yara:persistence.android_boot_receiver"}


def test_the_feature_phone_user_image_registers_by_sms_and_http(scans: Scan) -> None:
    findings = scans["featurephone-sc6531e.pac"]["user"]
    assert _rules(findings) == {
        "yara:featurephone.hardcoded_sms_destination", "yara:featurephone.sms_send_text_mode",
        "yara:telephony.imei_in_message", "yara:network.http_post_template",
        "yara:infrastructure.url_with_ip_host", "yara:telephony.at_modem_control"}
    [sms] = [f for f in findings if f.rule == "yara:featurephone.hardcoded_sms_destination"]
    assert (sms.channels, {e.value for e in sms.evidence}) == (("sms",), {'$cmgs: AT+CMGS="+8613800138000"'})
    [post] = [f for f in findings if f.rule == "yara:network.http_post_template"]
    assert {e.value for e in post.evidence} == {"$literal: POST /reg.php HTTP/1.1"}


# --- the clean controls ------------------------------------------------------------------------


def test_clean_controls_show_no_personal_data_source(scans: Scan) -> None:
    personal = {(sample, name, f.rule) for sample in CLEAN for name, findings in scans[sample].items()
                for f in findings if PERSONAL & set(f.data)}
    assert personal == set()


def test_clean_controls_get_only_these_facts(scans: Scan) -> None:
    found = {(sample, name, f.rule, f.severity) for sample in CLEAN for name, findings in scans[sample].items()
             for f in findings}
    assert found == {
        ("router-netupdate.squashfs", "/usr/bin/netupdate", "yara:network.http_get_template", Severity.INFO),
        ("router-netupdate.squashfs", "/etc/crontab", "yara:persistence.cron_job", Severity.LOW),
        ("featurephone-sc6531e-clean.pac", "user", "yara:telephony.at_modem_control", Severity.INFO),
        ("featurephone-sc6531e-clean.pac", "kern", "yara:featurephone.platform_mocor", Severity.INFO),
    }


def test_debian_binaries_in_the_backdoored_rootfs_stay_silent(scans: Scan) -> None:
    rootfs = scans["linux-rootfs-backdoor.squashfs"]
    noisy = {name: _rules(findings) for name, findings in rootfs.items()
             if findings and name not in ("/usr/sbin/syncd",)}
    assert noisy == {}


# --- behaviour of the analyzer -----------------------------------------------------------------


def test_accepts_files_with_bytes_only(scanner: YaraScanner, tmp_path: Path) -> None:
    base = Target(path=tmp_path / "x", sha256="0" * 64, size=10, label="elf", names=("/bin/x",))
    assert scanner.accepts(base)
    assert not scanner.accepts(replace(base, container=True, label="squashfs"))
    assert not scanner.accepts(replace(base, size=0, label="empty"))
    assert not scanner.accepts(replace(base, label="symlink"))


def test_externals_come_from_the_first_in_image_path_and_the_label(scanner: YaraScanner, tmp_path: Path) -> None:
    target = Target(path=tmp_path / "x", sha256="a" * 64, size=1, label="elf",
                    names=("/system/lib/libandroid_runtime.so", "/vendor/lib/x.so"))
    assert scanner.externals(target) == {
        "filename": "libandroid_runtime.so", "filepath": "/system/lib/libandroid_runtime.so",
        "extension": ".so", "filetype": "elf", "owner": "", "md5": "", "sha1": "", "sha256": "a" * 64}
    nameless = scanner.externals(replace(target, names=()))
    assert (nameless["filename"], nameless["filepath"], nameless["extension"]) == ("", "", "")
    assert scanner.externals(replace(target, names=("/etc/.profile",)))["extension"] == ""


def test_family_hits_are_tagged_with_the_family(scanner: YaraScanner, tmp_path: Path) -> None:
    blob = tmp_path / "classes.dex"
    blob.write_bytes(b"dex\n035\x00" + b"\x16com.adups.fota.sysoper\x00")
    [finding] = scanner.analyze(Target(path=blob, sha256="0" * 64, size=30, label="dex"))
    assert (finding.rule, finding.category, finding.severity, finding.tags) == (
        "yara:families.adups_fota_client", Category.FAMILY, Severity.HIGH,
        ("attack:T1474.003", "family:adups", "yara:families.adups_fota_client"))


def test_third_party_rules_become_property_findings_with_their_externals(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "named.yar").write_text(
        'rule named_syncd { meta: description = "a file called syncd" severity = "HIGH" reference = "r"\n'
        '  strings: $a = "hello" condition: filename == "syncd" and filepath == "/usr/sbin/syncd" and $a }\n')
    (lab / "hashed.yar").write_text(
        'rule known { meta: score = 70 condition: md5 == "5d41402abc4b2a76b9719d911017c592" }\n')
    (lab / "magic.yar").write_text('import "magic"\nrule m { condition: true }\n')
    scanner = YaraScanner(compile_ruleset(Detection(extra_rules=(lab,))))
    blob = tmp_path / "blob"
    blob.write_bytes(b"hello")
    target = Target(path=blob, sha256=hashlib.sha256(b"hello").hexdigest(), size=5, label="elf",
                    names=("/usr/sbin/syncd",))
    assert scanner.externals(target)["md5"] == hashlib.md5(b"hello").hexdigest()
    assert scanner.analyze(target) == [
        Finding(rule="yara:ext.lab.hashed.known", analyzer="yara", category=Category.PROPERTY,
                severity=Severity.MEDIUM, title="known", tags=("yara:ext.lab.hashed.known",)),
        Finding(rule="yara:ext.lab.named.named_syncd", analyzer="yara", category=Category.PROPERTY,
                severity=Severity.HIGH, title="a file called syncd", tags=("yara:ext.lab.named.named_syncd",),
                evidence=(Evidence("yara-string", "$a: hello", 0),), description="a file called syncd",
                reference="r"),
    ]
    assert scanner.analyze(replace(target, names=("/tmp/syncd",)))[0].rule == "yara:ext.lab.hashed.known"
    assert scanner.config_digest == scanner.ruleset.digest != YaraScanner(compile_ruleset(Detection())).config_digest


def test_a_file_that_cannot_be_scanned_is_a_readable_failure(scanner: YaraScanner, tmp_path: Path) -> None:
    with pytest.raises(AnalyzerFailed, match="YARA could not scan the file"):
        scanner.analyze(Target(path=tmp_path / "gone", sha256="0" * 64, size=5, label="data"))


def test_a_timeout_is_a_readable_failure(tmp_path: Path) -> None:
    class SlowRules:
        def match(self, **_: object) -> list[yara.Match]:
            raise yara.TimeoutError("internal error: 30")

    scanner = YaraScanner(replace(compile_ruleset(Detection()), rules=SlowRules()))
    blob = tmp_path / "blob"
    blob.write_bytes(b"x")
    with pytest.raises(AnalyzerFailed, match=r"YARA scan gave up after \d+ s"):
        scanner.analyze(Target(path=blob, sha256="0" * 64, size=1, label="data"))


def test_results_are_deterministic_and_thread_safe(scanner: YaraScanner, scans: Scan, tmp_path: Path) -> None:
    blob = tmp_path / "syncd-like"
    blob.write_bytes(b"AT+CGSN\0AT+CIMI\0/dev/ttyUSB2\0mmssms.db\0POST %s HTTP/1.1\r\n\0IMEI:%s\0" * 50)
    target = Target(path=blob, sha256="0" * 64, size=blob.stat().st_size, label="elf", names=("/usr/sbin/x",))
    expected = scanner.analyze(target)
    assert len(expected) == 6 and all(len(f.evidence) <= 32 for f in expected)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: scanner.analyze(target), range(64)))
    assert all(result == expected for result in results)


def test_render_shows_text_utf16_or_hex() -> None:
    assert render(b"AT+CGSN\r\n") == "AT+CGSN\\r\\n"
    assert render("mmssms.db".encode("utf-16-le")) == "mmssms.db (utf-16)"
    assert render(b"\x7fELF\x01") == "7f 45 4c 46 01"
    assert render(b"A" * 200) == "A" * 96 + "…"
