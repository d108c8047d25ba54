"""The search vocabulary every process shares (`vault.db.search_tables`, docs/search.md).

Vaults made before it kept the vocabulary in a sealed file under the index directory; the
first open of the index after this revision moves that file into the table and deletes it
(`vault.vocabulary.import_file`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_vocabulary"
down_revision = "0012_web_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_vocabulary",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("snapshot", sa.Boolean(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_search_vocabulary")),
    )
    head = op.create_table(
        "search_vocabulary_head",
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_search_vocabulary_head")),
    )
    op.bulk_insert(head, [{"name": "head", "position": 0}])


def downgrade() -> None:
    # The words go with the tables: `tvault reindex` after a downgrade writes the file again.
    op.drop_table("search_vocabulary_head")
    op.drop_table("search_vocabulary")
