"""Stage 3, training: hard-negative mining, the validation split, the trainer."""
