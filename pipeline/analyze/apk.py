"""Android applications: what an APK's manifest declares and which sensitive APIs its DEX code calls.

Detection use cases
    The backdoors preinstalled on cheap Android phones are system apps: an
    APK under ``/system/priv-app`` sharing the system uid, started by a
    ``BOOT_COMPLETED`` receiver, that reads the IMEI, the IMSI, the SMS
    store, the contacts or the location and posts them over HTTP. This
    analyzer reports each of those facts as its own finding, so correlation
    can tie "reads the IMEI" and "speaks HTTP" and "starts at boot" to one
    component:

    - PROPERTY (info): the package, version and SDK levels, component counts
      (``apk:manifest``) and every requested permission as a
      ``permission:<name>`` tag (``apk:permissions``).
    - DATA_SOURCE (``apk:data.<kind>``): API use seen in the code, never
      permissions alone (a permission is a declaration; it is listed as
      supporting evidence). An API counts when an ``invoke-*`` instruction
      calls it or an ``iget``/``sget`` reads it (``Build.SERIAL``,
      ``ContactsContract...CONTENT_URI``), or when a content URI
      (``content://sms``, ``content://call_log``...) is in the string pool,
      with the method that loads it by ``const-string`` when one does.
    - CHANNEL (``apk:channel.<channel>``): HTTP clients (``HttpURLConnection``,
      ``URL.openConnection``, OkHttp, Apache HttpClient, Volley), HTTPS
      (``HttpsURLConnection``, ``SSLContext``), TCP and UDP sockets, SMS
      sending (with the phone numbers loaded next to the call), MQTT, FTP,
      SMTP, USSD. URLs loaded by ``const-string`` are listed as evidence of
      the HTTP findings; the endpoints themselves are the IOC analyzer's.
    - PERSISTENCE: receivers of ``BOOT_COMPLETED``/``LOCKED_BOOT_COMPLETED``/
      ``QUICKBOOT_POWERON`` (``apk:boot-receiver``), ``android:persistent``
      (``apk:persistent``).
    - PRIVILEGE: installed under ``priv-app`` (``apk:priv-app``, from the
      in-image path: the analyzer is path-sensitive), a platform shared uid
      such as ``android.uid.system`` (``apk:platform-uid``), permissions only
      platform-signed or privileged apps get (``apk:privileged-permissions``,
      from the AOSP permission tables shipped with androguard).
    - EXECUTION: dynamic code loading (``DexClassLoader`` and kin, DEX files
      hidden in the APK besides ``classesN.dex``), ``Runtime.exec`` /
      ``ProcessBuilder`` with the command strings next to them, package
      installation (``PackageInstaller``, ``pm install``).

    Every system app reads some identifier, speaks HTTP and has privileged
    permissions, so single findings are LOW or MEDIUM (personal data, SMS
    sending); dynamic code and package installation are MEDIUM only in a
    system component (priv-app, platform uid or persistent). The weight comes
    from co-occurrence, which correlation computes.

How
    The manifest is decoded with androguard's ``AXMLPrinter`` straight from
    the zip member (androguard's ``APK`` class would read the whole APK into
    memory first). Each DEX is parsed with androguard's ``DEX``, without the
    cross-reference ``Analysis`` that ``AnalyzeAPK`` builds (measured on a
    4 MB DEX: 15 s and 580 MB against 1.3 s and 115 MB here; on 24 MB, 25 s
    and 1.8 GB against 5 s and 480 MB). The method, field and string tables
    say which watched APIs the DEX references at all (a DEX that references
    none is done there); then only the methods whose bytecode contains one
    of those indexes are disassembled, to name the caller and to check that
    the reference is an instruction, not a declaration.

    Two androguard 4.1.4 side effects are undone at import: its loguru
    records are disabled (hundreds of lines per APK) and the ``colorama``
    wrappers it puts on ``sys.stdout``/``sys.stderr`` are removed. Its
    string reader, which loops forever on a string running past the end of
    a DEX, is replaced by one that raises.

Known limitations
    - Pre-optimised system apps carry no ``classes.dex`` (the code is in
      ``oat/<arch>/*.odex`` and ``*.vdex`` beside the APK): only the manifest
      is analysed and an ``apk:no-dex`` finding says so. JAR files (including
      ``/system/framework/*.jar``, whose DEX implements the very APIs watched
      here) are not analysed; their DEX members are still scanned by the YARA
      and IOC analyzers.
    - A DEX larger than 24 MiB is skipped (``apk:dex-skipped``): androguard
      needs about 20 times its size in memory. A DEX androguard rejects (bad
      checksum, garbage) gives an ``apk:unparseable`` finding and the other
      DEX files are still analysed.
    - Only direct references are seen: APIs called through reflection
      (``Class.forName`` + ``Method.invoke``), JNI, a subclass's type in the
      call, encrypted strings or code loaded at run time are not; neither are
      DEX payloads that are encrypted or not named ``*.dex``.
    - No data flow: "reads the IMEI" and "speaks HTTP" in one APK are two
      facts, not proof that the IMEI is sent; the content URI evidence is the
      string, not a query made with it.
    - Manifest attributes given as resource references (``@7f0a0001``) are
      reported as such; resources are not resolved. The APK signature is not
      checked, so a platform shared uid is reported as declared.
    - Parsing is pure Python under the GIL, in the calling thread, with no
      timeout of its own: a crafted APK can cost what the size caps allow
      (about 500 MB for one DEX, about a minute for 256 MiB of DEX).
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import IO, Any

from loguru import logger

from pipeline.analyze.base import Analyzer, Target
from pipeline.model import Category, Evidence, Finding, Severity

logger.disable("androguard")  # androguard logs hundreds of lines per APK through loguru; keep only ours

import androguard.core.dex as androguard_dex  # noqa: E402  (after silencing its logger)
from androguard.core.api_specific_resources import load_permissions  # noqa: E402
from androguard.core.axml import AXMLPrinter  # noqa: E402
from androguard.core.dex import DEX, LinearSweepAlgorithm, TypeMapItem  # noqa: E402
from colorama import initialise as colorama_state  # noqa: E402


def _unwrap_standard_streams() -> None:
    """Undo the ``colorama.init()`` androguard runs at import: it replaces ``sys.stdout`` and ``sys.stderr``
    process-wide (with ANSI-stripping wrappers whenever they are not terminals), under the CLI and the workers."""
    for name, wrapped, original in (("stdout", colorama_state.wrapped_stdout, colorama_state.orig_stdout),
                                    ("stderr", colorama_state.wrapped_stderr, colorama_state.orig_stderr)):
        if wrapped is not None and original is not None and getattr(sys, name) is wrapped:
            setattr(sys, name, original)


_unwrap_standard_streams()


def _read_null_terminated_string(handle: IO[bytes]) -> bytes:
    """androguard's reader of string_data_item bytes, ending at the end of the buffer.

    androguard 4.1.4 loops forever when a string runs past the end of the
    DEX (``read(128)`` returns ``b""`` and it asks again): a truncated or
    crafted DEX would hang a worker thread for good. Same result otherwise.
    """
    parts = []
    while True:
        chunk = handle.read(128)
        if not chunk:
            raise ValueError("string data runs past the end of the DEX")
        if 0 in chunk:
            head, tail = chunk.split(b"\x00", 1)
            parts.append(head)
            handle.seek(handle.tell() - len(tail))
            return b"".join(parts)
        parts.append(chunk)


androguard_dex.read_null_terminated_string = _read_null_terminated_string

NAME = "apk"
MIB = 1024 * 1024
MAX_MANIFEST_BYTES = 4 * MIB
MAX_DEX_BYTES = 24 * MIB  # androguard holds ~20x the DEX size: ~500 MB at this cap
MAX_APK_DEX_BYTES = 256 * MIB  # all DEX members of one APK together (~1 minute of parsing)
MAX_URL_STRINGS = 256  # URL strings followed to their const-string per DEX
MAX_SITES = 12  # evidence items per API finding
MAX_CONTEXT_STRINGS = 6  # const-strings shown next to a call (SMS numbers, shell commands)
MAX_URL_EVIDENCE = 10
MAX_PERMISSION_TAGS = 400
MAX_TEXT = 300  # characters of a string from the file shown in evidence or a title

ANDROID_NS = "{http://schemas.android.com/apk/res/android}"
DEX_MEMBER = re.compile(r"classes\d*\.dex")
DEX_MAGIC = re.compile(rb"dex\n0[0-9]{2}\x00")
PRIV_APP = re.compile(r"(?:^|/)priv-app/")
PHONE_NUMBER = re.compile(r"\+?\d{3,15}\Z")  # a const-string that is only a number
URL = re.compile(r"https?://[^\s\"'<>]{3,}", re.IGNORECASE)
NOT_ENDPOINTS = ("http://schemas.android.com/", "http://www.w3.org/", "http://xml.org/", "http://apache.org/xml/",
                 "http://ns.adobe.com/", "http://www.apache.org/licenses/")
BOOT_ACTIONS = frozenset({
    "android.intent.action.BOOT_COMPLETED", "android.intent.action.LOCKED_BOOT_COMPLETED",
    "android.intent.action.QUICKBOOT_POWERON", "com.htc.intent.action.QUICKBOOT_POWERON",
})
COMPONENT_TAGS = ("activity", "activity-alias", "service", "receiver", "provider")
# Privileged permissions that are a capability on their own, not routine platform plumbing.
POWERFUL_PERMISSIONS = frozenset(f"android.permission.{p}" for p in (
    "INSTALL_PACKAGES", "DELETE_PACKAGES", "WRITE_SECURE_SETTINGS", "READ_PRIVILEGED_PHONE_STATE",
    "MODIFY_PHONE_STATE", "CALL_PRIVILEGED", "SEND_SMS_NO_CONFIRMATION", "READ_LOGS", "GRANT_RUNTIME_PERMISSIONS",
    "INTERACT_ACROSS_USERS_FULL", "UPDATE_APP_OPS_STATS", "MASTER_CLEAR", "REBOOT", "RECOVERY",
    "CHANGE_COMPONENT_ENABLED_STATE", "MANAGE_DEVICE_ADMINS", "CAPTURE_AUDIO_OUTPUT", "READ_FRAME_BUFFER",
))

# Dalvik opcodes whose operand names a method, a field or a string (dex-format.html, "Dalvik bytecode").
INVOKE_OPS = frozenset([*range(0x6E, 0x73), *range(0x74, 0x79), 0xFA, 0xFB])  # invoke-*, /range, -polymorphic
IGET_OPS = frozenset(range(0x52, 0x59))  # iget .. iget-short: field index in CCCC
SGET_OPS = frozenset(range(0x60, 0x67))  # sget .. sget-short: field index in BBBB
CONST_STRING, CONST_STRING_JUMBO = 0x1A, 0x1B
PREFILTER_OPS = {"method": rb"[\x6e-\x72\x74-\x78\xfa\xfb]", "field": rb"[\x52-\x58\x60-\x66]", "string": rb"\x1a",
                 "string-jumbo": rb"\x1b"}


# --- the API catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One thing code can do, and the API references that show it.

    ``refs`` are member references ``Lpkg/Class;->name`` (any prototype); the
    name may be ``*`` (any member) or ``*SUFFIX`` (any member ending so), and
    the class ``Lpkg/Class$*;`` (any class nested in ``Lpkg/Class;``). They
    match invoked methods and read fields.
    ``strings`` match string-pool entries exactly, or as a prefix when they
    end with ``*``. ``permissions`` (short names) are listed as supporting
    evidence when requested; ``context`` picks const-strings loaded in the
    calling method that a reviewer wants next to the call.
    """

    rule: str
    category: Category
    severity: Severity
    title: str
    data: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    context: re.Pattern[str] | None = None
    system_severity: Severity | None = None  # severity when the APK is a system component


