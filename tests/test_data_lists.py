"""Tests of utils/data_lists.py: the list grammar and its path rules."""
import os

import pytest

from utils import data_lists


def _touch(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, 'wb').close()


def test_overseg_path_rules():
  get = data_lists.get_overseg_path
  # The third column wins; else LABEL with segcls -> hed.
  assert get('V/JPEGImages/a.jpg', 'V/segcls/a.png', 'V/mine/a.png') == (
      'V/mine/a.png')
  assert get('V/JPEGImages/a.jpg', 'V/segcls/a.png') == 'V/hed/a.png'
  assert get('/JPEGImages/a.jpg', '/segcls/a.png') == '/hed/a.png'
  # Image-only lines: the last JPEGImages folder -> hed, extension .png.
  assert get('V/JPEGImages/a.jpg') == 'V/hed/a.png'
  assert get('JPEGImages/x/JPEGImages/a.b.jpeg') == 'JPEGImages/x/hed/a.b.png'
  # No rule: a label without segcls, an image outside JPEGImages (a file
  # merely named JPEGImages is not a folder).
  assert get('V/JPEGImages/a.jpg', 'V/labels/a.png') is None
  assert get('V/images/a.jpg') is None
  assert get('V/JPEGImages') is None


def test_read_data_list_columns_and_path_rules(tmp_path):
  root = str(tmp_path / 'data')
  elsewhere = str(tmp_path / 'elsewhere' / 'abs.jpg')
  _touch(elsewhere)
  _touch(os.path.join(root, 'JPEGImages/slash.jpg'))
  data_list = str(tmp_path / 'list.txt')
  with open(data_list, 'w') as f:
    f.write('VOC2012/JPEGImages/a.jpg VOC2012/segcls/a.png\n'
            '\n'
            '   \n'
            'img/b.jpeg lab/b.png seg/b_ucm.png\n'
            'test/c.jpg\n'
            '/JPEGImages/slash.jpg /segcls/slash.png\n'
            '%s lab/d.png\n'
            'VOC2012/JPEGImages/e.jpg\n' % elsewhere)
  entries = data_lists.read_data_list(root, data_list)
  assert len(entries) == 6
  a, b, c, slash, absolute, e = entries
  j = os.path.join
  entry = data_lists.DataEntry
  assert a == entry(j(root, 'VOC2012/JPEGImages/a.jpg'),
                    j(root, 'VOC2012/segcls/a.png'),
                    j(root, 'VOC2012/hed/a.png'), 'a', 1)
  # Third column wins over the segcls -> hed rule.
  assert b == entry(j(root, 'img/b.jpeg'), j(root, 'lab/b.png'),
                    j(root, 'seg/b_ucm.png'), 'b', 4)
  assert c == entry(j(root, 'test/c.jpg'), None, None, 'c', 5)
  # Image-only line in a JPEGImages folder: the mask is under hed/.
  assert e == entry(j(root, 'VOC2012/JPEGImages/e.jpg'), None,
                    j(root, 'VOC2012/hed/e.png'), 'e', 8)
  # Older VOC lists: '/...' is appended to data_dir.
  assert slash.image == root + '/JPEGImages/slash.jpg'
  assert slash.label == root + '/segcls/slash.png'
  assert slash.overseg == root + '/hed/slash.png'
  # A real absolute path that does not exist under data_dir stays absolute.
  assert absolute.image == elsewhere
  assert absolute.name == 'abs' and absolute.overseg is None


def test_absolute_path_of_a_file_not_written_yet(tmp_path):
  """A mask column naming a file to be made: its folder tells whether the
  '/...' path is absolute or under data_dir."""
  root = str(tmp_path / 'data')
  outside = tmp_path / 'work' / 'masks'
  outside.mkdir(parents=True)
  os.makedirs(os.path.join(root, 'hed'))
  data_list = str(tmp_path / 'list.txt')
  with open(data_list, 'w') as f:
    f.write('a.jpg a.png %s/a.png\n'      # folder exists outside only
            'b.jpg b.png /hed/b.png\n'    # folder exists under data_dir
            'c.jpg c.png /nowhere/c.png\n' % outside)
  a, b, c = data_lists.read_data_list(root, data_list)
  assert a.overseg == str(outside / 'a.png')
  assert b.overseg == root + '/hed/b.png'
  assert c.overseg == root + '/nowhere/c.png'
  # A folder under data_dir wins over the same folder outside it.
  os.makedirs(root + str(outside))
  assert data_lists.read_data_list(root, data_list)[0].overseg == (
      root + str(outside / 'a.png'))


def test_read_data_list_errors_name_file_and_line(tmp_path):
  data_list = str(tmp_path / 'bad.txt')
  with open(data_list, 'w') as f:
    f.write('a.jpg a.png\n\nb.jpg b.png b_hed.png extra\n')
  with pytest.raises(data_lists.DataListError,
                     match=r'bad\.txt line 3.*4 columns'):
    data_lists.read_data_list(str(tmp_path), data_list)
  with pytest.raises(data_lists.DataListError, match='nothere.txt'):
    data_lists.read_data_list(str(tmp_path), str(tmp_path / 'nothere.txt'))
  empty = str(tmp_path / 'empty.txt')
  with open(empty, 'w') as f:
    f.write('\n \n')
  with pytest.raises(data_lists.DataListError,
                     match='empty.txt.*no examples'):
    data_lists.read_data_list(str(tmp_path), empty)
