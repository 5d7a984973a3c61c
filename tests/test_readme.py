"""README's two-commands section documents the knobs the Makefile's demo really has."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_documents_the_demo_ports_the_makefile_reads():
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    two_commands = readme.split("## The two commands", 1)[1].split("\n## ", 1)[0]

    for variable in ("PORT", "EMULATOR_PORT", "HOST"):
        assert re.search(rf"^{variable} \?=", makefile, re.M), variable
        assert f"`{variable}`" in two_commands, variable
    assert "make demo PORT=8080 EMULATOR_PORT=8081" in two_commands
