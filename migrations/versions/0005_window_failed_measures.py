"""windows keep the measures that failed on them, and why

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_measures', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.drop_column('failed_measures')
