"""The submission table: one received image, its case metadata, its state and its outcome.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("queued", "unpacking", "analyzing", "reporting", "done", "failed")


def upgrade() -> None:
    op.create_table(
        "submission",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.Text(), nullable=True),
        sa.Column("exhibit", sa.Text(), nullable=True),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column("examiner", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Enum(*STATES, name="state", native_enum=False, create_constraint=True, length=16),
                  nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("report_digest", sa.String(length=64), nullable=True),
        sa.Column("report_dir", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
    )
    with op.batch_alter_table("submission") as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_submission_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_sha256"))
        batch_op.drop_index(batch_op.f("ix_submission_received_at"))
    op.drop_table("submission")
