"""pyscripts/benchmark/benchmark_oversegmentation.py on generated images."""
import json
import os

import numpy as np
from PIL import Image

from pyscripts.benchmark import benchmark_oversegmentation
from tests.test_oversegmentation import _contour_from_truth
from tests.test_oversegmentation import _make_image


def test_benchmark_writes_scores_table_and_grid(tmp_path):
  """Two Voronoi images with HED-like maps on their true borders: the
  HED-owt-ucm masks recall (almost) every true border."""
  for folder in ('JPEGImages', 'segcls', 'contours'):
    (tmp_path / folder).mkdir()
  lines = []
  for i in range(2):
    image, truth = _make_image(20 + i, h=64, w=80, num_regions=5)
    Image.fromarray(image).save(str(tmp_path / 'JPEGImages' / ('%d.png' % i)))
    Image.fromarray(truth.astype(np.uint8)).save(
        str(tmp_path / 'segcls' / ('%d.png' % i)))
    Image.fromarray(_contour_from_truth(truth)).save(
        str(tmp_path / 'contours' / ('%d.png' % i)))
    lines.append('JPEGImages/%d.png segcls/%d.png\n' % (i, i))
  (tmp_path / 'list.txt').write_text(''.join(lines))
  out = tmp_path / 'out'
  benchmark_oversegmentation.main([
      '--data_dir', str(tmp_path), '--data_list', str(tmp_path / 'list.txt'),
      '--contour_dir', str(tmp_path / 'contours'), '--output_dir', str(out),
      '--sweep', 'gradient-ucm:0.5', '--sweep', 'hed-owt-ucm:0.2,0.9',
      '--grid_images', '1', '--num_workers', '1'])
  with open(out / 'oversegmentation_quality.json') as f:
    result = json.load(f)
  assert result['num_images'] == 2 and result['tolerance'] == 2.0
  rows = {(r['method'], r['threshold']): r for r in result['results']}
  assert sorted(rows) == [('gradient-ucm', 0.5), ('hed-owt-ucm', 0.2),
                          ('hed-owt-ucm', 0.9)]
  assert rows[('hed-owt-ucm', 0.2)]['recall'] > 0.95
  assert (rows[('hed-owt-ucm', 0.9)]['segments_mean']
          <= rows[('hed-owt-ucm', 0.2)]['segments_mean'])
  table = (out / 'oversegmentation_quality.md').read_text()
  assert table.count('| hed-owt-ucm |') == 2
  with Image.open(out / 'oversegmentation_grid.png') as grid:
    assert grid.size[0] > 5 * 80  # Five pictures side by side.
  assert sorted(os.listdir(out)) == ['oversegmentation_grid.png',
                                     'oversegmentation_quality.json',
                                     'oversegmentation_quality.md']
