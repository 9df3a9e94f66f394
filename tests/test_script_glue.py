"""run_script's exit codes and messages; options_from_args."""
import argparse
import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest

from pyscripts import script_glue
from utils import data_lists
from utils import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exit_of(body, capsys, *args, **kwargs):
  with pytest.raises(SystemExit) as exit_info:
    script_glue.run_script(body, *args, **kwargs)
  return exit_info.value.code, capsys.readouterr().err


def _raise(error):
  raise error


def test_returns_the_body_value_and_passes_arguments():
  assert script_glue.run_script(lambda a, b: a * b, 6, 7) == 42


@pytest.mark.parametrize('error', [
    errors.TrainingError('bad options'),
    errors.PredictorError('bad options'),
    errors.PrototypeError('bad options'),
    errors.RestoreError('bad options'),
    errors.BenchmarkError('bad options'),
    data_lists.DataListError('bad options'),
    FileNotFoundError('bad options')])
def test_user_errors_exit_1_with_one_line(error, capsys):
  code, err = _exit_of(_raise, capsys, error)
  assert code == script_glue.EXIT_ERROR == 1
  assert err == 'error: bad options\n'


def test_multi_line_message_becomes_one_line(capsys):
  code, err = _exit_of(
      _raise, capsys, errors.RestoreError('2 problems:\n  a: missing\n\n'
                                          '  b: shape'))
  assert code == 1
  assert err == 'error: 2 problems:; a: missing; b: shape\n'


def test_extra_user_errors(capsys):
  code, err = _exit_of(_raise, capsys, OSError('disk full'),
                       user_errors=(OSError,))
  assert (code, err) == (1, 'error: disk full\n')


def test_other_errors_keep_their_traceback():
  with pytest.raises(ValueError, match='a bug'):
    script_glue.run_script(_raise, ValueError('a bug'))
  with pytest.raises(OSError):
    script_glue.run_script(_raise, OSError('a bug'))


def test_ctrl_c_exits_130_silently(capsys):
  code, err = _exit_of(_raise, capsys, KeyboardInterrupt())
  assert code == script_glue.EXIT_INTERRUPTED == 130
  assert err == ''


def test_in_a_process(tmp_path):
  """The exit status and stderr a shell sees, with no traceback."""
  script = tmp_path / 'script.py'
  script.write_text(textwrap.dedent('''
      import sys
      sys.path.insert(0, %r)
      from pyscripts import script_glue
      from utils import errors

      def body(what):
        if what == 'error':
          raise errors.PredictorError('no --save_dir')
        raise KeyboardInterrupt

      script_glue.run_script(body, sys.argv[1])
      ''' % ROOT))
  for what, code in (('error', 1), ('interrupt', 130)):
    result = subprocess.run([sys.executable, str(script), what],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == code
    assert 'Traceback' not in result.stderr
  result = subprocess.run([sys.executable, str(script), 'error'],
                          capture_output=True, text=True, timeout=120)
  assert result.stderr.strip().splitlines()[-1] == 'error: no --save_dir'


@dataclasses.dataclass
class _Options:
  size: int = 3
  name: str = 'a'
  ratio: float = 0.5


def test_options_from_args():
  args = argparse.Namespace(size=7, name='b', unrelated=True)
  options = script_glue.options_from_args(_Options, args)
  assert options == _Options(size=7, name='b', ratio=0.5)
  options = script_glue.options_from_args(_Options, args, name='c',
                                          ratio=2.0)
  assert options == _Options(size=7, name='c', ratio=2.0)
  assert script_glue.options_from_args(
      _Options, argparse.Namespace()) == _Options()


def test_options_from_args_rejects_unknown_overrides():
  with pytest.raises(TypeError):
    script_glue.options_from_args(_Options, argparse.Namespace(), nope=1)
