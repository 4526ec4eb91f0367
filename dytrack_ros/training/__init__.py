"""Training: photo-built sequences, dataset pairs, losses, the trainer."""
