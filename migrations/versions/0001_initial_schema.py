"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0001'
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('monitors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitors')),
    sa.UniqueConstraint('name', name=op.f('uq_monitors_name'))
    )
    op.create_table('cursors',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.JSON(), nullable=True),
    sa.Column('pending', sa.LargeBinary(), nullable=True),
    sa.Column('pending_rows', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_cursors_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_cursors'))
    )
    op.create_table('leases',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_leases_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_leases'))
    )
    op.create_table('reference_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('origin', sa.String(length=500), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('summary', sa.LargeBinary(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_reference_versions_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reference_versions')),
    sa.UniqueConstraint('monitor_id', 'version', name=op.f('uq_reference_versions_monitor_id_version'))
    )
    with op.batch_alter_table('reference_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reference_versions_monitor_id'), ['monitor_id'], unique=False)

    op.create_table('windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('reference_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('drift_share', sa.Float(), nullable=False),
    sa.Column('drifted_features', sa.JSON(), nullable=False),
    sa.Column('missing_features', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_windows_monitor_id_monitors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reference_id'], ['reference_versions.id'], name=op.f('fk_windows_reference_id_reference_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_windows')),
    sa.UniqueConstraint('monitor_id', 'seq', name=op.f('uq_windows_monitor_id_seq'))
    )
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_windows_evaluated_at'), ['evaluated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_windows_monitor_id'), ['monitor_id'], unique=False)

    op.create_table('drift_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('drift_share', sa.Float(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_drift_events_monitor_id_monitors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['window_id'], ['windows.id'], name=op.f('fk_drift_events_window_id_windows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_events'))
    )
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_events_monitor_id'), ['monitor_id'], unique=False)

    op.create_table('results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('feature', sa.String(length=200), nullable=False),
    sa.Column('measure', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=True),
    sa.Column('p_value_adjusted', sa.Float(), nullable=True),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('drifted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['window_id'], ['windows.id'], name=op.f('fk_results_window_id_windows'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_results'))
    )
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_results_window_id'), ['window_id'], unique=False)

    op.create_table('adaptations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('adapter', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('artifact', sa.String(length=1000), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['drift_events.id'], name=op.f('fk_adaptations_event_id_drift_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adaptations'))
    )
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_adaptations_event_id'), ['event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adaptations_event_id'))

    op.drop_table('adaptations')
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_results_window_id'))

    op.drop_table('results')
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drift_events_monitor_id'))

    op.drop_table('drift_events')
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_windows_monitor_id'))
        batch_op.drop_index(batch_op.f('ix_windows_evaluated_at'))

    op.drop_table('windows')
    with op.batch_alter_table('reference_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reference_versions_monitor_id'))

    op.drop_table('reference_versions')
    op.drop_table('leases')
    op.drop_table('cursors')
    op.drop_table('monitors')
