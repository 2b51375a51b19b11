"""Hard-coded endpoints (IOCs) in any file: URLs, domains, IPv4/IPv6 addresses, phone numbers, e-mail addresses.

Detection use cases: the destination half of an exfiltration behaviour. A
backdoor names where it sends what it collects: ``203.0.113.7:8080`` and
``collect.hgtx-data.cn`` in a Linux daemon, ``http://api.mobile-stat.ru/collect``
in a DEX, ``AT+CMGS="+8613800138000"`` in a feature phone's RTOS, sometimes
hidden as base64 (``aHR0cDovL2JhY2t1cC5oZ3R4LWRhdGEuY24v...``) or with a
single-byte XOR/ADD key. Each distinct endpoint of a file becomes one
``Category.ENDPOINT`` finding with an ``Endpoint`` (kind, scope, host,
country from offline data: ``analyze/enrich.py``) and up to ``MAX_EVIDENCE``
offsets; the correlator pairs it with the data sources and channels found in
the same component. A URL also gives a finding for its host (domain or
address), so behaviours can name hosts.

How (``_ioc_extract``, ``_ioc_decode``): printable ASCII and UTF-16LE strings
(``analyze/strings.py``: mmap + numpy) holding a ``.``, ``:``, ``@`` or ``+``
are matched against regular expressions with bounded quantifiers only, on
strings cut to 4 KiB pieces: no input backtracks catastrophically. Base64
runs of 16+ characters with a proper length or padding are decoded and kept
when they decode to printable text naming an endpoint (not inside PEM
armour: certificates and keys). Single-byte XOR and ADD encodings of
``http://`` / ``https://`` are found for all 255 keys at once in the
byte-to-byte differences of the file, which do not depend on the key.

Severity: info for private, local, reserved and unknown scopes; low for
public and documentation ones (a hard-coded endpoint is common and not
damning alone; documentation ranges in firmware are a test build or a
disguise); medium for anything decoded from base64/XOR/ADD and for a phone
number in an SMS-sending context (a hard-coded SMS recipient, channel ``sms``).

Precision choices (real firmware is full of things that look like endpoints;
checked on Debian armhf/mipsel/x86-64 binaries and libraries, DEX files):

- IPv4: strict dotted quads (octets 0-255, no leading zeros), not part of a
  longer dotted run (``v1.2.3.4.5``, OIDs such as ``1.3.6.1.4.1``, reverse
  names ``1.0.0.127.in-addr.arpa``), not after a version word (``Linux
  version 2.6.32.1``), not in the 1.2/16, 1.3/16 and 2.5/16 arcs that
  four-part OIDs live in (``2.5.4.3``, ``1.3.101.112``), and not a public
  ``x.y.z.0`` without a prefix length (a version: ``4.8.12.0``). Private,
  loopback, reserved and documentation addresses are classified, not dropped.
- IPv6: validated by ``ipaddress``; ``::`` alone, forms with fewer than two
  groups and forms without a digit (``DB::DB``, ``dead::beef``) are ignored.
- URL hosts must be an address, a registrable name on the Public Suffix
  List, a local name (``localhost``, ``.local``, ``.lan``...), a
  documentation name (``example.com``, ``.test``) or a Tor ``.onion`` name:
  ``http://according to`` in a compression dictionary is prose.
- Bare domains (outside URLs and e-mail addresses): one letter case
  (``java.lang.String`` is code), registrable on the PSL (ICANN section,
  offline), a TLD that is classic, a ccTLD, an IDN or a popular new gTLD
  (``com.android.phone`` ends in the brand TLD ``.phone``); not a file name
  (``libc.so``, ``setup.py``, ``config.in``, ``system.new.dat.br``: such TLDs
  need a registry second level like ``.co.in``); not a reversed-domain
  package or an Android property (``com.``, ``android.``, ``ro.``...) unless
  it has three labels or more under ``.com/.net/.org/...``
  (``android.clients.google.com``); not ``self.info``; and under anything but
  ``.com/.net/.org/.edu/.gov/.mil`` a sign of a host name: a hyphen (never in
  code identifiers), a host-like first label (``www``, ``api``, ``mail``...)
  or a registry second level (``.com.cn``). That is what keeps LLVM
  intrinsics (``llvm.mips.addq.ph``), opcodes and solver options out.
- Phone numbers: ``+<country code><digits>`` forms that phonenumbers calls
  valid (scope public, country from the calling code); bare digit runs only
  after ``AT+CMGS=``, ``sms:``, ``smsto:``, ``mms:``, ``tel:``, ``callto:``
  or ``ATD`` (scope unknown unless they parse as international);
  ``AT+CMGS=<n>`` with fewer than five digits is a PDU length.
- E-mail addresses: the domain part passes the case, PSL and TLD tests;
  SSH algorithm and extension names (``aes128-gcm@openssh.com``) are not
  mailboxes.
- Facts are reported as found: endpoints that open-source code embeds
  everywhere (glibc's ``keld@dkuug.dk`` and ``+45 3122-6543``, Debian's bug
  URL, XML namespaces such as ``schemas.android.com``) come out like any
  other; ``rules/well-known-endpoints.yml`` tells the correlator they are
  nobody's collection server.

Accepts every non-empty, non-container file except images, audio/video,
fonts and gettext message catalogs (``SKIPPED_LABELS``): the bytes of the
first three are compressed pixels and samples, any "string" in them is noise
and metadata URLs there are not destinations; a catalog translates the
strings of a program (scanned on its own) and adds translators' addresses.
Certificates are scanned: their CRL/OCSP URLs come out at low severity, as
facts.

Rule ids: ``ioc:url``, ``ioc:domain``, ``ioc:ipv4``, ``ioc:ipv6``,
``ioc:phone``, ``ioc:email`` (one finding per distinct value per file);
``ioc:capped``, a PROPERTY note, when a kind had more than ``MAX_PER_KIND``
values (the most telling are kept: encoded first, then remote scopes, then
by offset; the kept ones are then a list, e.g. Qt's built-in copy of the
Public Suffix List: severity info and tag ``ioc:list``) or the scan stopped
after ``MAX_CANDIDATES`` matches. Tags: ``ioc:<kind>``; ``ioc:list``;
``scheme:<scheme>`` on URLs; ``encoded:base64``,
``encoded:xor``, ``encoded:add`` and ``key:0x<hh>`` on decoded endpoints;
``context:sms``, ``context:tel``, ``context:dial`` on phone numbers.
Evidence kinds: ``string``, ``utf16-string`` (value: the matched text), and
``decoded`` (value: the base64 word, or the hex of the XOR/ADD-encoded
bytes; excerpt: the decoded text), at the file offset of the match.

Known limitations:
- Strings shorter than 6 characters are not read (``t.co``, ``x.cn``), nor
  text outside ASCII (IDN hosts in UTF-8), nor strings built at run time
  (``snprintf("%s.%s", ...)``), nor endpoints cut across 4 KiB pieces.
- Encodings beyond standard base64 (no URL-safe alphabet, no base64 in
  UTF-16), single-byte XOR/ADD of ``http(s)://`` (multi-byte keys, RC4,
  custom alphabets, stack strings assembled by code) are not decoded;
  XOR/ADD-encoded bare domains and addresses (without a scheme) are missed.
- Bare domains on TLDs outside the accepted sets, or on ccTLDs without a
  sign of a host name (``yandex.ru`` alone), are missed outside URLs and
  e-mail addresses; a real host that looks like a package name
  (``com.example.ru``) is dropped.
- Phone numbers without ``+`` outside an SMS/dial context are ignored
  (``ATD10086`` without ``+`` is not seen), as are numbers written with
  parentheses or dots.
- Compression dictionaries and prose (brotli's dictionary, licence texts)
  can still yield a few plausible names (``the.com``).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import ClassVar

from pipeline.analyze._ioc_decode import (
    BASE64_ALPHABET,
    MIN_BASE64,
    base64_shaped,
    base64_words,
    decode_base64_text,
    inside,
    pem_blocks,
    single_byte_encoded,
)
from pipeline.analyze._ioc_extract import Candidate, endpoints_in
from pipeline.analyze.base import Analyzer, AnalyzerFailed, Target
from pipeline.analyze.enrich import EnrichmentError, shared
from pipeline.analyze.strings import ASCII, OVERLAP, UTF16LE, ExtractedString, iter_buffer_strings
from pipeline.config import Detection
from pipeline.model import Category, Endpoint, EndpointKind, Evidence, Finding, Scope, Severity

SKIPPED_LABELS = frozenset({"image", "media", "font", "message-catalog", "empty"})
MIN_LENGTH = 6  # shortest string read: "qq.com", "1.1.1.1"
MAX_PER_KIND = 100  # findings of one kind per file; beyond, an ioc:capped note
MAX_DISTINCT = 2000  # distinct values of one kind collected per file (bounds memory on hostile input)
MAX_EVIDENCE = 5  # offsets kept per finding
MAX_CANDIDATES = 100_000  # matches read per file before the scan stops (reported by an ioc:capped note)
EXCERPT = 40  # characters of context on each side of a match
CANDIDATE_BYTES = b".:@+"  # every endpoint pattern needs one of these

_PRIORITY = {Scope.PUBLIC: 0, Scope.DOCUMENTATION: 0, Scope.UNKNOWN: 1, Scope.PRIVATE: 2, Scope.LOCAL: 2,
             Scope.RESERVED: 2}
_SEVERITY_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}
_KIND_WORDS = {
    EndpointKind.URL: "URL", EndpointKind.DOMAIN: "domain", EndpointKind.IPV4: "IPv4 address",
    EndpointKind.IPV6: "IPv6 address", EndpointKind.PHONE: "phone number", EndpointKind.EMAIL: "e-mail address",
}
_ENCODING_WORDS = {"encoded:base64": "Base64-encoded", "encoded:xor": "XOR-encoded", "encoded:add": "ADD-encoded"}


# --- aggregation ------------------------------------------------------------------------------------------


@dataclass
class _Aggregate:
    """Everything seen of one (kind, value) in one file."""

    kind: EndpointKind
    value: str
    host: str
    scope: Scope
    first: int
    tags: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    evidence: dict[tuple[int, str], Evidence] = field(default_factory=dict)
    occurrences: int = 0
    pruned: set[tuple[int, str]] = field(default_factory=set)
    severity: Severity = Severity.INFO
    encoded: bool = False

    def keep(self, evidence: Evidence) -> None:
        """Remember an occurrence; only the ``MAX_EVIDENCE`` lowest offsets are kept, in bounded memory."""
        key = (evidence.offset or 0, evidence.kind)
        if key in self.evidence or key in self.pruned:
            return  # the same bytes seen again (a URL's host also matches on its own)
        self.occurrences += 1
        self.evidence[key] = evidence
        if len(self.evidence) > 4 * MAX_EVIDENCE:
            self.pruned.update(sorted(self.evidence)[MAX_EVIDENCE:])
            self.evidence = dict(sorted(self.evidence.items())[:MAX_EVIDENCE])


class _Collector:
    """Findings of one file under construction, bounded in memory whatever the file holds."""

    def __init__(self) -> None:
        self.found: dict[tuple[EndpointKind, str], _Aggregate] = {}
        self.distinct: dict[EndpointKind, int] = {}
        self.dropped: dict[EndpointKind, int] = {}
        self.candidates = 0

    @property
    def exhausted(self) -> bool:
        """Has this file given ``MAX_CANDIDATES`` matches? (a hostile file of a million IP addresses)"""
        return self.candidates >= MAX_CANDIDATES

    def add(self, candidate: Candidate, evidence: Evidence, extra_tags: tuple[str, ...] = ()) -> None:
        self.candidates += 1
        key = (candidate.kind, candidate.value)
        aggregate = self.found.get(key)
        if aggregate is None:
            if self.distinct.get(candidate.kind, 0) >= MAX_DISTINCT:
                self.dropped[candidate.kind] = self.dropped.get(candidate.kind, 0) + 1
                return
            self.distinct[candidate.kind] = self.distinct.get(candidate.kind, 0) + 1
            aggregate = self.found[key] = _Aggregate(candidate.kind, candidate.value, candidate.host, candidate.scope,
                                                     evidence.offset or 0)
        aggregate.first = min(aggregate.first, evidence.offset or 0)
        aggregate.tags.update(candidate.tags, extra_tags)
        aggregate.channels.update(candidate.channels)
        aggregate.keep(evidence)
        encoded = any(tag.startswith("encoded:") for tag in extra_tags)
        aggregate.encoded |= encoded
        severity = _severity(candidate, encoded)
        if _SEVERITY_RANK[severity] > _SEVERITY_RANK[aggregate.severity]:
            aggregate.severity = severity


def _severity(candidate: Candidate, encoded: bool) -> Severity:
    """Encoded endpoints and SMS recipients matter in context; a plain remote endpoint is common; the rest info."""
    if encoded or "context:sms" in candidate.tags:
        return Severity.MEDIUM
    return Severity.LOW if candidate.scope.remote else Severity.INFO


def _excerpt(text: str, start: int, length: int) -> str:
    return text[max(0, start - EXCERPT):start + length + EXCERPT]


# --- the analyzer -----------------------------------------------------------------------------------------


class IocsAnalyzer(Analyzer):
    """Hard-coded URLs, domains, IP addresses, phone numbers and e-mail addresses, plain or simply encoded."""

    name: ClassVar[str] = "iocs"
    version: ClassVar[str] = "1"

    def __init__(self) -> None:
        self.detection = Detection.from_env()
        self.enrichment = shared(self.detection.geoip_db)

    @property
    def config_digest(self) -> str:
        return self.enrichment.config_digest

    def accepts(self, target: Target) -> bool:
        return not target.container and target.size > 0 and target.label not in SKIPPED_LABELS

    def analyze(self, target: Target) -> list[Finding]:
        try:
            with open(target.path, "rb") as handle:
                try:
                    mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:  # empty after all
                    return []
            try:
                collector = self.collect(mapped)
            finally:
                mapped.close()
            return self.findings(collector)
        except EnrichmentError as exc:
            raise AnalyzerFailed(str(exc)) from exc
        except OSError as exc:
            raise AnalyzerFailed(f"cannot read {target.name}: {exc}") from exc

    def collect(self, buffer: bytes | mmap.mmap) -> _Collector:
        """Every endpoint of a buffer: plain strings, base64 tokens, XOR/ADD-encoded URLs."""
        collector = _Collector()
        # encoded strings first: rarer and more telling, they must not be crowded out by the budget
        for hit in single_byte_encoded(buffer):
            tags = (f"encoded:{hit.method}", f"key:0x{hit.key:02x}")
            evidence = Evidence("decoded", hit.encoded[:64].hex(), hit.offset, hit.decoded[:200])
            for candidate in endpoints_in(hit.decoded, self.enrichment):
                collector.add(candidate, evidence, tags)
            if collector.exhausted:
                return collector
        armour = pem_blocks(buffer)
        for token in iter_buffer_strings(buffer, MIN_BASE64, encodings=(ASCII,), alphabet=BASE64_ALPHABET,
                                         span_filter=base64_shaped):
            if not inside(token.offset, armour):
                self._collect_base64(collector, token)
            if collector.exhausted:
                return collector
        for string in iter_buffer_strings(buffer, MIN_LENGTH, must_contain=CANDIDATE_BYTES):
            self._collect_plain(collector, string)
            if collector.exhausted:
                break
        return collector

    def _collect_plain(self, collector: _Collector, string: ExtractedString) -> None:
        text = string.text
        kind = "utf16-string" if string.encoding == UTF16LE else "string"
        for candidate in endpoints_in(text, self.enrichment):
            if not string.complete and candidate.start >= len(text) - OVERLAP:
                continue  # in the overlap at the end of a cut piece: the next piece has it whole
            evidence = Evidence(kind, candidate.raw, string.offset_of(candidate.start),
                                _excerpt(text, candidate.start, len(candidate.raw)))
            collector.add(candidate, evidence)

    def _collect_base64(self, collector: _Collector, token: ExtractedString) -> None:
        """Decode the base64 words of one run of the base64 alphabet (``url=aHR0...`` holds two)."""
        for start, word in base64_words(token.text):
            decoded = decode_base64_text(word)
            if decoded is None:
                continue
            evidence = Evidence("decoded", word, token.offset_of(start), decoded[:200])
            for candidate in endpoints_in(decoded, self.enrichment):
                collector.add(candidate, evidence, ("encoded:base64",))

    def findings(self, collector: _Collector) -> list[Finding]:
        """One finding per (kind, value), the most telling ``MAX_PER_KIND`` of each kind, a note when capped."""
        by_kind: dict[EndpointKind, list[_Aggregate]] = {}
        for aggregate in collector.found.values():
            by_kind.setdefault(aggregate.kind, []).append(aggregate)
        findings: list[Finding] = []
        for kind, aggregates in sorted(by_kind.items()):
            aggregates.sort(key=lambda a: (not a.encoded, _PRIORITY[a.scope], a.first, a.value))
            left_out = len(aggregates) - MAX_PER_KIND + collector.dropped.get(kind, 0)
            # hundreds of names in one file are a list (Qt's copy of the suffix list, a blocklist):
            # each is reported at severity info with an ioc:list tag, not as a destination
            findings.extend(self._finding(aggregate, listed=left_out > 0) for aggregate in aggregates[:MAX_PER_KIND])
            if left_out > 0:
                findings.append(_capped(kind, left_out))
        if collector.exhausted:
            findings.append(_stopped(collector.candidates))
        return sorted(findings, key=Finding.sort_key)

    def _finding(self, aggregate: _Aggregate, listed: bool = False) -> Finding:
        country, source = self.enrichment.country_of(aggregate.kind, aggregate.host)
        endpoint = Endpoint(aggregate.value, aggregate.kind, aggregate.scope, aggregate.host, country, source)
        evidence = tuple(sorted(aggregate.evidence.values(), key=lambda e: (e.offset or 0, e.kind)))[:MAX_EVIDENCE]
        encodings = sorted(tag for tag in aggregate.tags if tag in _ENCODING_WORDS)
        noun = _KIND_WORDS[aggregate.kind]
        if encodings:
            title = f"{' and '.join(_ENCODING_WORDS[tag] for tag in encodings)} {noun} {aggregate.value}"
        elif "context:sms" in aggregate.tags:
            title = f"Hard-coded SMS recipient {aggregate.value}"
        else:
            title = f"Hard-coded {noun} {aggregate.value}"
        where = f", {country} ({source})" if country else ""
        listed = listed and not aggregate.encoded
        tags = {f"ioc:{aggregate.kind.value}", *aggregate.tags, *(("ioc:list",) if listed else ())}
        return Finding(
            rule=f"ioc:{aggregate.kind.value}",
            analyzer=self.name,
            category=Category.ENDPOINT,
            severity=Severity.INFO if listed else aggregate.severity,
            title=title,
            channels=tuple(sorted(aggregate.channels)),
            endpoint=endpoint,
            tags=tuple(sorted(tags)),
            evidence=evidence,
            description=(f"{noun[0].upper()}{noun[1:]} {aggregate.value}: scope {aggregate.scope.value}{where}; "
                         f"seen {aggregate.occurrences} time(s)."),
        )


def _capped(kind: EndpointKind, left_out: int) -> Finding:
    return Finding(
        rule="ioc:capped",
        analyzer=IocsAnalyzer.name,
        category=Category.PROPERTY,
        severity=Severity.INFO,
        title=f"{left_out} more {_KIND_WORDS[kind]} endpoints not listed",
        tags=("ioc:capped", f"ioc:{kind.value}"),
        description=(f"Only the first {MAX_PER_KIND} {_KIND_WORDS[kind]} endpoints of this file are reported "
                     "(encoded first, then remote scopes, then by offset)."),
    )



def _stopped(candidates: int) -> Finding:
    return Finding(
        rule="ioc:capped",
        analyzer=IocsAnalyzer.name,
        category=Category.PROPERTY,
        severity=Severity.INFO,
        title=f"Endpoint scan stopped after {candidates} matches",
        tags=("ioc:capped",),
        description=(f"The file holds more than {MAX_CANDIDATES} endpoint-like strings; the rest of it was not "
                     "read for endpoints (a flood of addresses is itself unusual)."),
    )
