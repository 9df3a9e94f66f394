"""network/segsort/train_utils.py: losses and memory banks vs NumPy."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from tests import segsort_reference as ref
from network.segsort import train_utils

N_CLUSTERS = 2      # 2 x 2 = 4 clusters per image
ITERATIONS = 3
KAPPA = 10.0
HEIGHT, WIDTH, DIM = 6, 7, 4


def _grid(batch, height=HEIGHT, width=WIDTH):
  grid = ref.grid_labels(N_CLUSTERS, N_CLUSTERS, height, width)
  return np.tile(grid[None, :, :, None], [batch, 1, 1, 1]).astype(np.int32)


def _loc(batch, height=HEIGHT, width=WIDTH):
  loc = ref.location_features(height, width)
  return np.tile(loc[None], [batch, 1, 1, 1]).astype(np.float32)


def _labels(rng, batch, num_classes=3, ignore_fraction=0.2):
  # Class blocks plus noise, so clusters often straddle classes.
  labels = (np.arange(WIDTH)[None, None, :] * num_classes // WIDTH +
            np.zeros([batch, HEIGHT, 1], np.int64))
  noise = rng.rand(batch, HEIGHT, WIDTH) < 0.2
  labels[noise] = rng.randint(0, num_classes, size=noise.sum())
  labels[rng.rand(batch, HEIGHT, WIDTH) < ignore_fraction] = 255
  return labels[..., None].astype(np.int32)


class _SupervisedGraph:
  """Placeholders + add_segsort_loss for a static batch size."""

  def __init__(self, batch, num_banks=0, kappa=KAPPA, bank_capacity=None,
               label_rank=4):
    self.batch = batch
    self.embedding = tf.placeholder(tf.float32, [batch, HEIGHT, WIDTH, DIM])
    label_shape = [batch, HEIGHT, WIDTH] + [1] * (label_rank - 3)
    self.labels = tf.placeholder(tf.int32, label_shape)
    self.loss = train_utils.add_segsort_loss(
        self.embedding, self.labels, DIM, 255, kappa, _grid(batch),
        N_CLUSTERS, ITERATIONS, num_banks, _loc(batch),
        bank_capacity=bank_capacity)
    self.gradient = tf.gradients(self.loss, self.embedding)[0]
    self.label_rank = label_rank

  def feed(self, embedding, labels):
    if self.label_rank == 3:
      labels = labels[..., 0]
    return {self.embedding: embedding, self.labels: labels}


def _reference(embedding, labels, kappa=KAPPA, memory=None,
               memory_classes=None, literal=True):
  batch = embedding.shape[0]
  return ref.supervised_loss(embedding, labels, _grid(batch), _loc(batch),
                             N_CLUSTERS, ITERATIONS, kappa, memory,
                             memory_classes, literal=literal)


def _segments(embedding, labels):
  batch = embedding.shape[0]
  _, _, _, protos, classes = ref.batch_segments(
      embedding, labels, _grid(batch), _loc(batch), N_CLUSTERS, ITERATIONS)
  return protos, classes


def _read_banks(sess):
  names = ['prototypes', 'classes', 'valid']
  variables = {v.op.name.split('/')[-1]: v for v in tf.global_variables()
               if v.op.name.startswith(train_utils.MEMORY_BANK_SCOPE + '/')}
  return sess.run([variables[name] for name in names])


def _assert_same_set(bank_protos, bank_classes, protos, classes):
  """Bank rows are exactly the given prototypes, in any order."""
  assert len(bank_protos) == len(protos)
  matches = np.argmax(bank_protos @ protos.T, axis=1)
  assert len(set(matches.tolist())) == len(protos)
  np.testing.assert_allclose(bank_protos, protos[matches], atol=1e-5)
  assert np.array_equal(bank_classes, classes[matches])


def test_supervised_loss_matches_reference_and_has_gradient():
  rng = np.random.RandomState(0)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = _labels(rng, 2)
  graph4 = _SupervisedGraph(2)
  graph3 = _SupervisedGraph(2, label_rank=3)
  with tf.Session() as sess:
    loss, gradient = sess.run([graph4.loss, graph4.gradient],
                              graph4.feed(embedding, labels))
    loss3 = sess.run(graph3.loss, graph3.feed(embedding, labels))
  expected = _reference(embedding, labels)
  assert expected > 0.1
  np.testing.assert_allclose(loss, expected, rtol=1e-4)
  np.testing.assert_allclose(loss3, expected, rtol=1e-4)
  assert np.all(np.isfinite(gradient))
  assert np.abs(gradient).sum() > 1e-3
  # Ignored pixels get no gradient.
  assert np.all(gradient[labels[..., 0] == 255] == 0)


@pytest.mark.parametrize('kappa', [40.0, 100.0])
def test_supervised_loss_large_concentration_is_stable(kappa):
  # exp(100) overflows float32: the direct formula would give inf / NaN;
  # and "sum - sim_s" cancels even in float64, so the reference sums the
  # other positives directly.
  rng = np.random.RandomState(1)
  embedding = rng.randn(1, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = _labels(rng, 1)
  graph = _SupervisedGraph(1, kappa=kappa)
  with tf.Session() as sess:
    loss, gradient = sess.run([graph.loss, graph.gradient],
                              graph.feed(embedding, labels))
  np.testing.assert_allclose(
      loss, _reference(embedding, labels, kappa, literal=False), rtol=1e-4)
  assert np.all(np.isfinite(gradient))


def test_all_ignore_batch_gives_zero_loss_and_zero_gradient():
  rng = np.random.RandomState(2)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = np.full([2, HEIGHT, WIDTH, 1], 255, np.int32)
  graph = _SupervisedGraph(2, num_banks=2)
  update = train_utils.get_memory_bank_update_ops()
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    loss, gradient, _ = sess.run([graph.loss, graph.gradient, update],
                                 graph.feed(embedding, labels))
    _, _, valid = _read_banks(sess)
  assert loss == 0.0
  assert np.array_equal(gradient, np.zeros_like(gradient))
  assert not valid.any()


def test_image_with_only_ignore_pixels_in_batch():
  rng = np.random.RandomState(3)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = _labels(rng, 2)
  labels[1] = 255
  graph = _SupervisedGraph(2)
  with tf.Session() as sess:
    loss, gradient = sess.run([graph.loss, graph.gradient],
                              graph.feed(embedding, labels))
  np.testing.assert_allclose(loss, _reference(embedding, labels), rtol=1e-4)
  assert np.all(np.isfinite(gradient))
  assert np.all(gradient[1] == 0)


def test_single_class_batch_is_finite():
  # No negatives at all: every term is -log(num / num) = 0.
  rng = np.random.RandomState(4)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = np.full([2, HEIGHT, WIDTH, 1], 7, np.int32)
  labels[0, 0, :3] = 255
  graph = _SupervisedGraph(2)
  with tf.Session() as sess:
    loss, gradient = sess.run([graph.loss, graph.gradient],
                              graph.feed(embedding, labels))
  assert loss == pytest.approx(_reference(embedding, labels), abs=1e-6)
  assert loss == pytest.approx(0.0, abs=1e-6)
  assert np.all(np.isfinite(gradient))


def test_memory_banks_over_three_steps():
  rng = np.random.RandomState(5)
  steps = [(rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32),
            _labels(rng, 2)) for _ in range(3)]
  # Room for every segment (the noisy labels give more than the default).
  graph = _SupervisedGraph(2, num_banks=2, bank_capacity=64)
  plain = _SupervisedGraph(2, num_banks=0)
  update = train_utils.get_memory_bank_update_ops()
  assert len(update) == 1
  assert update[0] in tf.get_collection(tf.GraphKeys.UPDATE_OPS)
  segments = [_segments(e, l) for e, l in steps]

  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    # Evaluating the loss alone leaves the banks alone.
    sess.run(graph.loss, graph.feed(*steps[0]))
    assert not _read_banks(sess)[2].any()

    # Step 1: empty banks, so the loss equals the loss without banks.
    loss1, _ = sess.run([graph.loss, update], graph.feed(*steps[0]))
    assert loss1 == pytest.approx(
        sess.run(plain.loss, plain.feed(*steps[0])), rel=1e-6)
    np.testing.assert_allclose(loss1, _reference(*steps[0]), rtol=1e-4)
    protos, classes, valid = _read_banks(sess)
    assert not valid[0].any()
    _assert_same_set(protos[1][valid[1]], classes[1][valid[1]], *segments[0])

    # Step 2: step 1's prototypes are extra (negative or positive) terms.
    loss2, _ = sess.run([graph.loss, update], graph.feed(*steps[1]))
    np.testing.assert_allclose(
        loss2, _reference(*steps[1], memory=segments[0][0],
                          memory_classes=segments[0][1]), rtol=1e-4)
    assert loss2 != pytest.approx(_reference(*steps[1]), rel=1e-3)
    protos, classes, valid = _read_banks(sess)
    _assert_same_set(protos[0][valid[0]], classes[0][valid[0]], *segments[0])
    _assert_same_set(protos[1][valid[1]], classes[1][valid[1]], *segments[1])

    # Step 3: both earlier batches; then FIFO drops step 1's bank.
    loss3, _ = sess.run([graph.loss, update], graph.feed(*steps[2]))
    memory = np.concatenate([segments[0][0], segments[1][0]])
    memory_classes = np.concatenate([segments[0][1], segments[1][1]])
    np.testing.assert_allclose(
        loss3, _reference(*steps[2], memory=memory,
                          memory_classes=memory_classes), rtol=1e-4)
    protos, classes, valid = _read_banks(sess)
    _assert_same_set(protos[0][valid[0]], classes[0][valid[0]], *segments[1])
    _assert_same_set(protos[1][valid[1]], classes[1][valid[1]], *segments[2])


def test_more_segments_than_a_bank_holds():
  rng = np.random.RandomState(6)
  steps = [(rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32),
            _labels(rng, 2)) for _ in range(2)]
  graph = _SupervisedGraph(2, num_banks=1, bank_capacity=3)
  update = train_utils.get_memory_bank_update_ops()
  all_protos, all_classes = _segments(*steps[0])
  assert len(all_protos) > 3
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run([graph.loss, update], graph.feed(*steps[0]))
    protos, classes, valid = _read_banks(sess)
    assert protos.shape == (1, 3, DIM) and valid.all()
    # A random subset of distinct step-1 prototypes.
    matches = np.argmax(protos[0] @ all_protos.T, axis=1)
    assert len(set(matches.tolist())) == 3
    np.testing.assert_allclose(protos[0], all_protos[matches], atol=1e-5)
    assert np.array_equal(classes[0], all_classes[matches])
    loss2, gradient = sess.run([graph.loss, graph.gradient],
                               graph.feed(*steps[1]))
  np.testing.assert_allclose(
      loss2, _reference(*steps[1], memory=all_protos[matches],
                        memory_classes=all_classes[matches]), rtol=1e-4)
  assert np.all(np.isfinite(gradient))


def test_memory_banks_are_checkpointed_non_trainable_variables(tmp_path):
  rng = np.random.RandomState(7)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  labels = _labels(rng, 2)
  graph = _SupervisedGraph(2, num_banks=2)
  banks = [v for v in tf.global_variables()
           if v.op.name.startswith(train_utils.MEMORY_BANK_SCOPE + '/')]
  assert len(banks) == 3
  assert not set(banks) & set(tf.trainable_variables())
  capacity = train_utils.default_bank_capacity(2, N_CLUSTERS)
  # One slot per cluster of the batch: B * K = 2 * 2**2.
  assert capacity == 2 * 4
  assert banks[0].get_shape().as_list() == [2, capacity, DIM]
  saver = tf.train.Saver()
  with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    sess.run([graph.loss, train_utils.get_memory_bank_update_ops()],
             graph.feed(embedding, labels))
    saved = _read_banks(sess)
    path = saver.save(sess, str(tmp_path / 'model.ckpt'))
  with tf.Session() as sess:
    saver.restore(sess, path)
    for before, after in zip(saved, _read_banks(sess)):
      assert np.array_equal(before, after)


def test_graph_size_does_not_grow_with_batch():
  def count_ops(batch, supervised):
    with tf.Graph().as_default() as graph:
      embedding = tf.placeholder(tf.float32, [batch, 42, 42, 32])
      labels = tf.placeholder(tf.int32, [batch, 42, 42, 1])
      if supervised:
        train_utils.add_segsort_loss(
            embedding, labels, 32, 255, 10.0,
            tf.placeholder(tf.int32, [batch, 42, 42, 1]), 5, 10, 2,
            tf.placeholder(tf.float32, [batch, 42, 42, 2]))
      else:
        train_utils.add_unsupervised_segsort_loss(embedding, 10.0, labels)
      return len(graph.get_operations())

  assert count_ops(2, True) == count_ops(8, True)
  assert count_ops(2, False) == count_ops(8, False)
  # Far below the original's 17,193 ops for batch 2.
  assert count_ops(2, True) < 1000


def test_supervised_loss_rejects_bad_input():
  embedding = tf.placeholder(tf.float32, [2, HEIGHT, WIDTH, DIM])
  labels = tf.placeholder(tf.int32, [2, HEIGHT, WIDTH, 1])
  with pytest.raises(ValueError, match='embedding_dim'):
    train_utils.add_segsort_loss(embedding, labels, DIM + 1, 255, KAPPA,
                                 _grid(2), N_CLUSTERS, 1, 0, _loc(2))
  dynamic = tf.placeholder(tf.float32, [None, HEIGHT, WIDTH, DIM])
  with pytest.raises(ValueError, match='static batch size or bank_capacity'):
    train_utils.add_segsort_loss(dynamic, labels, DIM, 255, KAPPA,
                                 _grid(2), N_CLUSTERS, 1, 2, _loc(2))
  with pytest.raises(ValueError, match='num_banks'):
    train_utils.add_segsort_loss(embedding, labels, DIM, 255, KAPPA,
                                 _grid(2), N_CLUSTERS, 1, -1, _loc(2))


def _regions(rng, batch):
  regions = rng.randint(0, 5, size=(batch, HEIGHT, WIDTH, 1))
  regions[:, :2, :2] = 255   # crop padding
  regions[0, 5, 6] = -1      # not a segment either
  return regions.astype(np.int32)


def test_unsupervised_loss_matches_reference():
  rng = np.random.RandomState(8)
  embedding = rng.randn(2, HEIGHT, WIDTH, DIM).astype(np.float32)
  regions = _regions(rng, 2)
  embedding_ph = tf.placeholder(tf.float32, [2, HEIGHT, WIDTH, DIM])
  loss = train_utils.add_unsupervised_segsort_loss(embedding_ph, KAPPA,
                                                   regions)
  # num_banks is accepted (the original signature) and ignored, with a
  # Python warning: TensorFlow's logger is silenced (network/__init__).
  with pytest.warns(UserWarning, match='num_banks=2 is ignored'):
    with_banks = train_utils.add_unsupervised_segsort_loss(
        embedding_ph, KAPPA, regions[..., 0], num_banks=2)
  gradient = tf.gradients(loss, embedding_ph)[0]
  with tf.Session() as sess:
    value, value_banks, grad = sess.run(
        [loss, with_banks, gradient], {embedding_ph: embedding})
  expected = ref.unsupervised_loss(embedding, regions, KAPPA)
  np.testing.assert_allclose(value, expected, rtol=1e-4)
  # num_banks is accepted and ignored (no memory in the unsupervised loss).
  np.testing.assert_allclose(value_banks, expected, rtol=1e-4)
  assert not tf.global_variables()
  assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 1e-3
  assert np.all(grad[:, :2, :2] == 0)


def test_unsupervised_loss_all_padding_is_zero():
  embedding = tf.constant(
      np.random.RandomState(9).randn(2, HEIGHT, WIDTH, DIM), tf.float32)
  regions = np.full([2, HEIGHT, WIDTH, 1], 255, np.int32)
  loss = train_utils.add_unsupervised_segsort_loss(embedding, KAPPA, regions)
  gradient = tf.gradients(loss, embedding)[0]
  with tf.Session() as sess:
    value, grad = sess.run([loss, gradient])
  assert value == 0.0
  assert np.array_equal(grad, np.zeros_like(grad))


def test_default_bank_capacity_is_clusters_per_batch():
  # The original's banks held num_clusters**2 * batch_size prototypes each:
  # 5 * 5 * 8 = 200 for train_segsort.sh, 5 * 5 * 16 = 400 for the mgpu one.
  assert train_utils.default_bank_capacity(8, 5) == 200
  assert train_utils.default_bank_capacity(16, 5) == 400
