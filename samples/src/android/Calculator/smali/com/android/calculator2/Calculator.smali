.class public Lcom/android/calculator2/Calculator;
.super Landroid/app/Activity;
.source "Calculator.java"


.method public constructor <init>()V
    .locals 0
    invoke-direct {p0}, Landroid/app/Activity;-><init>()V
    return-void
.end method

.method protected onCreate(Landroid/os/Bundle;)V
    .locals 6
    invoke-super {p0, p1}, Landroid/app/Activity;->onCreate(Landroid/os/Bundle;)V
    new-instance v0, Landroid/widget/TextView;
    invoke-direct {v0, p0}, Landroid/widget/TextView;-><init>(Landroid/content/Context;)V
    const/16 v1, 0x2b
    const-wide/high16 v2, 0x4000000000000000L    # 2.0
    const-wide/high16 v4, 0x4008000000000000L    # 3.0
    invoke-static/range {v1 .. v5}, Lcom/android/calculator2/Evaluator;->apply(CDD)D
    move-result-wide v1
    invoke-static {v1, v2}, Ljava/lang/String;->valueOf(D)Ljava/lang/String;
    move-result-object v1
    invoke-virtual {v0, v1}, Landroid/widget/TextView;->setText(Ljava/lang/CharSequence;)V
    invoke-virtual {p0, v0}, Lcom/android/calculator2/Calculator;->setContentView(Landroid/view/View;)V
    return-void
.end method
