/*
 * Network sinks: the ways a program can send data out, as their code leaves
 * them in a binary (hand-built protocol requests, client APIs, protocol
 * constants). Most legitimate software has some of these; each rule only says
 * which channel the file can use, and the correlation with a data source in
 * the same component is what makes an exfiltration behaviour.
 * Metadata convention and tests: rules/README.md, rules/tests/network.yml.
 */

rule http_post_template
{
    meta:
        id = "network.http_post_template"
        title = "Builds HTTP POST requests by hand"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1437.001"
        description = "An HTTP/1.x POST request line written into the program (a printf template such as \"POST %s HTTP/1.1\", or a literal path): the program uploads over plain HTTP with its own socket code rather than through a vetted HTTP library."
        reference = "https://www.rfc-editor.org/rfc/rfc9112#name-request-line"
    strings:
        $template = "POST %s HTTP/1." ascii
        $literal = /POST \/[!-~]{0,120} HTTP\/1\.[01]/
    condition:
        any of them
}

rule http_get_template
{
    meta:
        id = "network.http_get_template"
        title = "Builds HTTP GET requests by hand"
        category = "channel"
        severity = "info"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1437.001"
        description = "An HTTP/1.x GET request template (\"GET %s HTTP/1.1\"): the program fetches over plain HTTP with its own socket code. Update checkers and downloaders do this; it carries data out only in the URL."
        reference = "https://www.rfc-editor.org/rfc/rfc9112#name-request-line"
    strings:
        $template = "GET %s HTTP/1." ascii
    condition:
        $template
}

rule android_http_upload
{
    meta:
        id = "network.android_http_upload"
        title = "Uploads with HttpURLConnection (Android/Java)"
        category = "channel"
        severity = "low"
        confidence = "high"
        data = ""
        channel = "http"
        mitre = "T1437.001"
        description = "Dalvik code that opens an HttpURLConnection, sets its request method and enables a request body (setDoOutput): it sends data to a web server. HttpURLConnection also serves https URLs; the apk analyzer says https only when an https URL is loaded."
        reference = "https://developer.android.com/reference/java/net/HttpURLConnection"
    strings:
        $class = "Ljava/net/HttpURLConnection;" ascii
        $method = "setRequestMethod" ascii fullword
        $output = "setDoOutput" ascii fullword
    condition:
        all of them
}

rule android_sms_send
{
    meta:
        id = "network.android_sms_send"
        title = "Sends SMS with Android's SmsManager"
        category = "channel"
        severity = "medium"
        confidence = "high"
        data = ""
        channel = "sms"
        mitre = "T1582"
        description = "Dalvik code calling SmsManager.sendTextMessage, sendMultipartTextMessage or sendDataMessage: the app sends text messages itself, without the user's messaging app."
        reference = "https://developer.android.com/reference/android/telephony/SmsManager"
    strings:
        $class = "Landroid/telephony/SmsManager;" ascii
        $text = "sendTextMessage" ascii fullword
        $multipart = "sendMultipartTextMessage" ascii fullword
        $data = "sendDataMessage" ascii fullword
    condition:
        $class and any of ($text, $multipart, $data)
}

rule mqtt_client
{
    meta:
        id = "network.mqtt_client"
        title = "Speaks MQTT"
        category = "channel"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = "mqtt"
        mitre = "T1437"
        description = "The protocol name of an MQTT CONNECT packet (length-prefixed \"MQTT\" with level 4 or 5, or the 3.1 \"MQIsdp\") or the Eclipse Paho client classes: the program publishes to an MQTT broker, a common IoT command-and-control and telemetry channel."
        reference = "https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html"
    strings:
        $v311 = { 00 04 4D 51 54 54 (04 | 05) }
        $v31 = { 00 06 4D 51 49 73 64 70 03 }
        $paho = "org/eclipse/paho/client/mqttv3" ascii
    condition:
        any of them
}

rule smtp_client
{
    meta:
        id = "network.smtp_client"
        title = "Sends e-mail over SMTP"
        category = "channel"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = "smtp"
        mitre = "T1437"
        description = "SMTP envelope commands MAIL FROM and RCPT TO (RFC 5321) in one file: the program submits mail itself. Mailers and busybox's sendmail applet have them; so does malware that mails what it collects."
        reference = "https://www.rfc-editor.org/rfc/rfc5321"
    strings:
        $from = "MAIL FROM:<" ascii nocase
        $to = "RCPT TO:<" ascii nocase
    condition:
        $from and $to
}

rule ftp_upload
{
    meta:
        id = "network.ftp_upload"
        title = "Uploads files over FTP"
        category = "channel"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = "ftp"
        mitre = "T1437"
        description = "FTP upload commands (STOR) with login and passive-mode commands (RFC 959): the program puts files on an FTP server. busybox's ftpput does; so does malware that uploads collected files."
        reference = "https://www.rfc-editor.org/rfc/rfc959"
    strings:
        $stor = "STOR " ascii
        $user = "USER " ascii
        $pasv = "PASV" ascii fullword
    condition:
        all of them
}

rule shell_http_upload
{
    meta:
        id = "network.shell_http_upload"
        title = "Uploads with curl or wget from a script"
        category = "channel"
        severity = "medium"
        confidence = "medium"
        data = ""
        channel = "http,https"
        mitre = "T1437.001"
        description = "A curl command line that sends a body or a file (-d, --data, -F, --form, -T, --upload-file) or wget with --post-data/--post-file: a shell script or a command string that uploads to a web server."
        reference = "https://curl.se/docs/manpage.html"
    strings:
        $curl = /curl [^\n\x00]{0,80}(-d |-F |-T |--data|--form|--upload-file)/
        $wget_data = "wget --post-data" ascii
        $wget_file = "wget --post-file" ascii
    condition:
        any of them
}
