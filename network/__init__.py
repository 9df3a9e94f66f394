"""Graph builders for SegSort (TensorFlow 1.x style through tf.compat.v1).

Importing this package switches TensorFlow to graph mode: every module below
builds ops into the default graph with ``tf.compat.v1`` APIs, as the original
TF 1.x release did.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow.compat.v1 as tf  # noqa: E402

tf.disable_eager_execution()
# Deprecation notices of the tf.compat.v1 API are noise for this codebase.
tf.get_logger().setLevel('ERROR')
