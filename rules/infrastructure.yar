/*
 * Hard-coded infrastructure: kinds of destinations that say something about
 * who runs the other end (a bare IP address instead of a name, dynamic DNS,
 * public web services used as a drop box). The individual hosts, URLs and
 * phone numbers are extracted, classified and placed by the iocs and enrich
 * analyzers; these rules only name the patterns.
 * Metadata convention and tests: rules/README.md, rules/tests/infrastructure.yml.
 */

rule url_with_ip_host
{
    meta:
        id = "infrastructure.url_with_ip_host"
        title = "URL whose host is a bare IPv4 address"
        category = "endpoint"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1437.001"
        description = "An http(s) URL written with a dotted-quad host: the program talks to one fixed machine with no DNS name, as collectors and test builds do (vendors' own services normally have names)."
        reference = "https://attack.mitre.org/techniques/T1437/001/"
    strings:
        $url = /https?:\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}[:\/]/
    condition:
        $url
}

rule dynamic_dns_host
{
    meta:
        id = "infrastructure.dynamic_dns_host"
        title = "Host name under a dynamic DNS provider"
        category = "endpoint"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1637"
        description = "A host under a free dynamic DNS zone (3322.org, oicp.net, ddns.net, no-ip, duckdns.org...): the name follows whatever address its owner points it at, a long-standing habit of IoT and Android malware operators."
        reference = "https://attack.mitre.org/techniques/T1637/"
    strings:
        $f3322 = ".f3322.net" ascii wide nocase
        $z3322 = ".3322.org" ascii wide nocase
        $oicp = ".oicp.net" ascii wide nocase
        $vicp = ".vicp.net" ascii wide nocase
        $ddns = ".ddns.net" ascii wide nocase
        $noip = ".no-ip.org" ascii wide nocase
        $noip_biz = ".no-ip.biz" ascii wide nocase
        $duckdns = ".duckdns.org" ascii wide nocase
        $changeip = ".changeip.com" ascii wide nocase
        $dyndns = ".dyndns.org" ascii wide nocase
    condition:
        any of them
}

rule web_service_dropbox
{
    meta:
        id = "infrastructure.web_service_dropbox"
        title = "Public web service used as a command or drop channel"
        category = "endpoint"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = "https"
        mitre = "T1481"
        description = "Endpoints of public services that firmware has no business calling but data thieves use to receive data or commands through someone else's infrastructure: the Telegram bot API, Discord webhooks, raw Pastebin pastes."
        reference = "https://attack.mitre.org/techniques/T1481/"
    strings:
        $telegram = "api.telegram.org/bot" ascii wide nocase
        $discord = "discord.com/api/webhooks/" ascii wide nocase
        $discordapp = "discordapp.com/api/webhooks/" ascii wide nocase
        $pastebin = "pastebin.com/raw" ascii wide nocase
    condition:
        any of them
}

rule ip_lookup_service
{
    meta:
        id = "infrastructure.ip_lookup_service"
        title = "Asks a public service for the device's public IP address"
        category = "endpoint"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1422"
        description = "Public what-is-my-IP services (ip-api.com, ipinfo.io, api.ipify.org, checkip.dyndns.org, icanhazip.com, ifconfig.me): the program learns the address and often the country the device is in, which trackers report along with identifiers."
        reference = "https://attack.mitre.org/techniques/T1422/"
    strings:
        $ipapi = "ip-api.com" ascii wide nocase
        $ipinfo = "ipinfo.io" ascii wide nocase
        $ipify = "api.ipify.org" ascii wide nocase
        $checkip = "checkip.dyndns.org" ascii wide nocase
        $icanhazip = "icanhazip.com" ascii wide nocase
        $ifconfig = "ifconfig.me" ascii wide nocase fullword
    condition:
        any of them
}
