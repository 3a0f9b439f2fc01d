"""The global options, accepted before or after the command name.

``strongroom --repo R backup SRC`` and ``strongroom backup --repo R SRC`` mean
the same: the group reads the options (and their environment variables) first,
and a value given after the command name overrides it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .context import ENV_KEY_FILE, ENV_REPO, AppContext

F = TypeVar("F", bound=Callable[..., Any])

pass_app = click.make_pass_decorator(AppContext, ensure=True)


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, False):
            setattr(ctx.ensure_object(AppContext), name, value)
        return value

    return callback


def _option_specs(with_env: bool) -> list[Callable[[F], F]]:
    def env(name: str) -> str | None:
        return name if with_env else None

    return [
        click.option("--repo", "-r", metavar="PATH|URL", envvar=env(ENV_REPO),
                     expose_value=False, callback=_store("repo"),
                     help=f"Repository location: a folder, local:PATH, s3:URL, rclone:REMOTE:PATH "
                          f"[env {ENV_REPO}]."),
        click.option("--key-file", metavar="PATH", envvar=env(ENV_KEY_FILE),
                     expose_value=False, callback=_store("key_file"),
                     help=f"File holding the 64-digit key (init writes it there) "
                          f"[env {ENV_KEY_FILE}]."),
        click.option("--json", "json_output", is_flag=True, expose_value=False,
                     callback=_store("json"),
                     help="Machine-readable output: one JSON document on stdout."),
        click.option("--quiet", "-q", is_flag=True, expose_value=False,
                     callback=_store("quiet"),
                     help="Print only errors, warnings and what must be seen (a new key)."),
        click.option("--no-progress", is_flag=True, expose_value=False,
                     callback=_store("no_progress"), help="Never draw progress bars."),
    ]


def global_options(f: F) -> F:
    """Add the global options to a command (after its name; no env lookup there)."""
    for option in reversed(_option_specs(with_env=False)):
        f = option(f)
    return f


def group_options(f: F) -> F:
    """Add the global options to the top-level group (with their env variables)."""
    for option in reversed(_option_specs(with_env=True)):
        f = option(f)
    return f


__all__ = ["global_options", "group_options", "pass_app"]
