"""Feature-phone samples: Spreadtrum PAC/DRPS (MOCOR) and MediaTek MAUI ROMs.

The cheap mini-phones seized in prisons run SC6531E-class Spreadtrum chips
with the MOCOR RTOS, or MT6261-class MediaTek chips with MAUI. Their
firmware is not Linux: one RTOS image, compressed in vendor containers.
This family builds such images from synthetic parts (Thumb-like code,
string tables, NV items, resources) laid out as the real containers are:

- ``featurephone-sc6531e.pac``: a PAC whose ``PS`` image is a DRPS container
  (kern, user, rsrc in Spreadtrum's LZMA variant); the ``user`` image hides
  a silent SMS/HTTP registration that sends the IMEI to China;
- ``featurephone-sc6531e-clean.pac``: the same build without it;
- ``featurephone-mt6261.bin``: a MAUI ROM with a GFH header, an
  ``MTK_ROMINFO_v09`` block naming MT6261 and an ALICE-compressed region
  (random bytes: no decoder exists, so the triage must say it is incomplete).

The builders are public so the unpacking tests can make hostile variants.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from samples.gen._sprd_lzma_encoder import compress
from samples.sample import BuildContext, Contains, Expect, Sample

PAC_HEADER_SIZE = 0x84C
PAC_ENTRY_SIZE = 0xA14
PS_NAME = "SC6531E_MOCOR_PS.bin"

KERNEL_STRINGS = (
    "SCI_CreateThread", "SCI_ASSERT failed: %s line %d", "os_api.c", "threadx_os.c", "SCI_GetTickCount",
    "L1_Task", "LAYER1 init done", "RRC: cell reselection %d", "MM: location update accepted",
    "SIM: ATR received", "CHIP_ID=0x%08x", "SC6531E", "MOCOR_W17.44", "nvitem_read id=%d", "FLASH: erase %x",
    "DSP: download ok", "AUDIO: codec on", "KPD: key %d", "LCD: ST7789 240x320", "CHARGE: vbat=%d mV",
)
USER_STRINGS = (
    "MMI_Init", "Messages", "Phonebook", "Call log", "Settings", "Camera", "FM radio", "Torch",
    "Please insert SIM", "Emergency calls only", "Input PIN", "Battery low", "Alarm", "Calculator",
    "mmi_sms_send_req", "mmi_pb_read_entry", "mmi_idle_display", "MMI: keypad locked", "Bluetooth",
    "ATC: unknown command %s", "AT+CPIN?", "AT+CSQ", "Network search...", "Call ended %02d:%02d",
)
# The planted behaviour: a silent registration SMS to +86 and an HTTP report carrying the IMEI.
BACKDOOR_STRINGS = (
    "sms_reg_task", "AT+CMGF=1", 'AT+CMGS="+8613800138000"', "IMEI:%s", "REG %s %s",
    "http://203.0.113.45/reg.php", "sms.reg-cn.example.cn", "POST /reg.php HTTP/1.1", "Host: %s",
    "reg_sent_flag", "mmi_sms_delete_sent_reg",
)
RESOURCE_STRINGS = ("Messages", "Phonebook", "Settings", "Tools", "Multimedia", "Profiles", "Organizer")
MAUI_STRINGS = (
    "kal_prompt_trace", "MMI_task", "L4C: +CREG: %d", "SIM1 not ready", "mmi_frm_scrn_enter",
    "MT6261", "MAUI.11C.W15.21.SP", "custom_MemoryDevice", "NVRAM: LID %d", "srv_sms_send_msg",
    "Bluetooth dialer", "Audio player", "File manager", "Wallpaper", "Unlock: press * then #",
)


# --- building blocks --------------------------------------------------------------------------


def thumb_code(rng: random.Random, functions: int) -> bytes:
    """Thumb-looking functions: prologue, loads from literal pools, calls, branches, epilogue."""
    out = bytearray()
    for _ in range(functions):
        body = [0xB5F0 if rng.random() < 0.6 else 0xB510]  # push {r4-r7,lr} / push {r4,lr}
        for _ in range(rng.randrange(6, 24)):
            roll = rng.random()
            if roll < 0.25:
                body.append(0x4800 | rng.randrange(8) << 8 | rng.randrange(32))  # ldr rX, [pc, #imm]
            elif roll < 0.45:
                offset = rng.randrange(1 << 11)
                body += [0xF000 | offset, 0xF800 | rng.randrange(1 << 11)]  # bl
            elif roll < 0.6:
                body.append(0x2000 | rng.randrange(8) << 8 | rng.randrange(256))  # movs rX, #imm
            elif roll < 0.7:
                body.append(0x2800 | rng.randrange(8) << 8 | rng.randrange(16))  # cmp rX, #imm
            elif roll < 0.8:
                body.append(0xD100 | rng.randrange(1, 40))  # bne
            else:
                body.append(0x6800 | rng.randrange(1 << 11))  # ldr rX, [rY, #imm]
        body.append(0xBDF0 if body[0] == 0xB5F0 else 0xBD10)
        if len(body) % 2:
            body.append(0x46C0)  # nop, to keep the literal pool word-aligned
        out += struct.pack(f"<{len(body)}H", *body)
        pool = [rng.choice((0x10000000, 0x04000000, 0x14000000)) + 4 * rng.randrange(1 << 16) for _ in range(3)]
        out += struct.pack("<3I", *pool)
    return bytes(out)


def string_table(strings: Sequence[str]) -> bytes:
    """NUL-terminated strings, each padded to a word, as a C compiler lays out .rodata."""
    out = bytearray()
    for text in strings:
        out += text.encode() + b"\x00"
        out += b"\x00" * (-len(out) % 4)
    return bytes(out)


def rtos_image(seed: int, strings: Sequence[str], rounds: int = 6) -> bytes:
    """An RTOS image: an entry table, then code and string tables interleaved, as the linker leaves them."""
    rng = random.Random(seed)
    out = bytearray(struct.pack("<4I", *(0x10000000 + 0x100 * rng.randrange(1 << 12) + 1 for _ in range(4))))
    for _ in range(rounds):
        out += thumb_code(rng, 40)
        chosen = list(strings)
        rng.shuffle(chosen)
        out += string_table(chosen)
    return bytes(out)


def resource_image(seed: int, strings: Sequence[str]) -> bytes:
    """Menu strings in UTF-16LE and small run-length icons, behind a resource table."""
    rng = random.Random(seed)
    items = [text.encode("utf-16-le") + b"\x00\x00" for text in strings]
    items += [bytes([rng.randrange(16)]) * rng.randrange(64, 512) for _ in range(24)]
    table = bytearray(b"MMIRES\x00\x00" + struct.pack("<I", len(items)))
    offset = len(table) + 8 * len(items)
    for item in items:
        table += struct.pack("<II", offset, len(item))
        offset += len(item)
    return bytes(table) + b"".join(items)


# --- Spreadtrum containers ----------------------------------------------------------------------


def build_drps(entries: Sequence[tuple[bytes, bytes, int]]) -> bytes:
    """A DRPS container of (tag, image, chunk count) entries; more than one chunk makes a CAPN block.

    Tags are the 4 bytes as stored (``GAMI`` for kern, ``resu`` for user, ``osSr`` for rsrc).
    """
    body = bytearray(16)
    table = bytearray()
    for tag, image, chunks in entries:
        payload = _capn(image, chunks) if chunks > 1 else compress(image)
        offset = len(body)
        body += payload + b"\x00" * (-len(payload) % 4)
        table += b"COLB" + tag + struct.pack("<III", offset, len(payload), len(image))
    struct.pack_into("<4sIII", body, 0, b"DRPS", 0, len(body), len(entries))
    return bytes(body + table)


def _capn(image: bytes, chunks: int) -> bytes:
    step = -(-len(image) // chunks)
    streams = [compress(image[i : i + step]) for i in range(0, len(image), step)]
    data = bytearray(16)
    starts = []
    for stream in streams:
        starts.append(len(data))
        data += stream
    struct.pack_into("<4sIII", data, 0, b"CAPN", 0, len(data), len(streams))
    return bytes(data) + struct.pack(f"<{len(starts)}I", *starts)


@dataclass(frozen=True)
class PacEntry:
    """One file of a PAC; ``offset``/``size`` override the real values (to build broken packages)."""

    file_id: str
    file_name: str
    data: bytes
    offset: int | None = None
    size: int | None = None


def _utf16(text: str, size: int) -> bytes:
    raw = text.encode("utf-16-le")[: size - 2]
    return raw + b"\x00" * (size - len(raw))


def build_pac(entries: Sequence[PacEntry], *, product: str, product_version: str) -> bytes:
    """A BP_R1.0.0 PAC: header, file table right after it, then the files' data."""
    table = bytearray()
    data = bytearray()
    data_start = PAC_HEADER_SIZE + PAC_ENTRY_SIZE * len(entries)
    for entry in entries:
        offset = data_start + len(data) if entry.data else 0
        raw = bytearray(PAC_ENTRY_SIZE)
        struct.pack_into("<I", raw, 0, PAC_ENTRY_SIZE)
        raw[4:0x204] = _utf16(entry.file_id, 0x200)
        raw[0x204:0x404] = _utf16(entry.file_name, 0x200)
        size = len(entry.data) if entry.size is None else entry.size
        offset = offset if entry.offset is None else entry.offset
        struct.pack_into("<IIII", raw, 0x604, size, int(bool(entry.data)), 1, offset)
        table += raw
        data += entry.data
    header = bytearray(PAC_HEADER_SIZE)
    header[0:48] = _utf16("BP_R1.0.0", 48)
    struct.pack_into("<I", header, 0x30, data_start + len(data))
    header[0x34:0x234] = _utf16(product, 0x200)
    header[0x234:0x434] = _utf16(product_version, 0x200)
    struct.pack_into("<IIII", header, 0x434, len(entries), PAC_HEADER_SIZE, 0, 1)  # count, table, mode, NOR
    struct.pack_into("<I", header, 0x844, 0xFFFAFFFA)
    return bytes(header + table + data)


