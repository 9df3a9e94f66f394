"""Class names of a dataset, index = class id."""

# PASCAL VOC 2012 class names, background first (index = class id).
VOC_CLASSES = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')


def get_class_names(num_classes, names_file=None):
  """Names of the classes, index = class id.

  Args:
    num_classes: number of classes (python int >= 1).
    names_file: optional text file with one name per line (blank lines
      skipped; surrounding spaces stripped); it must hold exactly
      num_classes distinct names.

  Returns:
    A list of num_classes strings: the file's names if given, else
    VOC_CLASSES when num_classes == 21, else 'class_0', 'class_1', ...
  """
  if int(num_classes) != num_classes or num_classes < 1:
    raise ValueError('num_classes must be a positive integer, got %r'
                     % (num_classes,))
  num_classes = int(num_classes)
  if names_file:
    try:
      with open(names_file, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
      raise FileNotFoundError('class names file not found: %s'
                              % names_file) from None
    if len(names) != num_classes:
      raise ValueError('class names file %s holds %d names, expected '
                       'num_classes=%d' % (names_file, len(names), num_classes))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
      raise ValueError('class names file %s repeats %s'
                       % (names_file, duplicates))
    return names
  if num_classes == len(VOC_CLASSES):
    return list(VOC_CLASSES)
  return ['class_%d' % i for i in range(num_classes)]
