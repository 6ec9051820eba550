"""Benchmarks: commands that measure, never timed tests. Results go to the README with their command."""
