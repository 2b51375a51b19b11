"""The IOC analyzer: each extractor's positives and negatives, encodings, caps, hostile input, the samples."""

from __future__ import annotations

import base64
import ipaddress
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.analyze import _ioc_decode, iocs
from pipeline.analyze._ioc_decode import decode_base64_text, single_byte_encoded
from pipeline.analyze._ioc_extract import endpoints_in, ip_scope
from pipeline.analyze.base import Target
from pipeline.analyze.enrich import shared
from pipeline.analyze.iocs import IocsAnalyzer
from pipeline.config import Settings
from pipeline.model import Category, EndpointKind, Finding, Scope, Severity
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "out"
K = EndpointKind


@pytest.fixture(scope="module")
def analyzer() -> IocsAnalyzer:
    return IocsAnalyzer()


def found(text: str) -> set[tuple[EndpointKind, str, Scope]]:
    return {(c.kind, c.value, c.scope) for c in endpoints_in(text, shared())}


def values(text: str, kind: EndpointKind) -> set[str]:
    return {c.value for c in endpoints_in(text, shared()) if c.kind == kind}


def summary(findings: list[Finding]) -> list[tuple]:
    """Everything but offsets and excerpts: rule, value, scope, country, severity, tags, channels, evidence."""
    return [
        (f.rule, f.endpoint.value, f.endpoint.scope.value, f.endpoint.country, f.severity.value, f.tags, f.channels,
         tuple((e.kind, e.value) for e in f.evidence))
        for f in findings if f.endpoint is not None
    ]


# --- URLs ---------------------------------------------------------------------------------------------------


def test_urls_give_the_url_and_its_host() -> None:
    assert found("POST to http://203.0.113.7:8080/api/v1/upload now") == {
        (K.URL, "http://203.0.113.7:8080/api/v1/upload", Scope.DOCUMENTATION),
        (K.IPV4, "203.0.113.7", Scope.DOCUMENTATION),
    }
    assert found('"https://api.mobile-stat.ru/collect?x=1",') == {
        (K.URL, "https://api.mobile-stat.ru/collect?x=1", Scope.PUBLIC),
        (K.DOMAIN, "api.mobile-stat.ru", Scope.PUBLIC),
    }
    assert found("mqtt://[2001:db8::5]:1883/t") == {
        (K.URL, "mqtt://[2001:db8::5]:1883/t", Scope.DOCUMENTATION), (K.IPV6, "2001:db8::5", Scope.DOCUMENTATION),
    }


@pytest.mark.parametrize("scheme", ["http", "https", "ftp", "mqtt", "tcp", "udp", "ws", "wss", "rtsp", "HTTP"])
def test_url_schemes(scheme: str) -> None:
    assert values(f"{scheme}://c2.example-cnc.com/x", K.URL) == {f"{scheme}://c2.example-cnc.com/x"}


def test_url_hosts_must_be_real_hosts() -> None:
    assert found("http://%s/%s") == set()  # a format string
    assert found("http://according to the text") == set()  # prose in a compression dictionary
    assert found("http://schemas.android.com/apk/res/android") == {  # a fact; well-known to the correlator
        (K.URL, "http://schemas.android.com/apk/res/android", Scope.PUBLIC),
        (K.DOMAIN, "schemas.android.com", Scope.PUBLIC),
    }
    assert found("http://localhost:8080/") == {
        (K.URL, "http://localhost:8080/", Scope.LOCAL), (K.DOMAIN, "localhost", Scope.LOCAL),
    }
    assert values("content://sms/inbox and file:///etc/passwd", K.URL) == set()  # not network schemes


def test_url_trailing_punctuation_is_trimmed() -> None:
    assert values("(see http://www.debian.org/Bugs/).", K.URL) == {"http://www.debian.org/Bugs/"}


# --- domains ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "collect.hgtx-data.cn", "Host: api.mobile-stat.ru", "pool.ntp.org", "update.example-vendor.com",
    "www.lorenzobettini.it", "matt.ucc.asn.au", "android.clients.google.com", "evil.com.cn", "qq.com",
    "mail.example.xyz", "WWW.EXAMPLE-SHOP.DE",
])
def test_domains(text: str) -> None:
    assert len(values(text, K.DOMAIN)) == 1


