"""adaptation runs keep their story; model versions; drift events keep their target rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adapter_type', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('replica', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('model_version', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_adaptations_state'), ['state'], unique=False)
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_sample', sa.LargeBinary(), nullable=True))
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('adaptation_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['adaptation_id'], ['adaptations.id'], name=op.f('fk_model_versions_adaptation_id_adaptations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_model_versions_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('monitor_id', 'version', name=op.f('uq_model_versions_monitor_id_version'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_monitor_id'), ['monitor_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_monitor_id'))
    op.drop_table('model_versions')
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_column('target_sample')
    with op.batch_alter_table('adaptations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adaptations_state'))
        batch_op.drop_column('model_version')
        batch_op.drop_column('reason')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('replica')
        batch_op.drop_column('adapter_type')
