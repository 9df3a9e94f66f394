"""What every script does around its body: options from flags, errors.

    def main(argv=None):
      return script_glue.run_script(infer, get_arguments(argv))

run_script turns the errors a user can fix into one `error: ...` line on
stderr and exit status 1, and Ctrl-C into exit status 130; any other
exception is a bug and keeps its traceback.
"""
import dataclasses
import sys

from utils import errors

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def run_script(body, *args, user_errors=()):
  """Returns body(*args), exiting cleanly on a user error or Ctrl-C.

  Args:
    body: the script's work, a function.
    *args: its arguments (usually the parsed flags).
    user_errors: exception types reported in one line besides
      errors.USER_ERRORS (e.g. (OSError, ValueError) for file tools).

  Returns:
    What body returned.

  Raises:
    SystemExit: EXIT_ERROR after writing `error: MESSAGE` (one line) to
      stderr; EXIT_INTERRUPTED on KeyboardInterrupt.
  """
  try:
    return body(*args)
  except errors.USER_ERRORS + tuple(user_errors) as e:
    sys.stderr.write('error: %s\n' % get_one_line(e))
    sys.exit(EXIT_ERROR)
  except KeyboardInterrupt:
    sys.exit(EXIT_INTERRUPTED)


def get_one_line(error):
  """The error's message on one line (a multi-line one joined by '; ')."""
  lines = [line.strip() for line in str(error).splitlines()]
  return '; '.join(line for line in lines if line) or type(error).__name__


def options_from_args(options_class, args, **overrides):
  """An options dataclass from parsed flags.

  Fields the script has no flag for keep their defaults; overrides win
  over the flags.

  Args:
    options_class: a dataclass type (trainer.TrainOptions,
      predictor.PredictorOptions, ...).
    args: an argparse.Namespace.
    **overrides: field values set by the script itself.

  Returns:
    An options_class instance.
  """
  values = {field.name: getattr(args, field.name)
            for field in dataclasses.fields(options_class)
            if hasattr(args, field.name)}
  values.update(overrides)
  return options_class(**values)
