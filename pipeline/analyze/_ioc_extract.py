"""Endpoints named in one string: the patterns, the precision filters and the scope of each (for ``iocs``).

Every pattern has bounded quantifiers only and runs on strings of at most
4 KiB, so no input makes a regular expression backtrack catastrophically.
The precision filters are documented where they are defined and summed up
in ``pipeline/analyze/iocs.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import urlsplit

from pipeline.analyze.enrich import Enrichment
from pipeline.model import EndpointKind, Scope

# --- candidate patterns: bounded quantifiers only ---------------------------------------------------------

# Possessive quantifiers ("{0,62}+"): a word that is not followed by a dot fails at once instead of
# being given back one character at a time.
_LABEL = r"[A-Za-z0-9][A-Za-z0-9-]{0,62}+(?<!-)"
_HOSTNAME = rf"(?:{_LABEL}\.){{1,10}}(?:[A-Za-z]{{2,24}}+|xn--[A-Za-z0-9-]{{1,59}}+)"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"

SCHEMES = ("http", "https", "ftp", "ftps", "tftp", "mqtt", "mqtts", "ws", "wss", "tcp", "udp", "rtsp", "rtmp",
           "telnet")
URL_RE = re.compile(
    rf"(?<![A-Za-z0-9+.-])(?:{'|'.join(sorted(SCHEMES, key=len, reverse=True))})://[^\s\"'<>`\\{{}}|^]{{1,2048}}",
    re.IGNORECASE | re.ASCII,
)
DOT_LETTER_RE = re.compile(r"\.[A-Za-z]", re.ASCII)  # every host name and e-mail domain has one
HOST_RE = re.compile(rf"(?:{_LABEL}\.){{0,10}}{_LABEL}", re.ASCII)
GLUED_WWW_RE = re.compile(r"[0-9a-z]www\.", re.ASCII)
DOMAIN_RE = re.compile(rf"(?<![\w.@/\\%$}}-])({_HOSTNAME})(?![\w-]|\.[A-Za-z0-9])", re.ASCII)
IPV4_RE = re.compile(rf"(?<![\w.])({_OCTET}(?:\.{_OCTET}){{3}})(?!\w|\.\w)", re.ASCII)
IPV6_RE = re.compile(
    r"(?<![\w:.])((?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?)(?![\w:]|\.[0-9])",
    re.ASCII,
)
EMAIL_RE = re.compile(rf"(?<![\w.%+/-])([A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}})@({_HOSTNAME})(?![\w-]|\.[A-Za-z0-9])",
                      re.ASCII)
PHONE_RE = re.compile(r"(?<![\w+])(\+[1-9](?:[ -]?[0-9]){6,14})(?![0-9]|[.,][0-9])", re.ASCII)
PHONE_CONTEXT_RE = re.compile(
    r"(?<![A-Za-z])(?:(?P<scheme>tel|sms|smsto|mms|mmsto|callto):(?://)?|(?P<at>AT\+CMGS=|ATD))"
    r"\s{0,3}\"?(?P<number>\+?[0-9](?:[ -]?[0-9]){2,16})(?![0-9])",
    re.IGNORECASE | re.ASCII,
)
# Words before a dotted quad that make it a version or a section number, not an address.
PHONE_HINT_RE = re.compile(r"(?:tel|sms|smsto|mms|mmsto|callto):", re.IGNORECASE | re.ASCII)
VERSION_CONTEXT_RE = re.compile(
    r"(?:version|ver|rev|release|build|linux|kernel|firmware|fw|sdk|api|v|sections?|sec|§|rfc ?[0-9]{0,5})"
    r"[\s:=_/#.'\"(-]{0,6}$",
    re.IGNORECASE,
)
VERSION_SUFFIX_RE = re.compile(r"-[A-Za-z]", re.ASCII)  # "11.3.244.8-node.38"
HOST_TEMPLATE_CHARS = frozenset("%$*{}()")

# --- precision filters (summed up in the docstring of iocs.py) -------------------------------------------

# Bare names (outside URLs) are accepted freely on these TLDs, where code identifiers almost never end...
STRONG_TLDS = frozenset({"com", "net", "org", "edu", "gov", "mil"})
# ...and on these, ccTLDs and IDN TLDs only with a sign of a host name (``plausible_bare_domain``).
WEAK_GENERIC_TLDS = frozenset({
    "int", "biz", "info", "mobi", "asia", "pro", "top", "xyz", "online", "site", "club", "shop", "app", "dev",
    "icu", "vip", "live", "store", "tech", "cloud", "fun", "space", "website", "link", "click", "work", "win",
    "bid", "loan", "cyou", "sbs", "cfd", "bond", "buzz", "rest", "monster", "quest", "host", "press", "today",
    "world", "life", "network", "services", "digital",
})
# First labels that make a host of a name on a weak TLD (``api.mobile-stat.ru``, ``www.lorenzobettini.it``).
HOST_LABELS = frozenset({
    "www", "web", "api", "apis", "m", "mobile", "wap", "mail", "smtp", "pop", "pop3", "imap", "mx", "ns", "dns",
    "ntp", "time", "pool", "ftp", "sftp", "update", "updates", "upgrade", "ota", "fota", "download", "downloads",
    "dl", "cdn", "static", "img", "upload", "report", "reports", "logs", "stat", "stats", "analytics", "track",
    "tracker", "collect", "collector", "push", "sms", "mms", "reg", "register", "auth", "login", "pay", "cloud",
    "server", "srv", "gw", "gateway", "vpn", "proxy", "c2", "cnc", "panel", "admin", "portal", "apps", "backup",
    "sync", "bbs", "blog", "news", "shop", "home", "cn", "ru", "en", "us", "eu", "hk", "tw", "jp", "kr",
})
REGISTRY_SECOND_LEVELS = frozenset({
    "com", "net", "org", "edu", "gov", "mil", "co", "ac", "or", "ne", "go", "gv", "nic", "asn", "gob", "gouv",
    "ltd", "plc", "info", "biz", "nom", "int", "sch", "pp", "in", "firm", "gen", "idv", "web",
})
HOST_LABEL_RE = re.compile(r"(?:www|web|api|ns|mx|smtp|srv|server|node|cdn|dl|s|c|m)[0-9]{1,3}", re.ASCII)
ONION_RE = re.compile(r"(?:[a-z2-7]{16}|[a-z2-7]{56})\.onion", re.ASCII)
FILE_EXTENSION_TLDS = frozenset({
    "so", "sh", "py", "pl", "pm", "cc", "md", "in", "am", "ac", "la", "mo", "ps", "ai", "mk", "ml", "rs", "gd",
    "gs", "bz", "sc", "st", "do", "pt", "ms", "tk", "cs", "js", "ts", "hh", "ko", "ld", "me", "sx", "cx", "el",
    "zip", "mov", "app", "dev", "run", "build", "data", "link", "map", "target", "pid", "new", "bin", "tar",
    "br",
})
# First labels of dotted identifiers: Java packages (reversed domains) and Android system properties.
PACKAGE_ROOTS = frozenset({
    "com", "org", "net", "edu", "gov", "io", "android", "androidx", "java", "javax", "dalvik", "kotlin",
    "kotlinx", "sun", "jdk", "libcore", "junit", "okhttp3", "retrofit2", "dagger",
    "ro", "persist", "sys", "debug", "ril", "gsm", "vendor", "ctl", "dhcp", "init", "hw", "wifi", "wlan",
    "bluetooth", "bt", "telephony", "media", "camera", "audio", "service", "config", "log", "llvm",
})
# Domains of SSH algorithm and extension names ("aes128-gcm@openssh.com", RFC 4251 section 6): not mailboxes.
PROTOCOL_NAME_DOMAINS = frozenset({"openssh.com", "libssh.org"})
# Programming words that make "word.tld" an expression (self.info, config.site) rather than a host.
IDENTIFIER_WORDS = frozenset({
    "self", "this", "that", "super", "window", "document", "obj", "object", "args", "kwargs", "cls", "ctx",
    "context", "config", "cfg", "conf", "opts", "options", "settings", "params", "param", "request", "req",
    "response", "resp", "res", "result", "data", "item", "node", "element", "event", "evt", "msg", "message",
    "user", "app", "module", "os", "sys", "std", "info", "log", "logger", "file", "path", "name", "value", "key",
    "type", "model", "view", "parent", "child", "root", "main", "test", "tests", "build", "src", "lib", "bin",
    "util", "utils", "common", "core", "base", "index", "setup", "init", "default", "global", "local", "temp",
    "tmp", "str", "string", "list", "dict", "map", "set", "array", "math", "json", "xml", "time", "date", "img",
    "image", "style", "text", "page", "state", "store", "client", "server", "session", "socket", "thread",
    "error", "err", "exception", "output", "input", "stream", "buffer", "handler", "callback", "db", "table",
    "row", "column", "record", "field", "entry", "account", "service", "system", "process", "task",
    "job", "device", "network", "version", "readme", "license", "changelog", "makefile", "cmake",
})
LOCAL_SUFFIXES = ("localhost", "local", "localdomain", "lan", "home.arpa", "internal")
DOCUMENTATION_SUFFIXES = ("example", "test", "invalid", "example.com", "example.net", "example.org")

DOCUMENTATION_NETS = tuple(ipaddress.ip_network(net) for net in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20",
))
# ISO member-body (1.2), identified-organisation (1.3) and X.500 (2.5) OID arcs: "2.5.29.17", "1.3.101.112".
OID_LIKE_NETS = tuple(ipaddress.ip_network(net) for net in ("1.2.0.0/16", "1.3.0.0/16", "2.5.0.0/16"))
PRIVATE_NETS = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7",
))

# --- classification ---------------------------------------------------------------------------------------


def ip_scope(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Scope:
    """Where an address points: documentation ranges first (Python counts them private), then the rest."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return ip_scope(address.ipv4_mapped)
    if any(address in net for net in DOCUMENTATION_NETS):
        return Scope.DOCUMENTATION
    if address.is_loopback or address.is_link_local:
        return Scope.LOCAL
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return Scope.RESERVED
    if any(address in net for net in PRIVATE_NETS):
        return Scope.PRIVATE
    return Scope.PUBLIC if address.is_global else Scope.RESERVED


