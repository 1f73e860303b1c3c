"""Inference on a user's own 2D keypoints: detector file readers, joint mapping, lifting."""