@pytest.mark.parametrize("text", [
    "libc.so.6", "ld-linux-armhf.so.3", "/etc/syncd.conf", "firmware.bin", "setup.py", "README.md", "config.h.in",
    "com.android.phone", "com.android.sysupdate.service", "android.intent.action.BOOT_COMPLETED",
    "android.net", "java.lang.String", "ro.build.id", "persist.sys.timezone", "e.g", "i.e.", "version 2.6.32",
    "llvm.mips.addq.ph", "seq.in.re", "builtins.id", "self.info", "mask.store", "z.zw", "system.new.dat.br",
    "%s.%s", "Foo.Bar", "cn.jpush.android", "pnames.icu", "/lib/foo.com", "java.io.File", "a..b", "x.cn",
])
def test_not_domains(text: str) -> None:
    assert values(text, K.DOMAIN) == set()


def test_special_domains_are_classified() -> None:
    assert found("www.example.com") == {(K.DOMAIN, "www.example.com", Scope.DOCUMENTATION)}
    assert found("http://printer.local/") == {
        (K.URL, "http://printer.local/", Scope.LOCAL), (K.DOMAIN, "printer.local", Scope.LOCAL),
    }
    onion = "expyuzz4wqqyqhjn.onion"
    assert found(onion) == {(K.DOMAIN, onion, Scope.PUBLIC)}


def test_a_glued_byte_before_www_is_dropped() -> None:
    assert values("0www.entrust.net/CPS", K.DOMAIN) == {"www.entrust.net"}


# --- IP addresses -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "scope"), [
    ("203.0.113.7", Scope.DOCUMENTATION), ("198.51.100.23", Scope.DOCUMENTATION), ("192.0.2.1", Scope.DOCUMENTATION),
    ("2001:db8::1", Scope.DOCUMENTATION), ("10.0.0.1", Scope.PRIVATE), ("172.16.5.4", Scope.PRIVATE),
    ("192.168.1.1", Scope.PRIVATE), ("100.64.0.1", Scope.PRIVATE), ("fd00::1", Scope.PRIVATE),
    ("127.0.0.1", Scope.LOCAL), ("169.254.1.1", Scope.LOCAL), ("::1", Scope.LOCAL), ("fe80::1", Scope.LOCAL),
    ("0.0.0.0", Scope.RESERVED), ("255.255.255.255", Scope.RESERVED), ("224.0.0.251", Scope.RESERVED),
    ("ff02::1", Scope.RESERVED), ("240.0.0.1", Scope.RESERVED), ("8.8.8.8", Scope.PUBLIC),
    ("2a02:6b8::feed:0ff", Scope.PUBLIC), ("::ffff:192.168.0.1", Scope.PRIVATE),
])
def test_ip_scope(address: str, scope: Scope) -> None:
    assert ip_scope(ipaddress.ip_address(address)) == scope


def test_ipv4_strict_and_classified_not_dropped() -> None:
    assert found("connect 203.0.113.7:8080") == {(K.IPV4, "203.0.113.7", Scope.DOCUMENTATION)}
    assert found("bind 0.0.0.0 and 127.0.0.1 and 192.168.0.254") == {
        (K.IPV4, "0.0.0.0", Scope.RESERVED), (K.IPV4, "127.0.0.1", Scope.LOCAL),
        (K.IPV4, "192.168.0.254", Scope.PRIVATE),
    }
    assert found("8.8.8.8.") == {(K.IPV4, "8.8.8.8", Scope.PUBLIC)}


@pytest.mark.parametrize("text", [
    "v1.2.3.4.5", "1.2.3.4.5", "Linux version 2.6.32.1", "kernel 3.10.0.1", "256.1.1.1", "01.02.03.04",
    "2.5.4.3", "2.5.29.17", "1.3.101.112", "1.3.6.1.4.1.311", "z3 4.8.12.0", "1.0.0.127.in-addr.arpa",
    "x1.2.3.4", "1.2.3",
])
def test_not_ipv4(text: str) -> None:
    assert values(text, K.IPV4) == set()


