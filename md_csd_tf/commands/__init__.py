"""Sub-commands of `md-csd`; see `md_csd_tf.cli` for the contract each module follows."""