def _under(host: str, suffixes: tuple[str, ...]) -> bool:
    return any(host == suffix or host.endswith("." + suffix) for suffix in suffixes)


def domain_scope(host: str, enrichment: Enrichment) -> Scope:
    """Where a host name points: local and documentation names by suffix, else public when registrable."""
    host = host.lower().rstrip(".")
    if _under(host, LOCAL_SUFFIXES):
        return Scope.LOCAL
    if _under(host, DOCUMENTATION_SUFFIXES):
        return Scope.DOCUMENTATION
    return Scope.PUBLIC if ONION_RE.fullmatch(host) or enrichment.split_domain(host) else Scope.UNKNOWN


def plausible_registrable(name: str, enrichment: Enrichment) -> bool:
    """Is a dotted name (a bare domain, an e-mail domain) on a TLD that hosts are named under?

    One case throughout (``q.aIg`` is bytes of code), registrable on the Public Suffix List (or a
    documentation name, or a Tor onion name), a strong, weak-generic, country-code or IDN TLD (not
    ``.phone``, a brand TLD that ``com.android.phone`` ends in), and a second-level label of three
    characters or more when the name has only two labels and no strong TLD (``z.zw``, ``qh.na`` come
    out of compressed data; ``qq.com`` is a host).
    """
    labels = name.split(".")
    if not (name.islower() or (name.isupper() and len(labels) > 2)):
        return False
    host = name.lower()
    if _under(host, DOCUMENTATION_SUFFIXES[3:]) or ONION_RE.fullmatch(host):
        return True
    tld = labels[-1].lower()
    if not (tld in STRONG_TLDS or tld in WEAK_GENERIC_TLDS or tld.startswith("xn--") or len(tld) == 2):
        return False  # decided before the (slower) suffix list: most dotted words of code stop here
    parts = enrichment.split_domain(host)
    if parts is None:
        return False
    return len(labels) > 2 or tld in STRONG_TLDS or len(labels[0]) >= 3


