"""The docker-compose file's init scripts are valid shell (`sh -n`, a process of its own); the
file's other checks are tests/unit/vault/test_compose_file.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.unit.vault.compose_support import compose

__all__ = ["compose"]


def test_init_scripts_are_valid_shell(compose: dict[str, Any], tmp_path: Path) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    scripts = {
        name: service["command"][0]
        for name, service in compose["services"].items()
        if service.get("entrypoint") == ["/bin/sh", "-c"]
    }
    assert set(scripts) == {"vault-init", "minio-init", "elasticsearch-init"}
    for name, script in scripts.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(script.replace("$$", "$"))  # what the container's shell receives
        result = subprocess.run([sh, "-n", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (name, result.stderr)
