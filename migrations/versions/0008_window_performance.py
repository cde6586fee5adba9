"""model performance per window: estimated without labels, realized when labels arrive; events name the alerts

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0008'
down_revision: Union[str, None] = '0006'
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


def downgrade() -> None:
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_column('performance_alerts')
    with op.batch_alter_table('window_performance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_window_performance_window_id'))
    op.drop_table('window_performance')
