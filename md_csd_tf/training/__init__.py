"""The paper's training recipe: two learning-rate groups, plateau schedule, trainer, metrics."""
