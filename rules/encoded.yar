/*
 * Encoded endpoints and packed code: destinations and programs written so
 * that a plain look at the strings does not show them. Legitimate firmware
 * has little reason to hide a URL; the strings analyzer decodes what these
 * rules point at.
 * Metadata convention and tests: rules/README.md, rules/tests/encoded.yml.
 */

rule base64_url
{
    meta:
        id = "encoded.base64_url"
        title = "Base64-encoded URL"
        category = "obfuscation"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1406"
        description = "The Base64 encoding of \"http://\" or \"https://\" at the start of a string (aHR0cDovL, aHR0cHM6Ly): a URL stored encoded and decoded at run time, typically a fallback or second-stage server kept out of plain sight."
        reference = "https://attack.mitre.org/techniques/T1406/"
    strings:
        $http = "aHR0cDovL" ascii wide
        $https = "aHR0cHM6Ly" ascii wide
    condition:
        any of them
}

rule hex_url
{
    meta:
        id = "encoded.hex_url"
        title = "Hex-encoded URL"
        category = "obfuscation"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1406"
        description = "\"http://\" or \"https://\" spelled as hexadecimal digits (687474703a2f2f, 68747470733a2f2f): a URL stored as a hex string and decoded at run time."
        reference = "https://attack.mitre.org/techniques/T1406/"
    strings:
        $http = "687474703a2f2f" ascii wide nocase
        $https = "68747470733a2f2f" ascii wide nocase
    condition:
        any of them
}

rule reversed_url
{
    meta:
        id = "encoded.reversed_url"
        title = "URL stored backwards"
        category = "obfuscation"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1406"
        description = "A URL scheme written backwards (\"//:ptth\", \"//:sptth\"): the string is reversed at run time so it does not appear in a strings listing."
        reference = "https://attack.mitre.org/techniques/T1406/"
    strings:
        $http = "//:ptth" ascii wide
        $https = "//:sptth" ascii wide
    condition:
        any of them
}

rule upx_packed
{
    meta:
        id = "encoded.upx_packed"
        title = "Executable packed with UPX"
        category = "obfuscation"
        severity = "low"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1406.002"
        description = "An ELF file carrying the UPX packer's marks (the UPX! header magic and the packer's notice): its real code and strings are compressed and only unpacked in memory, so other static checks see little of it. Rare in vendor firmware, common in IoT malware."
        reference = "https://upx.github.io/"
    strings:
        $magic = "UPX!" ascii
        $notice = "This file is packed with the UPX executable packer" ascii
    condition:
        uint32(0) == 0x464C457F and ($notice or #magic >= 2)
}