def test_ipv6() -> None:
    assert found("localhost ::1") == {(K.IPV6, "::1", Scope.LOCAL)}
    assert found("2001:4860:4860::8888") == {(K.IPV6, "2001:4860:4860::8888", Scope.PUBLIC)}
    assert found("64:ff9b::/96") == {(K.IPV6, "64:ff9b::", Scope.RESERVED)}
    assert found("[2001:db8:0:0:0:0:0:1]:53") == {(K.IPV6, "2001:db8::1", Scope.DOCUMENTATION)}


@pytest.mark.parametrize("text", ["::", "std::string", "DB::DB", "dead::beef", "12:34:56", "00:11:22:33:44:55",
                                  "a::b::c", "Foo::Bar::baz()"])
def test_not_ipv6(text: str) -> None:
    assert values(text, K.IPV6) == set()


# --- phone numbers and e-mail -------------------------------------------------------------------------------


def test_sms_recipient_in_an_at_command() -> None:
    candidates = list(endpoints_in('AT+CMGS="+8613800138000"', shared()))
    assert {(c.kind, c.value, c.scope, c.tags, c.channels) for c in candidates} == {
        (K.PHONE, "+8613800138000", Scope.PUBLIC, ("context:sms",), ("sms",)),
        (K.PHONE, "+8613800138000", Scope.PUBLIC, (), ()),
    }


def test_phone_contexts() -> None:
    assert values("AT+CMGS=13800138000", K.PHONE) == {"13800138000"}
    assert values("smsto:10086", K.PHONE) == {"10086"}
    assert values("tel:+7 495 123-45-67", K.PHONE) == {"+74951234567"}
    assert values("call +44 20 7946 0958 now", K.PHONE) == {"+442079460958"}
    assert values("+45 3122-6543", K.PHONE) == {"+4531226543"}


@pytest.mark.parametrize("text", [
    "AT+CMGS=23", "AT+CMGF=1", "IMEI: 490154203237518", "serial 13800138000", "+1234", "+0 1234567",
    "%+d", "build 20240618+1", "Decimal('+35236450.6')",
])
def test_not_phones(text: str) -> None:
    assert values(text, K.PHONE) == set()


def test_emails() -> None:
    assert found("Report to <bugs@mobile-stat.ru>.") == {(K.EMAIL, "bugs@mobile-stat.ru", Scope.PUBLIC)}
    assert found("dummy@example.org") == {(K.EMAIL, "dummy@example.org", Scope.DOCUMENTATION)}
    assert found("keld@dkuug.dk") == {(K.EMAIL, "keld@dkuug.dk", Scope.PUBLIC)}
    for text in ("memcpy@GLIBC_2.4", "lj@q.aIg", "root@localhost", "icon@2x.png", "%s@%s", "aes128-gcm@openssh.com"):
        assert values(text, K.EMAIL) == set(), text


# --- encodings ----------------------------------------------------------------------------------------------


def test_base64_decoding_rules() -> None:
    assert decode_base64_text("aHR0cDovL2JhY2t1cC5oZ3R4LWRhdGEuY24vdQ==") == "http://backup.hgtx-data.cn/u"
    assert decode_base64_text("aHR0cDovL2JhY2t1cC5oZ3R4LWRhdGEuY24vdQ") is None  # padding removed
    assert decode_base64_text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef") is None  # decodes to binary
    assert decode_base64_text("aGk=") is None  # too short


def xor(text: bytes, key: int) -> bytes:
    return bytes(byte ^ key for byte in text)


def add(text: bytes, key: int) -> bytes:
    return bytes((byte + key) & 0xFF for byte in text)


def test_single_byte_xor_and_add_for_every_key() -> None:
    rng = random.Random(7)
    url = b"http://c2.evil-update.ru/beacon?id=%s"
    for key in (0x01, 0x20, 0x5A, 0x80, 0xFF):
        for method, encode in (("xor", xor), ("add", add)):
            noise = rng.randbytes(3000)
            hits = list(single_byte_encoded(noise[:1000] + encode(url + b"\x00", key) + noise[1000:]))
            assert {h.offset for h in hits} == {1000}, (method, key)
            assert url.decode() in {h.decoded for h in hits}, (method, key)
            if key not in (0x20, 0x80):  # XOR 0x80 is ADD 0x80, XOR 0x20 is SUB 0x20 on this text: either reading
                assert [(h.method, h.key) for h in hits] == [(method, key)]