def _members(cls: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{cls}->{name}" for name in names)


def _content_uris(*providers: str) -> tuple[str, ...]:
    """The ``Uri`` fields (``CONTENT_URI``, ``CONTENT_FILTER_URI``...) of content provider classes and their nested
    classes: reading one is how code queries the provider (its other members are mostly inlined column names)."""
    return tuple(ref for provider in providers for ref in (f"{provider}->*URI", f"{provider[:-1]}$*;->*URI"))


TELEPHONY = "Landroid/telephony/TelephonyManager;"
SMS_MANAGERS = ("Landroid/telephony/SmsManager;", "Landroid/telephony/gsm/SmsManager;")
PAHO = ("Lorg/eclipse/paho/client/mqttv3/MqttClient;", "Lorg/eclipse/paho/client/mqttv3/MqttAsyncClient;",
        "Lorg/eclipse/paho/client/mqttv3/IMqttClient;", "Lorg/eclipse/paho/client/mqttv3/IMqttAsyncClient;",
        "Lorg/eclipse/paho/android/service/MqttAndroidClient;")
SHELL_COMMAND = re.compile(r"(?:/|su\b|sh\b|pm\b|am\b|cmd\b|chmod\b|chown\b|mount\b|setprop\b|settings\b|reboot\b|"
                           r"logcat\b|busybox\b|iptables\b|rm\b|cp\b|cat\b|dd\b|screencap\b|input\b)")


def _data(kind: str, title: str, severity: Severity, *, refs: Iterable[str] = (), strings: Iterable[str] = (),
          permissions: Iterable[str] = ()) -> Capability:
    return Capability(rule=f"apk:data.{kind}", category=Category.DATA_SOURCE, severity=severity, title=title,
                      data=(kind,), refs=tuple(refs), strings=tuple(strings), permissions=tuple(permissions))


def _channel(channel: str, title: str, severity: Severity, *, refs: Iterable[str] = (),
             permissions: Iterable[str] = ("INTERNET",), context: re.Pattern[str] | None = None) -> Capability:
    return Capability(rule=f"apk:channel.{channel}", category=Category.CHANNEL, severity=severity, title=title,
                      channels=(channel,), refs=tuple(refs), permissions=tuple(permissions), context=context)


CAPABILITIES: tuple[Capability, ...] = (
    _data("imei", "reads the device identity (IMEI/MEID)", Severity.MEDIUM,
          refs=_members(TELEPHONY, "getDeviceId", "getImei", "getMeid"),
          permissions=("READ_PHONE_STATE", "READ_PRIVILEGED_PHONE_STATE")),
    _data("imsi", "reads the subscriber identity (IMSI)", Severity.MEDIUM,
          refs=_members(TELEPHONY, "getSubscriberId"),
          permissions=("READ_PHONE_STATE", "READ_PRIVILEGED_PHONE_STATE")),
    _data("iccid", "reads the SIM serial number (ICCID)", Severity.MEDIUM,
          refs=(*_members(TELEPHONY, "getSimSerialNumber"), "Landroid/telephony/SubscriptionInfo;->getIccId"),
          permissions=("READ_PHONE_STATE", "READ_PRIVILEGED_PHONE_STATE")),
    _data("msisdn", "reads the phone number (MSISDN)", Severity.MEDIUM,
          refs=(*_members(TELEPHONY, "getLine1Number"), "Landroid/telephony/SubscriptionInfo;->getNumber",
                "Landroid/telephony/SubscriptionManager;->getPhoneNumber"),
          permissions=("READ_PHONE_NUMBERS", "READ_PHONE_STATE", "READ_SMS")),
    _data("sms", "reads SMS messages", Severity.MEDIUM,
          refs=(*_content_uris("Landroid/provider/Telephony$Sms;", "Landroid/provider/Telephony$Mms;",
                               "Landroid/provider/Telephony$MmsSms;", "Landroid/provider/Telephony$Threads;"),
                "Landroid/provider/Telephony$Sms$Intents;->getMessagesFromIntent",
                *_members("Landroid/telephony/SmsMessage;", "createFromPdu", "getMessageBody",
                          "getDisplayMessageBody", "getOriginatingAddress")),
          strings=("content://sms*", "content://mms*"),
          permissions=("READ_SMS", "RECEIVE_SMS")),
    _data("contacts", "reads the contacts", Severity.MEDIUM,
          refs=_content_uris("Landroid/provider/ContactsContract;", "Landroid/provider/Contacts;"),
          strings=("content://com.android.contacts*", "content://contacts*", "content://icc/adn*"),
          permissions=("READ_CONTACTS",)),
    _data("call_log", "reads the call log", Severity.MEDIUM,
          refs=(*_content_uris("Landroid/provider/CallLog;"), "Landroid/provider/CallLog$Calls;->getLastOutgoingCall"),
          strings=("content://call_log*",),
          permissions=("READ_CALL_LOG",)),
    _data("location", "reads the location", Severity.MEDIUM,
          refs=(*_members("Landroid/location/LocationManager;", "getLastKnownLocation", "requestLocationUpdates",
                          "requestSingleUpdate", "getCurrentLocation"),
                *_members("Lcom/google/android/gms/location/FusedLocationProviderClient;", "getLastLocation",
                          "requestLocationUpdates", "getCurrentLocation"),
                *_members("Lcom/google/android/gms/location/FusedLocationProviderApi;", "getLastLocation",
                          "requestLocationUpdates"),
                *_members(TELEPHONY, "getCellLocation", "getAllCellInfo", "getNeighboringCellInfo")),
          permissions=("ACCESS_FINE_LOCATION", "ACCESS_COARSE_LOCATION", "ACCESS_BACKGROUND_LOCATION")),
    _data("microphone", "records audio", Severity.MEDIUM,
          refs=(*_members("Landroid/media/AudioRecord;", "<init>", "startRecording"),
                "Landroid/media/MediaRecorder;->setAudioSource"),
          permissions=("RECORD_AUDIO",)),
    _data("camera", "uses the camera", Severity.LOW,
          refs=(*_members("Landroid/hardware/Camera;", "open", "takePicture"),
                "Landroid/hardware/camera2/CameraManager;->openCamera",
                "Landroid/media/MediaRecorder;->setVideoSource"),
          permissions=("CAMERA",)),
    _data("accounts", "lists the accounts on the device", Severity.MEDIUM,
          refs=_members("Landroid/accounts/AccountManager;", "getAccounts", "getAccountsByType",
                        "getAccountsByTypeAndFeatures", "getAccountsByTypeForPackage"),
          permissions=("GET_ACCOUNTS",)),
    _data("installed_apps", "lists the installed applications", Severity.LOW,
          refs=_members("Landroid/content/pm/PackageManager;", "getInstalledPackages", "getInstalledApplications"),
          permissions=("QUERY_ALL_PACKAGES",)),
    _data("wifi", "reads Wi-Fi connection and scan data", Severity.LOW,
          refs=_members("Landroid/net/wifi/WifiManager;", "getConnectionInfo", "getScanResults",
                        "getConfiguredNetworks"),
          permissions=("ACCESS_WIFI_STATE",)),
    _data("device_info", "reads hardware identifiers (serial number, ANDROID_ID, MAC address)", Severity.LOW,
          refs=("Landroid/os/Build;->SERIAL", "Landroid/os/Build;->getSerial",
                "Landroid/net/wifi/WifiInfo;->getMacAddress",
                "Ljava/net/NetworkInterface;->getHardwareAddress", "Landroid/bluetooth/BluetoothAdapter;->getAddress"),
          strings=("android_id",),  # Settings.Secure.ANDROID_ID: javac inlines the constant, the key is what remains
          permissions=("READ_PRIVILEGED_PHONE_STATE", "READ_PHONE_STATE", "LOCAL_MAC_ADDRESS")),
    _channel("http", "can send HTTP requests", Severity.LOW,
             refs=("Ljava/net/URL;->openConnection", "Ljava/net/URL;->openStream", "Ljava/net/HttpURLConnection;->*",
                   "Lokhttp3/OkHttpClient;->newCall", "Lokhttp3/Call;->execute", "Lokhttp3/Call;->enqueue",
                   "Lcom/squareup/okhttp/OkHttpClient;->newCall", "Lorg/apache/http/client/HttpClient;->execute",
                   "Lorg/apache/http/impl/client/DefaultHttpClient;-><init>",
                   "Landroid/net/http/AndroidHttpClient;->newInstance", "Lcom/android/volley/RequestQueue;->add",
                   "Lcom/android/volley/toolbox/Volley;->newRequestQueue")),
    _channel("https", "can send HTTPS requests or open TLS connections", Severity.LOW,
             refs=("Ljavax/net/ssl/HttpsURLConnection;->*", "Ljavax/net/ssl/SSLContext;->getInstance",
                   "Ljavax/net/ssl/SSLSocketFactory;->createSocket")),
    _channel("tcp", "opens TCP connections", Severity.LOW,
             refs=(*_members("Ljava/net/Socket;", "<init>", "connect"),
                   *_members("Ljava/nio/channels/SocketChannel;", "open", "connect"))),
    _channel("udp", "sends UDP datagrams", Severity.LOW,
             refs=("Ljava/net/DatagramSocket;->send",
                   *_members("Ljava/nio/channels/DatagramChannel;", "send", "write"))),
    _channel("sms", "sends SMS messages", Severity.MEDIUM,
             refs=tuple(ref for manager in SMS_MANAGERS for ref in _members(
                 manager, "sendTextMessage", "sendDataMessage", "sendMultipartTextMessage",
                 "sendTextMessageWithoutPersisting")),
             permissions=("SEND_SMS", "SEND_SMS_NO_CONFIRMATION"), context=PHONE_NUMBER),
    _channel("mqtt", "publishes over MQTT (Eclipse Paho)", Severity.LOW,
             refs=tuple(ref for client in PAHO for ref in _members(client, "connect", "publish"))),
    _channel("ftp", "uploads over FTP (Apache Commons Net)", Severity.LOW,
             refs=_members("Lorg/apache/commons/net/ftp/FTPClient;", "storeFile", "appendFile", "storeUniqueFile")),
    _channel("smtp", "sends e-mail (JavaMail)", Severity.LOW,
             refs=_members("Ljavax/mail/Transport;", "send", "sendMessage")),
    _channel("ussd", "sends USSD requests", Severity.MEDIUM,
             refs=_members(TELEPHONY, "sendUssdRequest"), permissions=("CALL_PHONE", "CALL_PRIVILEGED")),
    Capability(
        rule="apk:dynamic-code", category=Category.EXECUTION, severity=Severity.LOW,
        system_severity=Severity.MEDIUM, title="loads code at run time", tags=("android:dynamic-code",),
        refs=(*(f"Ldalvik/system/{loader};-><init>" for loader in (
            "DexClassLoader", "PathClassLoader", "InMemoryDexClassLoader", "DelegateLastClassLoader")),
            *_members("Ldalvik/system/DexFile;", "loadDex", "<init>"))),
    Capability(
        rule="apk:exec", category=Category.EXECUTION, severity=Severity.LOW, title="runs shell commands",
        tags=("android:exec",), refs=("Ljava/lang/Runtime;->exec", "Ljava/lang/ProcessBuilder;->start"),
        context=SHELL_COMMAND),
    Capability(
        rule="apk:installs-packages", category=Category.EXECUTION, severity=Severity.LOW,
        system_severity=Severity.MEDIUM, title="installs packages", tags=("android:installs-packages",),
        refs=("Landroid/content/pm/PackageInstaller;->createSession",
              "Landroid/content/pm/PackageInstaller$Session;->commit",
              *_members("Landroid/content/pm/PackageManager;", "installPackage", "installPackageWithVerification",
                        "installExistingPackage")),
        strings=("pm install*", "application/vnd.android.package-archive"),
        permissions=("INSTALL_PACKAGES", "REQUEST_INSTALL_PACKAGES")),
)


def _owner_keys(owner: str) -> list[str]:
    """Catalogue keys a class answers to: itself, then ``Outer$*;`` for each enclosing class, innermost first."""
    inner = owner[:-1].split("$")
    return [owner, *("$".join(inner[:depth]) + "$*;" for depth in range(len(inner) - 1, 0, -1))]


def _name_matches(pattern: str, name: str) -> bool:
    """``name`` exactly, ``*`` any name, ``*SUFFIX`` any name ending so (``*URI``: the content URI fields)."""
    return pattern == name or pattern == "*" or (pattern.startswith("*") and name.endswith(pattern[1:]))


@dataclass(frozen=True)
class Catalogue:
    """The capabilities indexed for lookups by member reference and by string."""

    members: dict[str, tuple[tuple[str, Capability], ...]]  # owner key -> (name pattern, capability)
    exact_strings: dict[str, Capability]
    string_prefixes: tuple[tuple[str, Capability], ...]

    @classmethod
    def build(cls, capabilities: Iterable[Capability]) -> Catalogue:
        members: dict[str, dict[str, Capability]] = defaultdict(dict)
        exact: dict[str, Capability] = {}
        prefixes: list[tuple[str, Capability]] = []
        for capability in capabilities:
            for ref in capability.refs:
                owner, _, name = ref.partition("->")
                if name in members[owner]:
                    raise ValueError(f"{ref} is in {members[owner][name].rule} and {capability.rule}")
                members[owner][name] = capability
            for string in capability.strings:
                if string.endswith("*"):
                    prefixes.append((string[:-1], capability))
                elif string in exact:
                    raise ValueError(f"{string!r} is in {exact[string].rule} and {capability.rule}")
                else:
                    exact[string] = capability
        return cls({owner: tuple(names.items()) for owner, names in members.items()}, exact, tuple(prefixes))

    def match_member(self, owner: str, name: str) -> Capability | None:
        """The capability a member reference shows, if any (cheap: called for every method and field id)."""
        for key in _owner_keys(owner):
            for pattern, capability in self.members.get(key, ()):
                if _name_matches(pattern, name):
                    return capability
        return None

    def match_string(self, value: str) -> Capability | None:
        found = self.exact_strings.get(value)
        if found:
            return found
        for prefix, capability in self.string_prefixes:
            if value.startswith(prefix):
                return capability
        return None


# --- the manifest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What AndroidManifest.xml declares, as far as this analyzer uses it."""

    package: str
    attributes: tuple[tuple[str, str], ...]  # versionCode, versionName, sharedUserId... as written
    sdk: tuple[tuple[str, str], ...]  # minSdkVersion, targetSdkVersion, maxSdkVersion
    permissions: tuple[str, ...]  # requested (uses-permission, uses-permission-sdk-23), sorted
    declared_permissions: tuple[str, ...]
    components: tuple[tuple[str, int], ...]  # tag -> count
    boot_receivers: tuple[tuple[str, str, bool], ...]  # (class, action, enabled)
    persistent: bool

    def attribute(self, name: str) -> str:
        return dict(self.attributes).get(name, "")


def _attr(element: Any, name: str) -> str:
    value = element.get(ANDROID_NS + name)
    if value is None:
        value = element.get(name)  # manifests stripped of their namespace
    return "" if value is None else _clip(str(value))


def _component_class(package: str, name: str) -> str:
    """Resolve a component name the way PackageParser does (``.Foo`` and ``Foo`` are in the package)."""
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{package}.{name}" if package else name


def parse_manifest(data: bytes) -> Manifest:
    """Decode a binary AndroidManifest.xml; ``ValueError`` with a readable reason when it is not one."""
    try:
        printer = AXMLPrinter(data)
        root = printer.get_xml_obj() if printer.is_valid() else None
    except Exception as exc:  # androguard raises anything on crafted AXML; the reason is what matters
        raise ValueError(f"binary XML could not be decoded: {type(exc).__name__}: {exc}") from exc
    if root is None:
        raise ValueError("not a valid binary XML document")
    if root.tag != "manifest":
        raise ValueError(f"root element is <{root.tag}>, not <manifest>")
    package = _clip(str(root.get("package") or ""))
    attributes = tuple((name, _attr(root, name)) for name in ("versionCode", "versionName", "sharedUserId")
                       if _attr(root, name))
    sdk: dict[str, str] = {}
    for element in root.iter("uses-sdk"):
        for name in ("minSdkVersion", "targetSdkVersion", "maxSdkVersion"):
            sdk.setdefault(name, _attr(element, name))
    permissions = {_attr(e, "name") for tag in ("uses-permission", "uses-permission-sdk-23", "uses-permission-sdk-m")
                   for e in root.iter(tag)}
    declared = {_attr(e, "name") for e in root.iter("permission")}
    application = next(root.iter("application"), None)
    counts: dict[str, int] = {}
    boot: set[tuple[str, str, bool]] = set()
    if application is not None:
        for tag in COMPONENT_TAGS:
            counts[tag] = sum(1 for _ in application.iter(tag))
        for receiver in application.iter("receiver"):
            enabled = _attr(receiver, "enabled").lower() != "false"
            component = _component_class(package, _attr(receiver, "name"))
            for action in receiver.iter("action"):
                if _attr(action, "name") in BOOT_ACTIONS:
                    boot.add((component, _attr(action, "name"), enabled))
    return Manifest(
        package=package, attributes=attributes, sdk=tuple((k, v) for k, v in sdk.items() if v),
        permissions=tuple(sorted(p for p in permissions if p)),
        declared_permissions=tuple(sorted(d for d in declared if d)),
        components=tuple(counts.items()), boot_receivers=tuple(sorted(boot)),
        persistent=application is not None and _attr(application, "persistent").lower() == "true",
    )


def _load_privileged_permissions() -> frozenset[str]:
    """Permissions AOSP grants only to platform-signed or privileged apps, over every API level androguard ships."""
    folder = resources.files("androguard.core.api_specific_resources") / "aosp_permissions"
    names = (re.fullmatch(r"permissions_(\d+)\.json", f.name) for f in folder.iterdir())
    levels = sorted(int(m.group(1)) for m in names if m)
    protection: dict[str, str] = {}
    for level in levels:  # later API levels override earlier ones
        for name, item in load_permissions(level).items():
            protection[name] = str(item.get("protectionLevel", ""))
    return frozenset(name for name, level in protection.items()
                     if level.split("|")[0] in ("signature", "signatureOrSystem") or "privileged" in level.split("|"))


# --- the code ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where a capability shows in a DEX: the reference, who uses it and where."""

    capability: Capability
    how: str  # "calls" (invoke), "reads" (field), "loads" (const-string), "holds" (string pool only)
    reference: str  # full method/field signature, or the string
    api: str  # ``Lclass;->name`` for member references, "" for strings
    caller: str  # the method whose code uses it; "" when only the string pool holds it
    member: str  # the DEX file inside the APK
    offset: int | None  # of the instruction within the DEX
    context: tuple[str, ...] = ()  # const-strings of interest in the calling method


@dataclass
class DexScan:
    """What one DEX member gave: capability sites, URL strings loaded by code, and what went wrong."""

    sites: list[Site] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)  # URL -> first method that loads it
    broken_methods: int = 0


