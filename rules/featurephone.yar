/*
 * Feature phones (Spreadtrum MOCOR, MediaTek MAUI and similar RTOS images):
 * silent SMS registration and AT-command abuse from the phone's own firmware.
 *
 * Cheap push-button phones have been found sending a "registration" SMS or an
 * HTTP report with the IMEI and IMSI to numbers and servers abroad on first
 * use, without telling the user (ValdikSS 2021, on DEXP, Itel, Irbis and F+
 * models). In an RTOS image everything is one blob, so these rules look for
 * the modem commands and templates such code leaves behind.
 * Metadata convention and tests: rules/README.md, rules/tests/featurephone.yml.
 */

rule hardcoded_sms_destination
{
    meta:
        id = "featurephone.hardcoded_sms_destination"
        title = "Sends an SMS to a number fixed in the firmware"
        category = "channel"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = "sms"
        mitre = "T1582"
        description = "An AT+CMGS command (3GPP TS 27.005 3.5.1) with the destination number written into the firmware: the phone sends text messages to that number by itself. User-initiated SMS take the number from the user, never from a constant; silent registration SMS and premium-rate fraud look exactly like this."
        reference = "https://securityaffairs.com/121887/mobile-2/push-button-mobile-phones-malware.html"
    strings:
        $cmgs = /AT\+CMGS="\+?[0-9]{3,15}"/ nocase
    condition:
        $cmgs
}

rule sms_send_text_mode
{
    meta:
        id = "featurephone.sms_send_text_mode"
        title = "Composes and sends SMS in text mode through the modem"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "sms"
        mitre = "T1582"
        description = "AT+CMGF=1 switches the modem to text mode and AT+CMGS sends a message (3GPP TS 27.005). Handset messaging stacks usually send in PDU mode through their own SMS service; scripts, trackers and implanted code use this pair."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127005/"
    strings:
        $text_mode = "AT+CMGF=1" ascii nocase
        $send = "AT+CMGS=" ascii nocase
    condition:
        $text_mode and $send
}

rule sms_delete
{
    meta:
        id = "featurephone.sms_delete"
        title = "Deletes stored SMS through the modem"
        category = "obfuscation"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1582"
        description = "AT+CMGD (3GPP TS 27.005 3.5.4) deletes messages from the SIM or modem storage. Together with SMS sent by the firmware itself it is how a silent registration hides its sent message and the operator's reply."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127005/"
    strings:
        $cmgd = "AT+CMGD=" ascii nocase
    condition:
        $cmgd
}

rule ussd_request
{
    meta:
        id = "featurephone.ussd_request"
        title = "Sends USSD requests through the modem"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "ussd"
        mitre = ""
        description = "AT+CUSD=1,\"...\" sends an unstructured supplementary service request (3GPP TS 27.007 7.15): balance checks, but also operator subscriptions and money transfers when the code comes from the firmware rather than the user."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cusd = "AT+CUSD=1,\"" ascii nocase
    condition:
        $cusd
}

rule modem_socket_commands
{
    meta:
        id = "featurephone.modem_socket_commands"
        title = "Opens TCP/UDP connections through the modem's own IP stack"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "tcp,udp"
        mitre = "T1437"
        description = "SIMCom (AT+CIPSTART, AT+CIPSEND, AT+NETOPEN) and Quectel (AT+QIOPEN, AT+QISEND) commands that open and use sockets inside the cellular module: the way out of devices without a network stack of their own (feature phones, trackers, alarms)."
        reference = "https://attack.mitre.org/techniques/T1437/"
    strings:
        $cipstart = "AT+CIPSTART=" ascii nocase
        $cipsend = "AT+CIPSEND" ascii nocase
        $netopen = "AT+NETOPEN" ascii nocase
        $qiopen = "AT+QIOPEN=" ascii nocase
        $qisend = "AT+QISEND" ascii nocase
    condition:
        any of them
}

rule modem_http_commands
{
    meta:
        id = "featurephone.modem_http_commands"
        title = "Makes HTTP requests through the modem's own HTTP client"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1437.001"
        description = "SIMCom (AT+HTTPPARA=\"URL\", AT+HTTPACTION) and Quectel (AT+QHTTPURL, AT+QHTTPPOST) commands that run an HTTP request inside the cellular module."
        reference = "https://attack.mitre.org/techniques/T1437/001/"
    strings:
        $httppara = "AT+HTTPPARA=\"URL\"" ascii nocase
        $httpaction = "AT+HTTPACTION=" ascii nocase
        $qhttpurl = "AT+QHTTPURL" ascii nocase
        $qhttppost = "AT+QHTTPPOST" ascii nocase
    condition:
        any of them
}

rule platform_mocor
{
    meta:
        id = "featurephone.platform_mocor"
        title = "Spreadtrum MOCOR RTOS image"
        category = "property"
        severity = "info"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = ""
        description = "Names of the Spreadtrum/UNISOC MOCOR RTOS kernel interface (SCI_* calls, MOCOR version strings): this blob is the code of a Spreadtrum feature phone, where the rules of this file apply."
        reference = "https://github.com/ilyakurdyukov/spreadtrum_flash"
    strings:
        $thread = "SCI_CreateThread" ascii
        $assert = "SCI_ASSERT" ascii
        $tick = "SCI_GetTickCount" ascii
        $version = "MOCOR_" ascii
    condition:
        2 of them
}

rule platform_maui
{
    meta:
        id = "featurephone.platform_maui"
        title = "MediaTek MAUI RTOS image"
        category = "property"
        severity = "info"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = ""
        description = "Names of MediaTek's MAUI feature-phone platform (kal_* kernel abstraction calls, the MTK_ROMINFO block, MAUI build tags): this blob is the code of a MediaTek feature phone."
        reference = "https://github.com/ilyakurdyukov/mediatek_flash"
    strings:
        $trace = "kal_prompt_trace" ascii
        $rominfo = "MTK_ROMINFO_v" ascii
        $maui = "MAUI." ascii
        $frm = "mmi_frm_" ascii
    condition:
        2 of them
}
