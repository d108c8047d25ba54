"""Names of ledger actions: PREMIS event types where one fits, our own names otherwise.

PREMIS 3 event types (https://id.loc.gov/vocabulary/preservation/eventType) are used verbatim,
so an archivist reading the ledger sees the words of their own standard. Which one to use:

| change | action | details (structural only) |
| --- | --- | --- |
| deposit committed | `INGESTION` | `sha256`, `size`, `kind`, `signed`, `duplicate_of`? |
| text extracted | `METADATA_EXTRACTION` | `language`, `chars`, `tool`, `source`, `ocr` |
| item put into the search index | `INDEXING` | `chars`, `engine` |
| object read or downloaded | `DECRYPTION` | `purpose` (`read`, `download`) |
| signature checked | `DIGITAL_SIGNATURE_VALIDATION` | `key_id`, `outcome`, `role`, `number` |
| `tvault verify` of an item | `FIXITY_CHECK` | `sha256`, `outcome` |
| item key shredded | `DELETION` | `reason` |
| keyring master key rotated | `KEY_ROTATION` | `version`, `previous`, `rewrapped` |
| old master key versions retired (approved) | `KEY_RETIREMENT` | `retired`, `approval` |
| depositor key registered | `KEY_REGISTRATION` | `key_id`, `account` |
| recipient key of a commission registered | `KEY_REGISTRATION` | `key_id`, `account`, `use` |
| commission recipient key removed | `KEY_REMOVAL` | `key_id`, `account`, `use` |
| export requested, built, downloaded, revoked, expired | `EXPORT` | `export`, `step`, counts |
| case grant given / revoked | `GRANT` / `REVOCATION` | `grantee`, `role` |
| consent changed | `CONSENT_CHANGE` | `version`, `scopes`, `granted`, `withdrawn`, `basis`... |
| legal hold set or lifted | `LEGAL_HOLD` | `held` (a reason, when given, sealed) |
| refused attempt, unknown item id | `ACCESS_DENIED` | `attempted` (an action), `reason` |
| deposit refused (causes: docs/ledger.md) | `DEPOSIT_REFUSED` | `attempted`, `cause` |
| other request on an item or case refused (4xx) | `REQUEST_REFUSED` | `attempted`, `cause` |
| approval asked for | `APPROVAL_REQUEST` | `approval`, `kind`, `subject`, `quorum`, payload |
| one approver says yes | `APPROVAL` | `approval`, `kind`, `approvals`, `quorum` |
| someone says no (it ends) | `APPROVAL_DENIAL` | `approval`, `kind` (reason sealed) |
| the approved action ran or failed | `APPROVAL_OUTCOME` | `approval`, `state`, result |
| account created | `ACCOUNT_CREATION` | account+, `role` |
| account's role changed | `ROLE_CHANGE` | account+, `role`, `previous` |
| account disabled or enabled | `ACCOUNT_STATE` | account+, `disabled` |
| vault token issued | `TOKEN_ISSUANCE` | account+, `token` (its `jti`), `kid`, `expires` |
| vault token revoked | `TOKEN_REVOCATION` | `account`, `account_id`, `token`, `expires`, `via` |
| an OIDC principal's first use | `OIDC_FIRST_USE` | `account`, `account_id`, `issuer`, `roles` |
| password set or changed | `PASSWORD_CHANGE` | account+, `link` (when set through a link) |
| TOTP second factor on or off | `SECOND_FACTOR_CHANGE` | account+, `enabled` |
| one-time set-password link issued | `PASSWORD_LINK_ISSUANCE` | account+, `link`, `expires` |
| web session opened (signed in) | `SIGN_IN` | account+, `session`, `second_factor` |
| web session closed | `SIGN_OUT` | `account`, `account_id`, `session`, `reason` |

`duplicate_of`?: a deposit stored knowingly as a second copy of that item of the case; a
deposit refused as a duplicate (`cause` `duplicate`) also names it and the `sha256`.
Idempotency refusals have `cause` `idempotency-in-flight` or `idempotency-key-reused`.

account+: `account` (name), `account_id` (immutable), `generation`, and `via`, which says how:
`offline` (with the passphrase; actor `keyholder (offline)`) or `api` (actor: the account whose
token made the request).

A consent change also names `form_sha256` when a form came with it (docs/access.md).

Search queries are never put in `details`: they repeat a survivor's words (DESIGN.md promise 1);
pass them sealed as `sealed_details`.
"""