def test_plain_urls_are_not_single_byte_hits() -> None:
    assert list(single_byte_encoded(b"\x00http://plain.example-site.com/\x00https://x.example-site.com/")) == []


def test_encoded_endpoints_become_medium_findings(analyzer: IocsAnalyzer) -> None:
    rng = random.Random(1)
    blob = (
        rng.randbytes(500) + xor(b"http://c2.evil-update.ru/b\x00", 0x5A) + rng.randbytes(300)
        + add(b"https://203.0.113.50:8443/up\x00", 0x21) + rng.randbytes(300)
        + b"\x00cfg=" + base64.b64encode(b"tcp://198.51.100.9:4444") + b"\x00"
    )
    findings = analyzer.findings(analyzer.collect(blob))
    assert [(f.rule, f.endpoint.value, f.severity, f.tags, f.evidence[0].kind, f.evidence[0].excerpt)
            for f in findings if f.endpoint] == [
        ("ioc:domain", "c2.evil-update.ru", Severity.MEDIUM, ("encoded:xor", "ioc:domain", "key:0x5a"), "decoded",
         "http://c2.evil-update.ru/b"),
        ("ioc:ipv4", "198.51.100.9", Severity.MEDIUM, ("encoded:base64", "ioc:ipv4"), "decoded",
         "tcp://198.51.100.9:4444"),
        ("ioc:ipv4", "203.0.113.50", Severity.MEDIUM, ("encoded:add", "ioc:ipv4", "key:0x21"), "decoded",
         "https://203.0.113.50:8443/up"),
        ("ioc:url", "http://c2.evil-update.ru/b", Severity.MEDIUM,
         ("encoded:xor", "ioc:url", "key:0x5a", "scheme:http"), "decoded", "http://c2.evil-update.ru/b"),
        ("ioc:url", "https://203.0.113.50:8443/up", Severity.MEDIUM,
         ("encoded:add", "ioc:url", "key:0x21", "scheme:https"), "decoded", "https://203.0.113.50:8443/up"),
        ("ioc:url", "tcp://198.51.100.9:4444", Severity.MEDIUM, ("encoded:base64", "ioc:url", "scheme:tcp"),
         "decoded", "tcp://198.51.100.9:4444"),
    ]
    base64_finding = next(f for f in findings if f.endpoint and f.endpoint.value == "198.51.100.9")
    assert base64_finding.evidence[0].value == base64.b64encode(b"tcp://198.51.100.9:4444").decode()
    assert blob[base64_finding.evidence[0].offset:].startswith(base64.b64encode(b"tcp://"))
    assert next(f for f in findings if f.endpoint and f.endpoint.value == "c2.evil-update.ru").title == (
        "XOR-encoded domain c2.evil-update.ru"
    )


def test_base64_inside_pem_armour_is_not_decoded(analyzer: IocsAnalyzer) -> None:
    token = base64.b64encode(b"http://crl.example-ca.com/root.crl").decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{token}\n-----END CERTIFICATE-----\n".encode()
    assert analyzer.findings(analyzer.collect(pem)) == []
    assert [f.rule for f in analyzer.findings(analyzer.collect(pem + token.encode()))] == ["ioc:domain", "ioc:url"]


def test_a_stray_pem_header_hides_nothing(analyzer: IocsAnalyzer) -> None:
    token = base64.b64encode(b"http://c2.example-cnc.com/p").decode()
    blob = b"-----BEGIN CERTIFICATE-----\n" + b"\x00" * 70_000 + token.encode() + b"\x00"
    assert [f.rule for f in analyzer.findings(analyzer.collect(blob))] == ["ioc:domain", "ioc:url"]


def test_a_flood_of_encoded_needles_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ioc_decode, "MAX_SINGLE_BYTE_HITS", 100)
    decoded: list[int] = []
    real_decode = _ioc_decode._decode_single_byte

    def counting(*args: object) -> object:
        decoded.append(1)
        return real_decode(*args)

    monkeypatch.setattr(_ioc_decode, "_decode_single_byte", counting)
    blob = xor(b"http://\x00", 0x33) * 20_000  # 20,000 encoded needles, each too short to be a URL
    assert list(single_byte_encoded(blob)) == []
    assert len(decoded) == 100


# --- findings, caps, hostile input --------------------------------------------------------------------------