def sc6531e_images(*, backdoor: bool) -> dict[str, bytes]:
    """The kern, user and rsrc images of the DRPS container; ``backdoor`` plants the registration code."""
    return {
        "kern": rtos_image(11, KERNEL_STRINGS, rounds=8),
        "user": rtos_image(12, USER_STRINGS + (BACKDOOR_STRINGS if backdoor else ()), rounds=5),
        "rsrc": resource_image(13, RESOURCE_STRINGS),
    }


def sc6531e_pac_entries(*, backdoor: bool) -> list[PacEntry]:
    """The files of an SC6531E MOCOR package, its PS image a DRPS container (user in a CAPN block)."""
    images = sc6531e_images(backdoor=backdoor)
    ps = build_drps([(b"GAMI", images["kern"], 1), (b"resu", images["user"], 3), (b"osSr", images["rsrc"], 1)])
    nv = b"".join(struct.pack("<HH", item, 16) + random.Random(item).randbytes(4) * 4 for item in range(1, 200))
    return [
        PacEntry("FDL", "nor_fdl1.bin", rtos_image(1, ("FDL1 ready", "baud %d"), rounds=1)),
        PacEntry("FDL2", "nor_fdl.bin", rtos_image(2, ("FDL2 ready", "erase_flash", "write_flash"), rounds=2)),
        PacEntry("PS", PS_NAME, ps),
        PacEntry("NV", "nvitem.bin", nv),
        PacEntry("MMIRes", "mmi_res_240x320.bin", resource_image(3, RESOURCE_STRINGS)),
        PacEntry("FLASH", "", b""),  # a flash operation without data, as real packages have
    ]


