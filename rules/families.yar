/*
 * Publicly documented firmware backdoor families, by the indicators their
 * public reports give (package and component names, hosts, file names). Only
 * published indicators are used, each rule cites where it comes from, and
 * the family name is in meta "family" (findings are tagged "family:<name>").
 *
 * Some of these components also had clean versions after disclosure (Adups
 * patched its FOTA client in late 2016): a hit says the family's code is in
 * the image, and the reviewer checks which version it is.
 * Metadata convention and tests: rules/README.md, rules/tests/families.yml.
 */

rule adups_fota_client
{
    meta:
        id = "families.adups_fota_client"
        title = "Adups FOTA update client"
        category = "family"
        severity = "high"
        confidence = "high"
        family = "adups"
        data = ""
        channel = ""
        mitre = "T1474.003"
        description = "The Shanghai Adups Technology FOTA client (packages com.adups.fota and com.adups.fota.sysoper, ro.adups.fota.* build properties, the adupsfota work folder). Kryptowire found versions shipped on BLU and other low-cost Android phones in 2016 sending the full text of SMS, contacts, call history, IMEI/IMSI and location to servers in China every 24 to 72 hours, and installing apps and running commands as system on request."
        reference = "https://www.kryptowire.com/kryptowire-discovers-mobile-phone-firmware-transmitted-personally-identifiable-information-pii-without-user-consent-disclosure/"
    strings:
        $package = "com.adups.fota" ascii wide
        $dex_package = "Lcom/adups/fota/" ascii
        $property = "ro.adups.fota." ascii
        $folder = "/adupsfota/" ascii wide
    condition:
        any of them
}

rule adups_command_receiver
{
    meta:
        id = "families.adups_command_receiver"
        title = "Adups FOTA command interface that runs commands as system"
        category = "family"
        severity = "high"
        confidence = "high"
        family = "adups"
        data = ""
        channel = ""
        mitre = "T1474.003,T1623.001"
        description = "The Adups com.adups.fota.sysoper broadcast and service actions (android.intent.action.AdupsFota.WriteCommandReceiver, android.intent.action.AdupsFota.SysService). The sysoper app runs as the system user and carries out the commands and package installs sent through them; researchers showed other apps on the phone could use them to run commands as system."
        reference = "https://www.kryptowire.com/kryptowire-discovers-mobile-phone-firmware-transmitted-personally-identifiable-information-pii-without-user-consent-disclosure/"
    strings:
        $write_command = "android.intent.action.AdupsFota.WriteCommandReceiver" ascii wide
        $sys_service = "android.intent.action.AdupsFota.SysService" ascii wide
        $service_class = "com.adups.fota.sysoper.SysService" ascii wide
    condition:
        any of them
}

rule adups_collection_host
{
    meta:
        id = "families.adups_collection_host"
        title = "Adups data-collection server"
        category = "family"
        severity = "high"
        confidence = "high"
        family = "adups"
        data = ""
        channel = "https"
        mitre = "T1474.003,T1646"
        description = "Host names of Adups servers that the data-collecting FOTA versions reported to (bigdata.adups.com, rebootv5.adsunflower.com), as published after Kryptowire's analysis."
        reference = "https://www.kryptowire.com/kryptowire-discovers-mobile-phone-firmware-transmitted-personally-identifiable-information-pii-without-user-consent-disclosure/"
    strings:
        $bigdata = "bigdata.adups.com" ascii wide nocase
        $reboot = "rebootv5.adsunflower.com" ascii wide nocase
    condition:
        any of them
}

rule ragentek_ota_hosts
{
    meta:
        id = "families.ragentek_ota_hosts"
        title = "Ragentek OTA agent update servers"
        category = "family"
        severity = "high"
        confidence = "high"
        family = "ragentek"
        data = ""
        channel = "http"
        mitre = "T1474.003,T1407"
        description = "The three host names the Ragentek OTA agent (/system/bin/debugs) contacted over unencrypted HTTP to fetch commands run as root; BitSight/AnubisNetworks registered the two unregistered ones in 2016 and counted about 2.8 million devices calling in (CVE-2016-6564)."
        reference = "https://securityledger.com/2016/11/ragentek-android-ota-update-mechanism-vulnerable-to-mitm-attack/"
    strings:
        $lhzbdvm = "oyag.lhzbdvm.com" ascii wide nocase
        $prugskh_net = "oyag.prugskh.net" ascii wide nocase
        $prugskh_com = "oyag.prugskh.com" ascii wide nocase
    condition:
        any of them
}

rule ragentek_debugs_agent
{
    meta:
        id = "families.ragentek_debugs_agent"
        title = "Ragentek hidden OTA agent /system/bin/debugs"
        category = "family"
        severity = "high"
        confidence = "medium"
        family = "ragentek"
        data = ""
        channel = ""
        mitre = "T1474.003,T1628"
        description = "The path of the Ragentek OTA agent, a root daemon that other system code was modified to hide from process and file listings (BitSight/AnubisNetworks 2016, CVE-2016-6564), in a program or library: the agent itself or a hiding patch. Init scripts that start it are linked to the agent by the configs analyzer instead."
        reference = "https://securityledger.com/2016/11/ragentek-android-ota-update-mechanism-vulnerable-to-mitm-attack/"
    strings:
        $path = "/system/bin/debugs" ascii wide fullword
    condition:
        (uint32(0) == 0x464C457F or uint32(0) == 0x0A786564) and $path
}

rule triada_module_files
{
    meta:
        id = "families.triada_module_files"
        title = "Triada module file names"
        category = "family"
        severity = "high"
        confidence = "medium"
        family = "triada"
        data = ""
        channel = ""
        mitre = "T1474.003,T1407"
        description = "The names under which the Triada implant of libandroid_runtime.so (Dr.Web Android.Triada.231, 2017) writes the modules it decrypts before loading them into app processes: native code as libcnfgp.so, Java code as mms-core.jar (as summarised from Dr.Web's analysis)."
        reference = "https://isotope13.pages.dev/compendium/2016/android-oem-firmware-supply-chain/"
    strings:
        $native = "libcnfgp.so" ascii wide
        $java = "mms-core.jar" ascii wide
    condition:
        any of them
}

rule triada_runtime_loader
{
    meta:
        id = "families.triada_runtime_loader"
        title = "Code loader built into libandroid_runtime.so (Triada-style system implant)"
        category = "family"
        severity = "high"
        confidence = "low"
        family = "triada"
        data = ""
        channel = ""
        mitre = "T1474.003,T1645,T1407"
        description = "Android's libandroid_runtime.so carrying a Java class loader (DexClassLoader) reference. Stock builds of this library do not load dex code; Triada's firmware variants were compiled into it (its log function) and from there loaded their modules into every app process forked from Zygote (Dr.Web 2017 and 2018, Google 2019). A heuristic for the technique, not a byte signature of one sample."
        reference = "https://security.googleblog.com/2019/06/pha-family-highlights-triada.html"
    strings:
        $soname = "libandroid_runtime.so" ascii
        $log = "println_native" ascii fullword
        $loader = "dalvik/system/DexClassLoader" ascii
    condition:
        uint32(0) == 0x464C457F and $soname and $log and $loader
}
