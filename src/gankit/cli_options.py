"""What the commands of :mod:`gankit.cli` share: an option or argument declared in one
line, the options several commands take, the user's ``--import`` modules, and how a
library error becomes one line on stderr and an exit code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 1


def opt(default: Any, help_text: str, *names: str) -> Any:
    """One Typer option in one line: ``n: int = opt(64, "How many.", "--n")``, so that a
    command's options read as a list (Typer's default-value form of an option)."""
    return typer.Option(default, *names, help=help_text)


def arg(default: Any, help_text: str) -> Any:
    """One Typer argument in one line (``...``: required), as :func:`opt`."""
    return typer.Argument(default, help=help_text)


class Opt:
    """``Opt[type, help, *names]``: an option shared by several commands, as
    ``Annotated[type, typer.Option(*names, help=help)]``; each command gives its default."""

    def __class_getitem__(cls, params: tuple) -> Any:
        kind, help_text, *names = params
        return Annotated[kind, typer.Option(*names, help=help_text)]


# Options that several commands share, declared once.
RunsDir = Opt[Path, "Where run directories live.", "--runs-dir"]
Run = Annotated[str, typer.Argument(help="A run directory, or a run name under --runs-dir.")]
IMPORT_HELP = "Import this module first: your own model families (repeatable; docs/byo.md)."


def _import_now(modules: list[str] | None) -> list[str] | None:
    """``--import``: the user's modules are imported as the option is read, before the
    command runs (its registry then knows their families)."""
    handle_errors(use_imports)(modules)
    return modules


Imports = Annotated[
    list[str] | None, typer.Option("--import", help=IMPORT_HELP, callback=_import_now)
]
Step = Opt[int | None, "Use the kept checkpoint of this step [default: the newest].", "--step"]
ShowProgress = Opt[bool, "Say on stderr what is being done, with progress bars."]
Overwrite = Opt[bool, "Replace existing outputs."]
DataDir = Opt[str | None, "Where to look for the data."]
Seed = Opt[int, "Seed of the noise, in [0, 2**32 - 1]."]
Settings = Opt[list[str] | None, "Override a setting for every run.", "--set"]
InceptionWeights = Opt[str | None, "A copy of the FID InceptionV3 file (default_1.pt)."]


def _fail(message: str, code: int) -> None:
    from gankit.errors import error_line

    line = error_line(message, code)  # rank-aware under torchrun
    if line is not None:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one line on stderr and an exit code, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import errno

        from gankit.errors import DivergenceError, GankitError

        try:
            return fn(*args, **kwargs)
        except GankitError as err:
            _fail(str(err), EXIT_USER_ERROR)
        except DivergenceError as err:
            _fail(str(err), EXIT_DIVERGED)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing '{err.filename}'" if err.filename else ""
            _fail(f"no space left on the device{where}; free some space and retry", 2)

    return wrapper


#: ``gankit --import MODULE COMMAND``: modules every command imports first.
GLOBAL_IMPORTS: list[str] = []


def use_imports(modules: list[str] | None) -> None:
    """Import the user's modules (``--import``) before the registry is used."""
    from gankit.registry import import_modules

    import_modules([*GLOBAL_IMPORTS, *(modules or [])])
