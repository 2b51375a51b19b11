/*
 * Remote command execution and code loading: shells handed to the network,
 * commands that fetch and run code, Android code that runs shell commands,
 * loads dex at run time or installs packages silently, native injectors.
 * Metadata convention and tests: rules/README.md, rules/tests/execution.yml.
 */

rule reverse_shell
{
    meta:
        id = "execution.reverse_shell"
        title = "Reverse-shell command line"
        category = "execution"
        severity = "high"
        confidence = "high"
        data = ""
        channel = "tcp"
        mitre = "T1623.001"
        description = "Command lines that connect a shell's input and output to a remote host (bash -i with /dev/tcp, nc/ncat -e /bin/sh, a mkfifo pipe into nc): whoever listens at the other end runs commands on the device."
        reference = "https://attack.mitre.org/techniques/T1623/001/"
    strings:
        $dev_tcp = /(ba)?sh -i [^\n\x00]{0,16}\/dev\/tcp\//
        $nc_e = /(nc|ncat|netcat) [^\n\x00]{0,64}-e \/bin\/(ba)?sh/
        $fifo = /mkfifo \/tmp\/[^\n\x00]{1,80}\| ?(nc|ncat|netcat) /
    condition:
        any of them
}

rule telnetd_root_shell
{
    meta:
        id = "execution.telnetd_root_shell"
        title = "Starts a telnet server that hands out a shell"
        category = "execution"
        severity = "high"
        confidence = "high"
        data = ""
        channel = "tcp"
        mitre = "T1623.001"
        description = "telnetd started with -l /bin/sh (no login prompt): anyone who connects gets a root shell. A classic backdoor of router and IoT firmware."
        reference = "https://attack.mitre.org/techniques/T1623/001/"
    strings:
        $telnetd = /telnetd( -[a-km-zA-Z] ?[^ \n\x00]{0,24}){0,4} -l ?\/bin\/(ba)?sh/
    condition:
        $telnetd
}

rule download_and_execute
{
    meta:
        id = "execution.download_and_execute"
        title = "Downloads a file and makes it executable"
        category = "execution"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = "http"
        mitre = "T1407,T1544"
        description = "A wget/curl/tftp download followed by chmod +x or 755/777 in one command string or script: the device fetches a program from a server and runs it, so what it does can change at any time."
        reference = "https://attack.mitre.org/techniques/T1407/"
    strings:
        $fetch = /(wget|curl|tftp) [^\n\x00]{0,160}(;|&&|\n) ?chmod ([+]x|[0-7]?7[57][57]) /
    condition:
        $fetch
}

rule android_shell_exec
{
    meta:
        id = "execution.android_shell_exec"
        title = "Runs shell commands as root from Android code"
        category = "execution"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1623.001"
        description = "Dalvik code calling Runtime.exec together with the su command: the app runs shell commands with root privileges, outside the Android permission model."
        reference = "https://attack.mitre.org/techniques/T1623/001/"
    strings:
        $runtime = "Ljava/lang/Runtime;" ascii
        $exec = "exec" ascii fullword
        $su = "su" ascii fullword
        $su_path = "/system/xbin/su" ascii
    condition:
        $runtime and $exec and ($su or $su_path)
}

rule android_dex_loading
{
    meta:
        id = "execution.android_dex_loading"
        title = "Loads dex code at run time"
        category = "execution"
        severity = "low"
        confidence = "high"
        data = ""
        channel = ""
        mitre = "T1407"
        description = "DexClassLoader or InMemoryDexClassLoader: the app loads Java code that is not in its own package, from a file or a buffer, so the behaviour the image shows is not all it will do. Plugin frameworks do this too."
        reference = "https://developer.android.com/reference/dalvik/system/DexClassLoader"
    strings:
        $file = "Ldalvik/system/DexClassLoader;" ascii
        $memory = "Ldalvik/system/InMemoryDexClassLoader;" ascii
    condition:
        any of them
}

rule android_silent_install
{
    meta:
        id = "execution.android_silent_install"
        title = "Installs Android packages without the user"
        category = "execution"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1407"
        description = "The hidden PackageManager.installPackage call with its install observer, or a \"pm install\" command line: a privileged component installs apps silently, as the Adups FOTA client did on request of its servers."
        reference = "https://attack.mitre.org/techniques/T1407/"
    strings:
        $observer = "Landroid/content/pm/IPackageInstallObserver" ascii
        $install = "installPackage" ascii fullword
        $pm = "pm install " ascii
    condition:
        ($observer and $install) or $pm
}

rule ptrace_injector
{
    meta:
        id = "execution.ptrace_injector"
        title = "Injects code into other processes with ptrace"
        category = "execution"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = "T1631.001"
        description = "ptrace together with reading another process's memory map (/proc/%d/maps) and dlopen/mmap symbol lookups: the shape of a library injector, the technique Triada used to enter Zygote and app processes. Debuggers such as gdbserver share it."
        reference = "https://attack.mitre.org/techniques/T1631/001/"
    strings:
        $ptrace = "ptrace" ascii fullword
        $maps = "/proc/%d/maps" ascii
        $dlopen = "dlopen" ascii fullword
        $mmap = "mmap" ascii fullword
    condition:
        uint32(0) == 0x464C457F and $ptrace and $maps and ($dlopen or $mmap)
}