def plausible_bare_domain(name: str, enrichment: Enrichment) -> bool:
    """Is a dotted name outside any URL or e-mail address a host rather than a file, package or identifier?

    Beyond ``plausible_registrable``: not a file name (a TLD that is a common extension needs a
    second-level suffix: ``config.in`` no, ``example.co.in`` yes); not a reversed-domain package or an
    Android property (``com.android.x``, ``ro.build.id``) unless it ends in a strong TLD with three
    labels or more (``android.clients.google.com``); not ``self.info``; and, under a weak TLD (ccTLDs,
    new gTLDs), a sign of a host name: a hyphen (never in code identifiers), a host-like first label
    (``www``, ``api``, ``mail``, ``ns1``...) or a second-level public suffix (``.com.cn``) — this is
    what keeps ``llvm.mips.addq.ph``, ``seq.in.re`` and ``builtins.id`` out.
    """
    if not plausible_registrable(name, enrichment):
        return False
    host = name.lower()
    if ONION_RE.fullmatch(host) or _under(host, DOCUMENTATION_SUFFIXES[3:]):
        return True
    labels = host.split(".")
    parts = enrichment.split_domain(host)
    assert parts is not None  # plausible_registrable checked it
    # a registry's own second level (.com.cn, .co.uk, .asn.au), not a wildcard rule's any-label (*.mm)
    multi_label_suffix = "." in parts.suffix and parts.suffix.split(".")[0] in REGISTRY_SECOND_LEVELS
    if parts.tld in FILE_EXTENSION_TLDS and not multi_label_suffix:
        return False
    if labels[0] in PACKAGE_ROOTS and not (len(labels) >= 3 and parts.tld in STRONG_TLDS):
        return False
    if len(labels) == 2 and labels[0] in IDENTIFIER_WORDS:
        return False
    if parts.tld in STRONG_TLDS or multi_label_suffix:
        return True
    return "-" in host or labels[0] in HOST_LABELS or bool(HOST_LABEL_RE.fullmatch(labels[0]))