def test_one_finding_per_value_with_its_offsets(analyzer: IocsAnalyzer) -> None:
    blob = b"\x00".join([b"203.0.113.7"] * 8 + [b"http://203.0.113.7/x"]) + b"\x00"
    findings = analyzer.findings(analyzer.collect(blob))
    ipv4 = next(f for f in findings if f.rule == "ioc:ipv4")
    assert [e.offset for e in ipv4.evidence] == [0, 12, 24, 36, 48]
    assert all(blob[e.offset:e.offset + 11] == b"203.0.113.7" for e in ipv4.evidence)
    assert ipv4.title == "Hard-coded IPv4 address 203.0.113.7"
    assert ipv4.category == Category.ENDPOINT and ipv4.severity == Severity.LOW
    assert ipv4.description == "IPv4 address 203.0.113.7: scope documentation; seen 9 time(s)."


def test_utf16_strings_are_read(analyzer: IocsAnalyzer) -> None:
    blob = b"\x00\x00" + "http://api.mobile-stat.ru/c".encode("utf-16-le") + b"\x00\x00"
    findings = analyzer.findings(analyzer.collect(blob))
    assert [(f.rule, f.endpoint.country, f.evidence[0].kind, f.evidence[0].offset) for f in findings] == [
        ("ioc:domain", "RU", "utf16-string", 16), ("ioc:url", "RU", "utf16-string", 2),
    ]


def test_findings_per_kind_are_capped_with_a_note(analyzer: IocsAnalyzer) -> None:
    blob = b"".join(b"\x00198.51.100.%d\x00" % n for n in range(150)) + b"\x0010.0.%d.1\x00" % 7
    findings = analyzer.findings(analyzer.collect(blob))
    ipv4 = [f for f in findings if f.rule == "ioc:ipv4"]
    assert len(ipv4) == iocs.MAX_PER_KIND
    assert "10.0.7.1" not in {f.endpoint.value for f in ipv4}  # remote scopes are kept first
    assert {(f.severity, f.tags) for f in ipv4} == {(Severity.INFO, ("ioc:ipv4", "ioc:list"))}
    assert [(f.rule, f.category, f.title, f.tags) for f in findings if f.rule == "ioc:capped"] == [
        ("ioc:capped", Category.PROPERTY, "51 more IPv4 address endpoints not listed", ("ioc:capped", "ioc:ipv4")),
    ]


def test_the_scan_stops_after_a_flood(analyzer: IocsAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iocs, "MAX_CANDIDATES", 50)
    findings = analyzer.findings(analyzer.collect(b"\x00".join(b"8.8.8.8" for _ in range(200))))
    assert [f.title for f in findings] == ["Endpoint scan stopped after 50 matches", "Hard-coded IPv4 address 8.8.8.8"]


def test_regex_bomb_input_finishes(analyzer: IocsAnalyzer) -> None:
    """1 MB crafted to make backtracking regexes explode; strings are bounded to 4 KiB pieces."""
    parts = [
        b"a." * 60_000, b"1." * 60_000, b"a-" * 60_000, b"a" * 60_000 + b"@", b"+1 " * 40_000, b":" * 60_000,
        b"0:" * 60_000, b"http://" + b"a." * 50_000, b"x@" * 50_000, b"A" * 60_000, b"AT+CMGS=" * 10_000,
        b"aaaa." * 20_000 + b"com", b"-" * 60_000 + b"a.com",
    ]
    blob = b"\x00".join(parts)
    assert len(blob) > 1_000_000
    started = time.process_time()
    findings = analyzer.findings(analyzer.collect(blob))
    elapsed = time.process_time() - started
    print(f"regex-bomb input: {len(blob)} bytes in {elapsed:.2f} s CPU")
    assert [f.rule for f in findings] == []


def test_accepts(analyzer: IocsAnalyzer) -> None:
    def target(label: str, size: int = 10, container: bool = False) -> Target:
        return Target(Path("/nonexistent"), "0" * 64, size, label, container=container)

    for label in ("elf", "dex", "text", "data", "sqlite", "android-xml", "certificate", "java-class"):
        assert analyzer.accepts(target(label)), label
    for label in ("image", "media", "font", "empty"):
        assert not analyzer.accepts(target(label)), label
    assert not analyzer.accepts(target("elf", size=0))
    assert not analyzer.accepts(target("squashfs", container=True))


