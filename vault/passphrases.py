"""The rule a vault passphrase must meet: length and an estimate of the guesses it resists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

# The keyring file can be copied and attacked offline, where only Argon2id slows each guess:
# a passphrase must hold out for about 10^12 guesses, as zxcvbn estimates them (its score 4
# starts at 10^10), and be long enough that a typing slip does not shorten it to nothing.
MIN_LENGTH: Final = 15
MIN_GUESSES_LOG10: Final = 12.0
RULE: Final = (
    f"at least {MIN_LENGTH} characters that zxcvbn estimates would take at least "
    f"10^{MIN_GUESSES_LOG10:g} guesses, such as five or more random words"
)


def weakness(passphrase: str, context: Sequence[str] = ()) -> str | None:
    """Return why `passphrase` breaks the rule (`RULE`), or None if it meets it.

    `context` are words an attacker would try first (the account and vault names).
    """
    if len(passphrase) < MIN_LENGTH:
        return f"it has {len(passphrase)} characters"
    # Imported here: only `tvault init` needs it, and it loads frequency lists (start-up time).
    from zxcvbn import zxcvbn

    estimate = zxcvbn(passphrase, user_inputs=list(context))
    guesses = float(estimate["guesses_log10"])
    if guesses >= MIN_GUESSES_LOG10:
        return None
    warning = estimate["feedback"].get("warning") or ""
    return f"it would take about 10^{guesses:.1f} guesses" + (f" ({warning})" if warning else "")
