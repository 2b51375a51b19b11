"""Offline reference data for endpoints: the Public Suffix List, and the country of an IP, a phone number or a domain.

Why: a reviewer weighs "posts the IMEI to a hard-coded address" very
differently when the address is in another country, and behaviour rules name
hosts by their registrable domain. Everything here is read from data shipped
with the installed packages or a file the lab configures; nothing is ever
looked up on the network (no DNS, no WHOIS, no GeoIP web service), so results
are reproducible and a seized device's endpoints are never tipped off.

Sources, one per endpoint kind (``Endpoint.country_source``):

- ``geoip``: a MaxMind-format ``.mmdb`` when ``Detection.geoip_db`` is set
  (``FWTRIAGE_GEOIP_DB``: GeoLite2-Country/City, DB-IP lite, IPinfo lite...),
  else the GeoLite2 country data shipped by the geoip2fast package, its
  IPv4+IPv6 file (``geoip2fast-ipv6.dat.gz``, loaded in 0.1 s, ~70 MB). Only
  public addresses are looked up: private, reserved and documentation ranges
  have no country.
- ``phone``: the calling code of an international number (phonenumbers'
  ``region_code_for_number``); non-geographic codes (+800, +882...) have none.
- ``cctld``: the country-code TLD of a domain (``.cn`` -> CN, ``.com.cn`` ->
  CN), with ISO 3166 exceptions: ``.uk`` -> GB, ``.su`` -> RU (the Soviet
  Union's TLD, administered from Russia and used by Russian-language sites),
  ``.eu`` -> none (not a country), a few IDN ccTLDs (``.рф`` -> RU, ``.中国``
  -> CN...). ccTLDs sold and used as generic names (``.io``, ``.co``, ``.me``,
  ``.tv``, ``.ai``, ``.fm``, ``.ly``...; ``VANITY_CCTLDS``) say nothing about
  a country and give none. Generic TLDs (``.com``, ``.top``) give none.

The data identity (package versions, file hashes or the .mmdb metadata) is
``Enrichment.identity``; its digest ``config_digest`` goes into the cache key
of analyzers whose findings carry countries, so changing the database
re-analyses exactly what it must.

Known limitations:
- GeoIP country is where the address block was registered or geolocated at
  the database's build date (geoip2fast ships a 2024-06-18 GeoLite2 snapshot),
  not where a server is today; cloud and CDN addresses give the provider's
  country.
- A ccTLD is where a name is registered, not where it points; generic TLDs
  (the majority of malicious domains) give no country at all.
- The Public Suffix List is the snapshot bundled with tldextract: suffixes
  created after it are unknown (their domains are not recognised).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.model import EndpointKind

GEOIP2FAST_FILE = "geoip2fast-ipv6.dat.gz"  # shipped with geoip2fast: IPv4 and IPv6 country blocks

# ccTLDs whose ISO 3166-1 code differs from the TLD, or that name no country.
CCTLD_EXCEPTIONS: dict[str, str | None] = {"uk": "GB", "su": "RU", "eu": None}
# ccTLDs marketed and used as generic names: a domain under them says nothing about a country.
VANITY_CCTLDS = frozenset({
    "ac", "ad", "ai", "am", "as", "bz", "cc", "cd", "co", "cx", "dj", "fm", "gg", "im", "io", "la", "ly",
    "me", "ms", "nu", "sc", "sh", "so", "sr", "st", "tk", "to", "tv", "vc", "ws",
})
# Internationalised ccTLDs (punycode) of the countries most often met in seized firmware.
IDN_CCTLDS = {
    "xn--p1ai": "RU",  # .рф
    "xn--fiqs8s": "CN",  # .中国
    "xn--fiqz9s": "CN",  # .中國
    "xn--j6w193g": "HK",  # .香港
    "xn--kprw13d": "TW",  # .台湾
    "xn--kpry57d": "TW",  # .台灣
    "xn--3e0b707e": "KR",  # .한국
    "xn--j1amh": "UA",  # .укр
    "xn--90ais": "BY",  # .бел
    "xn--80ao21a": "KZ",  # .қаз
    "xn--90a3ac": "RS",  # .срб
    "xn--d1alf": "MK",  # .мкд
    "xn--mgbaam7a8h": "AE",  # .امارات
    "xn--mgberp4a5d4ar": "SA",  # .السعودية
    "xn--wgbh1c": "EG",  # .مصر
    "xn--mgbtx2b": "IQ",  # .عراق
    "xn--mgba3a4f16a": "IR",  # .ایران
    "xn--h2brj9c": "IN",  # .भारत
    "xn--yfro4i67o": "SG",  # .新加坡
    "xn--o3cw4h": "TH",  # .ไทย
}


class EnrichmentError(Exception):
    """The configured reference data cannot be used (missing or unreadable GeoIP database)."""


@dataclass(frozen=True)
class DomainParts:
    """A host name split on the Public Suffix List (ICANN section): ``sub.registrable-label.suffix``."""

    subdomain: str
    domain: str
    suffix: str

    @property
    def registrable(self) -> str:
        """The name a registrant owns (``hgtx-data.cn``), what behaviours group hosts by."""
        return f"{self.domain}.{self.suffix}"

    @property
    def tld(self) -> str:
        return self.suffix.rsplit(".", 1)[-1]


class Enrichment:
    """The reference data of one process, loaded lazily on first use (thread-safe), never from the network."""

    def __init__(self, geoip_db: Path | None = None) -> None:
        self.geoip_db = geoip_db
        self._lock = threading.Lock()
        self._psl: Any = None
        self._tlds: frozenset[str] | None = None
        self._geoip: Any = None
        self._geoip_lock = threading.Lock()

    # --- Public Suffix List -------------------------------------------------------------------------

    def _extractor(self) -> Any:
        if self._psl is None:
            with self._lock:
                if self._psl is None:
                    import tldextract

                    # suffix_list_urls=() and cache_dir=None: the bundled snapshot only, no HTTP, no ~/.cache
                    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
                    self._tlds = frozenset(_with_punycode(suffix.rsplit(".", 1)[-1] for suffix in extractor.tlds))
                    self._psl = extractor
        return self._psl

    @property
    def top_level_domains(self) -> frozenset[str]:
        """Every TLD of the ICANN part of the Public Suffix List (``com``, ``cn``; IDNs as ``рф`` and ``xn--p1ai``)."""
        self._extractor()
        assert self._tlds is not None
        return self._tlds

    def split_domain(self, host: str) -> DomainParts | None:
        """``host`` split on its public suffix, or None when it has no registrable part on one."""
        return _split_cached(self._extractor(), host.lower().rstrip("."))

    # --- countries -------------------------------------------------------------------------------------

    def country_of(self, kind: EndpointKind, host: str) -> tuple[str | None, str | None]:
        """(ISO country, source) of an endpoint from its host (the host of a URL, the domain of an e-mail)."""
        if kind == EndpointKind.PHONE:
            country = self.country_of_phone(host)
            return (country, "phone") if country else (None, None)
        if kind == EndpointKind.EMAIL:
            host = host.rpartition("@")[2]
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            country = self.country_of_domain(host)
            return (country, "cctld") if country else (None, None)
        country = self.country_of_ip(host.strip("[]"))
        return (country, "geoip") if country else (None, None)

    def country_of_domain(self, host: str) -> str | None:
        """The country of a domain's ccTLD, None for generic and vanity TLDs."""
        parts = self.split_domain(host)
        return country_of_tld(parts.tld) if parts else None

    def country_of_phone(self, number: str) -> str | None:
        """The country of an international number's calling code (``+86...`` -> CN)."""
        import phonenumbers

        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return None
        region = phonenumbers.region_code_for_number(parsed)
        return region if region and region.isalpha() and region != "ZZ" else None

    def country_of_ip(self, address: str) -> str | None:
        """The country of a public address from the GeoIP data; None for non-public or unknown blocks."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        if not ip.is_global:
            return None
        geoip = self._geoip_reader()
        if self.geoip_db is not None:
            return _mmdb_country(geoip, str(ip))
        with self._geoip_lock:  # geoip2fast keeps its tables in module globals; lookups are serialised
            code = geoip.lookup(str(ip)).country_code
        return code if isinstance(code, str) and len(code) == 2 and code.isalpha() else None

    def _geoip_reader(self) -> Any:
        if self._geoip is None:
            with self._lock:
                if self._geoip is None:
                    self._geoip = self._open_geoip()
        return self._geoip

    def _open_geoip(self) -> Any:
        if self.geoip_db is not None:
            import maxminddb

            try:
                return maxminddb.open_database(str(self.geoip_db))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                raise EnrichmentError(f"GeoIP database {self.geoip_db} unreadable: {exc}") from exc
        from geoip2fast import GeoIP2Fast

        # An absolute path: given a bare name, geoip2fast looks in the current directory first.
        return GeoIP2Fast(geoip2fast_data_file=str(_geoip2fast_file()))

    # --- identity --------------------------------------------------------------------------------------

    @functools.cached_property
    def identity(self) -> str:
        """What data the countries come from: package versions, file hashes, .mmdb metadata."""
        return ";".join((
            f"psl=tldextract-{metadata.version('tldextract')}/{_psl_snapshot_digest()}",
            f"phone=phonenumbers-{metadata.version('phonenumbers')}",
            f"geoip={self._geoip_identity()}",
            "cctld=" + hashlib.sha256(repr((
                sorted(CCTLD_EXCEPTIONS.items()), sorted(VANITY_CCTLDS), sorted(IDN_CCTLDS.items()),
            )).encode()).hexdigest()[:16],
        ))

    @property
    def config_digest(self) -> str:
        return hashlib.sha256(self.identity.encode()).hexdigest()

    def _geoip_identity(self) -> str:
        if self.geoip_db is None:
            path = _geoip2fast_file()
            return f"geoip2fast-{metadata.version('geoip2fast')}/{path.name}/{_file_digest(path)}"
        info = self._geoip_reader().metadata()
        return (f"mmdb/{self.geoip_db.name}/{info.database_type}/build-{info.build_epoch}"
                f"/nodes-{info.node_count}/ipv{info.ip_version}")


def country_of_tld(tld: str) -> str | None:
    """ISO 3166-1 alpha-2 code of a ccTLD (``uk`` -> GB), None for generic, vanity and non-country TLDs."""
    tld = tld.lower()
    if tld in IDN_CCTLDS:
        return IDN_CCTLDS[tld]
    if len(tld) != 2 or not tld.isascii() or not tld.isalpha() or tld in VANITY_CCTLDS:
        return None
    return CCTLD_EXCEPTIONS.get(tld, tld.upper())


_shared: dict[Path | None, Enrichment] = {}
_shared_lock = threading.Lock()


def shared(geoip_db: Path | None = None) -> Enrichment:
    """The process-wide ``Enrichment`` for a GeoIP database (None: the shipped one), created once."""
    with _shared_lock:
        if geoip_db not in _shared:
            _shared[geoip_db] = Enrichment(geoip_db)
        return _shared[geoip_db]


@functools.lru_cache(maxsize=65536)
def _split_cached(extractor: Any, host: str) -> DomainParts | None:
    """The PSL split of a lower-case host (cached: the same names recur across a firmware's files)."""
    result = extractor(host)
    if not result.suffix or not result.domain:
        return None
    return DomainParts(result.subdomain, result.domain, result.suffix)


def _with_punycode(tlds: Iterable[str]) -> Iterator[str]:
    for tld in tlds:
        yield tld
        if not tld.isascii():
            try:
                yield tld.encode("idna").decode("ascii")
            except UnicodeError:
                continue


def _mmdb_country(reader: Any, address: str) -> str | None:
    """The country code of a MaxMind-format record: GeoLite2/DB-IP (``country.iso_code``) or IPinfo layouts."""
    try:
        record = reader.get(address)
    except ValueError:  # an IPv6 address in an IPv4-only database
        return None
    if not isinstance(record, dict):
        return None
    for key in ("country", "registered_country"):
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("iso_code")
        if isinstance(value, str) and len(value) == 2 and value.isalpha():
            return value.upper()
    value = record.get("country_code")
    return value.upper() if isinstance(value, str) and len(value) == 2 and value.isalpha() else None


def _geoip2fast_file() -> Path:
    import geoip2fast

    path = Path(geoip2fast.__file__).resolve().parent / GEOIP2FAST_FILE
    if not path.is_file():
        raise EnrichmentError(f"geoip2fast is installed without its {GEOIP2FAST_FILE}")
    return path


@functools.cache
def _psl_snapshot_digest() -> str:
    import pkgutil

    snapshot = pkgutil.get_data("tldextract", ".tld_set_snapshot") or b""
    return hashlib.sha256(snapshot).hexdigest()[:16]


@functools.cache
def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
