/*
 * Telephony and personal-data sources: identifiers and user data a program can
 * ask the modem for with AT commands (3GPP TS 27.007 and TS 27.005), or read
 * from the phone's own databases.
 *
 * Radio interface layers and feature-phone modem stacks send some of these
 * commands for good reasons, so each rule only states what the file can read;
 * the weight comes from a data source and a way out found in one component.
 * Metadata convention and tests: rules/README.md, rules/tests/telephony.yml.
 */

rule at_imei_query
{
    meta:
        id = "telephony.at_imei_query"
        title = "Asks the modem for the IMEI"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "imei"
        channel = ""
        mitre = "T1426"
        description = "AT+CGSN (3GPP TS 27.007 5.4) and its V.25ter form AT+GSN return the handset's IMEI; MediaTek modems also answer AT+EGMR=0,7. A radio interface layer sends them legitimately; any other program that does collects the IMEI itself."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cgsn = "AT+CGSN" ascii nocase
        $gsn = "AT+GSN" ascii nocase
        $egmr = "AT+EGMR=0,7" ascii nocase
    condition:
        any of them
}

rule at_imsi_query
{
    meta:
        id = "telephony.at_imsi_query"
        title = "Asks the modem for the IMSI"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "imsi"
        channel = ""
        mitre = "T1426"
        description = "AT+CIMI (3GPP TS 27.007 5.6) returns the subscriber identity (IMSI) stored on the SIM, which names the subscriber to the operator and to anyone who collects it."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cimi = "AT+CIMI" ascii nocase
    condition:
        $cimi
}

rule at_iccid_query
{
    meta:
        id = "telephony.at_iccid_query"
        title = "Asks the modem for the SIM serial number (ICCID)"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "iccid"
        channel = ""
        mitre = "T1426"
        description = "Vendor commands AT+CCID, AT+ICCID, AT+QCCID, AT^ICCID and the restricted SIM access read of EF_ICCID (AT+CRSM=176,12258) return the SIM card's serial number."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $ccid = "AT+CCID" ascii nocase
        $iccid = "AT+ICCID" ascii nocase
        $qccid = "AT+QCCID" ascii nocase
        $hw = "AT^ICCID" ascii nocase
        $crsm = "AT+CRSM=176,12258" ascii nocase
    condition:
        any of them
}

rule at_msisdn_query
{
    meta:
        id = "telephony.at_msisdn_query"
        title = "Asks the modem for the subscriber's own phone number"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "msisdn"
        channel = ""
        mitre = "T1426"
        description = "AT+CNUM (3GPP TS 27.007 7.1) returns the MSISDN, the phone number of the SIM in the device."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cnum = "AT+CNUM" ascii nocase
    condition:
        $cnum
}

rule at_sms_read
{
    meta:
        id = "telephony.at_sms_read"
        title = "Reads stored SMS messages through the modem"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "sms"
        channel = ""
        mitre = "T1636.004"
        description = "AT+CMGL lists and AT+CMGR reads the SMS messages stored on the SIM or in the modem (3GPP TS 27.005 3.4), with their senders and text."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127005/"
    strings:
        $cmgl = "AT+CMGL" ascii nocase
        $cmgr = "AT+CMGR=" ascii nocase
    condition:
        any of them
}

rule at_phonebook_read
{
    meta:
        id = "telephony.at_phonebook_read"
        title = "Reads the SIM phonebook through the modem"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "contacts"
        channel = ""
        mitre = "T1636.003"
        description = "AT+CPBR reads and AT+CPBF searches the phonebook entries of the SIM or the modem (3GPP TS 27.007 8.12, 8.13)."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cpbr = "AT+CPBR=" ascii nocase
        $cpbf = "AT+CPBF=" ascii nocase
    condition:
        any of them
}

rule at_cell_location
{
    meta:
        id = "telephony.at_cell_location"
        title = "Asks the modem for the serving cell or a cell-based position"
        category = "data-source"
        severity = "low"
        confidence = "medium"
        data = "location"
        channel = ""
        mitre = "T1430"
        description = "AT+CREG=2, AT+CGREG=2 and AT+CEREG=2 make the modem report the location area and cell id (a coarse position); AT+QENG, AT+CCED and the module vendors' locating commands (AT+QCELLLOC, AT+CIPGSMLOC, AT+CLBS) return serving-cell data or a position computed from it. Registration monitoring uses the first group legitimately."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $creg = "AT+CREG=2" ascii nocase
        $cgreg = "AT+CGREG=2" ascii nocase
        $cereg = "AT+CEREG=2" ascii nocase
        $qeng = "AT+QENG=" ascii nocase
        $cced = "AT+CCED" ascii nocase
        $qcellloc = "AT+QCELLLOC" ascii nocase
        $gsmloc = "AT+CIPGSMLOC" ascii nocase
        $clbs = "AT+CLBS=" ascii nocase
    condition:
        any of them
}

rule at_modem_control
{
    meta:
        id = "telephony.at_modem_control"
        title = "Drives a cellular modem with AT commands"
        category = "property"
        severity = "info"
        confidence = "high"
        data = ""
        channel = ""
        mitre = ""
        description = "Routine modem commands (SIM status AT+CPIN?, signal quality AT+CSQ, operator AT+COPS?, registration AT+CREG?, echo off ATE0, functionality AT+CFUN=): the file talks to a modem. Normal in any phone's modem stack; it only says where AT traffic comes from."
        reference = "https://www.etsi.org/deliver/etsi_ts/127000_127099/127007/"
    strings:
        $cpin = "AT+CPIN?" ascii nocase
        $csq = "AT+CSQ" ascii nocase fullword
        $cops = "AT+COPS?" ascii nocase
        $creg = "AT+CREG?" ascii nocase
        $ate0 = "ATE0" ascii fullword
        $cfun = "AT+CFUN=" ascii nocase
    condition:
        2 of them
}

