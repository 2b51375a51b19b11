/*
 * Persistence and privilege: how a component gets started again after every
 * boot, as which user, and what it does to stay there (init services, boot
 * receivers, cron, install-recovery hooks, setuid su, SELinux switched off).
 * The configs analyzer links start-up files to the programs they start; these
 * rules name the mechanisms wherever they appear.
 * Metadata convention and tests: rules/README.md, rules/tests/persistence.yml.
 */

rule android_boot_receiver
{
    meta:
        id = "persistence.android_boot_receiver"
        title = "Starts when Android finishes booting"
        category = "persistence"
        severity = "low"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1624.001"
        description = "The BOOT_COMPLETED broadcast in a manifest or in code: the app is started by every boot without being opened."
        reference = "https://attack.mitre.org/techniques/T1624/001/"
    strings:
        $boot = "android.intent.action.BOOT_COMPLETED" ascii wide
    condition:
        $boot
}

rule init_root_service
{
    meta:
        id = "persistence.init_root_service"
        title = "Android init service that runs as root"
        category = "persistence"
        severity = "low"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1398"
        description = "An init .rc service whose user is root: init starts the program at boot, restarts it when it dies, and it keeps every privilege. Platform daemons need this; a vendor daemon that talks to the network should not."
        reference = "https://android.googlesource.com/platform/system/core/+/master/init/README.md"
    strings:
        $service = /(^|\n)service [A-Za-z0-9_.-]{1,64} \/[^\n\x00]{1,120}/
        $root = /\n[ \t]{1,8}user root[ \t]*(\n|$)/
    condition:
        $service and $root
}

rule init_su_domain
{
    meta:
        id = "persistence.init_su_domain"
        title = "Android init service in the unconfined su SELinux domain"
        category = "privilege"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1398"
        description = "An init .rc service labelled seclabel u:r:su:s0: the su domain is for debug builds and escapes SELinux confinement, so a user build that starts a daemon in it gives that daemon full control of the device."
        reference = "https://source.android.com/docs/security/features/selinux/concepts"
    strings:
        $su = /\n[ \t]{1,8}seclabel u:r:su:s0/
    condition:
        $su
}

rule init_service_from_writable_path
{
    meta:
        id = "persistence.init_service_from_writable_path"
        title = "Init service started from a writable location"
        category = "persistence"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1398"
        description = "An init .rc service whose program lives under /data, /cache or /sdcard: the system starts at boot whatever was last written there, which survives system updates and escapes verified boot."
        reference = "https://android.googlesource.com/platform/system/core/+/master/init/README.md"
    strings:
        $service = /(^|\n)service [A-Za-z0-9_.-]{1,64} \/(data|cache|sdcard|mnt\/sdcard)\//
    condition:
        $service
}

rule boot_script_hook
{
    meta:
        id = "persistence.boot_script_hook"
        title = "Adds itself to a boot script"
        category = "persistence"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1398"
        description = "Appends to /etc/rc.local or writes Android's /system/etc/install-recovery.sh (run as root at every boot by the flash_recovery service): rootkits and preinstalled droppers use both to be started by the system."
        reference = "https://attack.mitre.org/techniques/T1398/"
    strings:
        $rc_local = />> ?\/etc\/rc\.local/
        $install_recovery = "/system/etc/install-recovery.sh" ascii wide
    condition:
        any of them
}

rule cron_job
{
    meta:
        id = "persistence.cron_job"
        title = "System crontab entry run as root"
        category = "persistence"
        severity = "low"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1603"
        description = "A system crontab line (five time fields, the user root, an absolute command path): the command runs periodically with full privileges. Update and housekeeping jobs look like this; so does a collector that reports every hour."
        reference = "https://attack.mitre.org/techniques/T1603/"
    strings:
        $line = /(^|\n)[0-9*\/,-]{1,20}[ \t]+[0-9*\/,-]{1,20}[ \t]+[0-9*\/,-]{1,20}[ \t]+[0-9*\/,a-z-]{1,20}[ \t]+[0-9*\/,a-z-]{1,20}[ \t]+root[ \t]+\//
    condition:
        $line
}

rule setuid_su_install
{
    meta:
        id = "persistence.setuid_su_install"
        title = "Installs a setuid su binary"
        category = "privilege"
        severity = "high"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1548.001"
        description = "chmod 4755/6755 on su in /system/xbin or /system/bin: the device gets a root shell any program can call, the usual end of Android rooting trojans and of some preinstalled backdoors."
        reference = "https://attack.mitre.org/techniques/T1548/001/"
    strings:
        $chmod = /chmod [0-7]?[46]7[57][57] \/system\/(x?bin|\.[A-Za-z0-9_]{1,24})\/su/
    condition:
        $chmod
}

rule selinux_disable
{
    meta:
        id = "persistence.selinux_disable"
        title = "Switches SELinux to permissive"
        category = "privilege"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1629.003"
        description = "\"setenforce 0\", or writing 0 to /sys/fs/selinux/enforce: the device stops enforcing its SELinux policy, so a compromised process is no longer confined."
        reference = "https://attack.mitre.org/techniques/T1629/003/"
    strings:
        $setenforce = "setenforce 0" ascii wide
        $enforce = /echo 0 ?> ?\/sys\/fs\/selinux\/enforce/
    condition:
        any of them
}
