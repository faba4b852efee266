"""The Grafana admin password: never a default, strong when generated, stable across runs."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from meshwatch.generated import write_tree
from meshwatch.settings import Settings, settings_from_mapping
from meshwatch.stack import render
from meshwatch.stack.secrets import PASSWORD_VAR, generate_password, read_env_file


def _env(settings: Settings, previous: Path | None = None) -> dict[str, str]:
    env_file = next(f for f in render(settings, previous) if f.path == ".env")
    assert env_file.mode == 0o600
    values = {}
    for line in env_file.content.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    return values


def test_env_disables_anonymous_access_and_sign_up() -> None:
    env = _env(Settings())
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_USER"] == "admin"


def test_generated_passwords_are_long_random_and_distinct() -> None:
    passwords = [generate_password() for _ in range(50)]
    assert len(set(passwords)) == 50
    for password in passwords:
        assert len(password) >= 24
        counts = Counter(password)
        entropy = -sum(c / len(password) * math.log2(c / len(password)) for c in counts.values())
        # 32 characters from a 64-symbol alphabet: a few bits per character, never a pattern.
        assert entropy > 3.5, password
        assert password.lower() not in ("admin", "password")


def test_a_fresh_render_generates_a_password() -> None:
    password = _env(Settings())[PASSWORD_VAR]
    assert len(password) >= 24


def test_the_previous_password_is_reused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(render(Settings()), out)
    first = read_env_file(out / ".env")[PASSWORD_VAR]
    write_tree(render(Settings(), out), out)
    assert read_env_file(out / ".env")[PASSWORD_VAR] == first
    assert render(Settings(), out) == render(Settings(), out), "deterministic given the previous"


def test_a_password_in_settings_wins_and_is_quoted_when_needed(tmp_path: Path) -> None:
    write_tree(render(Settings()), tmp_path / "out")
    settings = settings_from_mapping({"stack": {"grafana_admin_password": "my $ecret pass#1"}})
    env_file = next(f for f in render(settings, tmp_path / "out") if f.path == ".env")
    assert f"{PASSWORD_VAR}='my $ecret pass#1'" in env_file.content.splitlines()
    (tmp_path / "out" / ".env").write_text(env_file.content)
    assert read_env_file(tmp_path / "out" / ".env")[PASSWORD_VAR] == "my $ecret pass#1"


@pytest.mark.parametrize(
    "previous_line",
    [f"{PASSWORD_VAR}=admin", f"{PASSWORD_VAR}=short", "", "# nothing here"],
    ids=["default", "too-short", "empty", "comment-only"],
)
def test_an_unusable_previous_password_is_replaced(tmp_path: Path, previous_line: str) -> None:
    (tmp_path / ".env").write_text(previous_line + "\n")
    password = _env(Settings(), tmp_path)[PASSWORD_VAR]
    assert len(password) >= 24 and password != "admin"
