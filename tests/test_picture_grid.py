"""The captioned picture grid (utils/picture_grid.py)."""
import numpy as np
import pytest
from PIL import Image

from utils import picture_grid


def test_save_grid_png(tmp_path):
  red = np.zeros((6, 8, 3), np.uint8)
  red[..., 0] = 255
  blue = np.zeros((4, 5, 3), np.uint8)
  blue[..., 2] = 255
  gray = np.full((6, 8), 100, np.uint8)
  path = str(tmp_path / 'g' / 'grid.png')
  grid = picture_grid.save_grid_png(path, [red, blue, gray], ncols=2, padding=2)
  # No titles: 2 columns of 8 px, 2 rows of 6 px, 2 px padding.
  assert grid.shape == (2 + 2 * (6 + 2), 2 + 2 * (8 + 2), 3)
  np.testing.assert_array_equal(grid[2:8, 2:10], red)
  np.testing.assert_array_equal(grid[2:6, 12:17], blue)
  np.testing.assert_array_equal(grid[10:16, 2:10], np.stack([gray] * 3, -1))
  assert np.all(grid[0] == 255)  # Padding is white.
  with Image.open(path) as im:
    np.testing.assert_array_equal(np.asarray(im), grid)

  wide = np.zeros((10, 60, 3), np.uint8)
  titles = ['image', 'a caption far too long for a 60 pixel cell']
  titled = picture_grid.save_grid_png(path, [wide, wide], titles=titles)
  caption_rows = titled.shape[0] - (4 + 10 + 4)
  assert caption_rows > 0
  assert titled.shape[1] == 4 + 2 * (60 + 4)
  # Captions are drawn (dark pixels above the pictures), pictures below; the
  # long caption is cut so that it stays inside its own cell.
  assert titled[4:4 + caption_rows, 4:64].min() < 128
  assert np.all(titled[:, 64:68] == 255)
  assert np.all(titled[:, -4:] == 255)
  np.testing.assert_array_equal(
      titled[4 + caption_rows:14 + caption_rows, 4:64], wide)
  with pytest.raises(ValueError, match='titles'):
    picture_grid.save_grid_png(path, [red], titles=['a', 'b'])
  with pytest.raises(ValueError, match='uint8'):
    picture_grid.save_grid_png(path, [red.astype(np.float32)])