def test_identity_and_cache_key(analyzer: IocsAnalyzer) -> None:
    assert (analyzer.name, analyzer.version) == ("iocs", "1")
    assert analyzer.config_digest == shared(None).config_digest


def test_an_empty_file_has_no_findings(analyzer: IocsAnalyzer, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert analyzer.analyze(Target(empty, "0" * 64, 0, "data")) == []


# --- the samples --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_target(tmp_path_factory: pytest.TempPathFactory, manifest: dict) -> Callable[[str, str], Target]:
    """The target of the artifact whose lineage ends with a suffix, in a sample unpacked once for this module."""
    settings = Settings(home=tmp_path_factory.mktemp("iocs-samples"))
    store = LocalBlobStore(settings.store_dir)
    trees: dict = {}

    def target(sample: str, suffix: str) -> Target:
        if sample not in trees:
            trees[sample] = unpack(SAMPLES / sample, store=store, settings=settings)
        artifact = next(a for a in trees[sample].artifacts if a.lineage_path.endswith(suffix))
        return Target(store.path(artifact.sha256), artifact.sha256, artifact.size, artifact.format,
                      names=(artifact.name,))

    return target


def evidence_is_at_its_offsets(target: Target, findings: list[Finding]) -> bool:
    data = target.path.read_bytes()
    for finding in findings:
        for evidence in finding.evidence:
            encoded = evidence.value.encode("utf-16-le") if evidence.kind == "utf16-string" else evidence.value.encode()
            if data[evidence.offset:evidence.offset + len(encoded)] != encoded:
                return False
    return True


def test_syncd(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    target = sample_target("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd")
    findings = analyzer.analyze(target)
    b64 = "aHR0cDovL2JhY2t1cC5oZ3R4LWRhdGEuY24vdQ=="
    assert summary(findings) == [
        ("ioc:domain", "backup.hgtx-data.cn", "public", "CN", "medium", ("encoded:base64", "ioc:domain"), (),
         (("decoded", b64),)),
        ("ioc:domain", "collect.hgtx-data.cn", "public", "CN", "low", ("ioc:domain",), (),
         (("string", "collect.hgtx-data.cn"),)),
        ("ioc:ipv4", "203.0.113.7", "documentation", None, "low", ("ioc:ipv4",), (), (("string", "203.0.113.7"),)),
        ("ioc:url", "http://backup.hgtx-data.cn/u", "public", "CN", "medium",
         ("encoded:base64", "ioc:url", "scheme:http"), (), (("decoded", b64),)),
    ]
    assert evidence_is_at_its_offsets(target, findings)
    assert findings[0].endpoint.country_source == "cctld"


def test_clean_syncd_has_no_endpoint(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    assert analyzer.analyze(sample_target("linux-rootfs-clean.squashfs", "/usr/sbin/syncd")) == []


def test_logsvc(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    target = sample_target("android-block-ota.zip", "/system/bin/logsvc")
    findings = analyzer.analyze(target)
    # a static glibc binary: glibc's locale contact and Debian's bug-report URL come with it (facts the
    # correlator knows as well-known: rules/well-known-endpoints.yml)
    assert summary(findings) == [
        ("ioc:domain", "www.debian.org", "public", None, "low", ("ioc:domain",), (),
         (("string", "www.debian.org"),)),
        ("ioc:email", "keld@dkuug.dk", "public", "DK", "low", ("ioc:email",), (), (("string", "keld@dkuug.dk"),)),
        ("ioc:ipv4", "203.0.113.99", "documentation", None, "low", ("ioc:ipv4",), (), (("string", "203.0.113.99"),)),
        ("ioc:phone", "+4531226543", "public", "DK", "low", ("ioc:phone",), (), (("string", "+45 3122-6543"),)),
        ("ioc:phone", "+4533256543", "public", "DK", "low", ("ioc:phone",), (), (("string", "+45 3325-6543"),)),
        ("ioc:url", "http://www.debian.org/Bugs/", "public", None, "low", ("ioc:url", "scheme:http"), (),
         (("string", "http://www.debian.org/Bugs/"),)),
    ]
    assert evidence_is_at_its_offsets(target, findings)


def test_system_service_dex(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    target = sample_target("android-block-ota.zip", "SystemService.apk › classes.dex")
    findings = analyzer.analyze(target)
    assert summary(findings) == [
        ("ioc:domain", "api.mobile-stat.ru", "public", "RU", "low", ("ioc:domain",), (),
         (("string", "api.mobile-stat.ru"),)),
        ("ioc:ipv4", "203.0.113.99", "documentation", None, "low", ("ioc:ipv4",), (), (("string", "203.0.113.99"),)),
        ("ioc:url", "http://203.0.113.99/collect", "documentation", None, "low", ("ioc:url", "scheme:http"), (),
         (("string", "http://203.0.113.99/collect"),)),
        ("ioc:url", "http://api.mobile-stat.ru/collect", "public", "RU", "low", ("ioc:url", "scheme:http"), (),
         (("string", "http://api.mobile-stat.ru/collect"),)),
    ]
    assert evidence_is_at_its_offsets(target, findings)


def test_calculator_dex_is_clean(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    assert analyzer.analyze(sample_target("android-block-ota.zip", "Calculator.apk › classes.dex")) == []


def test_feature_phone_user_blob(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    target = sample_target("featurephone-sc6531e.pac", "› user")
    findings = analyzer.analyze(target)
    assert [(rule, value, scope, country, severity, tags, channels)
            for rule, value, scope, country, severity, tags, channels, _ in summary(findings)] == [
        ("ioc:domain", "sms.reg-cn.example.cn", "public", "CN", "low", ("ioc:domain",), ()),
        ("ioc:ipv4", "203.0.113.45", "documentation", None, "low", ("ioc:ipv4",), ()),
        ("ioc:phone", "+8613800138000", "public", "CN", "medium", ("context:sms", "ioc:phone"), ("sms",)),
        ("ioc:url", "http://203.0.113.45/reg.php", "documentation", None, "low", ("ioc:url", "scheme:http"), ()),
    ]
    phone = next(f for f in findings if f.rule == "ioc:phone")
    assert phone.title == "Hard-coded SMS recipient +8613800138000"
    assert phone.endpoint.country_source == "phone"
    assert evidence_is_at_its_offsets(target, findings)


def test_clean_feature_phone_user_blob(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    assert analyzer.analyze(sample_target("featurephone-sc6531e-clean.pac", "› user")) == []


def test_debian_busybox_and_libc(analyzer: IocsAnalyzer, sample_target: Callable[[str, str], Target]) -> None:
    """Precision on real binaries: what Debian's busybox and libc hold is reported, and nothing else."""
    busybox = analyzer.analyze(sample_target("linux-rootfs-backdoor.squashfs", "/bin/busybox"))
    assert [(f.rule, f.endpoint.value, f.endpoint.scope.value, f.severity.value) for f in busybox] == [
        ("ioc:domain", "github.com", "public", "low"),
        ("ioc:domain", "www.debian.org", "public", "low"),
        ("ioc:email", "keld@dkuug.dk", "public", "low"),
        ("ioc:ipv4", "0.0.0.0", "reserved", "info"),
        ("ioc:ipv4", "127.0.0.1", "local", "info"),
        ("ioc:ipv4", "192.168.0.20", "private", "info"),
        ("ioc:ipv4", "192.168.0.254", "private", "info"),
        ("ioc:ipv4", "255.255.255.255", "reserved", "info"),
        ("ioc:ipv6", "::1", "local", "info"),
        ("ioc:phone", "+4531226543", "public", "low"),
        ("ioc:phone", "+4533256543", "public", "low"),
        ("ioc:url", "http://www.debian.org/Bugs/", "public", "low"),
        ("ioc:url", "https://github.com/gavinhoward/bc", "public", "low"),
    ]
    libc = analyzer.analyze(sample_target("linux-rootfs-backdoor.squashfs", "/lib/arm-linux-gnueabihf/libc.so.6"))
    # "0.0.0.0.in-addr.arpa" in its resolver is a reverse-DNS name, not an address
    assert [(f.rule, f.endpoint.value) for f in libc] == [
        ("ioc:domain", "www.debian.org"), ("ioc:email", "keld@dkuug.dk"), ("ioc:phone", "+4531226543"),
        ("ioc:phone", "+4533256543"), ("ioc:url", "http://www.debian.org/Bugs/"),
    ]
