"""windows keep their shift diagnoses (what kind of change each feature shows) and their segments

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('diagnoses', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('segments', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('windows', schema=None) as batch_op:
        batch_op.drop_column('segments')
        batch_op.drop_column('diagnoses')