# --- MediaTek MAUI ------------------------------------------------------------------------------

MAUI_CONTENT_OFFSET = 0x200
ALICE_RANGES = (4, 6, 7, 9, 10, 11, 12)  # bit lengths of the seven dictionary ranges


def alice_region(seed: int, compressed: int, address: int) -> bytes:
    """An ALICE_2 block loaded at ``address``: header, bit-packed stream (random here), mapping table,
    dictionary; the header's addresses count from the stream, 40 bytes in."""
    rng = random.Random(seed)
    base = address + 40
    blocks = compressed // 64
    mapping = base + compressed
    dictionary = mapping + 4 * blocks
    header = struct.pack("<7sxIII7HHHH", b"ALICE_2", base, mapping, dictionary, *ALICE_RANGES, 0, 64, 0)
    table = struct.pack(f"<{blocks}I", *(base + 64 * i for i in range(blocks)))
    entries = sum(1 << bits for bits in ALICE_RANGES)
    return header + rng.randbytes(compressed) + table + struct.pack(f"<{entries}H", *(
        rng.randrange(1 << 16) for _ in range(entries)))


def build_maui_rom(*, platform_id: str = "MT6261_S00", project_id: str = "MAUI.11C.W15.21.SP.V25") -> bytes:
    """A MAUI ROM: GFH FILE_INFO + BL_INFO, vectors, code, ROMINFO, code, ALICE, resources."""
    rng = random.Random(6261)
    body = bytearray(struct.pack("<8I", *([0xEA000006] * 8)))  # ARM exception vectors
    body += thumb_code(rng, 20)
    body += b"MTK_ROMINFO_v09\x00" + _ascii(platform_id, 128) + _ascii(project_id, 64)
    body += struct.pack("<HH", 0xFFFF, 1) + struct.pack("<4HII", 0xC8, 0x4016, 0, 0, 0x3E0000, 0x20000)
    body += b"\x00" * (-len(body) % 4)
    body += rtos_image(6262, MAUI_STRINGS, rounds=4)
    body += alice_region(6263, 48 * 1024, 0x10000000 + MAUI_CONTENT_OFFSET + len(body))
    body += b"\x00" * (-len(body) % 4)
    body += resource_image(6264, RESOURCE_STRINGS) + rtos_image(6265, MAUI_STRINGS, rounds=1)
    total = MAUI_CONTENT_OFFSET + len(body)
    file_info = struct.pack("<3sBHH12sIHBBIIIIIII", b"MMM", 1, 0x38, 0, b"FILE_INFO", 1, 0x0100, 7, 0,
                            0x10000000, total, 0x400000, MAUI_CONTENT_OFFSET, 0, 0, 0)
    bl_info = struct.pack("<3sBHHI", b"MMM", 1, 12, 1, 1)
    gfh = file_info + bl_info
    return gfh + b"\xff" * (MAUI_CONTENT_OFFSET - len(gfh)) + bytes(body)


