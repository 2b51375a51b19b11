"""Reviewing in the browser: passwords and sessions of users, and where each submission stands with reviewers.

Existing submissions start unreviewed; existing users keep no password (they use API tokens until an admin sets
one).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REVIEW_STATUSES = ("unreviewed", "in_review", "awaiting_second", "signed_off")


def upgrade() -> None:
    op.create_table('web_session',
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_web_session_user_id_user_account')),
    sa.PrimaryKeyConstraint('secret_hash', name=op.f('pk_web_session'))
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_session_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.Text(), nullable=True))

    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_status', sa.Enum(*REVIEW_STATUSES, name='review_status',
                                                               native_enum=False, create_constraint=True,
                                                               length=16),
                                      nullable=False, server_default='unreviewed'))
        batch_op.add_column(sa.Column('human_verdict', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('signed_off_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_submission_review_status'), ['review_status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_review_status'))
        batch_op.drop_constraint(batch_op.f('ck_submission_review_status'), type_='check')
        batch_op.drop_column('signed_off_at')
        batch_op.drop_column('human_verdict')
        batch_op.drop_column('review_status')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('password_hash')

    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_session_user_id'))

    op.drop_table('web_session')
