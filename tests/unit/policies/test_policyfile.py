"""Policy files: the shipped one loads; every defect is refused at load time with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

import policies
from policies import PolicyFileError, Principal, Resource

GOOD_RULE = """\
[[rule]]
note = "lawyers read"
roles = ["lawyer"]
actions = ["item.read"]
case_grant = true
consent_any = ["legal"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> PolicyFileError:
    path = write(tmp_path, text)
    with pytest.raises(PolicyFileError) as caught:
        policies.load(path)
    error = caught.value
    assert error.path == str(path)
    assert str(error).startswith(f"{path}:")
    return error


def test_the_shipped_policy_loads_and_has_rules() -> None:
    engine = policies.default_engine()
    assert engine.rules
    assert all(rule.note for rule in engine.rules)  # every shipped rule says what it is for
    assert engine is policies.default_engine()  # loaded once


def test_a_replacement_file_is_used_instead_of_the_shipped_one(tmp_path: Path) -> None:
    engine = policies.load(write(tmp_path, "format = 1\n\n" + GOOD_RULE))
    lawyer = Principal("lena", frozenset({"lawyer"}), {"c": frozenset({"lawyer"})})
    item = Resource("item", "c", "i", consent=frozenset({"legal"}))
    assert engine.decide(lawyer, "item.read", item)
    assert not engine.decide(lawyer, "item.download", item)  # the shipped file would allow it
    assert policies.decide(lawyer, "item.download", item)
    assert engine.source == str(tmp_path / "policy.toml")


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'format = 1\n\n[[rule]]\nroles = ["lawyer"\nactions = []\n')
    assert error.line == 5
    assert "not valid TOML" in error.reason


@pytest.mark.parametrize(
    ("rule_text", "line", "words"),
    [
        # line numbers count from the top of the file: "format = 1", a blank, then the rule
        ('roles = ["lawyr"]\nactions = ["item.read"]\ncase_grant = true\n', 4, "unknown role"),
        (
            'roles = ["lawyer"]\nactions = [\n  "item.read",\n  "item.destroy",\n]\n'
            "case_grant = true\n",
            7,
            "unknown action 'item.destroy'",
        ),
        (
            'roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = true\n'
            'consent_any = ["legal", "press"]\n',
            7,
            "unknown consent scope 'press'",
        ),
        (
            'roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = true\n'
            'consent_anny = ["legal"]\n',
            7,
            "unknown rule key 'consent_anny'",
        ),
        (
            'roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = true\n'
            'obligations = ["blur_faces"]\n',
            7,
            "unknown obligation",
        ),
        (
            'roles = ["custodian"]\nactions = ["export.approve"]\ncase_grant = false\n'
            'distinct_from = ["approver"]\n',
            7,
            "unknown field 'approver'",
        ),
        ('roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = "yes"\n', 6, "true or false"),
        ('roles = ["lawyer"]\nactions = ["item.read"]\n', 3, "lacks 'case_grant'"),
        ('actions = ["item.read"]\ncase_grant = true\n', 3, "lacks 'roles'"),
        ('roles = []\nactions = ["item.read"]\ncase_grant = true\n', 4, "must not be empty"),
        ('roles = "lawyer"\nactions = ["item.read"]\ncase_grant = true\n', 4, "list of strings"),
        (
            'roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = false\ndepositor = "any"\n',
            7,
            "'depositor' may only be",
        ),
        ('roles = ["lawyer"]\nactions = ["item.read"]\ncase_grant = true\nnote = 3\n', 7, "note"),
    ],
)
def test_a_semantic_error_names_the_line_of_the_offending_key(
    tmp_path: Path, rule_text: str, line: int, words: str
) -> None:
    error = load_error(tmp_path, "format = 1\n\n[[rule]]\n" + rule_text)
    assert error.line == line, error
    assert words in error.reason


def test_an_error_in_a_later_rule_points_into_that_rule(tmp_path: Path) -> None:
    text = "format = 1\n\n" + GOOD_RULE + "\n" + GOOD_RULE.replace('["legal"]', '["legl"]')
    error = load_error(tmp_path, text)
    assert text.splitlines()[error.line - 1] == 'consent_any = ["legl"]'


def test_format_is_required(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD_RULE)
    assert "format = 1" in error.reason
    error = load_error(tmp_path, "# v2\nformat = 2\n\n" + GOOD_RULE)
    assert error.line == 2


def test_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'format = 1\ndefault = "allow"\n\n' + GOOD_RULE)
    assert error.line == 2
    assert "unknown key 'default'" in error.reason


def test_rule_must_be_tables(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'format = 1\nrule = ["allow everything"]\n')
    assert error.line == 2


def test_a_missing_file_is_a_policy_file_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError) as caught:
        policies.load(tmp_path / "absent.toml")
    assert "cannot read" in caught.value.reason


def test_a_file_that_is_not_utf8_is_a_policy_file_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"format = 1\n# \xe9\n")
    with pytest.raises(PolicyFileError):
        policies.load(path)


def test_the_example_in_the_documentation_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "policies.md"
    text = docs.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    engine = policies.load(write(tmp_path, example))
    assert len(engine.rules) == 1
    assert engine.rules[0].consent_any == {"legal"}