def _signature(item: Any, *, is_field: bool = False) -> tuple[str, str, str]:
    """(class, name, prototype or ``:type``) of a method or field, without the spaces androguard puts in prototypes."""
    owner, name = str(item.get_class_name()), str(item.get_name())
    proto = ":" + str(item.get_type()) if is_field else str(item.get_descriptor()).replace(" ", "")
    return owner, name, proto


def _index_pattern(ops: bytes, indexes: Iterable[int], width: str = "<H") -> bytes:
    """Opcode byte, any register byte, then one of the little-endian indexes."""
    alternatives = b"|".join(re.escape(struct.pack(width, i)) for i in sorted(indexes))
    return ops + b".(?:" + alternatives + b")"


class _DexScanner:
    """Finds the capability sites of one parsed DEX (one instance per DEX, never shared)."""

    def __init__(self, dex: DEX, member: str, catalogue: Catalogue) -> None:
        self.dex, self.member, self.catalogue = dex, member, catalogue
        self.cm = dex.get_class_manager()
        self.methods: dict[int, tuple[Capability, str, str]] = {}  # method id -> (capability, signature, api)
        self.fields: dict[int, tuple[Capability, str, str]] = {}
        self.strings: dict[int, tuple[Capability | None, str]] = {}  # string id -> (capability or None: a URL)
        self.result = DexScan()

    def scan(self) -> DexScan:
        self._match_tables()
        if not (self.methods or self.fields or any(c for c, _ in self.strings.values())):
            return self.result  # no watched reference: no code to read (URLs alone are only evidence)
        loaded = self._scan_code()
        for index, (capability, value) in sorted(self.strings.items()):
            if capability is not None and index not in loaded:
                self.result.sites.append(Site(capability, "holds", value, "", "", self.member, None))
        return self.result

    def _match_tables(self) -> None:
        for table, items, is_field in ((self.methods, self.dex.get_methods(), False),
                                       (self.fields, self.dex.get_fields(), True)):
            for index, item in enumerate(items):
                owner, name, proto = _signature(item, is_field=is_field)
                capability = self.catalogue.match_member(owner, name)
                if capability:
                    table[index] = (capability, f"{owner}->{name}{proto}", f"{owner}->{name}")
        urls = 0
        map_list = getattr(self.dex, "map_list", None)  # absent when the header has no map offset
        string_ids = (map_list.get_item_type(TypeMapItem.STRING_ID_ITEM) if map_list else None) or ()
        for index in range(len(string_ids)):  # what was parsed: the header's count may be anything
            value = self.cm.get_raw_string(index)
            capability = self.catalogue.match_string(value)
            if capability:
                self.strings[index] = (capability, value)
            elif urls < MAX_URL_STRINGS and URL.match(value) and not value.startswith(NOT_ENDPOINTS):
                self.strings[index] = (None, value)
                urls += 1

    def _prefilter(self) -> re.Pattern[bytes]:
        """Bytes an instruction using a watched index must contain (alignment is checked by disassembly)."""
        parts = []
        if self.methods:
            parts.append(_index_pattern(PREFILTER_OPS["method"], self.methods))
        if self.fields:
            parts.append(_index_pattern(PREFILTER_OPS["field"], self.fields))
        short = [i for i in self.strings if i <= 0xFFFF]
        if short:
            parts.append(_index_pattern(PREFILTER_OPS["string"], short))
        if self.strings:
            parts.append(_index_pattern(PREFILTER_OPS["string-jumbo"], self.strings, "<I"))
        return re.compile(b"|".join(parts), re.DOTALL)

    def _scan_code(self) -> set[int]:
        """Disassemble the methods whose bytecode may use a watched index; the string ids some code loads."""
        prefilter = self._prefilter()
        loaded: set[int] = set()
        for class_def in self.dex.get_classes():
            for method in class_def.get_methods():
                code = method.get_code()
                if code is None or not prefilter.search(code.get_bc().get_insn()):
                    continue
                caller = "{}->{}{}".format(*_signature(method))
                try:
                    loaded |= self._scan_method(code, caller)
                except Exception:  # androguard raises assorted errors on crafted bytecode
                    self.result.broken_methods += 1
        return loaded

    def _scan_method(self, code: Any, caller: str) -> set[int]:
        bytecode = code.get_bc()
        offset, base = 0, code.offset + 16  # the instructions follow the 16-byte code_item header
        hits: list[tuple[Capability, str, str, str, int]] = []
        constants: list[str] = []
        loaded: set[int] = set()
        instructions = LinearSweepAlgorithm.get_instructions(self.cm, bytecode.size, bytecode.get_insn(), 0)
        for count, instruction in enumerate(instructions):
            if count > bytecode.size:  # every instruction is at least one unit: a guard against crafted lengths
                break
            op, at = instruction.get_op_value(), base + offset
            offset += instruction.get_length()
            if op in INVOKE_OPS and instruction.BBBB in self.methods:
                hits.append((self.methods[instruction.BBBB][0], "calls", *self.methods[instruction.BBBB][1:], at))
            elif op in IGET_OPS and instruction.CCCC in self.fields:
                hits.append((self.fields[instruction.CCCC][0], "reads", *self.fields[instruction.CCCC][1:], at))
            elif op in SGET_OPS and instruction.BBBB in self.fields:
                hits.append((self.fields[instruction.BBBB][0], "reads", *self.fields[instruction.BBBB][1:], at))
            elif op in (CONST_STRING, CONST_STRING_JUMBO):
                index = instruction.BBBB if op == CONST_STRING else instruction.BBBBBBBB
                constants.append(self.cm.get_raw_string(index))
                if index in self.strings:
                    loaded.add(index)
                    capability, value = self.strings[index]
                    if capability is None:
                        self.result.urls.setdefault(value, caller)
                    else:
                        hits.append((capability, "loads", value, "", at))
        for capability, how, reference, api, at in hits:
            pattern = capability.context
            context = tuple(dict.fromkeys(c for c in constants if pattern.match(c))) if pattern else ()
            self.result.sites.append(Site(capability, how, reference, api, caller, self.member, at,
                                          context[:MAX_CONTEXT_STRINGS]))
        return loaded


