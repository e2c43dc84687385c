"""The command-line shell every script in spark_jobs/ shares.

A job script declares its own arguments and one function; this module adds the common ones,
times the work, writes the result file of the XCom contract, and turns a PipelineError into a
one-paragraph message and exit code 2 instead of a stack trace.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from musicrec import spark_config
from musicrec.errors import PipelineError, TransientError
from musicrec.result import write_error, write_result

EXIT_BAD_INPUT = 2

log = logging.getLogger("musicrec")


class JobArgumentParser(argparse.ArgumentParser):
    """argparse, plus: a bad argument is recorded in the result file (when the command line names
    one) as bad input, so that the operator fails the task at once instead of retrying a command
    line that cannot change."""

    def error(self, message: str):
        result_file = _result_file_in(sys.argv[1:])
        if result_file:
            try:
                write_error(result_file, self.prog.removesuffix(".py"), f"bad argument: {message}", retryable=False)
            except OSError as error:  # argparse's own message below still says what is wrong
                print(f"could not record the bad argument in {result_file}: {error}", file=sys.stderr)
        super().error(message)  # usage and message on stderr, exit code 2 (EXIT_BAD_INPUT)


def _result_file_in(argv: list[str]) -> str | None:
    """The --result-file the job's parser would take (the last one given; an option's name is no
    value), found by argparse itself with that one option, which cannot fail on the others."""
    finder = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    finder.add_argument("--result-file")
    try:
        known, _ = finder.parse_known_args(argv)
    except argparse.ArgumentError:  # --result-file without its value
        return None
    return known.result_file or None


def parser_for(step: str, description: str) -> argparse.ArgumentParser:
    parser = JobArgumentParser(prog=f"{step}.py", description=description)
    parser.add_argument("--run-dir", required=True, help="this run's folder; outputs go below it")
    parser.add_argument("--result-file", required=True, help="where to write the step's result JSON")
    parser.add_argument("--run-id", default="", help="the Airflow run ID (default: the run folder's name)")
    parser.add_argument(
        "--logical-date", type=_aware_date, default=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        help="the run's logical date, ISO 8601 with a zone (default: now); dates snapshots and publications",
    )
    return parser


def _aware_date(text: str) -> str:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add +00:00)")
    return when.isoformat()


def flag(text: str) -> bool:
    """A boolean argument; Airflow renders a boolean param as "True" or "False"."""
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")
    return value in ("true", "1", "yes")


def json_object(text: str) -> dict:
    """A JSON object argument (an upstream task's whole result, rendered with `tojson`)."""
    import json

    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text[:80]!r}")
    return value


def run(step: str, parser: argparse.ArgumentParser, work: Callable[[argparse.Namespace], dict[str, Any]]) -> None:
    """Parse the command line, run `work`, write its result, exit with a meaningful code."""
    started = time.perf_counter()
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [{step}] %(levelname)s %(message)s")
    spark_config.progress_step = step
    try:
        facts = work(args)
    except PipelineError as error:
        write_error(args.result_file, step, str(error), retryable=isinstance(error, TransientError))
        print(f"ERROR in step '{step}': {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as error:  # an unexpected failure: keep the trace for the developer
        traceback.print_exc()
        message = f"unexpected {type(error).__name__} in step '{step}': {error}"
        write_error(args.result_file, step, message, retryable=True)
        sys.exit(1)
    facts["job_seconds"] = round(time.perf_counter() - started, 3)
    facts["session_seconds"] = round(spark_config.startup_seconds, 3)
    write_result(args.result_file, step, facts)
    log.info("result: %s", facts)
