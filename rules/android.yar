/*
 * Android data access: the framework APIs and content providers through which
 * Dalvik code (classes.dex, framework jars) reads identifiers and personal
 * data, and manifest facts that widen what it may read. Strings are matched
 * as they sit in a DEX string table (type descriptors "Landroid/...;", method
 * names) or in binary XML (UTF-16LE).
 *
 * System apps and the framework itself legitimately use many of these APIs;
 * each rule states the access, the correlation decides whether it leaves.
 * Metadata convention and tests: rules/README.md, rules/tests/android.yml.
 */

rule device_id_api
{
    meta:
        id = "android.device_id_api"
        title = "Reads the IMEI with TelephonyManager"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "imei"
        channel = ""
        mitre = "T1426"
        description = "TelephonyManager.getDeviceId / getImei / getMeid return the handset's IMEI (or MEID)."
        reference = "https://developer.android.com/reference/android/telephony/TelephonyManager#getImei()"
    strings:
        $class = "Landroid/telephony/TelephonyManager;" ascii
        $device_id = "getDeviceId" ascii fullword
        $imei = "getImei" ascii fullword
        $meid = "getMeid" ascii fullword
    condition:
        $class and any of ($device_id, $imei, $meid)
}

rule subscriber_id_api
{
    meta:
        id = "android.subscriber_id_api"
        title = "Reads the IMSI with TelephonyManager"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "imsi"
        channel = ""
        mitre = "T1426"
        description = "TelephonyManager.getSubscriberId returns the SIM's subscriber identity (IMSI)."
        reference = "https://developer.android.com/reference/android/telephony/TelephonyManager#getSubscriberId()"
    strings:
        $class = "Landroid/telephony/TelephonyManager;" ascii
        $imsi = "getSubscriberId" ascii fullword
    condition:
        all of them
}

rule sim_serial_api
{
    meta:
        id = "android.sim_serial_api"
        title = "Reads the SIM serial number with TelephonyManager"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "iccid"
        channel = ""
        mitre = "T1426"
        description = "TelephonyManager.getSimSerialNumber returns the SIM card's ICCID."
        reference = "https://developer.android.com/reference/android/telephony/TelephonyManager#getSimSerialNumber()"
    strings:
        $class = "Landroid/telephony/TelephonyManager;" ascii
        $iccid = "getSimSerialNumber" ascii fullword
    condition:
        all of them
}

rule line_number_api
{
    meta:
        id = "android.line_number_api"
        title = "Reads the phone number with TelephonyManager"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "msisdn"
        channel = ""
        mitre = "T1426"
        description = "TelephonyManager.getLine1Number returns the subscriber's own phone number (MSISDN) when the SIM stores it."
        reference = "https://developer.android.com/reference/android/telephony/TelephonyManager#getLine1Number()"
    strings:
        $class = "Landroid/telephony/TelephonyManager;" ascii
        $msisdn = "getLine1Number" ascii fullword
    condition:
        all of them
}

rule sms_provider
{
    meta:
        id = "android.sms_provider"
        title = "Queries the SMS content provider"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "sms"
        channel = ""
        mitre = "T1636.004"
        description = "The content://sms URIs (inbox, sent, all) or the Telephony.Sms provider contract: the app reads the stored text messages."
        reference = "https://developer.android.com/reference/android/provider/Telephony.Sms"
    strings:
        $uri = "content://sms" ascii wide
        $contract = "Landroid/provider/Telephony$Sms" ascii
    condition:
        any of them
}

rule sms_receiver
{
    meta:
        id = "android.sms_receiver"
        title = "Intercepts incoming SMS"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "sms"
        channel = ""
        mitre = "T1636.004,T1582"
        description = "A receiver for the SMS_RECEIVED broadcast that decodes the message (getMessagesFromIntent, createFromPdu) or hides it from the user (abortBroadcast): the app reads every incoming text, one-time codes included."
        reference = "https://developer.android.com/reference/android/provider/Telephony.Sms.Intents"
    strings:
        $action = "android.provider.Telephony.SMS_RECEIVED" ascii wide
        $decode = "getMessagesFromIntent" ascii fullword
        $pdu = "createFromPdu" ascii fullword
        $abort = "abortBroadcast" ascii fullword
    condition:
        $action and any of ($decode, $pdu, $abort)
}

rule contacts_provider
{
    meta:
        id = "android.contacts_provider"
        title = "Queries the contacts provider"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "contacts"
        channel = ""
        mitre = "T1636.003"
        description = "The ContactsContract provider classes or the content://com.android.contacts and content://contacts URIs: the app reads the address book."
        reference = "https://developer.android.com/reference/android/provider/ContactsContract"
    strings:
        $contract = "Landroid/provider/ContactsContract" ascii
        $uri = "content://com.android.contacts" ascii wide
        $legacy = "content://contacts/" ascii wide
    condition:
        any of them
}

