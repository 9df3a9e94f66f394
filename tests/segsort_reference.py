"""Plain NumPy (float64, per-image loops) reference of the SegSort core.

Written straight from SPEC.md, independently of network/segsort, for the
tests to compare against.
"""
import numpy as np


def normalize(x):
  x = np.asarray(x, np.float64)
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  return np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), 0.0)


def grid_labels(n_y, n_x, height, width):
  step_y = -(-height // n_y)
  step_x = -(-width // n_x)
  ys = np.arange(height) // step_y
  xs = np.arange(width) // step_x
  return ys[:, None] + (ys.max() + 1) * xs[None, :]


def location_features(height, width):
  ys, xs = np.meshgrid(np.arange(height) / height, np.arange(width) / width,
                       indexing='ij')
  return np.stack([ys, xs], axis=2)


def prototypes(embedding, labels, num):
  """normalize(sum of rows with label k) for k < num -> [num, D]."""
  out = np.zeros((num, embedding.shape[1]))
  for k in range(num):
    rows = embedding[labels == k]
    if len(rows):
      out[k] = normalize(rows.sum(axis=0))
  return out


def kmeans(embedding, labels, num_clusters, iterations):
  """vMF k-means of one image; empty clusters never win."""
  labels = np.asarray(labels).copy()
  for _ in range(iterations):
    protos = prototypes(embedding, labels, num_clusters)
    non_empty = np.array([(labels == k).any() for k in range(num_clusters)])
    sims = embedding @ protos.T
    sims[:, ~non_empty] = -np.inf
    labels = np.argmax(sims, axis=1)
  return labels


def supervised_pixel_losses(emb, classes, segments, protos, proto_classes,
                            kappa, literal=True):
  """SPEC's formula with exp in float64.

  literal=True computes P as SPEC writes it, (sum over class c) - sim_s;
  literal=False sums over the other prototypes of class c directly, the
  same quantity without the cancellation that makes the literal form lose
  all precision once sim_s dominates (kappa * cosine gaps beyond ~35).
  """
  losses = []
  for e, c, s in zip(emb, classes, segments):
    sims = np.exp(kappa * protos @ e)
    same = proto_classes == c
    if literal:
      positives = sims[same].sum() - sims[s]
    else:
      others = same.copy()
      others[s] = False
      positives = sims[others].sum()
    numerator = positives if positives > 0 else sims[s]
    negatives = sims[~same].sum()
    losses.append(-np.log(numerator / (numerator + negatives)))
  return np.array(losses)


def batch_segments(embedding, labels, cluster_labels, loc, num_clusters,
                   iterations, ignore_label=255):
  """Segments of a batch as SPEC defines them.

  Returns:
    emb [M, D], classes [M], segments [M], protos [P, D], proto_classes [P].
  """
  batch = embedding.shape[0]
  depth = embedding.shape[-1]
  k_total = num_clusters * num_clusters
  all_emb, all_classes, all_keys = [], [], []
  for b in range(batch):
    emb = normalize(embedding[b].reshape(-1, depth))
    lab = labels[b].reshape(-1)
    clu = cluster_labels[b].reshape(-1)
    lc = loc[b].reshape(-1, 2)
    valid = (lab != ignore_label) & (lab >= 0)
    emb, lab, clu, lc = emb[valid], lab[valid], clu[valid], lc[valid]
    with_loc = normalize(np.concatenate([emb, lc], axis=1))
    clu = kmeans(with_loc, clu, k_total, iterations)
    all_emb.append(emb)
    all_classes.append(lab)
    all_keys += [(b, k, c) for k, c in zip(clu, lab)]
  emb = np.concatenate(all_emb).reshape(-1, depth)
  classes = np.concatenate(all_classes).astype(np.int64)
  keys = sorted(set(all_keys))
  index = {key: i for i, key in enumerate(keys)}
  segments = np.array([index[key] for key in all_keys], dtype=np.int64)
  protos = prototypes(emb, segments, len(keys))
  proto_classes = np.array([key[2] for key in keys], dtype=np.int64)
  return emb, classes, segments, protos, proto_classes


def supervised_loss(embedding, labels, cluster_labels, loc, num_clusters,
                    iterations, kappa, memory=None, memory_classes=None,
                    ignore_label=255, literal=True):
  """Mean supervised SegSort loss; memory = extra prototypes [Mb, D]."""
  emb, classes, segments, protos, proto_classes = batch_segments(
      embedding, labels, cluster_labels, loc, num_clusters, iterations,
      ignore_label)
  if len(emb) == 0:
    return 0.0
  if memory is not None and len(memory):
    protos = np.concatenate([protos, memory])
    proto_classes = np.concatenate([proto_classes, memory_classes])
  return supervised_pixel_losses(emb, classes, segments, protos,
                                 proto_classes, kappa, literal).mean()


def unsupervised_loss(embedding, regions, kappa):
  batch, depth = embedding.shape[0], embedding.shape[-1]
  all_emb, all_keys = [], []
  for b in range(batch):
    emb = normalize(embedding[b].reshape(-1, depth))
    reg = regions[b].reshape(-1)
    valid = (reg >= 0) & (reg < 255)
    all_emb.append(emb[valid])
    all_keys += [(b, r) for r in reg[valid]]
  if not all_keys:
    return 0.0
  emb = np.concatenate(all_emb)
  keys = sorted(set(all_keys))
  index = {key: i for i, key in enumerate(keys)}
  segments = np.array([index[key] for key in all_keys])
  protos = prototypes(emb, segments, len(keys))
  sims = np.exp(kappa * emb @ protos.T)
  own = sims[np.arange(len(emb)), segments]
  return np.mean(-np.log(own / sims.sum(axis=1)))
