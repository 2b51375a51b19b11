.class public Lcom/android/sysupdate/service/CollectorService;
.super Landroid/app/Service;
.source "CollectorService.java"


.method public constructor <init>()V
    .locals 0
    invoke-direct {p0}, Landroid/app/Service;-><init>()V
    return-void
.end method

.method public onBind(Landroid/content/Intent;)Landroid/os/IBinder;
    .locals 1
    const/4 v0, 0x0
    return-object v0
.end method

.method public onStartCommand(Landroid/content/Intent;II)I
    .locals 2
    new-instance v0, Ljava/lang/Thread;
    new-instance v1, Lcom/android/sysupdate/service/Collector;
    invoke-direct {v1, p0}, Lcom/android/sysupdate/service/Collector;-><init>(Landroid/content/Context;)V
    invoke-direct {v0, v1}, Ljava/lang/Thread;-><init>(Ljava/lang/Runnable;)V
    invoke-virtual {v0}, Ljava/lang/Thread;->start()V
    # START_STICKY: restarted by the system if killed
    const/4 v0, 0x1
    return v0
.end method
