"""The runner the CLI scenarios use (imported by the tests as ``cli_harness``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner, Result

from strongroom.cli.context import AppContext
from strongroom.cli.main import cli


@dataclass
class Run:
    """The outcome of one CLI invocation."""

    result: Result

    @property
    def code(self) -> int:
        """The exit code."""
        return self.result.exit_code

    @property
    def out(self) -> str:
        """Everything on stdout."""
        return self.result.stdout

    @property
    def err(self) -> str:
        """Everything on stderr."""
        return self.result.stderr

    def json(self) -> Any:
        """stdout parsed as one JSON document."""
        return json.loads(self.result.stdout)


Invoke = Callable[..., Run]


def make_invoke() -> Invoke:
    """A function running ``strongroom ARGS`` in-process; ``tty=True`` lets it prompt."""

    def run(*args: Any, input: str | None = None, env: Mapping[str, str] | None = None,
            tty: bool = False) -> Run:
        app = AppContext(stdin_is_tty=lambda: tty)
        result = CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env,
                                    obj=app, catch_exceptions=False)
        return Run(result)

    return run
