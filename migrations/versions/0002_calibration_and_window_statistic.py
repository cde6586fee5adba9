"""reference calibration report; the statistic a window fed the sequential detector

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('reference_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calibration', sa.JSON(), nullable=True))
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statistic', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.drop_column('statistic')
    with op.batch_alter_table('reference_versions', schema=None) as batch_op:
        batch_op.drop_column('calibration')
