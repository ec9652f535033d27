"""The `shipml` command. Importing this package loads Typer and rich only: each command imports
what it needs (pandas, LightGBM, scikit-learn, matplotlib) when it runs."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one red line and exit code 2 (traceback with --debug)."""
    from shipml.cli.app import app
    from shipml.cli.render import err_console, fail
    from shipml.errors import ShipmlError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # accepted anywhere on the line, not only before the command
        args = ["--debug", *[a for a in args if a != "--debug"]]
    try:
        # Typer handles usage errors itself (message + exit 2); ours propagate to here.
        app(args=args, prog_name="shipml")
    except ShipmlError as exc:
        where = getattr(exc, "path", None)  # e.g. an artifact's file: shown with --debug only
        fail(f"{exc} (file: {where})" if debug and where else str(exc), debug=debug)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except (OSError, MemoryError) as exc:
        fail(f"{type(exc).__name__}: {exc}", debug=debug)
    except Exception as exc:  # a bug: say so, briefly
        fail(
            f"internal error ({type(exc).__name__}: {exc}). This is a bug in shipml; rerun with "
            "--debug for the traceback and report it",
            debug=debug,
            code=1,
        )
