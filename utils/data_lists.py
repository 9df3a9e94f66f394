"""Data lists: the text files naming a dataset's examples, one per line.

    IMAGE [LABEL [OVERSEG]]

Paths are relative to ``data_dir``; blank lines are skipped. A path may also
start with '/', as older VOC lists do (``/JPEGImages/x.jpg
/segcls/x.png``): such a path is ``data_dir + path``
(plain concatenation), and only when that file does not exist while ``path``
itself does is it taken as an absolute path. For a file that exists in
neither place (a mask still to be written), the same rule looks at its
folder: ``path`` is taken as absolute when its folder exists and
``data_dir + path``'s does not.

The oversegmentation mask of an example is

  1. the third column, if any;
  2. else LABEL with 'segcls' replaced by 'hed' (VOC2012/segcls/x.png ->
     VOC2012/hed/x.png);
  3. else, for an image-only line, IMAGE with its 'JPEGImages' folder
     replaced by 'hed' and its extension by '.png'.

When the rule of a line does not apply (a LABEL without 'segcls', an image
outside a 'JPEGImages' folder) the example has no mask path, so that a mask
is never read from, or written over, a label or an image.
"""
import collections
import os

from utils import errors

DataListError = errors.DataListError


DataEntry = collections.namedtuple(
    'DataEntry', ['image', 'label', 'overseg', 'name', 'line'],
    defaults=(None,))
DataEntry.__doc__ = """One example of a data list.

Attributes:
  image: path of the image.
  label: path of the label PNG, or None for a one-column line.
  overseg: path of the oversegmentation PNG (see the module docstring), or
    None when no rule gives one.
  name: image basename without extension (used to name predictions).
  line: 1-based line number in the list file (None if built by hand).
"""


def get_overseg_path(image, label=None, overseg=None):
  """The mask path of a line's columns (rules in the module docstring).

  Args:
    image: IMAGE column, e.g. 'VOC2012/JPEGImages/x.jpg'.
    label: LABEL column or None, e.g. 'VOC2012/segcls/x.png'.
    overseg: OVERSEG column or None.

  Returns:
    The mask path, relative like the columns, or None when no rule applies.
  """
  if overseg:
    return overseg
  if label:
    return label.replace('segcls', 'hed') if 'segcls' in label else None
  parts = image.replace('\\', '/').split('/')
  folders = parts[:-1]
  if 'JPEGImages' not in folders:
    return None
  parts[len(folders) - 1 - folders[::-1].index('JPEGImages')] = 'hed'
  parts[-1] = os.path.splitext(parts[-1])[0] + '.png'
  return '/'.join(parts)


def resolve_path(data_dir, path):
  """Joins a list-file path to data_dir (see the module docstring)."""
  if not data_dir:
    return path
  if path.startswith('/'):
    joined = data_dir.rstrip('/') + path
    # The file itself decides; for a file not written yet (a mask to be
    # made), its folder does.
    for exists in (os.path.exists,
                   lambda p: os.path.isdir(os.path.dirname(p))):
      if exists(joined):
        return joined
      if exists(path):
        return path
    return joined
  return os.path.join(data_dir, path)


def read_data_list(data_dir, data_list):
  """Reads a data list file.

  Args:
    data_dir: folder the paths of the list are relative to ('' or None to
      use the paths as written).
    data_list: path of the list file.

  Returns:
    A list of DataEntry, in file order.

  Raises:
    DataListError: the list file is missing, empty, or a line has more than
      three columns (the message names the file and the line number).
  """
  if not os.path.isfile(data_list):
    raise DataListError('data list %r (--data_list) does not exist'
                        % (data_list,))
  entries = []
  with open(data_list, 'r') as f:
    for line_number, line in enumerate(f, start=1):
      columns = line.split()
      if not columns:
        continue
      if len(columns) > 3:
        raise DataListError(
            '%s line %d: expected "IMAGE [LABEL [OVERSEG]]", got %d columns: '
            '%r' % (data_list, line_number, len(columns), line.rstrip('\n')))
      image = columns[0]
      label = columns[1] if len(columns) > 1 else None
      overseg = get_overseg_path(*columns)
      entries.append(DataEntry(
          image=resolve_path(data_dir, image),
          label=None if label is None else resolve_path(data_dir, label),
          overseg=None if overseg is None else resolve_path(data_dir,
                                                            overseg),
          name=os.path.splitext(os.path.basename(image))[0],
          line=line_number))
  if not entries:
    raise DataListError('data list %r (--data_list) has no examples'
                        % (data_list,))
  return entries


def check_unique_names(entries, data_list, max_listed=10):
  """Raises unless the entries' names (which name their outputs) differ.

  Args:
    entries: list of DataEntry.
    data_list: path of the list file, named in the error message.
    max_listed: list at most this many collisions.

  Raises:
    DataListError: naming the images whose outputs would overwrite each
      other (same base name in different folders).
  """
  first, collisions = {}, []
  for entry in entries:
    if entry.name in first:
      collisions.append('%s and %s (lines %s and %s)' % (
          first[entry.name].image, entry.image, first[entry.name].line,
          entry.line))
    else:
      first[entry.name] = entry
  if collisions:
    raise DataListError(
        '%s names %d image(s) whose outputs would overwrite others (same '
        'base name): %s%s. Rename them, or split the list.' % (
            data_list, len(collisions), '; '.join(collisions[:max_listed]),
            ' ...' if len(collisions) > max_listed else ''))
