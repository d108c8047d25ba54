"""Tables of credentials (revision `0007_credentials`): issued tokens, token-signing keys and the
OpenID Connect principals seen.

DESIGN.md promise 9: every credential is accountable and can be cut off. A vault token is valid
only while its row here exists, names the account's immutable id and current generation, and is
not revoked: a token the vault never registered (a forgery with a stolen signing key, say) or one
of a deleted and re-created account is refused, whatever its signature.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.db.base import Base
from vault.db.types import UtcDateTime


class AccessToken(Base):
    """One token the vault issued: whom for (account id and generation), how, until when."""

    __tablename__ = "access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key: the register outlives the account (a ledger reader may still ask about it).
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    kid: Mapped[str] = mapped_column(String(32))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    issued_by: Mapped[str] = mapped_column(String(128))
    via: Mapped[str] = mapped_column(String(16))  # "offline" (the passphrase) or "api"
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class TokenKey(Base):
    """A token-signing key's public half. The private half stays in the keyring.

    The current key has no `retired_at`; a rotated one is still published and accepted until
    `drops_at`, the latest expiry a token it signed can have.
    """

    __tablename__ = "token_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    drops_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class OidcPrincipal(Base):
    """An OpenID Connect principal's first use: which issuer vouched for which account."""

    __tablename__ = "oidc_principals"

    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_used_at: Mapped[datetime] = mapped_column(UtcDateTime())
