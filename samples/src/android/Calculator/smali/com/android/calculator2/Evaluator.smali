.class public final Lcom/android/calculator2/Evaluator;
.super Ljava/lang/Object;
.source "Evaluator.java"


.method private constructor <init>()V
    .locals 0
    invoke-direct {p0}, Ljava/lang/Object;-><init>()V
    return-void
.end method

.method public static apply(CDD)D
    .locals 2
    sparse-switch p0, :operators
    new-instance v0, Ljava/lang/IllegalArgumentException;
    const-string v1, "unknown operator"
    invoke-direct {v0, v1}, Ljava/lang/IllegalArgumentException;-><init>(Ljava/lang/String;)V
    throw v0
    :add
    add-double v0, p1, p3
    return-wide v0
    :subtract
    sub-double v0, p1, p3
    return-wide v0
    :multiply
    mul-double v0, p1, p3
    return-wide v0
    :divide
    div-double v0, p1, p3
    return-wide v0
    :operators
    .sparse-switch
        0x2a -> :multiply
        0x2b -> :add
        0x2d -> :subtract
        0x2f -> :divide
    .end sparse-switch
.end method
