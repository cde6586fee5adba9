"""model performance per window: estimated without labels, realized when labels arrive; events name the alerts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008'
down_revision: Union[str, None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('window_performance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('estimated', sa.Float(), nullable=True),
    sa.Column('lower', sa.Float(), nullable=True),
    sa.Column('upper', sa.Float(), nullable=True),
    sa.Column('reference_value', sa.Float(), nullable=True),
    sa.Column('reference_lower', sa.Float(), nullable=True),
    sa.Column('reference_upper', sa.Float(), nullable=True),
    sa.Column('reliable', sa.Boolean(), nullable=False),
    sa.Column('outside_share', sa.Float(), nullable=True),
    sa.Column('alert', sa.Boolean(), nullable=False),
    sa.Column('realized', sa.Float(), nullable=True),
    sa.Column('labelled_rows', sa.Integer(), nullable=True),
    sa.Column('realized_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['window_id'], ['windows.id'], name=op.f('fk_window_performance_window_id_windows'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_window_performance')),
    sa.UniqueConstraint('window_id', 'metric', name=op.f('uq_window_performance_window_id_metric'))
    )
    with op.batch_alter_table('window_performance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_window_performance_window_id'), ['window_id'], unique=False)
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('performance_alerts', sa.JSON(), nullable=True))
    op.create_table('window_outputs',
    sa.Column('window_id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('outputs', sa.LargeBinary(), nullable=False),
    sa.Column('labels', sa.LargeBinary(), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('labelled_rows', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_window_outputs_monitor_id_monitors'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['window_id'], ['windows.id'], name=op.f('fk_window_outputs_window_id_windows'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('window_id', name=op.f('pk_window_outputs'))
    )
    with op.batch_alter_table('window_outputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_window_outputs_monitor_id'), ['monitor_id'], unique=False)
    op.create_table('label_cursors',
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.JSON(), nullable=True),
    sa.Column('pending', sa.LargeBinary(), nullable=True),
    sa.Column('pending_rows', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_label_cursors_monitor_id_monitors'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_label_cursors'))
    )


def downgrade() -> None:
    op.drop_table('label_cursors')
    with op.batch_alter_table('window_outputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_window_outputs_monitor_id'))
    op.drop_table('window_outputs')
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_column('performance_alerts')
    with op.batch_alter_table('window_performance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_window_performance_window_id'))
    op.drop_table('window_performance')
