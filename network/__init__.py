"""Graph builders for SegSort (TensorFlow 1.x style through tf.compat.v1).

Importing this package switches TensorFlow to graph mode: every module below
builds ops into the default graph with ``tf.compat.v1`` APIs.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def _import_tensorflow_quietly():
  """Imports TensorFlow with its C++ start-up banner (written to the stderr
  file descriptor before logging is configured) sent to /dev/null.

  Python-level errors are unaffected: the descriptor is restored before any
  exception propagates. SEGSORT_TF_VERBOSE=1 keeps the banner.
  """
  if os.environ.get('SEGSORT_TF_VERBOSE') or 'tensorflow' in sys.modules:
    import tensorflow  # pylint: disable=unused-import,import-outside-toplevel
    return
  try:
    stderr_fd = sys.stderr.fileno()
  except (AttributeError, ValueError, OSError):
    stderr_fd = None
  if stderr_fd is None:
    import tensorflow  # pylint: disable=unused-import,import-outside-toplevel
    return
  saved = os.dup(stderr_fd)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    sys.stderr.flush()
    os.dup2(devnull, stderr_fd)
    import tensorflow  # pylint: disable=unused-import,import-outside-toplevel,redefined-outer-name
    # Creating the first session prints more of the same; do it now.
    import tensorflow.compat.v1 as tf_v1  # pylint: disable=import-outside-toplevel
    tf_v1.config.list_physical_devices('GPU')
  finally:
    sys.stderr.flush()
    os.dup2(saved, stderr_fd)
    os.close(saved)
    os.close(devnull)


_import_tensorflow_quietly()

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_eager_execution()
# Deprecation notices of the tf.compat.v1 API are noise for this codebase.
tf.get_logger().setLevel('ERROR')