rule modem_tty_access
{
    meta:
        id = "telephony.modem_tty_access"
        title = "Opens a modem's AT command port"
        category = "property"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = ""
        description = "Device nodes through which Linux and Android programs reach a cellular modem's AT interpreter: USB modem ports (/dev/ttyUSB*, /dev/ttyACM*), Qualcomm shared-memory ports (/dev/smd*), MediaTek CCCI and ATCI channels (/dev/ttyC*, /dev/radio/atci, /dev/radio/pttycmd*). Outside the radio interface layer, a program that opens one speaks to the modem directly, bypassing Android's permission checks."
        reference = "https://source.android.com/docs/core/connect/ril"
    strings:
        $usb = "/dev/ttyUSB" ascii
        $acm = "/dev/ttyACM" ascii
        $smd = "/dev/smd" ascii
        $atci = "/dev/radio/atci" ascii
        $ptty = "/dev/radio/pttycmd" ascii
        $ccci = "/dev/ttyC0" ascii
    condition:
        any of them
}

rule sms_database
{
    meta:
        id = "telephony.sms_database"
        title = "Names Android's SMS/MMS database"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "sms"
        channel = ""
        mitre = "T1636.004"
        description = "mmssms.db is the telephony provider's SQLite store of every SMS and MMS on an Android phone (/data/data/com.android.providers.telephony/databases/). Only the provider itself should open it; a native program naming it reads the messages behind Android's back."
        reference = "https://attack.mitre.org/techniques/T1636/004/"
    strings:
        $db = "mmssms.db" ascii wide nocase
    condition:
        $db
}

rule contacts_database
{
    meta:
        id = "telephony.contacts_database"
        title = "Names Android's contacts database"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "contacts,call_log"
        channel = ""
        mitre = "T1636.003,T1636.002"
        description = "contacts2.db is the contacts provider's SQLite store of the address book (and, before Android 7, of the call history: its calls table). Only the provider itself should open it."
        reference = "https://attack.mitre.org/techniques/T1636/003/"
    strings:
        $db = "contacts2.db" ascii wide nocase
    condition:
        $db
}

rule call_log_database
{
    meta:
        id = "telephony.call_log_database"
        title = "Names Android's call-log database"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "call_log"
        channel = ""
        mitre = "T1636.002"
        description = "calllog.db is where Android 7 and later keep the call history (numbers, times, durations)."
        reference = "https://attack.mitre.org/techniques/T1636/002/"
    strings:
        $db = "calllog.db" ascii wide nocase
    condition:
        $db
}

rule cpu_serial_read
{
    meta:
        id = "telephony.cpu_serial_read"
        title = "Reads the SoC serial number from /proc/cpuinfo"
        category = "data-source"
        severity = "low"
        confidence = "medium"
        data = "device_info"
        channel = ""
        mitre = "T1426"
        description = "On ARM Linux the Serial line of /proc/cpuinfo carries the SoC's unique serial number, a stable hardware identifier that survives a factory reset and a SIM change."
        reference = "https://attack.mitre.org/techniques/T1426/"
    strings:
        $cpuinfo = "/proc/cpuinfo" ascii
        $serial = "Serial" ascii fullword
    condition:
        $cpuinfo and $serial
}

rule imei_in_message
{
    meta:
        id = "telephony.imei_in_message"
        title = "Formats the IMEI into an outgoing message"
        category = "data-source"
        severity = "medium"
        confidence = "medium"
        data = "imei"
        channel = ""
        mitre = "T1426,T1646"
        description = "A template that labels a value as the IMEI (\"IMEI:%s\", \"imei=%s\", a JSON \"imei\" field, an \"&imei=\" query parameter): the identifier is put into a message, report or request rather than only shown on screen."
        reference = "https://attack.mitre.org/techniques/T1646/"
    strings:
        $colon = "imei:%s" ascii nocase
        $equals = "imei=%s" ascii nocase
        $json = "\"imei\":\"%s\"" ascii nocase
        $json_raw = "\"imei\":%s" ascii nocase
        $query = "&imei=" ascii nocase
        $query_first = "?imei=" ascii nocase
    condition:
        any of them
}

rule imsi_in_message
{
    meta:
        id = "telephony.imsi_in_message"
        title = "Formats the IMSI into an outgoing message"
        category = "data-source"
        severity = "medium"
        confidence = "medium"
        data = "imsi"
        channel = ""
        mitre = "T1426,T1646"
        description = "A template that labels a value as the IMSI (\"IMSI:%s\", \"imsi=%s\", a JSON \"imsi\" field, an \"&imsi=\" query parameter): the subscriber identity is put into a message, report or request."
        reference = "https://attack.mitre.org/techniques/T1646/"
    strings:
        $colon = "imsi:%s" ascii nocase
        $equals = "imsi=%s" ascii nocase
        $json = "\"imsi\":\"%s\"" ascii nocase
        $json_raw = "\"imsi\":%s" ascii nocase
        $query = "&imsi=" ascii nocase
        $query_first = "?imsi=" ascii nocase
    condition:
        any of them
}