def plausible_ipv6(text: str) -> ipaddress.IPv6Address | None:
    """An IPv6 candidate that ``ipaddress`` accepts and that does not look like code.

    Not ``::`` alone, not without a digit (``DB::DB``, ``dead::beef``), and a compressed form needs
    four hex digits or more and a first group of two or more (``[1::2]`` is a Python slice, ``4::C4``
    bytes of code; ``fe80::1``, ``64:ff9b::`` and ``::1`` are addresses).
    """
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if address.is_unspecified or not any(char.isdigit() for char in text):
        return None
    if text == "::1" or "::" not in text or text.startswith("::ffff:"):
        return address
    groups = [group for group in re.split(r"[:.]", text) if group]
    if len(groups) < 2 or sum(len(group) for group in groups) < 4:
        return None
    return address if text.startswith("::") or len(groups[0]) >= 2 else None


# --- candidates ---------------------------------------------------------------------------------------------


class Candidate(NamedTuple):
    """One endpoint seen in a text, before it becomes (part of) a finding."""

    kind: EndpointKind
    value: str  # normalised: lower-case host, compressed IPv6, E.164 number
    host: str
    scope: Scope
    start: int  # index of the match in the text
    raw: str  # the matched text as found
    tags: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


def endpoints_in(text: str, enrichment: Enrichment) -> Iterator[Candidate]:
    """Every endpoint named in one string: cheap substring tests decide which patterns run at all."""
    if "://" in text:
        yield from _urls(text, enrichment)
    if "." in text:
        if DOT_LETTER_RE.search(text):  # a fast literal-prefix search: half the dotted strings of text stop here
            if "@" in text:
                yield from _emails(text, enrichment)
            yield from _domains(text, enrichment)
        if text.count(".") >= 3:  # a C-speed gate: most dotted strings cannot hold a dotted quad
            yield from _ipv4s(text)
    if "::" in text or text.count(":") >= 7:
        yield from _ipv6s(text)
    if "+" in text or "ATD" in text or "atd" in text or (":" in text and PHONE_HINT_RE.search(text)):
        yield from _phones(text, enrichment)


def _urls(text: str, enrichment: Enrichment) -> Iterator[Candidate]:
    for match in URL_RE.finditer(text):
        url = match.group().rstrip(".,;:!?)]}'\"")
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:  # malformed netloc such as an unclosed IPv6 bracket
            continue
        if not host or HOST_TEMPLATE_CHARS.intersection(host):
            continue
        endpoint = _host_endpoint(host, enrichment)
        if endpoint is None:
            continue
        kind, host_value, scope = endpoint
        yield Candidate(EndpointKind.URL, url, host_value, scope, match.start(), url,
                        (f"scheme:{parts.scheme.lower()}",))
        host_at = max(url.lower().find(host.lower()), 0)
        yield Candidate(kind, host_value, host_value, scope, match.start() + host_at,
                        url[host_at:host_at + len(host)])


