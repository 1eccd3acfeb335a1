"""tf.data input pipelines fed from a face-crop manifest."""