def _ascii(text: str, size: int) -> bytes:
    raw = text.encode()[: size - 1]
    return raw + b"\x00" * (size - len(raw))


# --- the family ----------------------------------------------------------------------------------


def build(ctx: BuildContext) -> list[Sample]:
    product = {"product": "SC6531E", "product_version": "MOCOR_W17.44_SC6531E_P1"}
    (ctx.out / "featurephone-sc6531e.pac").write_bytes(build_pac(sc6531e_pac_entries(backdoor=True), **product))
    (ctx.out / "featurephone-sc6531e-clean.pac").write_bytes(
        build_pac(sc6531e_pac_entries(backdoor=False), **product))
    (ctx.out / "featurephone-mt6261.bin").write_bytes(build_maui_rom())
    user = f"{PS_NAME} › user"
    platform = {"chipset": "SC6531E", "os": "MOCOR"}
    return [
        Sample(
            file="featurephone-sc6531e.pac",
            category="featurephone",
            description="SC6531E MOCOR PAC whose DRPS user image sends a silent registration SMS to +86 and "
                        "reports the IMEI over HTTP",
            expect=Expect(verdict="backdoor", culprits=[user],
                          endpoints=["203.0.113.45", "sms.reg-cn.example.cn", "+8613800138000"],
                          countries=["CN"], data=["imei"], channels=["sms", "http"]),
            contains=[Contains(user, ["pac", "drps"]), Contains(f"{PS_NAME} › kern", ["pac", "drps"])],
            formats=["pac", "drps"],
            platform=platform,
        ),
        Sample(
            file="featurephone-sc6531e-clean.pac",
            category="featurephone",
            description="the same SC6531E MOCOR package without the registration code",
            expect=Expect(verdict="clean"),
            contains=[Contains(user, ["pac", "drps"])],
            formats=["pac", "drps"],
            platform=platform,
        ),
        Sample(
            file="featurephone-mt6261.bin",
            category="featurephone",
            description="MT6261 MAUI ROM with an ALICE-compressed code region no tool can decode",
            expect=Expect(verdict="incomplete"),
            contains=[Contains(f"ROM@{MAUI_CONTENT_OFFSET:#x}", ["mtk-maui"])],
            formats=["mtk-maui"],
            extraction_complete=False,
            errors=["ALICE"],
            platform={"chipset": "MT6261", "os": "MAUI"},
        ),
    ]
