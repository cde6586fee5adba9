"""alerts on realized performance: a window's metric flagged when its labels show the drop; events name them

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0009'
down_revision: Union[str, None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('window_performance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('realized_alert', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('realized_alerts', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('drift_events', schema=None) as batch_op:
        batch_op.drop_column('realized_alerts')
    with op.batch_alter_table('window_performance', schema=None) as batch_op:
        batch_op.drop_column('realized_alert')
