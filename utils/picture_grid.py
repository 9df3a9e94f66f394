"""Pictures tiled in a grid with captions, saved as one PNG.

NumPy / PIL only (no TensorFlow), for tools and benchmarks that show several
pictures side by side.
"""
import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from utils import atomic_io


def save_grid_png(path, images, titles=None, ncols=None, padding=4):
  """Tiles pictures in a grid, each under a small caption, and saves a PNG.

  Cells are as large as the largest picture; smaller pictures sit in the top
  left of their cell; the background is white. Captions are drawn with PIL's
  default font and shortened with '...' to fit their cell.

  Args:
    path: output PNG (parent folders created, written atomically).
    images: list of uint8 arrays [H, W, 3] (or [H, W] grayscale).
    titles: None or a list of strings, one per picture.
    ncols: pictures per row; None puts them all side by side.
    padding: pixels between cells and around the grid.

  Returns:
    The grid as a uint8 array [H_grid, W_grid, 3].
  """
  if not images:
    raise ValueError('save_grid_png %s: no pictures given' % path)
  pictures = []
  for i, image in enumerate(images):
    image = np.asarray(image)
    if image.dtype != np.uint8:
      raise ValueError('save_grid_png %s: picture %d has dtype %s, expected '
                       'uint8' % (path, i, image.dtype))
    if image.ndim == 2:
      image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
      raise ValueError('save_grid_png %s: picture %d has shape %s, expected '
                       '[H, W, 3] or [H, W]' % (path, i, image.shape))
    pictures.append(image)
  if titles is not None and len(titles) != len(pictures):
    raise ValueError('save_grid_png %s: %d titles for %d pictures'
                     % (path, len(titles), len(pictures)))
  ncols = len(pictures) if ncols is None else int(ncols)
  if ncols < 1:
    raise ValueError('save_grid_png %s: ncols must be >= 1, got %d'
                     % (path, ncols))
  ncols = min(ncols, len(pictures))
  nrows = -(-len(pictures) // ncols)
  cell_h = max(p.shape[0] for p in pictures)
  cell_w = max(p.shape[1] for p in pictures)

  font = ImageFont.load_default()
  caption_h = 0
  if titles is not None:
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    top, bottom = probe.textbbox((0, 0), 'Hgy|', font=font)[1::2]
    caption_h = bottom + max(top, 0) + 2

  grid_h = padding + nrows * (caption_h + cell_h + padding)
  grid_w = padding + ncols * (cell_w + padding)
  canvas = Image.new('RGB', (grid_w, grid_h), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for i, picture in enumerate(pictures):
    row, col = divmod(i, ncols)
    x = padding + col * (cell_w + padding)
    y = padding + row * (caption_h + cell_h + padding)
    if titles is not None:
      draw.text((x, y), fit_text(draw, str(titles[i]), font, cell_w),
                fill=(0, 0, 0), font=font)
    canvas.paste(Image.fromarray(picture, mode='RGB'), (x, y + caption_h))
  grid = np.asarray(canvas).copy()
  atomic_io.atomic_save_png(path, grid)
  return grid


def fit_text(draw, text, font, width):
  """Shortens `text` with '...' until it is at most `width` pixels wide."""
  if draw.textlength(text, font=font) <= width:
    return text
  while text and draw.textlength(text + '...', font=font) > width:
    text = text[:-1]
  return text + '...' if text else ''
