"""Data for training and evaluation alike: dataset readers (`sequences`), real photos (`photos`), the
photo-built sequence generator (`synthetic`), the real-sequence inventory and splits (`realdata`) and the one
pair sampler (`pairs`). Imports only `model.config` and `tracking.crops` below it."""