from __future__ import annotations

from typing import Final

# PREMIS event types.
INGESTION: Final = "ingestion"
FIXITY_CHECK: Final = "fixity check"
MESSAGE_DIGEST_CALCULATION: Final = "message digest calculation"
ENCRYPTION: Final = "encryption"
DECRYPTION: Final = "decryption"
METADATA_EXTRACTION: Final = "metadata extraction"
REPLICATION: Final = "replication"
DELETION: Final = "deletion"
DIGITAL_SIGNATURE_VALIDATION: Final = "digital signature validation"

# Our own event types (no PREMIS term fits).
SEARCH: Final = "search"
INDEXING: Final = "indexing"
EXPORT: Final = "export"
GRANT: Final = "grant"
REVOCATION: Final = "revocation"
LEGAL_HOLD: Final = "legal hold"
CONSENT_CHANGE: Final = "consent change"
KEY_ROTATION: Final = "key rotation"
KEY_REGISTRATION: Final = "key registration"
KEY_RETIREMENT: Final = "key retirement"
KEY_REMOVAL: Final = "key removal"
ACCESS_DENIED: Final = "access denied"
DEPOSIT_REFUSED: Final = "deposit refused"
REQUEST_REFUSED: Final = "request refused"
ACCOUNT_CREATION: Final = "account creation"
ROLE_CHANGE: Final = "role change"
ACCOUNT_STATE: Final = "account state"
TOKEN_ISSUANCE: Final = "token issuance"  # noqa: S105 (an action's name)
TOKEN_REVOCATION: Final = "token revocation"  # noqa: S105 (an action's name)
OIDC_FIRST_USE: Final = "oidc first use"
PASSWORD_CHANGE: Final = "password change"  # noqa: S105 (an action's name)
SECOND_FACTOR_CHANGE: Final = "second factor change"
PASSWORD_LINK_ISSUANCE: Final = "password link issuance"  # noqa: S105 (an action's name)
SIGN_IN: Final = "sign in"
SIGN_OUT: Final = "sign out"
APPROVAL_REQUEST: Final = "approval request"
APPROVAL: Final = "approval"
APPROVAL_DENIAL: Final = "approval denial"
APPROVAL_OUTCOME: Final = "approval outcome"

PREMIS: Final = frozenset(
    {
        INGESTION,
        FIXITY_CHECK,
        MESSAGE_DIGEST_CALCULATION,
        ENCRYPTION,
        DECRYPTION,
        METADATA_EXTRACTION,
        REPLICATION,
        DELETION,
        DIGITAL_SIGNATURE_VALIDATION,
    }
)
OWN: Final = frozenset(
    {
        SEARCH,
        INDEXING,
        EXPORT,
        GRANT,
        REVOCATION,
        CONSENT_CHANGE,
        LEGAL_HOLD,
        KEY_ROTATION,
        KEY_REGISTRATION,
        KEY_RETIREMENT,
        KEY_REMOVAL,
        ACCESS_DENIED,
        DEPOSIT_REFUSED,
        REQUEST_REFUSED,
        ACCOUNT_CREATION,
        ROLE_CHANGE,
        ACCOUNT_STATE,
        TOKEN_ISSUANCE,
        TOKEN_REVOCATION,
        OIDC_FIRST_USE,
        APPROVAL_REQUEST,
        APPROVAL,
        APPROVAL_DENIAL,
        APPROVAL_OUTCOME,
        PASSWORD_CHANGE,
        SECOND_FACTOR_CHANGE,
        PASSWORD_LINK_ISSUANCE,
        SIGN_IN,
        SIGN_OUT,
    }
)
ALL: Final = PREMIS | OWN