def _host_endpoint(host: str, enrichment: Enrichment) -> tuple[EndpointKind, str, Scope] | None:
    """The kind, normalised value and scope of a URL's host, or None when it is not a host name at all."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        kind = EndpointKind.IPV4 if address.version == 4 else EndpointKind.IPV6
        return kind, address.compressed, ip_scope(address)
    host = host.rstrip(".")
    if not HOST_RE.fullmatch(host):
        return None
    scope = domain_scope(host, enrichment)
    # A host on no public suffix is a word of prose or a dictionary ("http://according to"), not a destination
    return None if scope == Scope.UNKNOWN else (EndpointKind.DOMAIN, host, scope)


def _emails(text: str, enrichment: Enrichment) -> Iterator[Candidate]:
    for match in EMAIL_RE.finditer(text):
        if not plausible_registrable(match.group(2), enrichment):
            continue
        domain = match.group(2).lower()
        if domain in PROTOCOL_NAME_DOMAINS:
            continue
        scope = domain_scope(domain, enrichment)
        if scope in (Scope.PUBLIC, Scope.DOCUMENTATION):
            yield Candidate(EndpointKind.EMAIL, f"{match.group(1)}@{domain}", domain, scope, match.start(),
                            match.group())


def _domains(text: str, enrichment: Enrichment) -> Iterator[Candidate]:
    for match in DOMAIN_RE.finditer(text):
        name, start = match.group(1), match.start()
        if GLUED_WWW_RE.match(name):  # a DER tag or DEX length byte stuck to "www." ("0www.entrust.net")
            name, start = name[1:], start + 1
        if plausible_bare_domain(name, enrichment):
            host = name.lower()
            yield Candidate(EndpointKind.DOMAIN, host, host, domain_scope(host, enrichment), start, name)


def _ipv4s(text: str) -> Iterator[Candidate]:
    for match in IPV4_RE.finditer(text):
        if VERSION_CONTEXT_RE.search(text, max(0, match.start() - 16), match.start()) or VERSION_SUFFIX_RE.match(
                text, match.end()):
            continue
        address = ipaddress.IPv4Address(match.group(1))
        if any(address in net for net in OID_LIKE_NETS):
            continue  # 2.5.4.3 is an X.500 attribute OID long before it is an address of 2.5.0.0/16
        scope = ip_scope(address)
        if scope == Scope.PUBLIC and address.packed[3] == 0 and not text.startswith("/", match.end()):
            continue  # a public network address without its prefix length: a version ("4.8.12.0")
        yield Candidate(EndpointKind.IPV4, str(address), str(address), scope, match.start(), match.group(1))


def _ipv6s(text: str) -> Iterator[Candidate]:
    for match in IPV6_RE.finditer(text):
        address = plausible_ipv6(match.group(1))
        if address is not None:
            yield Candidate(EndpointKind.IPV6, address.compressed, address.compressed, ip_scope(address),
                            match.start(), match.group(1))


def _phones(text: str, enrichment: Enrichment) -> Iterator[Candidate]:
    for match in PHONE_CONTEXT_RE.finditer(text):
        context = match.group("scheme") or match.group("at")
        context = context.lower()
        if context in ("tel", "callto"):
            tag, channels = "context:tel", ()
        elif context == "atd":
            tag, channels = "context:dial", ()
        else:
            tag, channels = "context:sms", ("sms",)
        raw = match.group("number")
        digits = re.sub(r"[ -]", "", raw)
        if context.startswith("at+cmgs") and not raw.startswith("+") and len(digits) < 5:
            continue  # AT+CMGS=<n> in PDU mode is a length, not a number
        number = _international(digits)
        if number is not None:
            yield Candidate(EndpointKind.PHONE, number, number, Scope.PUBLIC, match.start("number"), raw, (tag,),
                            channels)
        elif not digits.startswith("+"):
            yield Candidate(EndpointKind.PHONE, digits, digits, Scope.UNKNOWN, match.start("number"), raw, (tag,),
                            channels)
    if "+" in text:
        for match in PHONE_RE.finditer(text):
            number = _international(re.sub(r"[ -]", "", match.group(1)))
            if number is not None:
                yield Candidate(EndpointKind.PHONE, number, number, Scope.PUBLIC, match.start(1), match.group(1))


def _international(digits: str) -> str | None:
    """The E.164 form of a ``+``-prefixed number phonenumbers calls valid, else None."""
    if not digits.startswith("+"):
        return None
    import phonenumbers

    try:
        parsed = phonenumbers.parse(digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
