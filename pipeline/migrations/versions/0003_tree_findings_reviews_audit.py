"""What the distributed pipeline and the reviewers need: cases, the extraction tree (artifacts and their edges),
analysis failures and counted batches, findings, behaviours, reports, reviews, the hash-chained audit log and
analysis counters.

Existing submissions keep their rows: their case references become case rows before the foreign key is added,
and their analysis counters start at zero.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _submission_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['submission_id'], ['submission.id'], ondelete='CASCADE',
                                   name=op.f(f'fk_{table}_submission_id_submission'))


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('submission_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_event_hash'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_submission_id'), ['submission_id'], unique=False)

    op.create_table('case',
    sa.Column('ref', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ref', name=op.f('pk_case'))
    )
    op.create_table('analysis_issue',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('analyzer', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    _submission_fk('analysis_issue'),
    sa.PrimaryKeyConstraint('submission_id', 'sha256', 'analyzer', name=op.f('pk_analysis_issue'))
    )
    op.create_table('analysis_batch',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('batch', sa.String(length=64), nullable=False),
    _submission_fk('analysis_batch'),
    sa.PrimaryKeyConstraint('submission_id', 'batch', name=op.f('pk_analysis_batch'))
    )
    op.create_table('artifact',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('parent', sa.Integer(), nullable=True),
    sa.Column('lineage', sa.JSON(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('format', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=True),
    sa.Column('extractor', sa.Text(), nullable=True),
    sa.Column('link_target', sa.Text(), nullable=True),
    sa.Column('coverage', sa.JSON(), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['submission_id', 'parent'], ['artifact.submission_id', 'artifact.id'],
                            name='fk_artifact_parent', ondelete='CASCADE'),
    _submission_fk('artifact'),
    sa.PrimaryKeyConstraint('submission_id', 'id', name=op.f('pk_artifact'))
    )
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_artifact_sha256'), ['sha256'], unique=False)

    op.create_table('behaviour',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('confidence', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('endpoints', sa.JSON(), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    _submission_fk('behaviour'),
    sa.PrimaryKeyConstraint('submission_id', 'id', name=op.f('pk_behaviour'))
    )
    with op.batch_alter_table('behaviour', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_behaviour_rule'), ['rule'], unique=False)

    op.create_table('extraction',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=False),
    sa.Column('unpack_config', sa.String(length=64), nullable=False),
    sa.Column('reusable', sa.Boolean(), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('coverage', sa.JSON(), nullable=False),
    sa.Column('platform', sa.JSON(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _submission_fk('extraction'),
    sa.PrimaryKeyConstraint('submission_id', name=op.f('pk_extraction'))
    )
    with op.batch_alter_table('extraction', schema=None) as batch_op:
        batch_op.create_index('ix_extraction_reuse', ['image_sha256', 'unpack_config'], unique=False)

    op.create_table('finding',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('analyzer', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=True),
    sa.Column('body', sa.JSON(), nullable=False),
    _submission_fk('finding'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding'))
    )
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_endpoint'), ['endpoint'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_rule'), ['rule'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_finding_submission_id'), ['submission_id'], unique=False)

    op.create_table('report',
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('report_digest', sa.String(length=64), nullable=False),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _submission_fk('report'),
    sa.PrimaryKeyConstraint('submission_id', name=op.f('pk_report'))
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_report_digest'), ['report_digest'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('submission_id', sa.String(length=64), nullable=False),
    sa.Column('reviewer', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('decision', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _submission_fk('review'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_submission_id'), ['submission_id'], unique=False)

    op.execute("INSERT INTO \"case\" (ref, created_at) SELECT case_ref, MIN(received_at) FROM submission "
               "WHERE case_ref IS NOT NULL GROUP BY case_ref")
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('analyzer_calls', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('cache_hits', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_submission_case_ref'), ['case_ref'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_submission_case_ref_case'), 'case', ['case_ref'], ['ref'])



def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_submission_case_ref_case'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_submission_case_ref'))
        batch_op.drop_column('cache_hits')
        batch_op.drop_column('analyzer_calls')

    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_submission_id'))

    op.drop_table('review')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_report_digest'))

    op.drop_table('report')
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_submission_id'))
        batch_op.drop_index(batch_op.f('ix_finding_sha256'))
        batch_op.drop_index(batch_op.f('ix_finding_rule'))
        batch_op.drop_index(batch_op.f('ix_finding_endpoint'))

    op.drop_table('finding')
    with op.batch_alter_table('extraction', schema=None) as batch_op:
        batch_op.drop_index('ix_extraction_reuse')

    op.drop_table('extraction')
    with op.batch_alter_table('behaviour', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_behaviour_rule'))

    op.drop_table('behaviour')
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_artifact_sha256'))

    op.drop_table('artifact')
    op.drop_table('analysis_issue')
    op.drop_table('analysis_batch')
    op.drop_table('case')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_submission_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
