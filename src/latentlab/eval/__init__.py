"""Evaluation: every result records the protocol that produced it."""
