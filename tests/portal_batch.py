"""`portal` commands several at a time in one Python process (tests/conftest.py's
portal_batch): a test's data made without a Python start-up (about a second) per command.
Run as a script by the Python whose `portal` is meant (an earlier release's venv too).
Reads JSON `[[arguments, standard input or null], ...]`; writes JSON `[[exit code, output],
...]`. Each command runs through the console script's own command group (`portal_group`,
in every release), as `portal` runs it."""

import json
import sys

from click.testing import CliRunner

from portal.cli import portal_group


def main() -> None:
    commands = json.load(sys.stdin)
    try:
        runner = CliRunner(mix_stderr=False)  # click before 8.2 (earlier releases' venvs)
    except TypeError:
        runner = CliRunner()
    results = []
    for arguments, given in commands:
        result = runner.invoke(portal_group, arguments, input=given, prog_name="portal")
        output = result.stdout
        if result.exit_code != 0:
            output += result.stderr + (repr(result.exception) if result.exception else "")
        results.append([result.exit_code, output])
        if result.exit_code != 0:
            break  # later commands may rely on this one
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