rule call_log_provider
{
    meta:
        id = "android.call_log_provider"
        title = "Queries the call log provider"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "call_log"
        channel = ""
        mitre = "T1636.002"
        description = "The CallLog.Calls provider class or the content://call_log URI: the app reads the history of calls."
        reference = "https://developer.android.com/reference/android/provider/CallLog.Calls"
    strings:
        $contract = "Landroid/provider/CallLog$Calls;" ascii
        $uri = "content://call_log" ascii wide
    condition:
        any of them
}

rule location_api
{
    meta:
        id = "android.location_api"
        title = "Reads the device location with LocationManager"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "location"
        channel = ""
        mitre = "T1430"
        description = "LocationManager.getLastKnownLocation, requestLocationUpdates or requestSingleUpdate: the app obtains the device's position."
        reference = "https://developer.android.com/reference/android/location/LocationManager"
    strings:
        $class = "Landroid/location/LocationManager;" ascii
        $last = "getLastKnownLocation" ascii fullword
        $updates = "requestLocationUpdates" ascii fullword
        $single = "requestSingleUpdate" ascii fullword
    condition:
        $class and any of ($last, $updates, $single)
}

rule installed_apps_api
{
    meta:
        id = "android.installed_apps_api"
        title = "Lists the installed applications"
        category = "data-source"
        severity = "low"
        confidence = "high"
        data = "installed_apps"
        channel = ""
        mitre = "T1418"
        description = "PackageManager.getInstalledPackages / getInstalledApplications: the app enumerates what else is installed (Kryptowire found Adups FOTA reporting exactly this)."
        reference = "https://attack.mitre.org/techniques/T1418/"
    strings:
        $packages = "getInstalledPackages" ascii fullword
        $apps = "getInstalledApplications" ascii fullword
    condition:
        any of them
}

rule accounts_api
{
    meta:
        id = "android.accounts_api"
        title = "Lists the accounts on the device"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "accounts"
        channel = ""
        mitre = ""
        description = "AccountManager.getAccounts / getAccountsByType: the app enumerates the accounts (e-mail addresses, messenger and social network identities) registered on the device."
        reference = "https://developer.android.com/reference/android/accounts/AccountManager"
    strings:
        $class = "Landroid/accounts/AccountManager;" ascii
        $all = "getAccounts" ascii fullword
        $by_type = "getAccountsByType" ascii fullword
    condition:
        $class and any of ($all, $by_type)
}

rule wifi_info_api
{
    meta:
        id = "android.wifi_info_api"
        title = "Reads Wi-Fi networks and connection details"
        category = "data-source"
        severity = "low"
        confidence = "high"
        data = "wifi"
        channel = ""
        mitre = "T1422"
        description = "WifiManager.getScanResults, getConnectionInfo or getConfiguredNetworks: nearby and saved networks (SSIDs, BSSIDs) and the current connection, which also locate the device."
        reference = "https://developer.android.com/reference/android/net/wifi/WifiManager"
    strings:
        $class = "Landroid/net/wifi/WifiManager;" ascii
        $scan = "getScanResults" ascii fullword
        $info = "getConnectionInfo" ascii fullword
        $saved = "getConfiguredNetworks" ascii fullword
    condition:
        $class and any of ($scan, $info, $saved)
}

rule audio_capture_api
{
    meta:
        id = "android.audio_capture_api"
        title = "Records audio from the microphone"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "microphone"
        channel = ""
        mitre = "T1429"
        description = "AudioRecord.startRecording, or MediaRecorder with an audio source: the app records sound."
        reference = "https://developer.android.com/reference/android/media/AudioRecord"
    strings:
        $audio_record = "Landroid/media/AudioRecord;" ascii
        $start = "startRecording" ascii fullword
        $media_recorder = "Landroid/media/MediaRecorder;" ascii
        $source = "setAudioSource" ascii fullword
    condition:
        ($audio_record and $start) or ($media_recorder and $source)
}

rule camera_capture_api
{
    meta:
        id = "android.camera_capture_api"
        title = "Takes pictures or video with the camera"
        category = "data-source"
        severity = "medium"
        confidence = "high"
        data = "camera"
        channel = ""
        mitre = "T1512"
        description = "Camera.takePicture, or a camera2 capture session: the app captures images."
        reference = "https://developer.android.com/reference/android/hardware/camera2/CameraDevice"
    strings:
        $legacy = "Landroid/hardware/Camera;" ascii
        $take = "takePicture" ascii fullword
        $camera2 = "Landroid/hardware/camera2/CameraDevice;" ascii
        $session = "createCaptureSession" ascii fullword
    condition:
        ($legacy and $take) or ($camera2 and $session)
}

rule system_uid_app
{
    meta:
        id = "android.system_uid_app"
        title = "App shares the system user id"
        category = "privilege"
        severity = "low"
        confidence = "medium"
        data = ""
        channel = ""
        mitre = ""
        description = "android:sharedUserId=\"android.uid.system\" in a manifest: the app runs as the system user, outside most permission checks, and may read or change almost anything. Normal for a few platform apps; a third-party vendor app with it gets the same power (Kryptowire found Adups FOTA running this way)."
        reference = "https://developer.android.com/guide/topics/manifest/manifest-element#uid"
    strings:
        $uid = "android.uid.system" ascii wide
    condition:
        $uid
}
