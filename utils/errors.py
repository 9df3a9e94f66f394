"""The errors a user can fix: bad options, files, lists or checkpoints.

Every error the library raises for a problem of its input is one of these
(the modules that raise them re-export their own, e.g.
checkpoints.RestoreError). The scripts report USER_ERRORS in one
`error: ...` line with no stack trace (pyscripts/script_glue.py); anything
else is a bug and keeps its traceback. This module lives in utils/, which
imports no TensorFlow, so that NumPy-only tools can catch these errors
cheaply.
"""


class SegSortError(ValueError):
  """Base of the errors below: a problem the user can fix."""


class DataListError(SegSortError):
  """A data list, or a file it names, is malformed, missing or unreadable."""


class TrainingError(SegSortError):
  """Options that cannot train."""


class NonFiniteStateError(TrainingError):
  """An update left NaN or infinite values in the model's state."""


class DivergenceError(TrainingError):
  """The loss grew far beyond its starting value."""


class SnapshotFolderError(SegSortError):
  """The snapshot folder cannot be used (locked, foreign or unwritable)."""


class ModelSettingsError(SegSortError):
  """A flag contradicts the settings saved with a checkpoint (model.json)."""


class PredictorError(SegSortError):
  """Options or inputs a predictor cannot use."""


class PrototypeError(SegSortError):
  """Prototype files that cannot be used (missing, unreadable, mismatched)."""


class RestoreError(SegSortError):
  """A checkpoint is absent or does not hold the requested variables."""


class ClusterError(SegSortError):
  """A cluster that is malformed (TF_CONFIG, --cluster_spec) or whose task
  does not answer."""


class ExportError(SegSortError):
  """A SavedModel that cannot be written or loaded."""


class PictureError(SegSortError):
  """Options or files a picture cannot be made from."""


class BenchmarkError(SegSortError):
  """A benchmark that cannot run or whose worker failed."""


# What the scripts report in one line: the errors above and missing files.
USER_ERRORS = (SegSortError, FileNotFoundError)
