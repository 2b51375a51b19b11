"""Offline enrichment: ccTLD, phone and GeoIP countries, the Public Suffix List, data identity, no network."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline.analyze import enrich
from pipeline.analyze.enrich import DomainParts, Enrichment, EnrichmentError, country_of_tld, shared
from pipeline.model import EndpointKind


@pytest.fixture(scope="module")
def enrichment() -> Enrichment:
    return Enrichment()


# --- a tiny MaxMind DB writer (format: https://maxmind.github.io/MaxMind-DB/), for the .mmdb path ----------


def _control(type_number: int, size: int) -> bytes:
    extended = type_number > 7
    if size < 29:
        head, tail = size, b""
    elif size < 285:
        head, tail = 29, bytes([size - 29])
    else:
        head, tail = 30, struct.pack(">H", size - 285)
    first = bytes([((0 if extended else type_number) << 5) | head])
    return first + (bytes([type_number - 7]) if extended else b"") + tail


def _encode(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return _control(2, len(raw)) + raw
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(_encode(k) + _encode(v) for k, v in value.items())
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(_encode(item) for item in value)
    if isinstance(value, tuple):  # (type number, int): uint16 = 5, uint32 = 6, uint64 = 9
        type_number, number = value
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return _control(type_number, len(raw)) + raw
    raise TypeError(value)


def write_mmdb(path: Path, networks: dict[str, dict], build_epoch: int = 1_700_000_000) -> None:
    """An IPv4 database (24-bit records) mapping each network to its record."""
    data = b""
    offsets = {}
    for network, record in networks.items():
        offsets[network] = len(data)
        data += _encode(record)
    nodes: list[list[Any]] = [[None, None]]
    for network, offset in offsets.items():
        net = ipaddress.ip_network(network)
        bits = int(net.network_address)
        node = 0
        for depth in range(net.prefixlen):
            bit = (bits >> (31 - depth)) & 1
            if depth == net.prefixlen - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = ("node", len(nodes) - 1)
                node = nodes[node][bit][1]
    count = len(nodes)

    def record(entry: Any) -> int:
        if entry is None:
            return count
        return entry[1] if entry[0] == "node" else count + 16 + entry[1]

    tree = b"".join(record(left).to_bytes(3, "big") + record(right).to_bytes(3, "big") for left, right in nodes)
    metadata = _encode({
        "node_count": (6, count), "record_size": (5, 24), "ip_version": (5, 4),
        "database_type": "Test-Country", "languages": ["en"], "binary_format_major_version": (5, 2),
        "binary_format_minor_version": (5, 0), "build_epoch": (9, build_epoch), "description": {"en": "test"},
    })
    path.write_bytes(tree + b"\x00" * 16 + data + b"\xab\xcd\xefMaxMind.com" + metadata)


# --- ccTLDs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tld", "country"), [
    ("cn", "CN"), ("ru", "RU"), ("de", "DE"), ("uk", "GB"), ("su", "RU"), ("eu", None), ("io", None),
    ("co", None), ("me", None), ("tv", None), ("com", None), ("top", None), ("xn--p1ai", "RU"),
    ("xn--fiqs8s", "CN"), ("CN", "CN"),
])
def test_country_of_tld(tld: str, country: str | None) -> None:
    assert country_of_tld(tld) == country


@pytest.mark.parametrize(("host", "country"), [
    ("backup.hgtx-data.cn", "CN"), ("api.mobile-stat.ru", "RU"), ("shop.example.co.uk", "GB"),
    ("www.gov.cn", "CN"), ("x.com.cn", "CN"), ("update.example-vendor.com", None), ("tool.io", None),
    ("localhost", None), ("libc.so.6", None),
])
def test_country_of_domain(enrichment: Enrichment, host: str, country: str | None) -> None:
    assert enrichment.country_of_domain(host) == country


def test_split_domain_on_the_public_suffix_list(enrichment: Enrichment) -> None:
    assert enrichment.split_domain("Backup.HGTX-data.cn.") == DomainParts("backup", "hgtx-data", "cn")
    assert enrichment.split_domain("a.b.example.co.uk") == DomainParts("a.b", "example", "co.uk")
    assert enrichment.split_domain("a.b.example.co.uk").registrable == "example.co.uk"
    assert enrichment.split_domain("foo.bin") is None  # no such suffix
    assert enrichment.split_domain("co.uk") is None  # a suffix, nothing registrable
    assert {"com", "cn", "ru", "uk", "xn--p1ai", "phone"} <= enrichment.top_level_domains
    assert "bin" not in enrichment.top_level_domains


# --- phone numbers and IP addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(("number", "country"), [
    ("+8613800138000", "CN"), ("+74951234567", "RU"), ("+77011234567", "KZ"), ("+4531226543", "DK"),
    ("+80012345678", None), ("13800138000", None), ("+", None),
])
def test_country_of_phone(enrichment: Enrichment, number: str, country: str | None) -> None:
    assert enrichment.country_of_phone(number) == country


@pytest.mark.parametrize(("address", "country"), [
    ("77.88.8.8", "RU"), ("114.114.114.114", "CN"), ("8.8.8.8", "US"), ("2a02:6b8::feed:0ff", "RU"),
    ("2400:3200::1", "CN"), ("203.0.113.7", None), ("10.1.2.3", None), ("::1", None), ("2001:db8::1", None),
    ("not an address", None),
])
def test_country_of_ip_from_the_shipped_database(enrichment: Enrichment, address: str, country: str | None) -> None:
    assert enrichment.country_of_ip(address) == country


def test_country_of_endpoint_kinds(enrichment: Enrichment) -> None:
    assert enrichment.country_of(EndpointKind.DOMAIN, "collect.hgtx-data.cn") == ("CN", "cctld")
    assert enrichment.country_of(EndpointKind.URL, "api.mobile-stat.ru") == ("RU", "cctld")
    assert enrichment.country_of(EndpointKind.URL, "114.114.114.114") == ("CN", "geoip")
    assert enrichment.country_of(EndpointKind.IPV6, "[2a02:6b8::feed:0ff]") == ("RU", "geoip")
    assert enrichment.country_of(EndpointKind.EMAIL, "root@mail.example.ru") == ("RU", "cctld")
    assert enrichment.country_of(EndpointKind.PHONE, "+8613800138000") == ("CN", "phone")
    assert enrichment.country_of(EndpointKind.IPV4, "203.0.113.7") == (None, None)
    assert enrichment.country_of(EndpointKind.DOMAIN, "github.com") == (None, None)


# --- a configured .mmdb ------------------------------------------------------------------------------------


def test_a_configured_mmdb_replaces_the_shipped_database(tmp_path: Path) -> None:
    path = tmp_path / "test-country.mmdb"
    write_mmdb(path, {
        "9.9.9.0/24": {"country": {"iso_code": "AQ"}},
        "77.88.0.0/16": {"registered_country": {"iso_code": "FI"}},
        "5.5.5.0/24": {"country_code": "tv"},  # IPinfo-style layout
    })
    configured = Enrichment(path)
    assert configured.country_of_ip("9.9.9.9") == "AQ"
    assert configured.country_of_ip("77.88.8.8") == "FI"  # not RU: the shipped data is not consulted
    assert configured.country_of_ip("5.5.5.5") == "TV"
    assert configured.country_of_ip("8.8.8.8") is None
    assert configured.country_of_ip("2a02:6b8::1") is None  # IPv6 in an IPv4-only database
    assert "geoip=mmdb/test-country.mmdb/Test-Country/build-1700000000/" in configured.identity
    assert configured.config_digest != Enrichment().config_digest


def test_a_different_mmdb_build_changes_the_digest(tmp_path: Path) -> None:
    first, second = tmp_path / "a.mmdb", tmp_path / "b" / "a.mmdb"
    second.parent.mkdir()
    write_mmdb(first, {"9.9.9.0/24": {"country": {"iso_code": "AQ"}}}, build_epoch=1)
    write_mmdb(second, {"9.9.9.0/24": {"country": {"iso_code": "AQ"}}}, build_epoch=2)
    assert Enrichment(first).config_digest != Enrichment(second).config_digest


def test_an_unreadable_mmdb_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mmdb"
    broken.write_bytes(b"not a database")
    with pytest.raises(EnrichmentError, match=r"broken\.mmdb"):
        Enrichment(broken).country_of_ip("8.8.8.8")
    with pytest.raises(EnrichmentError, match=r"missing\.mmdb"):
        Enrichment(tmp_path / "missing.mmdb").country_of_ip("8.8.8.8")


# --- identity, sharing, no network -------------------------------------------------------------------------


def test_identity_names_every_source(enrichment: Enrichment) -> None:
    identity = enrichment.identity
    assert identity.startswith("psl=tldextract-")
    assert ";phone=phonenumbers-" in identity
    assert ";geoip=geoip2fast-" in identity and "/geoip2fast-ipv6.dat.gz/" in identity
    assert enrichment.config_digest == Enrichment().config_digest  # stable across instances
    assert len(enrichment.config_digest) == 64


def test_shared_instances_are_per_database_and_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shared() is shared(None)
    fresh = Enrichment()
    opened: list[int] = []
    real_open = Enrichment._open_geoip

    def counting(self: Enrichment) -> Any:
        opened.append(1)
        return real_open(self)

    monkeypatch.setattr(Enrichment, "_open_geoip", counting)
    threads = [threading.Thread(target=fresh.country_of_ip, args=("8.8.8.8",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened == [1]


def test_no_network_is_ever_touched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fresh data loads (suffix list, GeoIP, phone metadata) and lookups with every socket call refused."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    monkeypatch.setattr(socket, "gethostbyaddr", refuse)
    monkeypatch.setenv("HOME", str(tmp_path))  # tldextract's default cache would be ~/.cache
    enrich._split_cached.cache_clear()
    fresh = Enrichment()
    assert fresh.split_domain("api.mobile-stat.ru") == DomainParts("api", "mobile-stat", "ru")
    assert fresh.country_of(EndpointKind.IPV4, "77.88.8.8") == ("RU", "geoip")
    assert fresh.country_of(EndpointKind.PHONE, "+74951234567") == ("RU", "phone")
    assert fresh.identity
    assert not (tmp_path / ".cache").exists()
