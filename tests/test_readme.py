"""The README's commands are the ones CI runs.

Its Python example runs with the site's examples in tests/test_docs_examples.py.
"""

from .docs_runner import ROOT, blocks


def test_ci_runs_exactly_the_readme_commands():
    commands = [block.source.strip() for block in blocks(ROOT / "README.md") if block.language == "bash"]
    assert len(commands) == 2
    script = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in script, command


def test_the_test_command_installs_the_docs_extra():
    test_command = [block.source.strip() for block in blocks(ROOT / "README.md") if block.language == "bash"][1]
    assert '".[test,docs]"' in test_command and "pytest" in test_command