def scan_dex(data: bytes, member: str, catalogue: Catalogue) -> DexScan:
    """Parse one DEX with androguard and find its capability sites; ``ValueError`` when it cannot be parsed."""
    try:
        return _DexScanner(DEX(data), member, catalogue).scan()
    except Exception as exc:  # androguard raises anything from ValueError to IndexError on a crafted DEX
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


# --- reading the APK --------------------------------------------------------------------------------

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError)


class _TooLarge(Exception):
    pass


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, never more than ``limit`` (the declared size may lie)."""
    if info.file_size > limit:
        raise _TooLarge(f"{info.file_size} bytes")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(f"more than {limit} bytes once inflated")
    return data


def _stored_offset(raw: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where an uncompressed member's bytes start in the APK, so evidence offsets point into the blob."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _dex_members(archive: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], list[zipfile.ZipInfo]]:
    """The ``classesN.dex`` members in load order, and other ``*.dex`` members that really are DEX files."""
    first: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if not info.is_dir():
            first.setdefault(info.filename, info)
    primary = sorted((i for n, i in first.items() if DEX_MEMBER.fullmatch(n)),
                     key=lambda i: (len(i.filename), i.filename))
    embedded = []
    for name, info in sorted(first.items()):
        if name.lower().endswith(".dex") and not DEX_MEMBER.fullmatch(name):
            try:
                with archive.open(info) as handle:
                    if DEX_MAGIC.match(handle.read(8)):
                        embedded.append(info)
            except _ZIP_ERRORS:
                continue
    return primary, embedded


# --- findings ---------------------------------------------------------------------------------------


def _finding(rule: str, category: Category, severity: Severity, title: str, **fields: Any) -> Finding:
    return Finding(rule=rule, analyzer=NAME, category=category, severity=severity, title=_clip(title), **fields)


def _clip(text: str) -> str:
    """Strings from the file go into evidence and titles: keep them readable whatever their length."""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _unparseable(title: str, description: str = "") -> Finding:
    return _finding("apk:unparseable", Category.PROPERTY, Severity.INFO, title, description=description)


def _skipped(info: zipfile.ZipInfo, reason: str, limit: str) -> Finding:
    return _finding("apk:dex-skipped", Category.PROPERTY, Severity.INFO, f"{info.filename} not analysed: {reason}",
                    evidence=(Evidence("member", info.filename),),
                    description=f"{limit} are skipped to bound memory and time: this code is not covered by the "
                                "apk findings (the YARA and IOC analyzers still scan it).")


def _short_api(api: str) -> str:
    """``Landroid/telephony/TelephonyManager;->getDeviceId`` -> ``TelephonyManager.getDeviceId``."""
    owner, _, name = api.partition("->")
    return f"{owner.rstrip(';').rsplit('/', 1)[-1]}.{name}"


def _rank(capability: Capability, api: str) -> int:
    """Position of the first catalogue reference an API matches, so titles name entry points first."""
    owner, _, name = api.partition("->")
    keys = _owner_keys(owner)
    for position, ref in enumerate(capability.refs):
        ref_owner, _, pattern = ref.partition("->")
        if ref_owner in keys and _name_matches(pattern, name):
            return position
    return len(capability.refs)


def _listing(items: list[str], shown: int = 3) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def _site_evidence(site: Site, stored: dict[str, int | None]) -> list[Evidence]:
    base = stored.get(site.member)
    if site.how == "holds":
        return [Evidence("string", _clip(site.reference), None, f"{site.member} string pool; no const-string loads it")]
    offset = base + site.offset if base is not None and site.offset is not None else None
    where = f"{site.member}+0x{site.offset:x}" if site.offset is not None else site.member
    quoted = f'"{_clip(site.reference)}"' if site.how == "loads" else site.reference
    evidence = [Evidence("string" if site.how == "loads" else "api", f"{site.caller} {site.how} {quoted}", offset,
                         where)]
    evidence += [Evidence("string", _clip(value), None, f"const-string in {site.caller}") for value in site.context]
    return evidence


def _permission_evidence(short_names: Iterable[str], requested: frozenset[str]) -> list[Evidence]:
    full = (name if "." in name else f"android.permission.{name}" for name in short_names)
    return [Evidence("permission", name) for name in full if name in requested]


@dataclass(frozen=True)
class _Component:
    """What the findings of one APK depend on besides its code."""

    requested: frozenset[str]
    system: bool  # priv-app, platform uid or persistent: dynamic code and installs weigh more


def _capability_finding(capability: Capability, sites: list[Site], urls: dict[str, str],
                        stored: dict[str, int | None], component: _Component) -> Finding:
    sites = sorted(sites, key=lambda s: (s.how == "holds", s.member, s.reference, s.caller, s.offset or 0))
    apis = sorted({s.api for s in sites if s.api})
    ranked = sorted(apis, key=lambda api: (_rank(capability, api), api))  # the catalogue lists entry points first
    shown = [_short_api(a) for a in ranked] or sorted({_clip(s.reference) for s in sites})
    evidence: list[Evidence] = []
    for site in sites[:MAX_SITES]:
        evidence += _site_evidence(site, stored)
    channels = list(capability.channels)
    if capability.rule == "apk:channel.http":
        loaded = sorted(urls)
        evidence += [Evidence("string", _clip(url), None, f"const-string in {urls[url]}")
                     for url in loaded[:MAX_URL_EVIDENCE]]
        if any(url.lower().startswith("https://") for url in loaded):
            channels.append("https")  # URL.openConnection on an https URL is an HttpsURLConnection
    evidence += _permission_evidence(capability.permissions, component.requested)
    severity = capability.system_severity if component.system and capability.system_severity else capability.severity
    description = f"{len(sites)} use(s) found" + (f"; the first {MAX_SITES} are listed" if len(sites) > MAX_SITES
                                                   else "") + "."
    return _finding(capability.rule, capability.category, severity, f"Code {capability.title}: {_listing(shown)}",
                    data=capability.data, channels=tuple(channels),
                    tags=(*capability.tags, *(f"api:{api}" for api in apis)),
                    evidence=tuple(evidence), description=description)


def _manifest_findings(manifest: Manifest, privileged: frozenset[str]) -> list[Finding]:
    """Facts, persistence and privilege read from the manifest alone."""
    findings = [_package_finding(manifest)]
    requested = frozenset(manifest.permissions)
    if manifest.permissions:
        shown = manifest.permissions[:MAX_PERMISSION_TAGS]
        findings.append(_finding(
            "apk:permissions", Category.PROPERTY, Severity.INFO,
            f"Requests {len(manifest.permissions)} permission(s)",
            tags=tuple(f"permission:{p}" for p in shown), evidence=tuple(Evidence("permission", p) for p in shown),
            description="Permissions are declarations: what the code does is in the apk:data and apk:channel "
                        "findings."))
    if manifest.boot_receivers:
        findings.append(_boot_finding(manifest, requested))
    if manifest.persistent:
        findings.append(_finding(
            "apk:persistent", Category.PERSISTENCE, Severity.LOW,
            "Application is persistent (kept running by the system)",
            tags=("android:persistent",), evidence=(Evidence("manifest", 'application android:persistent="true"'),),
            description="The system starts a persistent system app at boot and restarts it when it dies."))
    uid = manifest.attribute("sharedUserId")
    if uid.startswith("android.uid."):
        specific = {"android.uid.system": ("android:system-uid",), "android.uid.phone": ("android:phone-uid",)}
        findings.append(_finding(
            "apk:platform-uid", Category.PRIVILEGE, Severity.LOW, f"Runs under the platform shared user id {uid}",
            tags=("android:platform-uid", *specific.get(uid, ())),
            evidence=(Evidence("manifest", f'manifest android:sharedUserId="{uid}"'),),
            description="Effective only when the APK is signed with the platform key, which this analyzer "
                        "does not check."))
    held = sorted(requested & privileged)
    if held:
        powerful = [p for p in held if p in POWERFUL_PERMISSIONS]
        findings.append(_finding(
            "apk:privileged-permissions", Category.PRIVILEGE, Severity.LOW if powerful else Severity.INFO,
            f"Requests {len(held)} privileged permission(s): "
            f"{_listing([p.rsplit('.', 1)[-1] for p in powerful or held])}",
            tags=("android:privileged-permission", *(f"permission:{p}" for p in held)),
            evidence=tuple(Evidence("permission", p) for p in held),
            description="Granted only to platform-signed or privileged (priv-app) applications "
                        "(protection level signature or privileged in AOSP)."))
    return findings


def _package_finding(manifest: Manifest) -> Finding:
    version = manifest.attribute("versionName")
    code = manifest.attribute("versionCode")
    sdk = dict(manifest.sdk)
    title = " ".join(part for part in (
        f"Android package {manifest.package or '(no package name)'}", version,
        f"(versionCode {code})" if code else "",
        f"min SDK {sdk['minSdkVersion']}" if "minSdkVersion" in sdk else "",
        f"target SDK {sdk['targetSdkVersion']}" if "targetSdkVersion" in sdk else "") if part)
    evidence = [Evidence("manifest", f'manifest package="{manifest.package}"')]
    evidence += [Evidence("manifest", f'manifest android:{k}="{v}"') for k, v in manifest.attributes]
    evidence += [Evidence("manifest", f'uses-sdk android:{k}="{v}"') for k, v in manifest.sdk]
    evidence += [Evidence("manifest", f'permission android:name="{p}"') for p in manifest.declared_permissions]
    components = ", ".join(f"{count} {tag}" for tag, count in manifest.components if count) or "no components"
    return _finding("apk:manifest", Category.PROPERTY, Severity.INFO, title, evidence=tuple(evidence),
                    description=f"Components: {components}.")


def _boot_finding(manifest: Manifest, requested: frozenset[str]) -> Finding:
    receivers = sorted({component for component, _, _ in manifest.boot_receivers})
    evidence = [Evidence("manifest", f"receiver {component}: {action}" + ("" if enabled else " (disabled)"))
                for component, action, enabled in manifest.boot_receivers]
    evidence += _permission_evidence(("RECEIVE_BOOT_COMPLETED",), requested)
    allowed = "android.permission.RECEIVE_BOOT_COMPLETED" in requested
    description = "Started by the system when the device boots." if allowed else (
        "Declares a boot receiver without requesting RECEIVE_BOOT_COMPLETED: the broadcast is not delivered.")
    return _finding("apk:boot-receiver", Category.PERSISTENCE, Severity.LOW if allowed else Severity.INFO,
                    f"Starts at boot: {_listing(receivers)}", tags=("android:boot-receiver",),
                    evidence=tuple(evidence), description=description)


# --- the analyzer -----------------------------------------------------------------------------------


class ApkAnalyzer(Analyzer):
    """Manifest facts and sensitive API use of Android applications."""

    name = NAME
    version = "1"
    path_sensitive = True  # installed under priv-app or not is read from Target.names

    def __init__(self) -> None:
        self._catalogue = Catalogue.build(CAPABILITIES)
        self._privileged = _load_privileged_permissions()

    def accepts(self, target: Target) -> bool:
        return target.label == "apk" and target.size > 0

    def analyze(self, target: Target) -> list[Finding]:
        try:
            archive = zipfile.ZipFile(target.path)
        except _ZIP_ERRORS as exc:
            return [_unparseable(f"APK is not a readable zip archive: {exc}")]
        findings: list[Finding] = []
        with archive, open(target.path, "rb") as raw:
            manifest = self._manifest(archive, findings)
            priv_app = self._priv_app(target)
            findings += priv_app
            component = _Component(
                requested=frozenset(manifest.permissions if manifest else ()),
                system=bool(priv_app) or bool(manifest and (
                    manifest.persistent or manifest.attribute("sharedUserId").startswith("android.uid."))))
            findings += self._code(archive, raw, component, has_manifest=manifest is not None)
        if manifest:
            findings += _manifest_findings(manifest, self._privileged)
        return sorted(findings, key=Finding.sort_key)

    def _manifest(self, archive: zipfile.ZipFile, findings: list[Finding]) -> Manifest | None:
        try:
            info = archive.getinfo("AndroidManifest.xml")
        except KeyError:
            findings.append(_unparseable("APK has no AndroidManifest.xml"))
            return None
        try:
            return parse_manifest(_read_member(archive, info, MAX_MANIFEST_BYTES))
        except _TooLarge as exc:
            findings.append(_unparseable(f"AndroidManifest.xml is too large to parse ({exc})"))
        except _ZIP_ERRORS as exc:
            findings.append(_unparseable(f"AndroidManifest.xml could not be parsed: {_clip(str(exc))}"))
        return None

    @staticmethod
    def _priv_app(target: Target) -> list[Finding]:
        paths = [name for name in target.names if PRIV_APP.search(name)]
        if not paths:
            return []
        return [_finding("apk:priv-app", Category.PRIVILEGE, Severity.INFO, "Installed as a privileged app (priv-app)",
                         tags=("android:priv-app",), evidence=tuple(Evidence("path", p) for p in paths),
                         description="Apps under priv-app may be granted privileged permissions.")]

    def _code(self, archive: zipfile.ZipFile, raw: IO[bytes], component: _Component, *,
              has_manifest: bool) -> list[Finding]:
        """Scan every DEX member, one at a time (one parsed DEX in memory), and turn the sites into findings."""
        primary, embedded = _dex_members(archive)
        findings: list[Finding] = []
        if not primary and not embedded:
            if has_manifest:
                findings.append(_finding(
                    "apk:no-dex", Category.PROPERTY, Severity.INFO, "APK carries no DEX code",
                    description="Pre-optimised system apps keep their code in oat/<arch>/*.odex and *.vdex beside "
                                "the APK; that code is not analysed here."))
            return findings
        if embedded:
            findings.append(_finding(
                "apk:embedded-dex", Category.EXECUTION, Severity.LOW,
                f"DEX code outside classesN.dex: {_listing([i.filename for i in embedded])}",
                tags=("android:embedded-dex",), evidence=tuple(Evidence("member", i.filename) for i in embedded),
                description="The runtime never loads these by itself: a class loader in the app does."))
        sites: dict[str, list[Site]] = defaultdict(list)
        urls: dict[str, str] = {}
        stored: dict[str, int | None] = {}
        inflated = 0
        for info in (*primary, *embedded):
            if inflated >= MAX_APK_DEX_BYTES:
                findings.append(_skipped(info, f"the APK's DEX files already total {inflated} bytes",
                                         f"Beyond {MAX_APK_DEX_BYTES // MIB} MiB of DEX per APK"))
                continue
            scan, size = self._scan_member(archive, info, findings)
            inflated += size
            if scan is None:
                continue
            stored[info.filename] = _stored_offset(raw, info)
            for site in scan.sites:
                sites[site.capability.rule].append(site)
            for url, caller in scan.urls.items():
                urls.setdefault(url, caller)
        by_rule = {c.rule: c for c in CAPABILITIES}
        for rule, found in sorted(sites.items()):
            findings.append(_capability_finding(by_rule[rule], found, urls, stored, component))
        return findings

    def _scan_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                     findings: list[Finding]) -> tuple[DexScan | None, int]:
        """One DEX member read, parsed and scanned; its inflated size (it counts against the APK's budget)."""
        try:
            data = _read_member(archive, info, MAX_DEX_BYTES)
        except _TooLarge as exc:
            findings.append(_skipped(info, f"too large ({exc})", f"DEX files over {MAX_DEX_BYTES // MIB} MiB"))
            return None, 0
        except _ZIP_ERRORS as exc:
            findings.append(_unparseable(f"{info.filename} could not be read from the APK: {exc}"))
            return None, 0
        try:
            scan = scan_dex(data, info.filename, self._catalogue)
        except ValueError as exc:
            findings.append(_unparseable(f"{info.filename} could not be parsed as DEX: {_clip(str(exc))}"))
            return None, len(data)
        if scan.broken_methods:
            findings.append(_unparseable(
                f"{info.filename}: {scan.broken_methods} method(s) could not be disassembled",
                "References in those methods are not reported."))
        return scan, len(data)
