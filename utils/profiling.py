"""Measuring a process: wall times of repeated calls and resident memory.

Peak memory is per process (the peak resident set size only grows), which
is why the speed benchmark runs each measurement in a process of its own.
"""
import resource
import sys
import time

import numpy as np
from tqdm import tqdm

# Bytes per MiB.
MB = float(2 ** 20)


def get_peak_rss_mb():
  """Peak resident set size of this process so far, in MiB (getrusage)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  # Linux reports KiB, macOS bytes.
  return peak / (MB if sys.platform == 'darwin' else 1024.0)


def _read_status_kb(field):
  """A 'kB' field of /proc/self/status (Linux), or None."""
  try:
    with open('/proc/self/status', encoding='ascii') as f:
      for line in f:
        if line.startswith(field + ':'):
          return float(line.split()[1])
  except OSError:
    pass
  return None


def get_current_rss_mb():
  """Resident set size now, in MiB (the peak where /proc is missing)."""
  kb = _read_status_kb('VmRSS')
  return kb / 1024.0 if kb is not None else get_peak_rss_mb()


def reset_peak_rss():
  """Resets the kernel's RSS high-water mark (Linux >= 4.0).

  Writing 5 to /proc/self/clear_refs sets VmHWM to the current RSS, so that
  get_rss_high_water_mark_mb() afterwards measures the peak of what follows
  only. Read get_peak_rss_mb() BEFORE calling this: getrusage's peak may be
  reset with it.

  Returns:
    Whether the reset worked.
  """
  try:
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
      f.write('5')
  except OSError:
    return False
  return _read_status_kb('VmHWM') is not None


def get_rss_high_water_mark_mb():
  """VmHWM in MiB: the peak RSS since the last reset_peak_rss()."""
  kb = _read_status_kb('VmHWM')
  return kb / 1024.0 if kb is not None else get_peak_rss_mb()


def time_calls(fn, count, warmup=0, desc=None, show_progress=False):
  """Calls fn() warmup times untimed, then count times timed.

  Returns:
    The list of count wall times in seconds.
  """
  for _ in range(warmup):
    fn()
  seconds = []
  for _ in tqdm(range(count), desc=desc, disable=not show_progress,
                leave=False, dynamic_ncols=True):
    start = time.perf_counter()
    fn()
    seconds.append(time.perf_counter() - start)
  return seconds


def median(values):
  """The median of values as a float."""
  return float(np.median(np.asarray(values, dtype=np.float64)))


def get_goal_status(ok):
  """'met' or 'NOT met', for the goal lines of the benchmark reports."""
  return 'met' if ok else 'NOT met'
