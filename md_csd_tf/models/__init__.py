"""Model builders: the Xception spec, the MD-CSD variants of Table V, saving."""
